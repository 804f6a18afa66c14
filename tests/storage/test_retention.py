"""Which of the oldest closed segments retention deletes, by age and by size."""

from __future__ import annotations

from pathlib import Path

from eventyard.storage import LogConfig, OSFileSystem
from eventyard.storage.retention import expired_count
from eventyard.storage.segment import Segment
from tests.storage.batches import make_batch


def segments(directory: Path, newest: list[int]) -> list[Segment]:
    """One 1000-ish-byte segment per timestamp in ``newest``."""
    out = []
    for base, timestamp in enumerate(newest):
        segment = Segment.create(OSFileSystem(), str(directory), base, 4096, now_ms=0)
        data = bytearray(make_batch(b"x" * 900, timestamp_ms=timestamp))
        data[:8] = base.to_bytes(8, "big")
        segment.append(data, base, base, timestamp)
        segment.seal()
        out.append(segment)
    return out


def test_by_age_stops_at_the_first_young_segment(tmp_path: Path) -> None:
    found = segments(tmp_path, [1_000, 5_000, 2_000, 9_000])
    config = LogConfig(retention_ms=3_000)
    total = sum(s.size for s in found)
    assert expired_count(found, total, config, now_ms=4_000) == 0
    assert expired_count(found, total, config, now_ms=4_001) == 1
    assert expired_count(found, total, config, now_ms=8_001) == 3
    assert expired_count(found, total, LogConfig(retention_ms=-1), now_ms=10**12) == 0
    for segment in found:
        segment.release()


def test_by_size_keeps_at_least_retention_bytes(tmp_path: Path) -> None:
    found = segments(tmp_path, [1, 2, 3, 4])
    size = found[0].size
    total = 4 * size + 500  # plus the active segment
    assert expired_count(found, total, LogConfig(retention_bytes=size + 500), 0) == 3
    assert expired_count(found, total, LogConfig(retention_bytes=size + 501), 0) == 2
    assert expired_count(found, total, LogConfig(retention_bytes=0), 0) == 4
    assert expired_count(found, total, LogConfig(retention_bytes=-1), 0) == 0
    for segment in found:
        segment.release()
