"""Durability policies of a partition, observed through a counting, gateable file system."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from eventyard.broker import LATEST, Broker, BrokerConfig, TopicConfig
from eventyard.broker.partition import tail_headers
from eventyard.errors import StorageError, UnknownTopicError
from eventyard.records import BatchBuilder, decode_batches
from eventyard.storage import Durability, LogConfig, PartitionLog
from tests.broker.countingfs import CountingFileSystem


def batch(value: bytes) -> bytes:
    builder = BatchBuilder()
    builder.append(value)
    return builder.build()


async def open_broker(path: Path, fs: CountingFileSystem, durability: str) -> Broker:
    broker = await Broker.open(path, BrokerConfig(fs=fs, default_durability=durability))
    await broker.create_topic("t", TopicConfig(partitions=1))
    return broker


async def test_always_acknowledges_after_a_shared_flush(tmp_path: Path) -> None:
    fs = CountingFileSystem()
    broker = await open_broker(tmp_path, fs, "always")
    try:
        before = fs.fsyncs
        await broker.produce("t", 0, batch(b"alone"))
        per_flush = fs.fsyncs - before
        assert per_flush >= 1

        fs.gate = threading.Event()
        fs.waiting.clear()
        first = asyncio.create_task(broker.produce("t", 0, batch(b"first")))
        await asyncio.to_thread(fs.waiting.wait, 5)
        others = [asyncio.create_task(broker.produce("t", 0, batch(b"%d" % i))) for i in range(7)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in [first, *others])
        # Fetchers see only what is durable.
        assert (await broker.fetch("t", 0, 1)).records == b""
        visible = decode_batches((await broker.fetch("t", 0, 0)).records)
        assert [r.value for r in visible] == [b"alone"]
        assert await broker.list_offset("t", 0, LATEST) == 1
        assert broker.describe_topic("t").partitions[0].end_offset == 1
        started = fs.fsyncs
        gate, fs.gate = fs.gate, None
        gate.set()
        results = await asyncio.gather(first, *others)
        # The held flush finished, then exactly one more flush covered the seven others.
        assert fs.fsyncs - started == 2 * per_flush - 1
        assert sorted(r.base_offset for r in results) == list(range(1, 9))
        fetched = decode_batches((await broker.fetch("t", 0, 0)).records)
        assert len(fetched) == 9
    finally:
        await broker.close()


async def test_always_with_eight_concurrent_producers_shares_fsyncs(tmp_path: Path) -> None:
    fs = CountingFileSystem()
    broker = await open_broker(tmp_path, fs, "always")
    try:
        before = fs.fsyncs
        await broker.produce("t", 0, batch(b"alone"))
        per_flush = fs.fsyncs - before

        async def producer(n: int) -> None:
            for i in range(25):
                await broker.produce("t", 0, batch(b"%d-%d" % (n, i)))

        before = fs.fsyncs
        await asyncio.gather(*(producer(n) for n in range(8)))
        flushes = (fs.fsyncs - before) / per_flush
        assert flushes <= 200 / 4
        assert broker.describe_topic("t").partitions[0].end_offset == 201
    finally:
        await broker.close()


async def test_interval_acknowledges_at_once_and_flushes_on_a_timer(tmp_path: Path) -> None:
    fs = CountingFileSystem()
    broker = await open_broker(tmp_path, fs, "interval:50")
    try:
        before = fs.fsyncs
        fs.gate = threading.Event()
        await broker.produce("t", 0, batch(b"quick"))
        assert fs.fsyncs == before
        assert [r.value for r in decode_batches((await broker.fetch("t", 0, 0)).records)] == [
            b"quick"
        ]
        fs.gate.set()
        fs.gate = None
        for _ in range(100):
            if fs.fsyncs > before:
                break
            await asyncio.sleep(0.02)
        assert fs.fsyncs > before
    finally:
        await broker.close()


async def test_never_flushes_only_at_close(tmp_path: Path) -> None:
    fs = CountingFileSystem()
    broker = await open_broker(tmp_path, fs, "never")
    before = fs.fsyncs
    for i in range(10):
        await broker.produce("t", 0, batch(b"%d" % i))
    await asyncio.sleep(0.1)
    assert fs.fsyncs == before
    await broker.close()
    assert fs.fsyncs > before


async def test_a_failed_fsync_fails_the_waiting_producers_and_loses_nothing_acked(
    tmp_path: Path,
) -> None:
    fs = CountingFileSystem()
    broker = await open_broker(tmp_path, fs, "always")
    acknowledged = await broker.produce("t", 0, batch(b"kept"))
    fs.fail = True
    with pytest.raises(StorageError):
        await broker.produce("t", 0, batch(b"unacknowledged"))
    with pytest.raises(StorageError):
        await broker.produce("t", 0, batch(b"after the failure"))
    with pytest.raises(StorageError):
        await broker.close()
    fs.fail = False
    async with await Broker.open(tmp_path, BrokerConfig(fs=fs)) as reopened:
        records = decode_batches((await reopened.fetch("t", 0, 0)).records)
        assert records[0].value == b"kept"
        assert records[0].offset == acknowledged.base_offset


async def test_deleting_a_topic_releases_fetchers_and_flush_waiters(tmp_path: Path) -> None:
    fs = CountingFileSystem()
    broker = await open_broker(tmp_path, fs, "always")
    try:
        await broker.create_topic("quiet")
        fetch = asyncio.create_task(broker.fetch("quiet", 0, 0, max_wait_ms=10_000))
        fs.gate = threading.Event()
        fs.waiting.clear()
        produce = asyncio.create_task(broker.produce("t", 0, batch(b"in flight")))
        await asyncio.to_thread(fs.waiting.wait, 5)
        deleting = [
            asyncio.create_task(broker.delete_topic("t")),
            asyncio.create_task(broker.delete_topic("quiet")),
        ]
        await asyncio.sleep(0.05)
        assert not produce.done()
        fs.gate.set()
        fs.gate = None
        await asyncio.gather(*deleting)
        assert (await produce).base_offset == 0
        with pytest.raises(UnknownTopicError):
            await asyncio.wait_for(fetch, 2)
        assert broker.list_topics() == []
    finally:
        await broker.close()


def test_the_producer_state_scan_reads_only_the_tail(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), LogConfig(durability=Durability.parse("never")))
    try:
        assert tail_headers(log) == []
        for i in range(20):
            log.append(batch(bytes(10_000) + b"%d" % i))
        for i in range(30):
            log.append(batch(b"small %d" % i))
        small = tail_headers(log, max_offsets=10)
        assert [h.base_offset for h in small] == list(range(40, 50))
        everything = tail_headers(log)
        assert [h.base_offset for h in everything] == list(range(50))
        log.append(batch(bytes(10_000)))
        # The last batch holds ~10 kB per offset, so 35 kB cover its last three offsets.
        large = tail_headers(log, max_bytes=35_000)
        assert [h.base_offset for h in large] == [48, 49, 50]
    finally:
        log.close()
