"""The broker over real storage: topics, produce/fetch, long-poll, offsets, reopen, lock."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventyard.broker import EARLIEST, LATEST, Broker, BrokerConfig, FetchRequest, TopicConfig
from eventyard.broker.topics import TopicCatalog
from eventyard.errors import (
    BrokerError,
    CorruptRecordError,
    DataDirLockedError,
    InvalidTopicError,
    MessageTooLargeError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)
from eventyard.records import BatchBuilder, Record, decode_batches, split_batches
from eventyard.storage import OSFileSystem


def batch(
    *values: bytes,
    timestamp_ms: int | None = None,
    producer_id: int = -1,
    sequence: int = -1,
) -> bytes:
    builder = BatchBuilder(
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=sequence,
    )
    for value in values:
        builder.append(value, timestamp_ms=timestamp_ms)
    return builder.build()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with await Broker.open(tmp_path / "data") as opened:
        yield opened


async def test_produce_then_fetch_returns_the_records(broker: Broker) -> None:
    await broker.create_topic("orders", TopicConfig(partitions=2))
    first = await broker.produce("orders", 1, batch(b"a", b"b"))
    second = await broker.produce("orders", 1, batch(b"c"))
    assert (first.base_offset, first.last_offset, second.base_offset) == (0, 1, 2)
    result = await broker.fetch("orders", 1, 0)
    assert [r.value for r in decode_batches(result.records)] == [b"a", b"b", b"c"]
    assert [r.offset for r in decode_batches(result.records)] == [0, 1, 2]
    assert (result.high_watermark, result.log_start_offset) == (3, 0)
    assert (await broker.fetch("orders", 0, 0)).records == b""
    at_end = await broker.fetch("orders", 1, 3)
    assert at_end.records == b"" and at_end.high_watermark == 3


async def test_fetch_max_bytes_returns_whole_batches_and_at_least_one(broker: Broker) -> None:
    for i in range(10):
        await broker.produce("t", 0, batch(bytes(100) + bytes([i])))
    one = await broker.fetch("t", 0, 0, max_bytes=1)
    assert [r.offset for r in decode_batches(one.records)] == [0]
    size = len(one.records)
    three = await broker.fetch("t", 0, 4, max_bytes=3 * size)
    assert [r.offset for r in decode_batches(three.records)] == [4, 5, 6]


async def test_fetch_many_bounds_the_whole_response(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=3))
    for partition in range(3):
        for _ in range(4):
            await broker.produce("t", partition, batch(bytes(200)))
    size = len((await broker.fetch("t", 0, 0, max_bytes=1)).records)
    requests = [FetchRequest("t", p, 0) for p in range(3)]
    results = await broker.fetch_many(requests, max_bytes=5 * size)
    assert [len(r.records) // size for r in results] == [4, 1, 0]
    results = await broker.fetch_many(requests, max_bytes=1)
    assert [len(r.records) // size for r in results] == [1, 0, 0]


async def test_fetch_many_answers_each_partition_separately(broker: Broker) -> None:
    await broker.produce("t", 0, batch(b"x"))
    results = await broker.fetch_many(
        [FetchRequest("t", 0, 0), FetchRequest("t", 0, 99), FetchRequest("nope", 0, 0)],
        max_wait_ms=5000,
    )
    assert [r.value for r in decode_batches(results[0].records)] == [b"x"]
    assert isinstance(results[1].error, OffsetOutOfRangeError)
    assert isinstance(results[2].error, UnknownTopicError)
    with pytest.raises(OffsetOutOfRangeError):
        await broker.fetch("t", 0, 2)


async def test_long_poll_wakes_on_append(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=2))

    async def produce_later() -> None:
        await asyncio.sleep(0.05)
        await broker.produce("t", 1, batch(b"late"))

    started = time.monotonic()
    task = asyncio.create_task(produce_later())
    results = await broker.fetch_many(
        [FetchRequest("t", 0, 0), FetchRequest("t", 1, 0)], max_wait_ms=5000
    )
    await task
    assert time.monotonic() - started < 2
    assert results[0].records == b""
    assert [r.value for r in decode_batches(results[1].records)] == [b"late"]


async def test_long_poll_waits_for_min_bytes_then_times_out(broker: Broker) -> None:
    await broker.produce("t", 0, batch(b"small"))
    started = time.monotonic()
    result = await broker.fetch("t", 0, 0, max_wait_ms=150, min_bytes=10_000)
    elapsed = time.monotonic() - started
    assert 0.14 <= elapsed < 2
    assert [r.value for r in decode_batches(result.records)] == [b"small"]
    started = time.monotonic()
    empty = await broker.fetch("t", 0, 1, max_wait_ms=100)
    assert empty.records == b"" and time.monotonic() - started >= 0.09


async def test_list_offset_earliest_latest_and_by_time(broker: Broker) -> None:
    await broker.produce("t", 0, batch(b"a", b"b", timestamp_ms=1_000))
    await broker.produce("t", 0, batch(b"c", timestamp_ms=2_000))
    await broker.produce("t", 0, batch(b"d", timestamp_ms=3_000))
    assert await broker.list_offset("t", 0, EARLIEST) == 0
    assert await broker.list_offset("t", 0, LATEST) == 4
    assert await broker.list_offset("t", 0, 500) == 0
    assert await broker.list_offset("t", 0, 1_500) == 2
    assert await broker.list_offset("t", 0, 3_000) == 3
    assert await broker.list_offset("t", 0, 3_001) is None


async def test_topics_create_describe_list_delete(broker: Broker) -> None:
    info = await broker.create_topic("orders", TopicConfig(partitions=3, retention_ms=None))
    assert [p.partition for p in info.partitions] == [0, 1, 2]
    assert info.config.retention_ms is None
    assert info.config.durability == broker.config.default_durability
    await broker.create_topic("audit")
    with pytest.raises(TopicExistsError):
        await broker.create_topic("orders")
    with pytest.raises(InvalidTopicError, match="character other than"):
        await broker.create_topic("bad name")
    await broker.produce("orders", 2, batch(b"x" * 50))
    described = broker.describe_topic("orders")
    assert described.partitions[2].end_offset == 1
    assert described.partitions[2].size_bytes > 50
    assert described.message_count == 1
    assert described.size_bytes == described.partitions[2].size_bytes
    assert [t.name for t in broker.list_topics()] == ["audit", "orders"]
    await broker.delete_topic("orders")
    assert [t.name for t in broker.list_topics()] == ["audit"]
    assert not (broker.data_dir / "orders-2").exists()
    with pytest.raises(UnknownTopicError):
        broker.describe_topic("orders")
    with pytest.raises(UnknownTopicError):
        await broker.delete_topic("orders")
    recreated = await broker.create_topic("orders")
    assert recreated.partitions[0].end_offset == 0


async def test_auto_create_on_produce_and_its_refusal(tmp_path: Path) -> None:
    config = BrokerConfig(default_partitions=4)
    async with await Broker.open(tmp_path / "a", config) as broker:
        await broker.produce("fresh", 3, batch(b"x"))
        assert len(broker.describe_topic("fresh").partitions) == 4
        with pytest.raises(UnknownTopicError, match="no partition 4"):
            await broker.produce("fresh", 4, batch(b"x"))
    async with await Broker.open(tmp_path / "b", BrokerConfig(auto_create_topics=False)) as broker:
        with pytest.raises(UnknownTopicError):
            await broker.produce("fresh", 0, batch(b"x"))
        assert broker.list_topics() == []


async def test_bad_payloads_are_refused_before_anything_is_appended(tmp_path: Path) -> None:
    config = BrokerConfig(max_message_bytes=1000)
    async with await Broker.open(tmp_path, config) as broker:
        await broker.produce("t", 0, batch(b"ok"))
        with pytest.raises(MessageTooLargeError, match="record batch of 20"):
            await broker.produce("t", 0, batch(bytes(2000)))
        several = await broker.produce("t", 0, b"".join(batch(bytes(400)) for _ in range(3)))
        assert (several.base_offset, several.last_offset) == (1, 3)
        good = batch(b"first")
        corrupt = bytearray(batch(b"second"))
        corrupt[-1] ^= 0xFF
        with pytest.raises(CorruptRecordError):
            await broker.produce("t", 0, good + bytes(corrupt))
        assert broker.describe_topic("t").partitions[0].end_offset == 4
        both = await broker.produce("t", 0, good + batch(b"second"))
        assert (both.base_offset, both.last_offset) == (4, 5)


async def test_idempotent_duplicates_and_gaps_survive_reopen(tmp_path: Path) -> None:
    async with await Broker.open(tmp_path) as broker:
        producer_id, epoch = await broker.init_producer_id()
        assert epoch == 0
        first = await broker.produce("t", 0, batch(b"a", b"b", producer_id=producer_id, sequence=0))
        retry = await broker.produce("t", 0, batch(b"a", b"b", producer_id=producer_id, sequence=0))
        assert (retry.base_offset, retry.last_offset) == (first.base_offset, first.last_offset)
        with pytest.raises(OutOfOrderSequenceError):
            await broker.produce("t", 0, batch(b"c", producer_id=producer_id, sequence=5))
        await broker.produce("t", 0, batch(b"c", producer_id=producer_id, sequence=2))
    async with await Broker.open(tmp_path) as broker:
        again = await broker.produce("t", 0, batch(b"c", producer_id=producer_id, sequence=2))
        assert (again.base_offset, again.last_offset) == (2, 2)
        with pytest.raises(OutOfOrderSequenceError):
            await broker.produce("t", 0, batch(b"d", producer_id=producer_id, sequence=4))
        assert broker.describe_topic("t").partitions[0].end_offset == 3
        assert (await broker.init_producer_id())[0] > producer_id


async def test_reopen_keeps_topics_configs_and_records(tmp_path: Path) -> None:
    config = TopicConfig(partitions=2, retention_bytes=10_000_000, durability="never")
    async with await Broker.open(tmp_path) as broker:
        await broker.create_topic("orders", config)
        for i in range(20):
            await broker.produce("orders", i % 2, batch(b"%d" % i))
    async with await Broker.open(tmp_path) as broker:
        info = broker.describe_topic("orders")
        assert info.config == config
        assert [p.end_offset for p in info.partitions] == [10, 10]
        records = decode_batches((await broker.fetch("orders", 1, 0)).records)
        assert [r.value for r in records] == [b"%d" % i for i in range(1, 20, 2)]


async def test_maintenance_expires_silent_producers(tmp_path: Path) -> None:
    config = BrokerConfig(producer_id_expiration_ms=60_000)
    async with await Broker.open(tmp_path, config) as broker:
        producer_id, _ = await broker.init_producer_id()
        old = batch(b"a", timestamp_ms=1_000, producer_id=producer_id, sequence=0)
        await broker.produce("t", 0, old)
        with pytest.raises(OutOfOrderSequenceError):
            await broker.produce("t", 0, batch(b"b", producer_id=producer_id, sequence=9))
        await broker.run_maintenance()
        accepted = await broker.produce("t", 0, batch(b"b", producer_id=producer_id, sequence=9))
        assert accepted.base_offset == 1


async def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match="cannot create data directory"):
        await Broker.open(tmp_path / "file")


async def test_the_data_dir_lock_refuses_a_second_broker(tmp_path: Path) -> None:
    async with await Broker.open(tmp_path):
        with pytest.raises(DataDirLockedError):
            await Broker.open(tmp_path)
    async with await Broker.open(tmp_path):
        pass


async def test_retention_drops_old_segments(tmp_path: Path) -> None:
    async with await Broker.open(tmp_path) as broker:
        config = TopicConfig(segment_bytes=1024, retention_bytes=2048)
        await broker.create_topic("t", config)
        for _ in range(40):
            await broker.produce("t", 0, batch(bytes(200)))
        await broker.flush()
        await broker.run_maintenance()
        info = broker.describe_topic("t").partitions[0]
        assert info.start_offset > 0
        assert info.end_offset == 40
        assert await broker.list_offset("t", 0, EARLIEST) == info.start_offset
        with pytest.raises(OffsetOutOfRangeError):
            await broker.fetch("t", 0, 0)


async def test_auto_create_keeps_the_reason_a_name_is_refused(broker: Broker) -> None:
    with pytest.raises(InvalidTopicError, match="character other than"):
        await broker.produce("no spaces", 0, batch(b"x"))


async def test_an_interrupted_delete_leaves_no_data_for_a_new_topic(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await Broker.open(tmp_path) as broker:
        await broker.create_topic("t", TopicConfig(partitions=2))
        await broker.produce("t", 1, batch(b"old"))
    # A crash after the catalog write of a delete, before the directories went.
    TopicCatalog(tmp_path, OSFileSystem()).remove("t")
    with caplog.at_level(logging.WARNING, logger="eventyard.broker"):
        broker = await Broker.open(tmp_path)
    try:
        assert "t-0, t-1" in caplog.text
        info = await broker.create_topic("t", TopicConfig(partitions=2))
        assert [p.end_offset for p in info.partitions] == [0, 0]
        assert (await broker.fetch("t", 1, 0)).records == b""
    finally:
        await broker.close()


async def test_close_releases_long_polls_and_is_idempotent(tmp_path: Path) -> None:
    broker = await Broker.open(tmp_path)
    await broker.create_topic("t")
    fetch = asyncio.create_task(broker.fetch("t", 0, 0, max_wait_ms=10_000))
    await asyncio.sleep(0.02)
    await broker.close()
    await broker.close()
    result = await asyncio.wait_for(fetch, 2)
    assert result.records == b""
    with pytest.raises(BrokerError, match="closed"):
        await broker.produce("t", 0, batch(b"late"))
    with pytest.raises(BrokerError, match="closed"):
        await broker.create_topic("u")


async def test_compaction_keeps_the_latest_value_per_key(tmp_path: Path) -> None:
    async with await Broker.open(tmp_path) as broker:
        config = TopicConfig(segment_bytes=1024, cleanup_policy="compact")
        await broker.create_topic("prices", config)
        for round_ in range(10):
            builder = BatchBuilder()
            for key in (b"a", b"b", b"c"):
                builder.append(b"%s=%d" % (key, round_) + bytes(100), key=key)
            await broker.produce("prices", 0, builder.build())
        await broker.flush()
        await broker.run_maintenance()
        kept: list[Record] = []
        offset = 0
        while offset < 30:
            data = (await broker.fetch("prices", 0, offset)).records
            kept.extend(decode_batches(data))
            # Compaction may leave empty batches: consumers advance by batch, not record.
            offset = split_batches(data)[-1][1].last_offset + 1
        latest = {r.key: (r.value or b"")[:3] for r in kept}
        assert latest == {b"a": b"a=9", b"b": b"b=9", b"c": b"c=9"}
        assert len(kept) < 30
        assert [r.offset for r in kept] == sorted({r.offset for r in kept})


async def test_a_damaged_partition_fails_alone_in_fetch_many(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await Broker.open(tmp_path) as broker:
        await broker.create_topic("t", TopicConfig(partitions=2, segment_bytes=1024))
        for partition in (0, 1):
            for _ in range(10):
                await broker.produce("t", partition, batch(bytes(300)))
    segment = tmp_path / "t-0" / "00000000000000000000.log"
    damaged = bytearray(segment.read_bytes())
    damaged[16] = 7  # the first batch's magic byte
    segment.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, logger="eventyard.broker"):
        broker = await Broker.open(tmp_path)
    warnings = [r for r in caplog.records if "idempotence state recovered" in r.getMessage()]
    assert len(warnings) == 1, caplog.text  # the damage is reported once, not once per retry
    async with broker:
        results = await broker.fetch_many([FetchRequest("t", 0, 0), FetchRequest("t", 1, 0)])
        assert isinstance(results[0].error, StorageError)
        assert len(decode_batches(results[1].records)) >= 1
        with pytest.raises(StorageError):
            await broker.fetch("t", 0, 0)
