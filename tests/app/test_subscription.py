"""Reading a handler's signature, and the validation of a subscription's settings."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import msgspec
import pytest

from eventyard.app import Context, RetryPolicy
from eventyard.app.subscription import (
    HandlerShape,
    Subscription,
    dlq_topic,
    inspect_handler,
    retry_topic,
)
from eventyard.errors import ConfigError
from eventyard.events import Envelope


class Order(msgspec.Struct):
    n: int


def test_an_async_handler_of_a_typed_event() -> None:
    async def handle(order: Order) -> None: ...

    assert inspect_handler(handle) == HandlerShape(Order, False, False, True)


def test_a_sync_handler_with_a_context() -> None:
    def handle(order: Order, ctx: Context) -> None: ...

    assert inspect_handler(handle) == HandlerShape(Order, False, True, False)


def test_list_and_sequence_annotations_make_batch_handlers() -> None:
    def handle(orders: list[Order]) -> None: ...

    async def handle_seq(orders: Sequence[Order], ctx: Context) -> None: ...

    assert inspect_handler(handle) == HandlerShape(Order, True, False, False)
    assert inspect_handler(handle_seq) == HandlerShape(Order, True, True, True)


def test_envelope_any_and_no_annotation_receive_the_envelope() -> None:
    def envelope(event: Envelope) -> None: ...

    def anything(event: Any) -> None: ...

    def bare(event):  # type: ignore[no-untyped-def]
        ...

    for handler in (envelope, anything, bare):
        assert inspect_handler(handler).event_type is None, handler


def test_bytes_receive_the_raw_value() -> None:
    def handle(value: bytes) -> None: ...

    assert inspect_handler(handle).event_type is bytes


def test_explicit_event_and_batch_override_a_missing_annotation() -> None:
    def handle(event, ctx):  # type: ignore[no-untyped-def]
        ...

    shape = inspect_handler(handle, event=Order, batch=True)
    assert shape == HandlerShape(Order, True, True, False)
    assert inspect_handler(handle, event=list[Order]).batch


def test_keyword_only_parameters_do_not_count() -> None:
    async def handle(order: Order, *, extra: int = 0) -> None: ...

    assert inspect_handler(handle) == HandlerShape(Order, False, False, True)


def test_a_bound_async_method_is_an_async_handler() -> None:
    class Service:
        async def handle(self, order: Order, ctx: Context) -> None: ...

    assert inspect_handler(Service().handle) == HandlerShape(Order, False, True, True)


def test_a_partial_of_an_async_function_is_an_async_handler() -> None:
    async def handle(prefix: str, order: Order) -> None: ...

    assert inspect_handler(partial(handle, "p")) == HandlerShape(Order, False, False, True)


@pytest.mark.parametrize(
    ("handler", "fragment"),
    [
        (lambda: None, "not 0 positional parameters"),
        (lambda a, b, c: None, "not 3 positional parameters"),
    ],
)
def test_wrong_arity_is_refused(handler: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        inspect_handler(handler)
    assert "must take the event and optionally a context" in str(info.value)


def test_a_non_callable_is_refused() -> None:
    with pytest.raises(ConfigError, match="a handler must be callable, not int"):
        inspect_handler(5)  # type: ignore[arg-type]


def test_an_unresolvable_annotation_is_refused() -> None:
    def handle(order: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        ...

    with pytest.raises(ConfigError, match=r"cannot read the signature of handler .*handle"):
        inspect_handler(handle)


def test_batch_flag_contradicting_the_annotation_is_refused() -> None:
    def single(order: Order) -> None: ...

    def many(orders: list[Order]) -> None: ...

    with pytest.raises(ConfigError, match="batch=True but its first parameter is annotated"):
        inspect_handler(single, batch=True)
    with pytest.raises(ConfigError, match="annotate it list"):
        inspect_handler(many, batch=False)
    assert inspect_handler(many, batch=True).batch


def handler(order: Order) -> None: ...


SHAPE = inspect_handler(handler)


def subscription(**settings: Any) -> Subscription:
    fields: dict[str, Any] = {"topic": "orders", "group": "billing"}
    fields.update(settings)
    return Subscription(handler=handler, shape=SHAPE, **fields)


def test_names_of_the_subscription_and_its_topics() -> None:
    sub = subscription()
    assert sub.name == "billing@orders"
    assert sub.dlq_topic == "orders.billing.dlq" == dlq_topic("orders", "billing")
    assert sub.retry_topics() == [retry_topic("orders", "billing", i) for i in range(3)]
    assert sub.retry_topics()[0] == "orders.billing.retry.0"


def test_one_delay_tier_under_strict_order_or_a_single_attempt() -> None:
    strict = subscription(retry=RetryPolicy(strict_order=True))
    single = subscription(retry=RetryPolicy(max_attempts=1))
    two = subscription(retry=RetryPolicy(tiers=(1.0, 5.0)))
    assert strict.retry_topics() == ["orders.billing.retry.0"]
    assert single.retry_topics() == ["orders.billing.retry.0"]
    assert len(two.retry_topics()) == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"topic": ""}, "subscribe: topic must not be empty"),
        ({"group": ""}, "subscribe('orders'): group must not be empty"),
        ({"max_in_flight": 0}, "subscribe('orders'): max_in_flight must be at least 1, not 0"),
        ({"concurrency": 0}, "subscribe('orders'): concurrency must be at least 1, not 0"),
        ({"max_batch": -1}, "subscribe('orders'): max_batch must be at least 1, not -1"),
        ({"timeout": 0}, "subscribe('orders'): timeout must be positive, not 0"),
        (
            {"batch_interval": -0.5},
            "subscribe('orders'): batch_interval must be zero or more seconds, not -0.5",
        ),
        (
            {"batch_interval": 0.2},
            "subscribe('orders'): batch_interval needs a batch handler (annotate its event "
            "list[T])",
        ),
        (
            {"offset_reset": "newest"},
            "subscribe('orders'): offset_reset must be 'earliest' or 'latest', not 'newest'",
        ),
    ],
)
def test_bad_settings_are_one_clear_line(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        subscription(**settings)
    assert str(info.value) == message


def test_a_subscription_is_frozen() -> None:
    sub = subscription()
    with pytest.raises(AttributeError):
        sub.group = "other"  # type: ignore[misc]
