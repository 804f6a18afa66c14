"""SegmentList: lookup by offset, the unsynced set and the LRU of loaded segments."""

from __future__ import annotations

from pathlib import Path

from eventyard.storage import OSFileSystem
from eventyard.storage.segment import Segment
from eventyard.storage.segments import LOADED_SEGMENTS, SegmentList
from tests.storage.batches import make_batch


def sealed(directory: Path, base: int) -> Segment:
    segment = Segment.create(OSFileSystem(), str(directory), base, 4096, now_ms=0)
    data = bytearray(make_batch(*([b"v"] * 10)))
    data[:8] = base.to_bytes(8, "big")
    segment.append(data, base, base + 9, 1_000)
    segment.seal()
    return segment


def test_lookup_by_offset_and_below(tmp_path: Path) -> None:
    parts = [sealed(tmp_path, base) for base in (0, 10, 20)]
    active = Segment.create(OSFileSystem(), str(tmp_path), 30, 4096, now_ms=0)
    segments = SegmentList([*parts, active], [])
    assert segments.first is parts[0] and segments.active is active
    assert segments.from_offset(0) == [*parts, active]
    assert segments.from_offset(15) == [parts[1], parts[2], active]
    assert segments.from_offset(35) == [active]
    assert segments.below(20) == parts[:2]
    assert segments.below(10**9) == parts  # never the active segment
    assert segments.size == sum(p.size for p in parts)
    segments.release_all()


def test_unsynced_segments_stay_loaded_until_synced(tmp_path: Path) -> None:
    first = sealed(tmp_path, 0)
    segments = SegmentList([first], [])
    new = Segment.create(OSFileSystem(), str(tmp_path), 10, 4096, now_ms=0)
    segments.add(new)
    assert segments.unsynced() == [first] and segments.active is new
    segments.use(first)
    assert first.loaded
    segments.synced([first])
    assert segments.unsynced() == []
    segments.release_all()


def test_only_the_most_recently_used_sealed_segments_stay_loaded(tmp_path: Path) -> None:
    parts = [sealed(tmp_path, 10 * i) for i in range(LOADED_SEGMENTS + 3)]
    segments = SegmentList(parts, [])
    for part in parts:
        segments.use(part)
    assert [p.loaded for p in parts] == [False] * 3 + [True] * LOADED_SEGMENTS
    segments.use(parts[0])  # the least recent, parts[3], goes
    assert parts[0].locate(5) == 0  # files and indexes load again on demand
    assert parts[0].loaded and not parts[3].loaded
    segments.release_all()


def test_drop_oldest_and_replace(tmp_path: Path) -> None:
    parts = [sealed(tmp_path, 10 * i) for i in range(4)]
    segments = SegmentList(parts, [])
    assert segments.drop_oldest(1) == parts[:1]
    assert segments.first is parts[1]
    (tmp_path / "merged").mkdir()
    merged = sealed(tmp_path / "merged", 10)
    assert segments.replace(10, 2, merged) == parts[1:3]
    assert list(segments) == [merged, parts[3]]
    assert segments.from_offset(25) == [merged, parts[3]]
    parts[0].release()
    for part in parts[1:3]:
        part.release()
    segments.release_all()
