"""The App end to end on a real transport: handlers, fanout, ordering, retries, dead letters.

Every test runs on the memory transport and on the embedded (durable, in-process) broker,
through the same harness users get, so the two behave alike.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from eventyard.app import (
    App,
    BreakerPolicy,
    BreakerState,
    Context,
    Publish,
    RetryPolicy,
    dlq_topic,
    parse_dead_letter,
)
from eventyard.errors import ConfigError
from eventyard.events import EventRegistry, new_envelope
from eventyard.testing import AppHarness
from eventyard.transports import MemoryTransport, Outgoing

registry = EventRegistry()


@registry.event("test.order", version=1)
class Order(msgspec.Struct):
    customer: str
    n: int
    amount: float = 0.0


@registry.event("test.receipt", version=1)
class Receipt(msgspec.Struct):
    order: int


class NotRegistered(msgspec.Struct):
    x: int


TRANSPORTS = ["memory", "embedded"]


def new_app() -> App:
    return App(MemoryTransport(), source="tests", registry=registry, commit_interval=0.05)


class Flaky(Exception):
    pass


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_handler_receives_typed_events_and_returned_events_are_published(
    transport: str,
) -> None:
    app = new_app()
    seen: list[Order] = []

    @app.subscribe("orders", group="billing")
    async def bill(order: Order) -> Publish:
        seen.append(order)
        return Publish("receipts", Receipt(order.n), key=order.customer)

    async with AppHarness(app, transport, partitions=3) as harness:
        sent = [await harness.publish("orders", Order("c1", i), key="c1") for i in range(5)]
        await harness.settle()
        receipts = await harness.read("receipts")
    assert [o.n for o in seen] == [0, 1, 2, 3, 4]
    assert [registry.decoder(Receipt)(e).order for e in receipts] == [0, 1, 2, 3, 4]
    assert [e.causationid for e in receipts] == [e.id for e in sent]
    assert [e.correlationid for e in receipts] == [e.id for e in sent]
    assert {e.partitionkey for e in receipts} == {"c1"}
    assert harness.stats("billing").handled == 5


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_group_receives_every_event(transport: str) -> None:
    app = new_app()
    got: dict[str, list[int]] = defaultdict(list)

    @app.subscribe("orders", group="a")
    def a(order: Order) -> None:
        got["a"].append(order.n)

    @app.subscribe("orders", group="b")
    def b(order: Order) -> None:
        got["b"].append(order.n)

    async with AppHarness(app, transport) as harness:
        await harness.app.publish_many("orders", [Order("c", i) for i in range(20)])
        await harness.settle()
    assert got["a"] == list(range(20))
    assert got["b"] == list(range(20))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_per_key_order_holds_under_concurrency_and_retries(transport: str) -> None:
    app = new_app()
    rng = random.Random(7)
    handled: dict[str, list[int]] = defaultdict(list)
    failed_once: set[tuple[str, int]] = set()
    running = 0
    peak = 0

    @app.subscribe(
        "orders",
        group="ordered",
        max_in_flight=64,
        retry=RetryPolicy(max_attempts=3, initial_delay=0.001, strict_order=True),
    )
    async def handle(order: Order) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(rng.random() * 0.002)
            if order.n % 7 == 3 and (order.customer, order.n) not in failed_once:
                failed_once.add((order.customer, order.n))
                raise Flaky("first attempt fails")
            handled[order.customer].append(order.n)
        finally:
            running -= 1

    customers = [f"c{i}" for i in range(8)]
    events = [Order(c, n) for n in range(30) for c in customers]
    async with AppHarness(app, transport, partitions=2) as harness:
        await harness.app.publish_many("orders", events, key=lambda o: o.customer)
        await harness.settle()
    for customer in customers:
        assert handled[customer] == list(range(30)), customer
    assert peak > 1, "different keys must run concurrently"
    assert harness.stats("ordered").retried == len(failed_once)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_poison_event_is_dead_lettered_after_n_attempts_then_redriven(
    transport: str,
) -> None:
    app = new_app()
    attempts: dict[int, int] = defaultdict(int)
    broken = {"on": True}
    done: list[int] = []

    @app.subscribe(
        "orders",
        group="shipping",
        retry=RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0.0, tiers=(0.05,)),
    )
    def ship(order: Order, ctx: Context) -> None:
        attempts[order.n] += 1
        if order.n == 2 and broken["on"]:
            raise Flaky(f"cannot ship order {order.n}")
        done.append(order.n)

    async with AppHarness(app, transport) as harness:
        sent = await harness.app.publish_many("orders", [Order("c", i) for i in range(5)])
        await harness.settle()
        dead = await harness.messages(dlq_topic("orders", "shipping"))
        assert len(dead) == 1
        letter = parse_dead_letter(dead[0])
        assert letter.attempts == 3
        assert letter.reason == "handler"
        assert letter.error_type.endswith("Flaky")
        assert "cannot ship order 2" in letter.error
        assert "Flaky" in letter.traceback
        assert (letter.original_topic, letter.original_offset) == ("orders", 2)
        assert letter.group == "shipping"
        assert attempts[2] == 3
        assert sorted(done) == [0, 1, 3, 4]

        from eventyard.app.dlq import DeadLetterQueue

        queue = DeadLetterQueue(harness.transport, dlq_topic("orders", "shipping"))
        [pending] = await queue.pending()
        assert pending.message.value == dead[0].value
        broken["on"] = False
        result = await queue.redrive()
        assert result.redriven == 1
        await harness.settle()
        assert sorted(done) == [0, 1, 2, 3, 4]
        assert await queue.pending() == []
    assert attempts[2] == 4
    assert len(sent) == 5


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_malformed_records_go_to_the_dead_letter_topic_and_the_rest_continue(
    transport: str,
) -> None:
    app = new_app()
    done: list[int] = []

    @app.subscribe("orders", group="g")
    def handle(order: Order) -> None:
        done.append(order.n)

    good = new_envelope(Order("c", 1), source="t", registry=registry)
    bad_type = new_envelope(b'{"customer": 5, "n": "x"}', source="t", type="test.order")
    async with AppHarness(app, transport) as harness:
        await harness.transport.ensure_topic("orders")
        await harness.transport.publish(
            "orders",
            [
                Outgoing(None, b'{"specversion": "1.0", "id": '),
                harness.app.record(bad_type),
                harness.app.record(good),
            ],
        )
        await harness.settle()
        dead = [parse_dead_letter(m) for m in await harness.messages("orders.g.dlq")]
    assert done == [1]
    assert [d.reason for d in dead] == ["decode", "validation"]
    assert "customer" in dead[1].error
    assert all(d.attempts == 0 for d in dead)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_plain_records_without_an_envelope_are_handled(transport: str) -> None:
    app = new_app()
    done: list[Order] = []

    @app.subscribe("orders", group="g")
    def handle(order: Order, ctx: Context) -> None:
        assert ctx.event_id == f"orders-0-{ctx.message.offset}"
        done.append(order)

    async with AppHarness(app, transport) as harness:
        await harness.transport.ensure_topic("orders")
        await harness.transport.publish("orders", [Outgoing(b"k", b'{"customer": "kcat", "n": 9}')])
        await harness.settle()
    assert done == [Order("kcat", 9)]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_content_filter_applies_before_the_handler(transport: str) -> None:
    app = new_app()
    done: list[int] = []

    @app.subscribe("orders", group="big", filter={"amount": {"numeric": [">=", 100]}})
    def handle(order: Order) -> None:
        done.append(order.n)

    async with AppHarness(app, transport) as harness:
        await harness.app.publish_many("orders", [Order("c", i, amount=i * 30.0) for i in range(8)])
        await harness.settle()
    assert done == [4, 5, 6, 7]
    assert harness.stats("big").filtered == 4


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_batch_handler_receives_lists(transport: str) -> None:
    app = new_app()
    batches: list[list[int]] = []

    @app.subscribe("orders", group="bulk", max_batch=7)
    def handle(orders: list[Order]) -> None:
        batches.append([o.n for o in orders])

    async with AppHarness(app, transport) as harness:
        await harness.app.publish_many("orders", [Order("c", i) for i in range(20)])
        await harness.settle()
    assert [n for batch in batches for n in batch] == list(range(20))
    assert max(len(b) for b in batches) <= 7


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_batch_handlers_dead_letter_is_redriven_as_a_batch_of_one(transport: str) -> None:
    app = new_app()
    broken = {"on": True}
    calls: list[tuple[list[int], list[int]]] = []

    @app.subscribe("orders", group="bulk", retry=RetryPolicy(max_attempts=1))
    def handle(orders: list[Order], contexts: list[Context]) -> None:
        calls.append(([o.n for o in orders], [c.attempt for c in contexts]))
        if broken["on"]:
            raise Flaky("down")

    async with AppHarness(app, transport) as harness:
        await harness.app.publish_many("orders", [Order("c", i) for i in range(3)])
        await harness.settle()
        from eventyard.app.dlq import DeadLetterQueue

        queue = DeadLetterQueue(harness.transport, dlq_topic("orders", "bulk"))
        assert len(await queue.pending()) == 3
        broken["on"] = False
        calls.clear()
        assert (await queue.redrive()).redriven == 3
        await harness.settle()
        assert await queue.pending() == []
    assert sorted(n for events, _ in calls for n in events) == [0, 1, 2]
    assert [len(events) for events, _ in calls] == [1, 1, 1], calls
    assert harness.stats("bulk").dead_lettered == 3


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_paced_batch_handler_takes_what_arrived_during_its_interval(
    transport: str,
) -> None:
    """With ``batch_interval``, calls are at least the interval apart, and each takes
    everything published meanwhile, however the publishes trickled in."""
    app = new_app()
    calls: list[tuple[float, list[int]]] = []

    @app.subscribe("orders", group="board", batch_interval=0.3)
    def handle(orders: list[Order]) -> None:
        calls.append((time.monotonic(), [o.n for o in orders]))

    async with AppHarness(app, transport) as harness:
        await harness.app.publish("orders", Order("c", 0))
        for _ in range(50):  # until the first call, then trickle the rest in within 0.15 s
            if calls:
                break
            await asyncio.sleep(0.01)
        for n in range(1, 16):
            await harness.app.publish("orders", Order("c", n))
            await asyncio.sleep(0.01)
        await harness.settle()
    assert [n for _, events in calls for n in events] == list(range(16))
    assert [events for _, events in calls] == [[0], list(range(1, 16))]
    assert calls[1][0] - calls[0][0] >= 0.3


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_paced_batch_handler_keeps_its_interval_on_a_busy_stream(transport: str) -> None:
    """On a stream whose events come closer together than any drain wait, a paced call
    takes what arrived during its interval and leaves the rest for the next one; it does not
    drain until a pause in the stream or until ``max_in_flight`` is full."""
    app = new_app()
    batches: list[list[int]] = []

    @app.subscribe("orders", group="sink", batch_interval=0.05)
    def handle(orders: list[Order]) -> None:
        batches.append([o.n for o in orders])

    total = 400
    async with AppHarness(app, transport) as harness:
        for n in range(total):  # one event every 2 ms or so, for about a second
            await harness.app.publish("orders", Order("c", n))
            await asyncio.sleep(0.002)
        await harness.settle()
    assert [n for batch in batches for n in batch] == list(range(total))
    assert len(batches) >= 6, [len(batch) for batch in batches]
    assert max(len(batch) for batch in batches) <= 150, [len(batch) for batch in batches]


async def test_a_busy_subscription_commits_on_its_interval_and_an_idle_one_at_once() -> None:
    """A subscription that drains its backlog between two events does not commit each
    time (a busy stage would commit, and fsync, every few milliseconds), yet one that
    stays idle for a poll, or that someone waits on, commits what it finished at once."""
    app = App(MemoryTransport(), source="tests", registry=registry, commit_interval=10.0)
    app.poll_timeout = 0.2

    @app.subscribe("orders", group="busy")
    def handle(order: Order) -> None:
        pass

    async with AppHarness(app) as harness:
        transport = harness.transport
        assert isinstance(transport, MemoryTransport)

        def committed() -> int:
            return sum(transport.committed("busy").values())

        await harness.app.publish("orders", Order("c", 0))
        await harness.settle()  # someone waits on idleness: committed at once
        assert committed() == 1
        for n in range(1, 6):  # handled and drained one by one, nobody waiting
            await harness.app.publish("orders", Order("c", n))
            await asyncio.sleep(0.02)
        assert committed() == 1
        await asyncio.sleep(0.5)  # a whole quiet poll: the idle commit
        assert committed() == 6
    assert harness.stats("busy").handled == 6


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_batch_handler_context_is_one_per_event(transport: str) -> None:
    app = new_app()
    seen: list[tuple[int, str, int, str, int]] = []

    @app.subscribe("orders", group="bulk", max_batch=4)
    def handle(orders: list[Order], contexts: list[Context]) -> None:
        assert len(orders) == len(contexts)
        for order, ctx in zip(orders, contexts, strict=True):
            seen.append((order.n, ctx.event_id, ctx.message.offset, ctx.group, ctx.attempt))

    async with AppHarness(app, transport) as harness:
        sent = await harness.app.publish_many("orders", [Order("c", i) for i in range(10)])
        await harness.settle()
    assert seen == [(i, sent[i].id, i, "bulk", 1) for i in range(10)]
    assert harness.stats("bulk").failed == 0


async def test_breaker_opens_pauses_the_subscription_and_closes_after_a_probe() -> None:
    app = new_app()
    healthy = {"on": False}
    done: list[int] = []
    states: list[BreakerState] = []

    @app.subscribe(
        "orders",
        group="fragile",
        max_in_flight=1,
        retry=RetryPolicy(max_attempts=5, initial_delay=0.001),
        breaker=BreakerPolicy(failure_threshold=3, window=10.0, reset_timeout=0.05),
    )
    def handle(order: Order) -> None:
        if not healthy["on"]:
            raise Flaky("downstream is down")
        done.append(order.n)

    async with AppHarness(app) as harness:
        await harness.app.publish_many("orders", [Order("c", i) for i in range(5)])
        for _ in range(100):
            await asyncio.sleep(0.01)
            if harness.stats("fragile").held:
                break
        worker = harness.app._workers[0]  # the breaker's state, as the console shows it
        states.append(worker.breaker_state)
        await asyncio.sleep(0.2)
        assert done == []
        healthy["on"] = True
        await harness.settle()
        states.append(worker.breaker_state)
    assert states == [BreakerState.OPEN, BreakerState.CLOSED]
    assert done == [0, 1, 2, 3, 4]
    assert harness.stats("fragile").dead_lettered == 0


async def test_backpressure_bounds_the_events_in_flight() -> None:
    app = new_app()
    release = asyncio.Event()
    started = 0

    @app.subscribe("orders", group="slow", max_in_flight=10)
    async def handle(order: Order) -> None:
        nonlocal started
        started += 1
        await release.wait()

    async with AppHarness(app) as harness:
        await harness.app.publish_many(
            "orders", [Order(f"c{i}", i) for i in range(100)], key=lambda o: o.customer
        )
        await asyncio.sleep(0.2)
        assert 1 <= started <= 10  # keys sharing a lane wait for each other
        assert harness.stats("slow").fetched == 10
        release.set()
        await harness.settle()
    assert started == 100


async def test_handler_timeout_counts_as_a_failure() -> None:
    app = new_app()

    @app.subscribe("orders", group="t", timeout=0.01, retry=RetryPolicy(max_attempts=1))
    async def handle(order: Order) -> None:
        await asyncio.sleep(1)

    async with AppHarness(app) as harness:
        await harness.publish("orders", Order("c", 1))
        await harness.settle()
        [dead] = [parse_dead_letter(m) for m in await harness.messages("orders.t.dlq")]
    assert dead.reason == "timeout"


def test_bad_subscriptions_are_refused_when_declared() -> None:
    app = new_app()

    with pytest.raises(ConfigError, match="not a registered event type"):

        @app.subscribe("orders", group="g")
        def handle(event: NotRegistered) -> None: ...

    with pytest.raises(ConfigError, match="max_in_flight"):

        @app.subscribe("orders", group="g", max_in_flight=0)
        def handle2(order: Order) -> None: ...

    with pytest.raises(ConfigError, match="numeric"):

        @app.subscribe("orders", group="g", filter={"amount": {"numeric": [">>", 1]}})
        def handle3(order: Order) -> None: ...


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_long_retry_delays_go_through_a_delay_tier_and_the_partition_goes_on(
    transport: str,
) -> None:
    app = new_app()
    order: list[int] = []
    failed = set()

    @app.subscribe(
        "orders",
        group="tiers",
        concurrency=1,
        retry=RetryPolicy(max_attempts=3, initial_delay=0.2, jitter=0.0, tiers=(0.1, 0.3)),
    )
    def handle(order_: Order, ctx: Context) -> None:
        if order_.n == 0 and order_.n not in failed:
            failed.add(order_.n)
            raise Flaky("try again later")
        order.append(order_.n)
        assert ctx.attempt == (2 if order_.n == 0 else 1)

    async with AppHarness(app, transport) as harness:
        await harness.app.publish_many(
            "orders", [Order("same", i) for i in range(4)], key=lambda o: o.customer
        )
        await harness.settle()
        retries = await harness.messages("orders.tiers.retry.1")
    assert order == [1, 2, 3, 0], "the failed event waits in its tier while the others go on"
    assert len(retries) == 1
    letter = parse_dead_letter(retries[0])
    assert letter.next_attempt == 2
    assert letter.original_offset == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_idempotent_subscription_skips_events_it_has_handled(transport: str) -> None:
    from eventyard.app import MemoryDedupeStore

    app = new_app()
    store = MemoryDedupeStore()
    handled: list[str] = []

    @app.subscribe("orders", group="once", idempotency=store)
    def handle(order: Order, ctx: Context) -> None:
        handled.append(ctx.event_id)

    async with AppHarness(app, transport) as harness:
        envelope = harness.app.envelope(Order("c", 1))
        record = harness.app.record(envelope)
        await harness.transport.ensure_topic("orders")
        await harness.transport.publish("orders", [record, record])
        await harness.settle()
        await harness.transport.publish("orders", [record])
        await harness.settle()
    assert handled == [envelope.id]
    assert harness.stats("once").duplicates == 2


@pytest.mark.parametrize("mode", ["structured", "binary"])
async def test_both_cloudevents_modes_round_trip(mode: str) -> None:
    app = App(MemoryTransport(), source="tests", registry=registry, mode=mode)  # type: ignore[arg-type]
    got: list[tuple[Order, str, str | None]] = []

    @app.subscribe("orders", group="g")
    def handle(order: Order, ctx: Context) -> None:
        got.append((order, ctx.envelope.type, ctx.envelope.partitionkey))

    async with AppHarness(app) as harness:
        await harness.publish("orders", Order("c", 3, 9.5), key="c")
        await harness.settle()
        [message] = await harness.messages("orders")
    assert got == [(Order("c", 3, 9.5), "test.order", "c")]
    names = [name for name, _ in message.headers]
    if mode == "binary":
        assert "ce_id" in names and "ce_type" in names
    else:
        assert names == ["content-type"]
    assert message.key == b"c"


async def test_instances_of_one_group_share_partitions_and_rebalance(tmp_path: Path) -> None:
    from eventyard.broker import Broker, BrokerConfig, TopicConfig
    from eventyard.broker.groups import GroupConfig
    from eventyard.transports import EmbeddedTransport

    config = BrokerConfig(groups=GroupConfig(initial_rebalance_delay_ms=0))
    async with await Broker.open(tmp_path, config) as broker:
        await broker.create_topic("orders", TopicConfig(partitions=4))
        seen: dict[str, list[int]] = defaultdict(list)

        def instance(name: str) -> App:
            app = App(EmbeddedTransport(broker), registry=registry, commit_interval=0.05)
            app.poll_timeout = 0.02

            @app.subscribe("orders", group="shared")
            def handle(order: Order) -> None:
                seen[name].append(order.n)

            return app

        first, second = instance("first"), instance("second")
        await first.start()
        await second.start()
        try:
            for _ in range(200):
                if all(w.receiver.assignment() for a in (first, second) for w in a._workers[:1]):
                    break
                await asyncio.sleep(0.02)
            await first.publish_many(
                "orders", [Order(f"c{i}", i) for i in range(100)], key=lambda o: o.customer
            )
            await asyncio.gather(first.wait_idle(), second.wait_idle())
            assert sorted(seen["first"] + seen["second"]) == list(range(100))
            assert seen["first"] and seen["second"], "both instances get partitions"
        finally:
            await second.stop()
        before = len(seen["first"])
        await first.publish_many(
            "orders", [Order(f"c{i}", 100 + i) for i in range(100)], key=lambda o: o.customer
        )
        for _ in range(500):
            if len(seen["first"]) - before == 100:
                break
            await asyncio.sleep(0.02)
        await first.stop()
    assert sorted(seen["first"][before:]) == list(range(100, 200)), "the survivor takes over"
