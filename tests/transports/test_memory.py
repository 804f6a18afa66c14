"""MemoryTransport: the shared contract, plus what only the in-memory broker offers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventyard.errors import IllegalGenerationError, InvalidPartitionsError, TransportError
from eventyard.transports import MemoryTransport, Outgoing, Transport
from tests.transports.contract import TransportContract, collect, next_offsets, numbered


class TestMemoryTransport(TransportContract):
    @pytest.fixture
    async def transport(self) -> AsyncIterator[Transport]:
        async with MemoryTransport() as transport:
            yield transport


@pytest.fixture
async def memory() -> AsyncIterator[MemoryTransport]:
    async with MemoryTransport(partitions=2) as transport:
        yield transport


async def test_topics_get_the_default_partition_count(memory: MemoryTransport) -> None:
    await memory.publish("auto", [Outgoing(None, b"v")])
    await memory.ensure_topic("made")
    await memory.ensure_topic("three", 3)
    assert [memory.partition_count(t) for t in ("auto", "made", "three")] == [2, 2, 3]


async def test_bad_partition_counts_are_refused() -> None:
    with pytest.raises(InvalidPartitionsError):
        MemoryTransport(partitions=0)
    async with MemoryTransport() as transport:
        with pytest.raises(InvalidPartitionsError):
            await transport.ensure_topic("t", 0)


async def test_messages_and_committed_show_the_state(memory: MemoryTransport) -> None:
    await memory.publish("t", numbered(2, partition=0) + numbered(1, prefix="x", partition=1))
    assert [m.value for m in memory.messages("t")] == [b"m0", b"m1", b"x0"]
    assert [m.value for m in memory.messages("t", 1)] == [b"x0"]
    assert memory.committed("g") == {}
    async with memory.receiver(["t"], "g") as receiver:
        got = await collect(receiver, 3)
        await receiver.commit(next_offsets(got))
    assert memory.committed("g") == {("t", 0): 2, ("t", 1): 1}


async def test_a_publish_with_a_bad_message_appends_nothing(memory: MemoryTransport) -> None:
    await memory.ensure_topic("t", 1)
    bad_header = Outgoing(None, b"v", (("h", "text"),))  # type: ignore[arg-type]
    for batch in (
        [Outgoing(None, b"ok"), Outgoing(None, "text")],  # type: ignore[arg-type]
        [Outgoing(None, b"ok"), bad_header],
    ):
        with pytest.raises(TypeError):
            await memory.publish("t", batch)
    assert memory.messages("t") == []


async def test_fetch_returns_the_published_objects(memory: MemoryTransport) -> None:
    await memory.publish("t", [Outgoing(None, b"v", partition=0)])
    async with memory.receiver(["t"], "g") as receiver:
        first = await collect(receiver, 1)
    async with memory.receiver(["t"], "other") as receiver:
        second = await collect(receiver, 1)
    assert first[0] is second[0] is memory.messages("t")[0]


async def test_round_robin_over_receivers_in_join_order() -> None:
    async with MemoryTransport(partitions=5) as transport:
        receivers = [transport.receiver(["t"], "g") for _ in range(3)]
        for receiver in receivers:
            await receiver.start()
        assert [sorted(p for _, p in r.assignment()) for r in receivers] == [[0, 3], [1, 4], [2]]
        await receivers[0].stop()
        assert [sorted(p for _, p in r.assignment()) for r in receivers[1:]] == [[0, 2, 4], [1, 3]]


async def test_members_with_different_topics_get_only_their_own(memory: MemoryTransport) -> None:
    both = memory.receiver(["a", "b"], "g")
    only_b = memory.receiver(["b"], "g")
    await both.start()
    await only_b.start()
    # Kafka's round-robin: the cycle skips members not subscribed to the partition's topic.
    assert both.assignment() == {("a", 0), ("a", 1), ("b", 1)}
    assert only_b.assignment() == {("b", 0)}


async def test_a_kept_partition_keeps_its_position_across_a_rebalance(
    memory: MemoryTransport,
) -> None:
    await memory.publish("t", numbered(3, partition=0) + numbered(3, partition=1))
    first = memory.receiver(["t"], "g")
    await first.start()
    await collect(first, 6)
    second = memory.receiver(["t"], "g")
    await second.start()
    assert first.assignment() == {("t", 0)}
    assert list(await first.fetch(0, 100)) == []
    await first.commit({("t", 0): 3})
    with pytest.raises(IllegalGenerationError):
        await first.commit({("t", 1): 3})


async def test_a_partition_lost_and_regained_before_a_fetch_refuses_the_old_commit(
    memory: MemoryTransport,
) -> None:
    await memory.publish("t", numbered(2, partition=1))
    first = memory.receiver(["t"], "g")
    await first.start()
    stale = next_offsets(await collect(first, 2))
    second = memory.receiver(["t"], "g")
    await second.start()
    await second.stop()
    assert first.assignment() == {("t", 0), ("t", 1)}
    with pytest.raises(IllegalGenerationError):
        await first.commit(stale)
    again = await collect(first, 2)
    await first.commit(next_offsets(again))


async def test_fetch_with_zero_timeout_does_not_wait(memory: MemoryTransport) -> None:
    async with memory.receiver(["t"], "g") as receiver:
        assert list(await receiver.fetch(0, 10)) == []


async def test_not_started_and_closed_transports_refuse_work() -> None:
    transport = MemoryTransport()
    with pytest.raises(TransportError, match="start"):
        await transport.publish("t", [Outgoing(None, b"v")])
    receiver = transport.receiver(["t"], "g")
    with pytest.raises(TransportError, match="start"):
        await receiver.start()
    await transport.start()
    await transport.close()
    with pytest.raises(TransportError, match="closed"):
        await transport.start()
