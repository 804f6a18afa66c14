"""PartitionLog: append, read, offsets by time, rolling, reopening, flush and retention."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventyard.errors import CorruptRecordError, OffsetOutOfRangeError, StorageError
from eventyard.records import decode_batches, read_header, split_batches
from eventyard.storage import Durability, LogConfig, OSFileSystem, PartitionLog
from eventyard.storage.fs import OSFile
from eventyard.storage.recovery import RecoveredLog, recover_log
from tests.storage.batches import make_batch, payload, values_in
from tests.storage.faultfs import FaultFileSystem

SMALL = LogConfig(segment_bytes=4096, index_interval_bytes=512)


def fill(log: PartitionLog, batches: int, per_batch: int = 2, start_ms: int = 1_000) -> None:
    for _ in range(batches):
        offset = log.end_offset
        values = [payload(offset + j) for j in range(per_batch)]
        log.append(make_batch(*values, timestamp_ms=start_ms + offset))


def segment_logs(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".log"))


def test_append_assigns_consecutive_offsets_and_patches_base_offset(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path))
    assert (log.start_offset, log.end_offset) == (0, 0)
    assert log.append(make_batch(b"a", b"b", b"c")) == (0, 2)
    assert log.append(make_batch(b"d")) == (3, 3)
    data = log.read(3, 1 << 20)
    assert read_header(data).base_offset == 3
    assert values_in(data) == [(3, b"d")]
    assert log.end_offset == 4
    log.close()


def test_append_rejects_anything_but_one_valid_batch(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path))
    batch = make_batch(b"x")
    with pytest.raises(CorruptRecordError):
        log.append(batch + batch)
    with pytest.raises(CorruptRecordError):
        log.append(batch[:-1])
    damaged = bytearray(batch)
    damaged[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        log.append(bytes(damaged))
    assert log.end_offset == 0
    log.close()


def test_read_returns_whole_batches_from_the_one_holding_the_offset(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    fill(log, 50, per_batch=3)
    for offset in (0, 1, 2, 3, 77, 149):
        data = log.read(offset, 1)
        batches = split_batches(data)
        assert len(batches) == 1
        header = batches[0][1]
        assert header.base_offset <= offset <= header.last_offset
        assert values_in(data)[offset - header.base_offset] == (offset, payload(offset))
    log.close()


def test_read_respects_max_bytes_but_returns_at_least_one_batch(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path))
    batch_size = len(make_batch(payload(0), payload(1)))
    fill(log, 10)
    assert len(split_batches(log.read(0, batch_size * 3))) == 3
    assert len(split_batches(log.read(0, batch_size * 3 + batch_size - 1))) == 3
    assert len(split_batches(log.read(0, 10))) == 1
    assert len(split_batches(log.read(0, 1 << 20))) == 10
    log.close()


def test_read_at_the_boundaries(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path))
    assert log.read(0, 100) == b""
    fill(log, 3)
    assert log.read(6, 100) == b""
    assert values_in(log.read(5, 100))[-1] == (5, payload(5))
    with pytest.raises(OffsetOutOfRangeError):
        log.read(7, 100)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)
    log.close()


def test_a_read_at_the_end_touches_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caught-up consumer's fetch reads its idle partitions at the end: no index lookup
    and no header walk, which cost a pread each time."""
    log = PartitionLog.open(str(tmp_path), SMALL)
    fill(log, 40)
    reads: list[int] = []
    real_pread = OSFile.pread
    monkeypatch.setattr(
        OSFile,
        "pread",
        lambda self, size, position: reads.append(size) or real_pread(self, size, position),
    )
    assert log.read(log.end_offset, 1000) == b""
    assert reads == []
    assert values_in(log.read(log.end_offset - 1, 1000))[-1][0] == log.end_offset - 1
    assert reads
    log.close()


def test_segments_roll_by_size_and_reads_cross_them(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    fill(log, 200)
    assert len(segment_logs(tmp_path)) > 5
    for name in segment_logs(tmp_path):
        assert os.path.getsize(tmp_path / name) <= SMALL.segment_bytes
    offset = 0
    seen: list[tuple[int, bytes | None]] = []
    while offset < log.end_offset:
        data = log.read(offset, 1000)
        records = decode_batches(data)
        seen += [(r.offset, r.value) for r in records]
        offset = records[-1].offset + 1
    assert seen == [(i, payload(i)) for i in range(400)]
    log.close()


def test_segments_roll_by_age(tmp_path: Path) -> None:
    now = [1_000_000]
    config = LogConfig(segment_ms=60_000)
    log = PartitionLog.open(str(tmp_path), config, clock=lambda: now[0])
    fill(log, 3)
    now[0] += 59_999
    fill(log, 1)
    assert len(segment_logs(tmp_path)) == 1
    now[0] += 1
    fill(log, 1)
    assert segment_logs(tmp_path) == [f"{0:020d}.log", f"{8:020d}.log"]
    log.close()


def test_reopen_keeps_everything_and_continues_offsets(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    fill(log, 120)
    log.close()
    log = PartitionLog.open(str(tmp_path), SMALL)
    assert (log.start_offset, log.end_offset, log.durable_offset) == (0, 240, 240)
    assert log.append(make_batch(b"after")) == (240, 240)
    assert values_in(log.read(239, 1 << 20))[-1] == (239, payload(239))
    assert values_in(log.read(240, 1 << 20)) == [(240, b"after")]
    assert values_in(log.read(100, 1))[0] == (100, payload(100))
    log.close()


def test_offset_for_time_finds_the_first_record_at_or_after(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for i in range(100):
        log.append(make_batch(payload(2 * i), payload(2 * i + 1), timestamp_ms=10_000 + 10 * i))
    # Batch i holds timestamps 10_000 + 10i and 10_000 + 10i + 1.
    assert log.offset_for_time(0) == 0
    assert log.offset_for_time(10_000) == 0
    assert log.offset_for_time(10_001) == 1
    assert log.offset_for_time(10_002) == 2
    assert log.offset_for_time(10_500) == 100
    assert log.offset_for_time(10_991) == 199
    assert log.offset_for_time(10_992) is None
    log.close()
    log = PartitionLog.open(str(tmp_path), SMALL)
    assert log.offset_for_time(10_501) == 101
    log.close()


def test_offset_for_time_with_timestamps_out_of_order(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), LogConfig(index_interval_bytes=1))
    for ts in (500, 100, 900, 200, 950, 300):
        log.append(make_batch(b"x", timestamp_ms=ts))
    assert log.offset_for_time(150) == 0
    assert log.offset_for_time(600) == 2
    assert log.offset_for_time(920) == 4
    assert log.offset_for_time(951) is None
    log.close()


def test_flush_advances_the_durable_offset(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path))
    fill(log, 3)
    assert log.durable_offset == 0
    assert log.flush() == 6
    assert log.durable_offset == 6
    fill(log, 1)
    assert log.durable_offset == 6
    assert log.flush() == 8
    log.close()


def test_flush_from_a_thread_while_appending(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    stop = threading.Event()
    durable: list[int] = []

    def flusher() -> None:
        while not stop.is_set():
            durable.append(log.flush())

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        fill(log, 300)
    finally:
        stop.set()
        thread.join()
    assert durable == sorted(durable)
    assert log.flush() == 600
    log.close()
    log = PartitionLog.open(str(tmp_path), SMALL)
    assert values_in(log.read(599, 100)) == [(598, payload(598)), (599, payload(599))]
    log.close()


def test_closed_log_refuses_work_and_close_is_idempotent(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path))
    log.close()
    log.close()
    with pytest.raises(StorageError, match="closed"):
        log.append(make_batch(b"x"))
    with pytest.raises(StorageError, match="closed"):
        log.read(0, 10)


def test_delete_removes_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "topic-0"
    log = PartitionLog.open(str(directory), SMALL)
    fill(log, 100)
    log.delete()
    assert not directory.exists()


def test_size_bytes_counts_every_segment(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    fill(log, 100)
    total = sum(os.path.getsize(tmp_path / name) for name in segment_logs(tmp_path))
    assert log.size_bytes == total
    log.close()


def test_flush_fsyncs_only_when_something_is_new(tmp_path: Path) -> None:
    fs = FaultFileSystem()
    log = PartitionLog.open(str(tmp_path), SMALL, fs)
    fill(log, 2)
    before = fs.state.fsyncs
    log.flush()
    assert fs.state.fsyncs > before
    before = fs.state.fsyncs
    assert log.flush() == 4
    assert fs.state.fsyncs == before
    log.close()


def test_appends_and_reads_go_on_while_a_flush_is_in_its_fsync(tmp_path: Path) -> None:
    fs = FaultFileSystem()
    log = PartitionLog.open(str(tmp_path), SMALL, fs)
    fill(log, 2)
    gate = threading.Event()
    fs.state.fsync_gate = gate
    result: list[int] = []
    flusher = threading.Thread(target=lambda: result.append(log.flush()))
    flusher.start()
    try:
        assert fs.state.fsync_waiting.wait(timeout=10)
        fill(log, 3)  # would deadlock if flush held the append lock across its fsync
        assert values_in(log.read(9, 100)) == [(8, payload(8)), (9, payload(9))]
        assert log.durable_offset == 0
    finally:
        gate.set()
        flusher.join()
    fs.state.fsync_gate = None
    assert result == [4]
    assert log.durable_offset == 4
    assert log.flush() == 10
    log.close()


def test_a_segment_sealed_after_reopening_keeps_its_newest_timestamp(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=2048, index_interval_bytes=1 << 20)
    log = PartitionLog.open(str(tmp_path), config)
    for i in range(5):
        log.append(make_batch(payload(i), timestamp_ms=1_000 + 100 * i))
    log.close()
    log = PartitionLog.open(str(tmp_path), config)
    log.append(make_batch(b"x" * 1900, timestamp_ms=9_000))  # rolls: segment 0 is sealed
    assert len(segment_logs(tmp_path)) == 2
    log.close()
    log = PartitionLog.open(str(tmp_path), config)
    assert log.offset_for_time(1_350) == 4
    assert log.offset_for_time(1_401) == 5
    log.close()


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=60),
    reads=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 3000)), min_size=1, max_size=10),
)
def test_reads_match_a_model_of_the_log(sizes: list[int], reads: list[tuple[float, int]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        log = PartitionLog.open(directory, LogConfig(segment_bytes=1024, index_interval_bytes=100))
        ranges = []
        for size in sizes:
            offset = log.end_offset
            ranges.append(log.append(make_batch(*(payload(offset + i) for i in range(size)))))
        assert log.end_offset == sum(sizes)
        for fraction, max_bytes in reads:
            offset = min(int(fraction * log.end_offset), log.end_offset - 1)
            data = log.read(offset, max_bytes)
            batches = split_batches(data)
            first = next(r for r in ranges if r[0] <= offset <= r[1])
            assert (batches[0][1].base_offset, batches[0][1].last_offset) == first
            assert len(batches) == 1 or len(data) <= max_bytes
            assert all(value == payload(o) for o, value in values_in(data))
        log.close()


NEVER = LogConfig(
    segment_bytes=4096, index_interval_bytes=512, durability=Durability.parse("never")
)


def recover_and_release(directory: Path) -> RecoveredLog:
    """What a reopen after a crash would scan (the recovered files are closed again)."""
    recovered = recover_log(OSFileSystem(), str(directory), NEVER.index_interval_bytes, 0)
    for segment in [*recovered.sealed, recovered.active]:
        segment.release()
    return recovered


def crash(log: PartitionLog, fs: FaultFileSystem) -> None:
    """The process dies: nothing more reaches the disk, and close cannot flush."""
    fs.crash_after(0)
    with pytest.raises(StorageError):
        log.close()


def test_a_roll_makes_the_closed_segment_durable_without_any_flush(tmp_path: Path) -> None:
    fs = FaultFileSystem()
    threads: list[threading.Thread] = []

    def in_thread(job: Callable[[], None]) -> None:
        thread = threading.Thread(target=job)
        thread.start()
        threads.append(thread)

    log = PartitionLog.open(str(tmp_path), NEVER, fs, run_in_background=in_thread)
    for _ in range(10):
        fill(log, 20)
        for thread in threads:
            thread.join()
    segments = segment_logs(tmp_path)
    assert len(segments) >= 5
    active_base = int(segments[-1].removesuffix(".log"))
    assert log.durable_offset == active_base  # the rolls' fsyncs, not a flush
    crash(log, fs)

    recovered = recover_and_release(tmp_path)
    assert recovered.active.base_offset == active_base
    assert recovered.scanned_segments == 1
    assert recovered.scanned_bytes == (tmp_path / segments[-1]).stat().st_size
    log = PartitionLog.open(str(tmp_path), NEVER)
    assert (log.start_offset, log.end_offset) == (0, 400)
    assert (active_base - 1, payload(active_base - 1)) in values_in(log.read(active_base - 1, 1))
    log.close()


def test_without_the_roll_fsync_recovery_scans_every_segment_since_open(tmp_path: Path) -> None:
    fs = FaultFileSystem(real_sync=False)
    held_back: list[Callable[[], None]] = []
    log = PartitionLog.open(str(tmp_path), NEVER, fs, run_in_background=held_back.append)
    fill(log, 200)
    assert len(held_back) == 1 and log.durable_offset == 0
    crash(log, fs)
    recovered = recover_and_release(tmp_path)
    assert recovered.scanned_segments == len(segment_logs(tmp_path))
    assert recovered.scanned_bytes == sum(p.stat().st_size for p in tmp_path.glob("*.log"))


def test_appends_go_on_while_a_roll_fsyncs_the_closed_segment(tmp_path: Path) -> None:
    fs = FaultFileSystem()
    jobs: list[threading.Thread] = []

    def in_thread(job: Callable[[], None]) -> None:
        jobs.append(threading.Thread(target=job))
        jobs[-1].start()

    log = PartitionLog.open(str(tmp_path), SMALL, fs, run_in_background=in_thread)
    fs.state.fsync_gate = gate = threading.Event()
    try:
        while not jobs:
            fill(log, 1)
        assert fs.state.fsync_waiting.wait(timeout=10)
        fill(log, 30)  # would deadlock if the roll held the append lock across its fsync
        assert values_in(log.read(log.end_offset - 1, 100))[-1][0] == log.end_offset - 1
        assert log.durable_offset == 0
    finally:
        gate.set()
        for job in jobs:
            job.join()
    assert log.durable_offset == int(segment_logs(tmp_path)[-1].removesuffix(".log"))
    log.close()


def test_a_failed_roll_fsync_poisons_the_log_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fs = FaultFileSystem(real_sync=False)
    log = PartitionLog.open(str(tmp_path), SMALL, fs, run_in_background=lambda job: job())
    fs.state.fail_fsync = True
    with caplog.at_level(logging.ERROR, logger="eventyard.storage"):
        while len(segment_logs(tmp_path)) == 1:
            fill(log, 1)  # the append that rolls succeeds; its batch is not lost
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "fsync of a closed segment failed" in errors[0]
    with pytest.raises(StorageError, match="failed earlier"):
        fill(log, 1)
    log.close()


def test_an_append_that_rolls_stands_when_no_thread_can_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[Callable[[], None]] = []

    def no_thread(job: Callable[[], None]) -> None:
        attempts.append(job)
        raise RuntimeError("can't start new thread")

    log = PartitionLog.open(str(tmp_path), SMALL, run_in_background=no_thread)
    with caplog.at_level(logging.ERROR, logger="eventyard.storage"):
        while len(segment_logs(tmp_path)) < 3:
            fill(log, 1)
    assert len(attempts) == 2  # each roll tried again: the failure left nothing pending
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    assert values_in(log.read(log.end_offset - 1, 100))[-1][0] == log.end_offset - 1
    assert log.flush() == log.end_offset
    log.close()
