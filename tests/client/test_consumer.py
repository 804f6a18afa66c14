"""The Consumer against a real Broker: assignment, groups, rebalances, commits, seeks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.broker.groups import GroupConfig, OffsetAndMetadata
from eventyard.client import Consumer, ConsumerRecord, Producer, TopicPartition
from eventyard.errors import (
    ConfigError,
    GroupError,
    InconsistentGroupProtocolError,
    OffsetOutOfRangeError,
)

CONFIG = BrokerConfig(groups=GroupConfig(initial_rebalance_delay_ms=50))
FAST_GROUP: dict[str, Any] = {
    "session_timeout_ms": 1_000,
    "heartbeat_interval_ms": 50,
    "auto_offset_reset": "earliest",
}


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    broker = await Broker.open(tmp_path / "data", CONFIG)
    yield broker
    await broker.close()


async def produce(broker: Broker, topic: str, count: int, start: int = 0) -> None:
    async with Producer(broker) as producer:
        await producer.send_batch(
            topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(start, start + count)]
        )


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def drain(consumers: list[Consumer], expected: int) -> list[ConsumerRecord]:
    """Poll every consumer in turn until ``expected`` records arrived in total."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + 10
    while len(records) < expected:
        assert time.monotonic() < deadline, f"only {len(records)} of {expected} records"
        for consumer in consumers:
            for batch in (await consumer.getmany(timeout_ms=20)).values():
                records.extend(batch)
    return records


async def test_assigned_partition_reads_every_record_in_order(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=1))
    async with Producer(broker) as producer:
        await producer.send("t", b"v0", key=b"k0", headers=[("h", b"x")], timestamp_ms=1234)
    await produce(broker, "t", 99, start=1)
    consumer = Consumer(broker, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 0)])
    await consumer.start()
    records = await drain([consumer], 100)
    assert [r.offset for r in records] == list(range(100))
    assert [r.value for r in records] == [f"v{i}".encode() for i in range(100)]
    first = records[0]
    assert (first.topic, first.partition, first.key, first.timestamp) == ("t", 0, b"k0", 1234)
    assert first.headers == (("h", b"x"),)
    assert await consumer.position(TopicPartition("t", 0)) == 100
    assert consumer.highwater(TopicPartition("t", 0)) == 100
    assert await consumer.getmany(timeout_ms=0) == {}
    await consumer.stop()


async def test_max_records_and_getone_share_the_buffer(broker: Broker) -> None:
    await produce(broker, "t", 10)
    consumer = Consumer(broker, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 0)])
    await consumer.start()
    first = await consumer.getmany(timeout_ms=1000, max_records=3)
    assert [r.offset for r in first[TopicPartition("t", 0)]] == [0, 1, 2]
    assert (await consumer.getone()).offset == 3
    rest = await consumer.getmany(timeout_ms=1000)
    assert [r.offset for r in rest[TopicPartition("t", 0)]] == list(range(4, 10))
    await consumer.stop()


async def test_subscription_without_group_starts_at_the_end(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=3))
    await produce(broker, "t", 30)
    consumer = Consumer(broker, "t")
    await consumer.start()
    assert consumer.assignment() == {TopicPartition("t", p) for p in range(3)}
    assert await consumer.getmany(timeout_ms=50) == {}
    await produce(broker, "t", 6, start=30)
    records = await drain([consumer], 6)
    assert sorted(r.value for r in records) == sorted(f"v{i}".encode() for i in range(30, 36))
    await consumer.stop()


async def test_long_poll_wakes_when_a_record_arrives(broker: Broker) -> None:
    await broker.create_topic("t")
    consumer = Consumer(broker, "t")
    await consumer.start()
    waiting = asyncio.ensure_future(consumer.getmany(timeout_ms=5_000))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await produce(broker, "t", 1)
    result = await waiting
    assert time.monotonic() - started < 1
    assert [r.value for rs in result.values() for r in rs] == [b"v0"]
    await consumer.stop()


async def test_group_members_split_the_partitions(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=6))
    consumers = [Consumer(broker, "t", group_id="g", **FAST_GROUP) for _ in range(3)]
    await asyncio.gather(*(c.start() for c in consumers))
    everything = {TopicPartition("t", p) for p in range(6)}

    def split_evenly() -> bool:
        owned = [c.assignment() for c in consumers]
        return all(len(o) == 2 for o in owned) and set().union(*owned) == everything

    await until(split_evenly)
    await produce(broker, "t", 300)
    records = await drain(consumers, 300)
    assert sorted(r.value for r in records) == sorted(f"v{i}".encode() for i in range(300))
    for consumer in consumers:
        await consumer.stop()


async def test_rebalance_when_a_member_joins_and_stops(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=4))
    everything = {TopicPartition("t", p) for p in range(4)}
    first = Consumer(broker, "t", group_id="g", assignor="roundrobin", **FAST_GROUP)
    await first.start()
    await until(lambda: first.assignment() == everything)
    second = Consumer(broker, "t", group_id="g", assignor="roundrobin", **FAST_GROUP)
    await second.start()
    await until(lambda: len(first.assignment()) == 2 and len(second.assignment()) == 2)
    assert first.assignment() | second.assignment() == everything
    await second.stop()
    await until(lambda: first.assignment() == everything)
    await first.stop()


async def test_two_groups_each_see_every_event(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=2))
    await produce(broker, "t", 50)
    billing = Consumer(broker, "t", group_id="billing", **FAST_GROUP)
    audit = Consumer(broker, "t", group_id="audit", **FAST_GROUP)
    await asyncio.gather(billing.start(), audit.start())
    for consumer in (billing, audit):
        records = await drain([consumer], 50)
        assert sorted(r.value for r in records) == sorted(f"v{i}".encode() for i in range(50))
        await consumer.stop()


async def test_commit_and_resume_after_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tp = TopicPartition("t", 0)
    async with await Broker.open(data, CONFIG) as broker:
        await produce(broker, "t", 20)
        consumer = Consumer(broker, "t", group_id="g", **FAST_GROUP)
        await consumer.start()
        first = await consumer.getmany(timeout_ms=5_000, max_records=12)
        assert [r.offset for r in first[tp]] == list(range(12))
        await consumer.commit()
        assert await consumer.committed(tp) == 12
        await consumer.stop()
    async with await Broker.open(data, CONFIG) as broker:
        consumer = Consumer(broker, "t", group_id="g", **FAST_GROUP)
        await consumer.start()
        records = await drain([consumer], 8)
        assert [r.offset for r in records] == list(range(12, 20))
        await consumer.stop()


async def test_auto_commit_on_stop(broker: Broker) -> None:
    await produce(broker, "t", 5)
    tp = TopicPartition("t", 0)
    consumer = Consumer(broker, "t", group_id="g", enable_auto_commit=True, **FAST_GROUP)
    await consumer.start()
    await drain([consumer], 5)
    await consumer.stop()
    assert (await broker.groups.fetch_offsets("g"))[("t", 0)].offset == 5
    again = Consumer(broker, "t", group_id="g", **FAST_GROUP)
    await again.start()
    await until(lambda: again.assignment() == {tp})
    assert await again.getmany(timeout_ms=100) == {}
    assert await again.position(tp) == 5
    await again.stop()


async def test_seeks(broker: Broker) -> None:
    await broker.create_topic("t")
    base = 1_700_000_000_000
    async with Producer(broker) as producer:
        for i in range(10):
            await producer.send("t", f"v{i}".encode(), timestamp_ms=base + i * 1000)
    tp = TopicPartition("t", 0)
    consumer = Consumer(broker, group_id="g")
    consumer.assign([tp])
    await consumer.start()
    assert await consumer.position(tp) == 10
    moved = await consumer.seek_to_time(base + 4500)
    assert moved == {tp: 5}
    assert (await consumer.getone()).timestamp == base + 5000
    consumer.seek(tp, 2)
    assert (await consumer.getone()).offset == 2
    await consumer.seek_to_beginning()
    assert (await consumer.getone()).offset == 0
    await consumer.seek_to_end(tp)
    assert await consumer.position(tp) == 10
    assert await consumer.seek_to_time(base + 99_000) == {tp: 10}
    await consumer.commit({tp: 7})
    assert await consumer.committed(tp) == 7
    with pytest.raises(ConfigError):
        consumer.seek(TopicPartition("other", 0), 1)
    await consumer.stop()


async def test_reset_policy_none_raises(broker: Broker) -> None:
    await produce(broker, "t", 3)
    consumer = Consumer(broker, group_id="fresh", auto_offset_reset="none")
    consumer.assign([TopicPartition("t", 0)])
    await consumer.start()
    with pytest.raises(OffsetOutOfRangeError, match="auto_offset_reset"):
        await consumer.getmany(timeout_ms=100)
    await consumer.stop()


async def test_async_iteration_ends_when_stopped(broker: Broker) -> None:
    await produce(broker, "t", 3)
    consumer = Consumer(broker, "t", auto_offset_reset="earliest")
    await consumer.start()
    seen = []

    async def read() -> None:
        async for record in consumer:
            seen.append(record.value)

    reader = asyncio.ensure_future(read())
    await until(lambda: len(seen) == 3)
    await consumer.stop()
    await asyncio.wait_for(reader, 2)
    assert seen == [b"v0", b"v1", b"v2"]


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    broker: Any = None
    with pytest.raises(ConfigError):
        Consumer(broker, "t", auto_offset_reset="smallest")
    with pytest.raises(ConfigError):
        Consumer(broker, "t", assignor="sticky")
    with pytest.raises(ConfigError):
        Consumer(broker, "t", group_id="")
    with pytest.raises(ConfigError):
        Consumer(broker, "t").assign([TopicPartition("t", 0)])


async def test_out_of_range_committed_offset_resets_by_policy(broker: Broker) -> None:
    await produce(broker, "t", 5)
    await broker.groups.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(1_000)})
    consumer = Consumer(broker, "t", group_id="g", **FAST_GROUP)
    await consumer.start()
    records = await drain([consumer], 5)
    assert [r.offset for r in records] == list(range(5))
    await consumer.stop()


async def test_members_disagreeing_on_the_assignor_fail_clearly(broker: Broker) -> None:
    await broker.create_topic("t")
    first = Consumer(broker, "t", group_id="g", **FAST_GROUP)
    await first.start()
    await until(lambda: bool(first.assignment()))
    second = Consumer(broker, "t", group_id="g", assignor="roundrobin", **FAST_GROUP)
    await second.start()
    with pytest.raises(InconsistentGroupProtocolError):
        await second.getmany(timeout_ms=2_000)
    await second.stop()
    await first.stop()


async def test_members_coming_and_going_lose_no_committed_event(broker: Broker) -> None:
    """Churn: members join and stop while events flow; with commit-after-read, every event is
    read at least once, and once the group settles each partition has exactly one owner."""
    await broker.create_topic("t", TopicConfig(partitions=6))
    total = 600
    seen: set[int] = set()
    options = {**FAST_GROUP, "assignor": "roundrobin"}

    async def member(lifetime: float) -> None:
        async with Consumer(broker, "t", group_id="g", **options) as consumer:
            loop = asyncio.get_running_loop()
            end = loop.time() + lifetime
            while loop.time() < end:
                batch = await consumer.getmany(timeout_ms=20)
                for records in batch.values():
                    seen.update(int(r.value[1:]) for r in records if r.value)
                if batch:
                    with contextlib.suppress(GroupError):
                        await consumer.commit()

    async def producer() -> None:
        for start in range(0, total, 50):
            await produce(broker, "t", 50, start=start)
            await asyncio.sleep(0.03)

    steady = Consumer(broker, "t", group_id="g", **options)
    await steady.start()
    churn = [member(0.2), member(0.4), member(0.3), member(0.6)]
    await asyncio.gather(producer(), *churn)
    await until(lambda: len(steady.assignment()) == 6)
    while len(seen) < total:
        for records in (await steady.getmany(timeout_ms=200)).values():
            seen.update(int(r.value[1:]) for r in records if r.value)
    assert seen == set(range(total))
    await steady.stop()


async def test_a_static_member_restarts_without_a_rebalance(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=2))
    options = {**FAST_GROUP, "group_instance_id": "pod-1"}
    first = Consumer(broker, "t", group_id="g", **options)
    await first.start()
    await until(lambda: len(first.assignment()) == 2)
    generation = (await broker.groups.describe_group("g")).generation
    await first.stop()
    again = Consumer(broker, "t", group_id="g", **options)
    await again.start()
    await until(lambda: len(again.assignment()) == 2)
    described = await broker.groups.describe_group("g")
    assert described.generation == generation
    assert len(described.members) == 1
    await again.stop()
