"""The delivery contract of ``eventyard.transports.base``, as one suite every transport runs.

:class:`TransportContract` is abstract: a backend's test module subclasses it and overrides
only the ``transport`` fixture, which yields a started transport and closes it afterwards.
The cases use nothing but the :class:`~eventyard.transports.Transport` interface, unique topic
and group names per test, and generous but bounded waits, so that they hold on a real Kafka
cluster too, where a group's first assignment and every rebalance take seconds and arrive
while the receivers poll.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence

import pytest

from eventyard.broker.partitioner import partition_for_key
from eventyard.errors import (
    ConfigError,
    GroupError,
    InvalidTopicError,
    TransportError,
    UnknownTopicError,
)
from eventyard.transports import Message, Outgoing, Receiver, Transport

WAIT = 30.0
"""Upper bound, in seconds, on anything the suite waits for (Kafka rebalances are slow)."""

POLL = 0.05
"""The fetch timeout of polling loops, in seconds."""


def unique(prefix: str) -> str:
    """A topic or group name no other test (or earlier run against the same broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def values(messages: Iterable[Message]) -> list[bytes | None]:
    return [m.value for m in messages]


def next_offsets(messages: Iterable[Message]) -> dict[tuple[str, int], int]:
    """What to commit after processing ``messages``: per partition, the last offset plus one."""
    offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        tp = (m.topic, m.partition)
        offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
    return offsets


def partitions_of(topic: str, count: int) -> frozenset[tuple[str, int]]:
    return frozenset((topic, p) for p in range(count))


async def collect(receiver: Receiver, count: int, *, limit: int = 1000) -> list[Message]:
    """Fetch until ``count`` messages arrived (failing after :data:`WAIT` seconds)."""
    got: list[Message] = []
    deadline = time.monotonic() + WAIT
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} messages arrived"
        got.extend(await receiver.fetch(POLL * 4, limit))
    return got


async def settle(
    receivers: Sequence[Receiver], partitions: frozenset[tuple[str, int]]
) -> list[list[Message]]:
    """Poll every receiver until each holds some of ``partitions`` and together all of them,
    once each, and each says it is settled (on Kafka: it also knows where every partition
    starts); then poll once more. Returns what each receiver fetched meanwhile."""
    got: list[list[Message]] = [[] for _ in receivers]
    deadline = time.monotonic() + WAIT
    while True:
        assert time.monotonic() < deadline, (
            f"no stable assignment of {sorted(partitions)}: {[r.assignment() for r in receivers]}"
        )
        for index, receiver in enumerate(receivers):
            got[index].extend(await receiver.fetch(POLL, 1000))
        assignments = [r.assignment() for r in receivers]
        if (
            all(assignments)
            and sum(map(len, assignments)) == len(partitions)
            and frozenset().union(*assignments) == partitions
            and all(r.settled() for r in receivers)
        ):
            break
    for index, receiver in enumerate(receivers):
        got[index].extend(await receiver.fetch(POLL, 1000))
    return got


def numbered(count: int, *, prefix: str = "m", partition: int | None = None) -> list[Outgoing]:
    return [Outgoing(None, f"{prefix}{i}".encode(), partition=partition) for i in range(count)]


class TransportContract(ABC):
    """The shared cases; subclasses provide the ``transport`` fixture."""

    @pytest.fixture
    @abstractmethod
    async def transport(self) -> AsyncIterator[Transport]:
        """Yield a started transport and close it after the test."""
        raise NotImplementedError
        yield

    # -- publish and fetch -------------------------------------------------------------------

    async def test_round_trip_keeps_every_field(self, transport: Transport) -> None:
        topic, group = unique("t"), unique("g")
        await transport.ensure_topic(topic, 1)
        headers = (("h", b"1"), ("h", b"2"), ("empty", None))
        await transport.publish(
            topic,
            [
                Outgoing(b"k", b"v", headers, timestamp_ms=1_700_000_000_123),
                Outgoing(None, None),
            ],
        )
        async with transport.receiver([topic], group) as receiver:
            first, second = await collect(receiver, 2)
        assert (first.topic, first.partition, first.offset) == (topic, 0, 0)
        assert (first.key, first.value, first.timestamp) == (b"k", b"v", 1_700_000_000_123)
        assert tuple(first.headers) == headers
        assert (second.offset, second.key, second.value, tuple(second.headers)) == (
            1,
            None,
            None,
            (),
        )

    async def test_timestamp_defaults_to_publish_time(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        before = time.time_ns() // 1_000_000
        await transport.publish(topic, [Outgoing(None, b"x")])
        after = time.time_ns() // 1_000_000
        async with transport.receiver([topic], unique("g")) as receiver:
            (message,) = await collect(receiver, 1)
        assert before - 1000 <= message.timestamp <= after + 1000

    async def test_keyed_messages_land_by_murmur2_in_publish_order(
        self, transport: Transport
    ) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 3)
        keys = [f"key-{i % 7}".encode() for i in range(60)]
        await transport.publish(topic, [Outgoing(k, str(i).encode()) for i, k in enumerate(keys)])
        async with transport.receiver([topic], unique("g")) as receiver:
            got = await collect(receiver, 60)
        for message in got:
            assert message.key is not None
            assert message.partition == partition_for_key(message.key, 3)
        for partition in range(3):
            mine = [m for m in got if m.partition == partition]
            assert [m.offset for m in mine] == sorted(m.offset for m in mine)
            expected = [
                str(i).encode() for i, k in enumerate(keys) if partition_for_key(k, 3) == partition
            ]
            assert values(mine) == expected

    async def test_each_fetch_is_grouped_by_partition_in_offset_order(
        self, transport: Transport
    ) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 2)
        for i in range(5):
            await transport.publish(
                topic,
                [
                    Outgoing(None, f"a{i}".encode(), partition=0),
                    Outgoing(None, f"b{i}".encode(), partition=1),
                ],
            )
        fetches: list[list[Message]] = []
        async with transport.receiver([topic], unique("g")) as receiver:
            deadline = time.monotonic() + WAIT
            while sum(map(len, fetches)) < 10:
                assert time.monotonic() < deadline, f"only {fetches} arrived"
                fetches.append(list(await receiver.fetch(POLL * 4, 1000)))
        for fetched in fetches:
            order = [m.partition for m in fetched]
            assert order == sorted(order)
        got = [m for fetched in fetches for m in fetched]
        for partition, prefix in ((0, "a"), (1, "b")):
            mine = [m for m in got if m.partition == partition]
            assert values(mine) == [f"{prefix}{i}".encode() for i in range(5)]
            assert [m.offset for m in mine] == list(range(5))

    async def test_explicit_partition_wins_over_the_key(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 4)
        key = b"some-key"
        target = (partition_for_key(key, 4) + 1) % 4
        await transport.publish(topic, [Outgoing(key, b"v", partition=target)])
        async with transport.receiver([topic], unique("g")) as receiver:
            (message,) = await collect(receiver, 1)
        assert (message.partition, message.key) == (target, key)

    async def test_publish_to_a_partition_the_topic_lacks_fails(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 2)
        with pytest.raises(UnknownTopicError):
            await transport.publish(topic, [Outgoing(None, b"v", partition=2)])

    async def test_unkeyed_messages_all_arrive(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 3)
        for start in range(0, 30, 10):
            await transport.publish(
                topic, [Outgoing(None, str(i).encode()) for i in range(start, start + 10)]
            )
        async with transport.receiver([topic], unique("g")) as receiver:
            got = await collect(receiver, 30)
        assert sorted(int(v or b"") for v in values(got)) == list(range(30))

    async def test_publishing_nothing_is_allowed(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, [])

    async def test_max_records_caps_a_fetch_and_the_rest_follows(
        self, transport: Transport
    ) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, numbered(25))
        async with transport.receiver([topic], unique("g")) as receiver:
            first = await collect(receiver, 1, limit=10)
            assert 1 <= len(first) <= 10
            rest = await collect(receiver, 25 - len(first), limit=10)
        assert values(first + rest) == [f"m{i}".encode() for i in range(25)]

    async def test_one_receiver_reads_several_topics(self, transport: Transport) -> None:
        first, second = unique("t"), unique("t")
        await transport.ensure_topic(first, 1)
        await transport.ensure_topic(second, 2)
        await transport.publish(first, numbered(3, prefix="a"))
        await transport.publish(second, numbered(4, prefix="b", partition=1))
        async with transport.receiver([first, second], unique("g")) as receiver:
            got = await collect(receiver, 7)
            assert receiver.assignment() == partitions_of(first, 1) | partitions_of(second, 2)
        assert sorted({m.topic for m in got}) == sorted([first, second])
        assert values(m for m in got if m.topic == second) == [f"b{i}".encode() for i in range(4)]

    # -- topics ------------------------------------------------------------------------------

    async def test_ensure_topic_is_idempotent_and_keeps_the_partition_count(
        self, transport: Transport
    ) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 3)
        await transport.ensure_topic(topic, 3)
        await transport.ensure_topic(topic)
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, [Outgoing(None, b"last", partition=2)])
        async with transport.receiver([topic], unique("g")) as receiver:
            (message,) = await collect(receiver, 1)
            assert receiver.assignment() == partitions_of(topic, 3)
        assert message.partition == 2

    async def test_an_invalid_topic_name_is_refused(self, transport: Transport) -> None:
        with pytest.raises(InvalidTopicError):
            await transport.ensure_topic("no spaces/or slashes")

    # -- waiting -----------------------------------------------------------------------------

    async def test_fetch_returns_nothing_when_the_timeout_passes(
        self, transport: Transport
    ) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        async with transport.receiver([topic], unique("g")) as receiver:
            await settle([receiver], partitions_of(topic, 1))
            started = time.monotonic()
            assert list(await receiver.fetch(0.3, 100)) == []
            elapsed = time.monotonic() - started
        assert 0.2 <= elapsed < 5.0

    async def test_a_waiting_fetch_returns_as_soon_as_a_message_arrives(
        self, transport: Transport
    ) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        async with transport.receiver([topic], unique("g")) as receiver:
            await settle([receiver], partitions_of(topic, 1))
            started = time.monotonic()
            fetch = asyncio.ensure_future(receiver.fetch(WAIT, 100))
            await asyncio.sleep(0.1)
            await transport.publish(topic, [Outgoing(None, b"wake")])
            got = await asyncio.wait_for(fetch, WAIT)
            elapsed = time.monotonic() - started
        assert values(got) == [b"wake"]
        assert elapsed < WAIT / 2

    async def test_stop_ends_a_waiting_fetch_with_nothing(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        receiver = transport.receiver([topic], unique("g"))
        await receiver.start()
        await settle([receiver], partitions_of(topic, 1))
        fetch = asyncio.ensure_future(receiver.fetch(WAIT, 100))
        await asyncio.sleep(0.1)
        await receiver.stop()
        assert list(await asyncio.wait_for(fetch, WAIT / 2)) == []

    # -- commits and where reading starts ----------------------------------------------------

    async def test_a_new_receiver_resumes_after_the_commit(self, transport: Transport) -> None:
        topic, group = unique("t"), unique("g")
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, numbered(10))
        async with transport.receiver([topic], group) as receiver:
            got = await collect(receiver, 10)
            await receiver.commit(next_offsets(got[:6]))
        await transport.publish(topic, numbered(2, prefix="n"))
        async with transport.receiver([topic], group) as receiver:
            again = await collect(receiver, 6)
        assert [m.offset for m in again] == list(range(6, 12))
        assert values(again) == [b"m6", b"m7", b"m8", b"m9", b"n0", b"n1"]

    async def test_uncommitted_messages_are_delivered_again(self, transport: Transport) -> None:
        topic, group = unique("t"), unique("g")
        await transport.ensure_topic(topic, 2)
        await transport.publish(topic, numbered(4, partition=0) + numbered(4, partition=1))
        async with transport.receiver([topic], group) as receiver:
            got = await collect(receiver, 8)
            await receiver.commit(next_offsets(m for m in got if m.partition == 0))
        async with transport.receiver([topic], group) as receiver:
            again = await collect(receiver, 4)
        assert {(m.partition, m.offset) for m in again} == {(1, i) for i in range(4)}

    async def test_commit_is_the_next_offset_and_can_move_forward_in_steps(
        self, transport: Transport
    ) -> None:
        topic, group = unique("t"), unique("g")
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, numbered(5))
        async with transport.receiver([topic], group) as receiver:
            got = await collect(receiver, 5)
            for message in got:
                await receiver.commit({(topic, 0): message.offset + 1})
            await receiver.commit({})
        await transport.publish(topic, [Outgoing(None, b"after")])
        async with transport.receiver([topic], group) as receiver:
            (message,) = await collect(receiver, 1)
        assert (message.offset, message.value) == (5, b"after")

    async def test_two_groups_each_get_everything(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 2)
        await transport.publish(topic, numbered(6, partition=0) + numbered(6, partition=1))
        async with (
            transport.receiver([topic], unique("g")) as first,
            transport.receiver([topic], unique("g")) as second,
        ):
            got = [await collect(first, 12), await collect(second, 12)]
        for messages in got:
            assert sorted((m.partition, m.offset) for m in messages) == [
                (p, o) for p in range(2) for o in range(6)
            ]

    async def test_offset_reset_latest_skips_what_was_there(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, numbered(3, prefix="old"))
        async with transport.receiver([topic], unique("g"), offset_reset="latest") as receiver:
            (before,) = await settle([receiver], partitions_of(topic, 1))
            await transport.publish(topic, numbered(2, prefix="new"))
            after = await collect(receiver, 2)
        assert before == []
        assert values(after) == [b"new0", b"new1"]

    async def test_a_committed_offset_wins_over_offset_reset(self, transport: Transport) -> None:
        topic, group = unique("t"), unique("g")
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, numbered(3))
        async with transport.receiver([topic], group) as receiver:
            got = await collect(receiver, 3)
            await receiver.commit(next_offsets(got[:2]))
        await transport.publish(topic, numbered(2, prefix="n"))
        async with transport.receiver([topic], group, offset_reset="latest") as receiver:
            again = await collect(receiver, 3)
        assert values(again) == [b"m2", b"n0", b"n1"]

    # -- groups ------------------------------------------------------------------------------

    async def test_receivers_of_a_group_split_the_partitions_and_take_over_on_stop(
        self, transport: Transport
    ) -> None:
        topic, group = unique("t"), unique("g")
        everything = partitions_of(topic, 4)
        await transport.ensure_topic(topic, 4)
        first = transport.receiver([topic], group)
        second = transport.receiver([topic], group)
        await first.start()
        await second.start()
        try:
            early = await settle([first, second], everything)
            assert early == [[], []]
            assert first.assignment().isdisjoint(second.assignment())
            await transport.publish(
                topic, [m for p in range(4) for m in numbered(5, prefix=f"p{p}-", partition=p)]
            )
            got = [await collect(first, 10), await collect(second, 10)]
            for receiver, messages in zip((first, second), got, strict=True):
                assert {(m.topic, m.partition) for m in messages} == receiver.assignment()
            await first.commit(next_offsets(got[0]))
            moved = second.assignment()
            await second.stop()
            (taken_over,) = await settle([first], everything)
            taken_over += await collect(first, 10 - len(taken_over))
            assert {(m.topic, m.partition) for m in taken_over} == moved
            assert sorted((m.partition, m.offset) for m in taken_over) == sorted(
                (p, o) for _, p in moved for o in range(5)
            )
        finally:
            await first.stop()
            await second.stop()

    async def test_a_commit_for_a_partition_moved_by_a_rebalance_is_refused(
        self, transport: Transport
    ) -> None:
        topic, group = unique("t"), unique("g")
        everything = partitions_of(topic, 2)
        await transport.ensure_topic(topic, 2)
        await transport.publish(topic, numbered(3, partition=0) + numbered(3, partition=1))
        first = transport.receiver([topic], group)
        second = transport.receiver([topic], group)
        await first.start()
        try:
            stale = next_offsets(await collect(first, 6))
            await second.start()
            got = await settle([first, second], everything)
            lost = second.assignment()
            with pytest.raises(GroupError):
                await first.commit(stale)
            kept = {tp: offset for tp, offset in stale.items() if tp not in lost}
            await first.commit(kept)
            redelivered = got[1] + await collect(second, 3 - len(got[1]))
            assert {(m.topic, m.partition) for m in redelivered} == lost
            assert sorted(m.offset for m in redelivered) == [0, 1, 2]
        finally:
            await first.stop()
            await second.stop()

    async def test_committing_a_partition_never_assigned_is_refused(
        self, transport: Transport
    ) -> None:
        topic, other, group = unique("t"), unique("t"), unique("g")
        await transport.ensure_topic(topic, 1)
        await transport.ensure_topic(other, 1)
        async with transport.receiver([topic], group) as receiver:
            await settle([receiver], partitions_of(topic, 1))
            with pytest.raises(GroupError):
                await receiver.commit({(other, 0): 1})

    # -- lifecycle and misuse ----------------------------------------------------------------

    async def test_fetch_and_commit_on_a_stopped_receiver_raise(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        receiver = transport.receiver([topic], unique("g"))
        with pytest.raises(TransportError):
            await receiver.fetch(0.01, 10)
        await receiver.start()
        await receiver.start()
        await receiver.stop()
        await receiver.stop()
        assert receiver.assignment() == frozenset()
        with pytest.raises(TransportError, match="stopped"):
            await receiver.fetch(0.01, 10)
        with pytest.raises(TransportError, match="stopped"):
            await receiver.commit({(topic, 0): 0})
        with pytest.raises(TransportError):
            await receiver.start()

    async def test_bad_arguments_raise_config_errors(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        with pytest.raises(ConfigError):
            transport.receiver([], unique("g"))
        with pytest.raises(ConfigError):
            transport.receiver(topic, unique("g"))
        with pytest.raises(ConfigError):
            transport.receiver([topic], "")
        with pytest.raises(ConfigError):
            transport.receiver([topic], unique("g"), offset_reset="none")
        async with transport.receiver([topic], unique("g")) as receiver:
            with pytest.raises(ConfigError):
                await receiver.fetch(0.01, 0)
            with pytest.raises(ConfigError):
                await receiver.fetch(-1, 10)

    async def test_close_is_idempotent_and_stops_everything(self, transport: Transport) -> None:
        topic = unique("t")
        await transport.ensure_topic(topic, 1)
        receiver = transport.receiver([topic], unique("g"))
        await receiver.start()
        await transport.close()
        await transport.close()
        with pytest.raises(TransportError):
            await receiver.fetch(0.01, 10)
        with pytest.raises(TransportError):
            await transport.publish(topic, [Outgoing(None, b"late")])
        with pytest.raises(TransportError):
            transport.receiver([topic], unique("g"))
