"""The Fetcher against a real Broker: decoding, positions, the buffer, wake-ups, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventyard.broker import Broker, TopicConfig
from eventyard.client.fetcher import ConsumerRecord, Fetcher, TopicPartition, decode_fetched
from eventyard.errors import CorruptRecordError, StorageError
from eventyard.records import Record, encode_batch

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    broker = await Broker.open(tmp_path / "data")
    await broker.create_topic("t", TopicConfig(partitions=2))
    yield broker
    await broker.close()


def batch(start: int, count: int, last_offset_delta: int | None = None) -> bytes:
    return encode_batch(
        [
            Record(o, 1_000 + o, f"k{o}".encode(), f"v{o}".encode(), (("h", b"x"),))
            for o in range(start, start + count)
        ],
        base_offset=start,
        last_offset_delta=last_offset_delta,
    )


async def produce(broker: Broker, partition: int, *counts: int) -> None:
    """Append one batch per count (offsets are the broker's)."""
    for count in counts:
        await broker.produce("t", partition, batch(0, count))


def fetcher(broker: Broker, partition_bytes: int = 1 << 20) -> Fetcher:
    return Fetcher(broker, partition_bytes=partition_bytes, max_bytes=50 << 20)


def deadline(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


def offsets(records: list[ConsumerRecord]) -> list[int]:
    return [r.offset for r in records]


def test_decode_fetched_skips_records_below_the_offset_and_a_cut_last_batch() -> None:
    data = batch(0, 5) + batch(5, 5)
    records = decode_fetched(TP1, data + batch(10, 5)[:-3], 3)
    assert offsets(records) == [3, 4, 5, 6, 7, 8, 9]
    assert records[0] == ConsumerRecord("t", 1, 3, 1_003, b"k3", b"v3", (("h", b"x"),))
    assert decode_fetched(TP1, data, 10) == []
    assert offsets(decode_fetched(TP1, data, 0)) == list(range(10))


def test_decode_fetched_refuses_a_corrupt_batch() -> None:
    data = bytearray(batch(0, 5))
    data[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        decode_fetched(TP0, bytes(data), 0)


async def test_drain_returns_records_from_the_position_and_advances_it(broker: Broker) -> None:
    await produce(broker, 0, 5, 5)
    await produce(broker, 1, 3)
    f = fetcher(broker)
    f.assign([TP1, TP0])
    assert list(f.positions) == [TP0, TP1]
    f.reset(TP0, 2)
    f.reset(TP1, 0)
    assert await f.fetch(deadline(1))
    assert f.buffered() and f.buffered(frozenset([TP1]))
    assert f.highwater(TP0) == 10
    got = f.drain(4)
    assert {tp: offsets(rs) for tp, rs in got.items()} == {TP0: [2, 3, 4, 5]}
    assert f.positions == {TP0: 6, TP1: 0}
    got = f.drain(None, frozenset([TP1]))
    assert {tp: offsets(rs) for tp, rs in got.items()} == {TP1: [0, 1, 2]}
    assert f.positions == {TP0: 6, TP1: 3}
    assert not f.buffered(frozenset([TP1]))
    got = f.drain(None)
    assert {tp: offsets(rs) for tp, rs in got.items()} == {TP0: [6, 7, 8, 9]}
    assert f.positions == {TP0: 10, TP1: 3}
    assert not f.buffered()
    assert f.drain(None) == {}


async def test_take_one_follows_offset_order_and_moves_the_position(broker: Broker) -> None:
    await produce(broker, 0, 3)
    await produce(broker, 1, 2)
    f = fetcher(broker)
    f.assign([TP0, TP1])
    f.reset(TP0, 1)
    f.reset(TP1, 0)
    assert await f.fetch(deadline(1))
    first = f.take_one(frozenset([TP1]))
    assert first is not None and (first.partition, first.offset) == (1, 0)
    assert f.positions == {TP0: 1, TP1: 1}
    taken = []
    while (record := f.take_one()) is not None:
        taken.append((record.partition, record.offset))
    assert taken == [(0, 1), (0, 2), (1, 1)]
    assert f.positions == {TP0: 3, TP1: 2}


async def test_fetch_reads_only_partitions_with_a_position_and_nothing_buffered(
    broker: Broker,
) -> None:
    await produce(broker, 0, 2)
    await produce(broker, 1, 2)
    f = fetcher(broker)
    f.assign([TP0, TP1])
    f.reset(TP0, 0)
    assert await f.fetch(deadline(1))
    assert f.positions[TP1] is None and not f.buffered(frozenset([TP1]))
    await produce(broker, 0, 2)
    assert await f.fetch(deadline(0))
    assert offsets(f.drain(None)[TP0]) == [0, 1], "the buffered partition was fetched again"
    f.reset(TP1, 0)
    assert await f.fetch(deadline(1), frozenset([TP1]))
    assert set(f.drain(None)) == {TP1}


async def test_reset_keeps_a_position_set_meanwhile(broker: Broker) -> None:
    f = fetcher(broker)
    f.assign([TP0])
    f.move(TP0, 7)
    f.reset(TP0, 0)
    f.reset(TP1, 0)
    assert f.positions == {TP0: 7}


async def test_move_and_reassignment_drop_buffered_records(broker: Broker) -> None:
    await produce(broker, 0, 5)
    await produce(broker, 1, 5)
    f = fetcher(broker)
    f.assign([TP0, TP1])
    f.reset(TP0, 0)
    f.reset(TP1, 0)
    assert await f.fetch(deadline(1))
    f.move(TP0, 3)
    assert set(f.drain(None)) == {TP1}
    assert await f.fetch(deadline(1))
    assert offsets(f.drain(None)[TP0]) == [3, 4]
    f.move(TP0, 0)
    f.move(TP1, 0)
    assert await f.fetch(deadline(1))
    f.assign([TP1])
    assert f.positions == {TP1: 0}
    assert set(f.drain(None)) == {TP1}
    f.revoke()
    assert f.positions == {} and not f.buffered()


async def test_batches_wholly_below_the_position_move_it_past_them(broker: Broker) -> None:
    # A batch whose records end before its last offset, as compaction leaves them.
    await broker.produce("t", 0, batch(0, 3, last_offset_delta=9))
    await produce(broker, 0, 2)
    f = fetcher(broker, partition_bytes=1)
    f.assign([TP0])
    f.reset(TP0, 5)
    assert not await f.fetch(deadline(1))
    assert f.positions == {TP0: 10}
    assert await f.fetch(deadline(1))
    assert offsets(f.drain(None)[TP0]) == [10, 11]


async def test_a_long_poll_returns_when_data_arrives(broker: Broker) -> None:
    f = fetcher(broker)
    f.assign([TP0])
    f.reset(TP0, 0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    loop.call_later(0.1, lambda: loop.create_task(produce(broker, 0, 1)))
    assert await f.fetch(deadline(5))
    assert loop.time() - started < 2
    assert offsets(f.drain(None)[TP0]) == [0]


async def test_a_long_poll_ends_at_the_deadline(broker: Broker) -> None:
    f = fetcher(broker)
    f.assign([TP0])
    f.reset(TP0, 0)
    loop = asyncio.get_running_loop()
    end = deadline(0.05)
    calls = 1
    while not await f.fetch(end):
        calls += 1
    # The broker's timer may fire a hair before the loop's deadline: one more call then.
    assert calls <= 3 and end <= loop.time() < end + 1
    assert not f.buffered()
    f.assign([])
    assert await f.fetch(deadline(0.05)), "nothing to fetch and the deadline passed"


@pytest.mark.parametrize("with_partitions", [True, False])
async def test_wake_interrupts_a_wait(broker: Broker, with_partitions: bool) -> None:
    f = fetcher(broker)
    if with_partitions:
        f.assign([TP0])
        f.reset(TP0, 0)
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, f.wake)
    started = loop.time()
    assert not await f.fetch(deadline(5))
    assert loop.time() - started < 2


async def test_a_lost_position_is_reported_out_of_range(broker: Broker) -> None:
    await produce(broker, 0, 3)
    f = fetcher(broker)
    f.assign([TP0])
    f.move(TP0, 50)
    assert not await f.fetch(deadline(1))
    assert f.positions == {TP0: None}
    assert f.out_of_range == {TP0}
    f.reset(TP0, 0)
    assert f.out_of_range == set()


async def test_a_deleted_topic_is_skipped(broker: Broker) -> None:
    await produce(broker, 0, 2)
    gone = TopicPartition("gone", 0)
    f = fetcher(broker)
    f.assign([gone, TP0])
    f.reset(gone, 0)
    f.reset(TP0, 0)
    assert await f.fetch(deadline(1))
    assert set(f.drain(None)) == {TP0}
    assert f.positions == {gone: 0, TP0: 2}
    end = deadline(0.05)
    while not await f.fetch(end):
        pass
    assert f.positions == {gone: 0, TP0: 2} and not f.out_of_range


async def test_other_fetch_errors_are_raised(broker: Broker, tmp_path: Path) -> None:
    await produce(broker, 0, 3)
    segments = list((tmp_path / "data").rglob("*.log"))
    assert segments
    for segment in segments:
        segment.write_bytes(b"\xff" * 100)
    f = fetcher(broker)
    f.assign([TP0])
    f.reset(TP0, 0)
    with pytest.raises((StorageError, CorruptRecordError)):
        await f.fetch(deadline(1))


async def test_take_one_never_returns_a_dropped_buffer(broker: Broker) -> None:
    await produce(broker, 0, 3)
    await produce(broker, 1, 3)
    f = fetcher(broker)
    f.assign([TP0, TP1])
    f.reset(TP0, 0)
    f.reset(TP1, 0)
    assert await f.fetch(deadline(1))
    first = f.take_one()
    assert first is not None and (first.partition, first.offset) == (0, 0)
    f.move(TP0, 0)
    second = f.take_one()
    assert second is not None and (second.partition, second.offset) == (1, 0)
    assert offsets(f.drain(1)[TP1]) == [1]
    third = f.take_one()
    assert third is not None and (third.partition, third.offset) == (1, 2)
    assert f.take_one() is None
    assert f.positions == {TP0: 0, TP1: 3}
