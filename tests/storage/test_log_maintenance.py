"""Retention through PartitionLog: which closed segments go, and only durable ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from eventyard.errors import OffsetOutOfRangeError
from eventyard.storage import LogConfig, PartitionLog
from tests.storage.batches import make_batch, payload, values_in
from tests.storage.test_log import fill, segment_logs


def test_retention_by_bytes_drops_the_oldest_closed_segments(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=4096, index_interval_bytes=512, retention_bytes=10_000)
    log = PartitionLog.open(str(tmp_path), config)
    fill(log, 200)
    log.flush()
    before = segment_logs(tmp_path)
    deleted = log.enforce_retention(now_ms=0)
    after = segment_logs(tmp_path)
    assert deleted == len(before) - len(after) > 0
    assert after == before[deleted:]
    assert log.start_offset == int(after[0][:20]) > 0
    assert 10_000 <= log.size_bytes < 10_000 + config.segment_bytes
    with pytest.raises(OffsetOutOfRangeError):
        log.read(log.start_offset - 1, 100)
    start = log.start_offset
    assert values_in(log.read(start, 1))[0] == (start, payload(start))
    assert log.enforce_retention(now_ms=0) == 0
    log.close()
    log = PartitionLog.open(str(tmp_path), config)
    assert log.start_offset == int(after[0][:20])
    log.close()


def test_retention_by_age_uses_each_segment_newest_timestamp(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=4096, index_interval_bytes=512, retention_ms=1_000)
    log = PartitionLog.open(str(tmp_path), config)
    fill(log, 200, start_ms=0)  # batch timestamps: its first offset (ms)
    log.flush()
    second = int(segment_logs(tmp_path)[1][:20])
    # The first segment's newest record is at second - 1 ms; it goes once that is over
    # 1 s old, and the second segment (newest record later) stays.
    assert log.enforce_retention(now_ms=second - 1 + 1_000) == 0
    assert log.enforce_retention(now_ms=second + 1_000) == 1
    assert log.start_offset == second
    remaining = len(segment_logs(tmp_path))
    assert log.enforce_retention(now_ms=10**9) == remaining - 1
    assert segment_logs(tmp_path) == [f"{log.start_offset:020d}.log"]
    assert log.end_offset == 400
    log.close()


def test_retention_never_touches_the_active_or_unsynced_segments(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=4096, retention_bytes=0, retention_ms=0)
    roll_syncs: list[Callable[[], None]] = []  # held back: the closed segments stay unsynced
    log = PartitionLog.open(str(tmp_path), config, run_in_background=roll_syncs.append)
    fill(log, 200)
    assert log.enforce_retention(now_ms=10**12) == 0  # nothing durable below the recovery point
    assert len(roll_syncs) == 1  # one pending job covers every roll before it runs
    roll_syncs[0]()  # no flush: the roll's own fsync makes the closed segments eligible
    assert log.enforce_retention(now_ms=10**12) > 0
    assert len(segment_logs(tmp_path)) == 1
    assert log.read(log.start_offset, 1 << 20)
    assert log.append(make_batch(b"more")) == (400, 400)
    log.close()


def test_retention_does_nothing_under_the_compact_policy(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=4096, retention_bytes=0, cleanup_policy="compact")
    log = PartitionLog.open(str(tmp_path), config)
    fill(log, 200)
    log.flush()
    assert log.enforce_retention(now_ms=10**12) == 0
    assert log.start_offset == 0
    log.close()


def test_retention_from_a_thread_while_appending(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=4096, index_interval_bytes=512, retention_bytes=20_000)
    log = PartitionLog.open(str(tmp_path), config)
    stop = threading.Event()

    def maintain() -> None:
        while not stop.is_set():
            log.flush()
            log.enforce_retention(now_ms=0)

    thread = threading.Thread(target=maintain)
    thread.start()
    try:
        for _ in range(300):
            fill(log, 1)
            while True:  # retention may drop the start segment between the two calls
                start = log.start_offset
                try:
                    first = values_in(log.read(start, 1))[0][0]
                except OffsetOutOfRangeError:
                    continue
                break
            assert first >= start
    finally:
        stop.set()
        thread.join()
    log.flush()
    log.enforce_retention(now_ms=0)
    assert log.size_bytes < 20_000 + config.segment_bytes
    assert values_in(log.read(599, 100))[-1] == (599, payload(599))
    log.close()
