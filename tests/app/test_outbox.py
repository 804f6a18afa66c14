"""The outbox: handler results of many lanes published together, in order, acknowledged first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import pytest

from eventyard.app import App, Publish, RetryPolicy, dlq_topic
from eventyard.app.outbox import Outbox
from eventyard.events import EventRegistry
from eventyard.testing import AppHarness
from eventyard.transports import MemoryTransport, Outgoing

registry = EventRegistry()


@registry.event("test.outbox.order", version=1)
class Order(msgspec.Struct):
    customer: str
    n: int


@registry.event("test.outbox.receipt", version=1)
class Receipt(msgspec.Struct):
    n: int


class CountingTransport(MemoryTransport):
    """A real memory transport that also counts its publish calls per topic."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    async def publish(self, topic: str, messages: Sequence[Outgoing]) -> None:
        self.calls[topic] = self.calls.get(topic, 0) + 1
        await super().publish(topic, messages)


def record(n: int) -> Outgoing:
    return Outgoing(key=b"k", value=str(n).encode(), headers=())


async def test_results_of_one_turn_share_a_flush_and_their_items_finish_after_it() -> None:
    published: list[tuple[str, list[bytes | None]]] = []
    finished: list[list[int]] = []

    async def publish(topic: str, records: list[Outgoing]) -> None:
        published.append((topic, [r.value for r in records]))
        assert not finished  # nothing is finished before its flush is acknowledged

    async def sleep(_: float) -> bool:
        return True

    outbox: Outbox[int] = Outbox(publish, finished.append, sleep, "test")
    for i in range(5):
        outbox.add({"a": [record(i)], "b": [record(10 + i)]}, i)
    assert await outbox.send({"a": [record(5)]})
    await outbox.flushed()
    assert published == [
        ("a", [b"0", b"1", b"2", b"3", b"4", b"5"]),
        ("b", [b"10", b"11", b"12", b"13", b"14"]),
    ]
    assert finished == [[0, 1, 2, 3, 4]]


async def test_results_queued_during_a_flush_go_in_the_next_one() -> None:
    published: list[list[bytes | None]] = []
    finished: list[list[int]] = []
    gate = asyncio.Event()

    async def publish(topic: str, records: list[Outgoing]) -> None:
        published.append([r.value for r in records])
        await gate.wait()

    async def sleep(_: float) -> bool:
        return True

    outbox: Outbox[int] = Outbox(publish, finished.append, sleep, "test")
    outbox.add({"a": [record(1)]}, 1)
    await asyncio.sleep(0)  # the flush starts and waits in publish
    outbox.add({"a": [record(2)]}, 2)
    outbox.add({"a": [record(3)]}, 3)
    gate.set()
    await outbox.flushed()
    assert published == [[b"1"], [b"2", b"3"]]
    assert finished == [[1], [2, 3]]


async def test_a_send_with_nothing_queued_publishes_at_once_and_what_follows_waits() -> None:
    published: list[list[bytes | None]] = []
    finished: list[list[int]] = []
    gate = asyncio.Event()

    async def publish(topic: str, records: list[Outgoing]) -> None:
        published.append([r.value for r in records])
        if len(published) == 1:
            await gate.wait()

    async def sleep(_: float) -> bool:
        return True

    outbox: Outbox[int] = Outbox(publish, finished.append, sleep, "test")
    sending = asyncio.ensure_future(outbox.send({"a": [record(1)]}))
    await asyncio.sleep(0)
    assert published == [[b"1"]]  # in the sender's own first step, no flush task between
    outbox.add({"a": [record(2)]}, 2)
    await asyncio.sleep(0)
    assert published == [[b"1"]]  # one flush at a time: the next waits for this send
    gate.set()
    assert await sending
    await outbox.flushed()
    assert published == [[b"1"], [b"2"]]
    assert finished == [[2]]


async def test_a_failing_flush_is_retried_and_a_stop_leaves_its_items_unfinished() -> None:
    attempts: list[int] = []
    finished: list[list[int]] = []
    stopping = asyncio.Event()

    async def publish(topic: str, records: list[Outgoing]) -> None:
        attempts.append(len(records))
        if len(attempts) < 3:
            raise ConnectionError("broker away")

    async def sleep(_: float) -> bool:
        return not stopping.is_set()

    outbox: Outbox[int] = Outbox(publish, finished.append, sleep, "test")
    outbox.add({"a": [record(1), record(2)]}, 1)
    await outbox.flushed()
    assert attempts == [2, 2, 2]
    assert finished == [[1]]

    async def never(topic: str, records: list[Outgoing]) -> None:
        raise ConnectionError("broker gone")

    lost: list[list[int]] = []
    stopped: Outbox[int] = Outbox(never, lost.append, sleep, "test")
    stopping.set()
    stopped.add({"a": [record(3)]}, 3)
    assert await stopped.send({"a": [record(4)]}) is False
    await stopped.flushed()
    assert lost == []


async def test_an_app_publishes_the_results_of_many_events_in_few_calls() -> None:
    transport = CountingTransport()
    app = App(transport, source="tests", registry=registry, commit_interval=0.05)

    @app.subscribe("orders", group="billing")
    async def bill(order: Order) -> Publish:
        return Publish("receipts", Receipt(order.n), key=order.customer)

    count = 400
    async with AppHarness(app, transport) as harness:
        await app.publish_many(
            "orders", [Order(f"c{i % 50}", i) for i in range(count)], key=lambda o: o.customer
        )
        await harness.settle()
        decode = registry.decoder(Receipt)
        receipts = [decode(envelope) for envelope in await harness.read("receipts")]
    assert sorted(r.n for r in receipts) == list(range(count))
    for customer in range(50):
        mine = [r.n for r in receipts if r.n % 50 == customer]
        assert mine == sorted(mine)  # one key's results keep their causes' order
    assert transport.calls["receipts"] < count / 10


@pytest.mark.parametrize("transport", ["memory", "embedded"])
async def test_returning_something_else_than_publish_is_a_handler_failure(transport: str) -> None:
    app = App(MemoryTransport(), source="tests", registry=registry, commit_interval=0.05)

    @app.subscribe("orders", group="wrong", retry=RetryPolicy(max_attempts=2, initial_delay=0))
    def handle(order: Order) -> Receipt:
        return Receipt(order.n)

    async with AppHarness(app, transport) as harness:
        await app.publish("orders", Order("c", 1))
        await harness.settle()
        dead = await harness.messages(dlq_topic("orders", "wrong"))
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert b"return Publish" in (headers.get("eventyard-dlq-error") or b"")
    assert harness.stats("wrong").failed == 2
