"""Compaction by key: latest value per key, tombstone delay, appends going on, crash safety."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from eventyard.errors import OffsetOutOfRangeError, StorageError
from eventyard.records import (
    BatchBuilder,
    BatchHeader,
    Compression,
    Record,
    decode_batches,
    split_batches,
)
from eventyard.storage import LogConfig, PartitionLog
from eventyard.storage.compaction import SegmentRef, plan_groups
from tests.storage.batches import make_batch
from tests.storage.faultfs import FaultFileSystem

CONFIG = LogConfig(
    segment_bytes=1024,
    index_interval_bytes=128,
    cleanup_policy="compact",
    delete_retention_ms=1_000,
)
KEYS = [b"k%d" % i for i in range(6)]


def everything(log: PartitionLog) -> list[Record]:
    out: list[Record] = []
    offset = log.start_offset
    while offset < log.end_offset:
        data = log.read(offset, 1 << 20)
        out += decode_batches(data)
        offset = split_batches(data)[-1][1].last_offset + 1
    return out


def append_rounds(log: PartitionLog, rounds: int, timestamp_ms: int = 10_000) -> dict[int, Record]:
    """Append ``rounds`` values of every key (two keyed records and one unkeyed a batch)."""
    written: dict[int, Record] = {}
    for round_ in range(rounds):
        for i in range(0, len(KEYS), 2):
            keys = [KEYS[i], KEYS[i + 1], None]
            values = [b"%s=%d" % (key or b"-", round_) for key in keys]
            base, _ = log.append(make_batch(*values, keys=keys, timestamp_ms=timestamp_ms))
            for j, (key, value) in enumerate(zip(keys, values, strict=True)):
                written[base + j] = Record(base + j, timestamp_ms + j, key, value)
    return written


def latest_by_key(records: list[Record]) -> dict[bytes, bytes | None]:
    latest: dict[bytes, bytes | None] = {}
    for record in records:
        if record.key is not None:
            latest[record.key] = record.value
    return latest


def check_compacted(log: PartitionLog, written: dict[int, Record]) -> list[Record]:
    """Every kept record is an original one, the latest per key and unkeyed ones survive."""
    records = everything(log)
    for record in records:
        original = written[record.offset]
        assert (record.key, record.value) == (original.key, original.value)
    assert latest_by_key(records) == latest_by_key(list(written.values()))
    unkeyed = [r.offset for r in written.values() if r.key is None]
    assert [r.offset for r in records if r.key is None] == unkeyed
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    return records


def test_compaction_keeps_the_latest_value_of_each_key(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), CONFIG)
    written = append_rounds(log, 30)
    log.flush()
    size = log.size_bytes
    reclaimed = log.compact(20_000)
    assert reclaimed > 0
    assert log.size_bytes == size - reclaimed
    records = check_compacted(log, written)
    assert len(records) < len(written)
    assert log.end_offset == len(written)
    log.close()
    log = PartitionLog.open(str(tmp_path), CONFIG)
    assert check_compacted(log, written) == records
    assert log.compact(20_000) == 0
    empty = [h for h in headers(log) if h.record_count == 0]
    assert len(empty) <= len(list(tmp_path.glob("*.log")))  # at most one per segment
    log.close()


def headers(log: PartitionLog) -> list[BatchHeader]:
    out: list[BatchHeader] = []
    offset = log.start_offset
    while offset < log.end_offset:
        out += [header for _, header in split_batches(log.read(offset, 1 << 20))]
        offset = out[-1].last_offset + 1
    return out


def test_compaction_only_touches_durable_closed_segments(tmp_path: Path) -> None:
    roll_syncs: list[Callable[[], None]] = []  # held back: the closed segments stay unsynced
    log = PartitionLog.open(str(tmp_path), CONFIG, run_in_background=roll_syncs.append)
    written = append_rounds(log, 30)
    assert roll_syncs
    assert log.compact(20_000) == 0  # nothing is below the recovery point yet
    log.flush()
    log.compact(20_000)
    active_records = [r for r in everything(log) if r.offset >= log.end_offset - 3]
    assert [r.offset for r in active_records] == list(range(log.end_offset - 3, log.end_offset))
    check_compacted(log, written)
    log.close()


def test_read_of_a_removed_offset_returns_the_next_batch(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), CONFIG)
    written = append_rounds(log, 30)
    log.flush()
    log.compact(20_000)
    kept = {r.offset for r in everything(log)}
    removed = min(set(written) - kept)
    first = decode_batches(log.read(removed, 1))
    assert first and first[0].offset > removed
    log.close()


def test_tombstones_are_kept_for_delete_retention_then_removed(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), CONFIG)
    log.append(make_batch(b"first", key=b"gone", timestamp_ms=5_000))
    log.append(make_batch(None, key=b"gone", timestamp_ms=5_000))
    written = append_rounds(log, 30)
    log.flush()
    log.compact(5_999)
    gone = [r for r in everything(log) if r.key == b"gone"]
    assert [(r.offset, r.value) for r in gone] == [(1, None)]
    log.compact(6_000)
    assert [r for r in everything(log) if r.key == b"gone"] == []
    check_compacted(log, written)
    log.close()


def test_an_emptied_last_batch_of_a_group_stays_as_an_empty_batch(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1024, index_interval_bytes=128, cleanup_policy="compact")
    log = PartitionLog.open(str(tmp_path), config)
    filler = b"x" * 900
    log.append(make_batch(filler, key=b"a"))  # segment 0 (alone: 900+ bytes)
    log.append(make_batch(b"old", key=b"b"))  # segment 1 ...
    log.append(make_batch(filler, key=b"c"))
    log.append(make_batch(b"new", key=b"b"))  # ... superseded in segment 3
    log.append(make_batch(filler, key=b"d"))
    log.flush()
    log.compact(0)
    batches = split_batches(log.read(1, 1 << 20))
    assert [(h.base_offset, h.last_offset, h.record_count) for _, h in batches] == [(1, 1, 0)]
    assert decode_batches(log.read(2, 1 << 20))[0].offset == 2
    log.close()


def test_appends_continue_while_compaction_writes(tmp_path: Path) -> None:
    fs = FaultFileSystem()
    log = PartitionLog.open(str(tmp_path), CONFIG, fs)
    written = append_rounds(log, 30)
    log.flush()
    during: list[tuple[int, int]] = []

    def append_now(path: str) -> None:
        if path.endswith(".log.cleaned"):
            during.append(log.append(make_batch(b"during", key=b"live")))
            assert log.read(during[-1][0], 100)

    fs.on_open = append_now
    assert log.compact(20_000) > 0
    fs.on_open = None
    bases = [base for base, _ in during]
    assert bases and bases == list(range(len(written), len(written) + len(during)))
    records = everything(log)
    assert [r.offset for r in records if r.key == b"live"] == [base for base, _ in during]
    log.close()


def test_compaction_in_a_thread_while_appending_and_reading(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), CONFIG)
    stop = threading.Event()
    errors: list[BaseException] = []

    def compactor() -> None:
        try:
            while not stop.is_set():
                log.compact(20_000)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=compactor)
    thread.start()
    written: dict[int, Record] = {}
    try:
        for _ in range(20):
            written |= append_rounds(log, 5)
            log.flush()
            everything(log)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    log.compact(20_000)
    check_compacted(log, written)
    log.close()


@pytest.mark.parametrize("kind", ["ops", "bytes"])
def test_crash_at_every_step_of_a_compaction(tmp_path: Path, kind: str) -> None:
    template = tmp_path / "template"
    log = PartitionLog.open(str(template), CONFIG)
    written = append_rounds(log, 12)
    log.close()
    steps = range(0, 60) if kind == "ops" else range(0, 6_000, 199)
    completed = False
    for step in steps:
        directory = tmp_path / f"{kind}-{step}"
        shutil.copytree(template, directory)
        fs = FaultFileSystem(real_sync=False)
        log = PartitionLog.open(str(directory), CONFIG, fs)
        if kind == "ops":
            fs.crash_after_ops(step)
        else:
            fs.crash_after(step)
        try:
            log.compact(20_000)
        except StorageError:
            assert fs.crashed
        log.close()
        if not fs.crashed:
            completed = True
        log = PartitionLog.open(str(directory), CONFIG, FaultFileSystem(real_sync=False))
        check_compacted(log, written)
        assert log.end_offset == len(written)
        log.close()
        shutil.rmtree(directory)
        if completed:
            break
    assert completed


def test_compaction_does_nothing_under_the_delete_policy(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), LogConfig(segment_bytes=1024))
    written = append_rounds(log, 30)
    log.flush()
    assert log.compact(20_000) == 0
    assert len(everything(log)) == len(written)
    log.close()


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.ZSTD, Compression.LZ4])
def test_thinned_batches_keep_their_compression(tmp_path: Path, codec: Compression) -> None:
    log = PartitionLog.open(str(tmp_path), CONFIG)
    for round_ in range(20):
        builder = BatchBuilder(compression=codec)
        for key in KEYS:
            builder.append(b"%s=%d" % (key, round_) * 5, key=key, timestamp_ms=10_000)
        builder.append(b"unkeyed", timestamp_ms=10_000)
        log.append(builder.build())
    log.flush()
    assert log.compact(20_000) > 0
    data = log.read(0, 1 << 20)
    assert {header.compression for _, header in split_batches(data)} == {codec}
    assert all(r.key is None for r in decode_batches(data))  # keyed ones live later
    log.close()


def test_plan_groups_by_size_and_offset_span() -> None:
    refs = [SegmentRef(0, 400, 10), SegmentRef(10, 400, 20), SegmentRef(20, 400, 30)]
    assert plan_groups(refs, 800) == [refs[:2], refs[2:]]
    assert plan_groups(refs, 1200) == [refs]
    far = [SegmentRef(0, 10, 1 << 30), SegmentRef(1 << 30, 10, (1 << 31) + 5)]
    assert plan_groups(far, 1 << 20) == [far[:1], far[1:]]


def test_flush_retention_and_compaction_threads_with_appends_and_reads(tmp_path: Path) -> None:
    config = LogConfig(
        segment_bytes=1024,
        index_interval_bytes=128,
        cleanup_policy="compact,delete",
        retention_bytes=6_000,
        delete_retention_ms=1_000,
    )
    log = PartitionLog.open(str(tmp_path), config)
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(work: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                while not stop.is_set():
                    work()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        return run

    threads = [
        threading.Thread(target=loop(log.flush)),
        threading.Thread(target=loop(lambda: log.enforce_retention(20_000))),
        threading.Thread(target=loop(lambda: log.compact(20_000))),
    ]
    for thread in threads:
        thread.start()
    written: dict[int, Record] = {}
    try:
        for _ in range(40):
            written |= append_rounds(log, 2)
            # Retention may move the start between the two calls: out of range is legal.
            with contextlib.suppress(OffsetOutOfRangeError):
                assert split_batches(log.read(log.start_offset, 1 << 16))
            assert log.offset_for_time(10_000) is not None
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert log.end_offset == len(written)
    log.flush()
    for record in everything(log):
        original = written[record.offset]
        assert (record.key, record.value) == (original.key, original.value)
    log.close()
