"""One subscription: what a handler reads, how it is called, and the reliability settings.

:class:`Subscription` is the frozen record of an ``@app.subscribe(...)`` call, validated
when the decorator runs so that a mistake is reported at import time with one clear line,
not when the first event arrives. :func:`inspect_handler` reads the handler's signature:

- the first parameter's annotation is the event type: a registered typed event (a
  ``msgspec.Struct`` or pydantic model), ``list[T]`` for a batch handler, ``Envelope`` for
  the whole CloudEvent, ``bytes`` for the raw record value, or nothing (the envelope);
- a second parameter, if any, receives the :class:`~eventyard.app.context.Context` (a batch
  handler: a list of them, one per event, in the same order);
- ``async def`` handlers run on the event loop, in the lane task of their key
  (:mod:`eventyard.app.lanes`); plain ``def`` handlers run there too, so they must not
  block: hand blocking work to ``asyncio.to_thread`` inside an ``async def`` handler.

Names: the dead-letter topic is ``<topic>.<group>.dlq`` and the delay tiers are
``<topic>.<group>.retry.<n>``, so two groups of one topic never share them.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventyard.app.breaker import BreakerPolicy
from eventyard.app.idempotency import DedupeStore
from eventyard.app.retry import RetryPolicy
from eventyard.errors import ConfigError
from eventyard.events import Envelope

__all__ = ["HandlerShape", "Subscription", "dlq_topic", "inspect_handler", "retry_topic"]

Handler = Callable[..., Any]


def dlq_topic(topic: str, group: str) -> str:
    """The dead-letter topic of ``group``'s subscription to ``topic``."""
    return f"{topic}.{group}.dlq"


def retry_topic(topic: str, group: str, tier: int) -> str:
    """The topic of delay tier ``tier`` of ``group``'s subscription to ``topic``."""
    return f"{topic}.{group}.retry.{tier}"


@dataclass(frozen=True, slots=True)
class HandlerShape:
    """What :func:`inspect_handler` learnt from a handler's signature."""

    event_type: Any
    """A typed event class, ``Envelope``, ``bytes``, or ``None`` (the envelope)."""
    batch: bool
    wants_context: bool
    is_async: bool


def inspect_handler(handler: Handler, event: Any = None, batch: bool | None = None) -> HandlerShape:
    """Read the handler's event type, batch mode and context parameter from its signature."""
    if not callable(handler):
        raise ConfigError(f"a handler must be callable, not {type(handler).__name__}")
    name = getattr(handler, "__qualname__", repr(handler))
    try:
        signature = inspect.signature(handler)
        hints = typing.get_type_hints(inspect.unwrap(_unpartial(handler)))
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigError(f"cannot read the signature of handler {name}: {exc}") from exc
    params = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not 1 <= len(params) <= 2:
        raise ConfigError(
            f"handler {name} must take the event and optionally a context, "
            f"not {len(params)} positional parameters"
        )
    annotation = event if event is not None else hints.get(params[0].name)
    is_batch = typing.get_origin(annotation) in (list, Sequence)
    if is_batch:
        (annotation,) = typing.get_args(annotation) or (None,)
    if batch is not None and batch != is_batch and event is None and params[0].name in hints:
        raise ConfigError(
            f"handler {name}: batch={batch} but its first parameter is annotated "
            f"{hints[params[0].name]!r}; annotate it list[T] for a batch handler"
        )
    if annotation is Envelope or annotation is Any:
        annotation = None
    return HandlerShape(
        event_type=annotation,
        batch=is_batch if batch is None else batch,
        wants_context=len(params) == 2,
        is_async=inspect.iscoroutinefunction(handler),
    )


def _unpartial(handler: Handler) -> Handler:
    """The function inside ``functools.partial`` layers (its annotations are the real ones)."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    return handler


@dataclass(frozen=True, slots=True)
class Subscription:
    """The settings of one ``@app.subscribe`` (see ``docs/app.md`` for what each guarantees).

    ``max_in_flight`` bounds the events fetched and not yet finished; when it is reached the
    subscription stops fetching (backpressure) until some finish. ``concurrency`` is how many
    handler calls may run at once (events of one key never run concurrently; see
    :mod:`eventyard.app.lanes`). ``max_batch`` caps the
    events of one batch handler call; ``batch_interval`` (seconds, batch handlers only) is the
    least time between two calls: the subscription waits it out after a call, then takes
    everything that arrived meanwhile, so a read model or a sink that may lag that much makes
    one call, one transaction and a few fetches where it would make dozens.
    ``timeout`` (seconds) cancels an ``async`` handler
    that runs longer and counts as a failure. ``filter`` is a content filter
    (``eventyard.app.filters``), applied before the handler; events it rejects are committed
    without being handled.
    """

    topic: str
    group: str
    handler: Handler
    shape: HandlerShape
    filter: Mapping[str, Any] | None = None
    max_in_flight: int = 1024
    concurrency: int = 32
    max_batch: int = 500
    batch_interval: float = 0.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dlq: bool = True
    idempotency: DedupeStore | None = None
    breaker: BreakerPolicy | None = None
    timeout: float | None = None
    offset_reset: str = "earliest"

    def __post_init__(self) -> None:
        if not self.topic:
            raise ConfigError("subscribe: topic must not be empty")
        if not self.group:
            raise ConfigError(f"subscribe({self.topic!r}): group must not be empty")
        if self.max_in_flight < 1:
            raise ConfigError(
                f"subscribe({self.topic!r}): max_in_flight must be at least 1, "
                f"not {self.max_in_flight}"
            )
        if self.concurrency < 1:
            raise ConfigError(
                f"subscribe({self.topic!r}): concurrency must be at least 1, not {self.concurrency}"
            )
        if self.max_batch < 1:
            raise ConfigError(
                f"subscribe({self.topic!r}): max_batch must be at least 1, not {self.max_batch}"
            )
        if not self.batch_interval >= 0:
            raise ConfigError(
                f"subscribe({self.topic!r}): batch_interval must be zero or more seconds, "
                f"not {self.batch_interval}"
            )
        if self.batch_interval and not self.shape.batch:
            raise ConfigError(
                f"subscribe({self.topic!r}): batch_interval needs a batch handler "
                "(annotate its event list[T])"
            )
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(
                f"subscribe({self.topic!r}): timeout must be positive, not {self.timeout}"
            )
        if self.offset_reset not in ("earliest", "latest"):
            raise ConfigError(
                f"subscribe({self.topic!r}): offset_reset must be 'earliest' or 'latest', "
                f"not {self.offset_reset!r}"
            )

    @property
    def name(self) -> str:
        """``group`` and ``topic``, as logs and stats name the subscription."""
        return f"{self.group}@{self.topic}"

    @property
    def dlq_topic(self) -> str:
        return dlq_topic(self.topic, self.group)

    def retry_topics(self) -> list[str]:
        """The delay-tier topics, one per tier of the retry policy.

        With ``strict_order`` (retries in place) or a single attempt only tier 0 exists: it is
        the lane ``eventyard dlq redrive`` replays dead letters into, so a redriven event is
        handled by this group alone, not by every group of the topic.
        """
        tiers = len(self.retry.tiers)
        if self.retry.strict_order or self.retry.max_attempts <= 1:
            tiers = 1
        return [retry_topic(self.topic, self.group, i) for i in range(tiers)]
