"""The ordered segments of one partition log, and which of them hold open files.

:class:`SegmentList` keeps the segments oldest first with their base offsets (for
bisecting an offset to its segment), the sealed segments not yet fsynced, and an LRU of
the sealed segments whose files and indexes are loaded: only the last
:data:`LOADED_SEGMENTS` used stay open, so a partition's memory and file descriptors stay
flat however many segments it has.

Not thread-safe: :class:`~eventyard.storage.log.PartitionLog` guards it with its lock.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator

from eventyard.storage.segment import Segment

__all__ = ["LOADED_SEGMENTS", "SegmentList"]

LOADED_SEGMENTS = 8
"""Sealed segments kept open with their indexes loaded; the rest cost nothing."""


class SegmentList:
    """Oldest-first segments; the last one is the active (writable) segment."""

    __slots__ = ("_bases", "_loaded", "_segments", "_unsynced")

    def __init__(self, segments: list[Segment], unsynced: list[Segment]) -> None:
        self._segments = list(segments)
        self._bases = [segment.base_offset for segment in segments]
        self._unsynced = list(unsynced)
        self._loaded: OrderedDict[int, Segment] = OrderedDict()

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._segments)

    def __len__(self) -> int:
        return len(self._segments)

    @property
    def first(self) -> Segment:
        """The oldest segment (its base offset is the log's start offset)."""
        return self._segments[0]

    @property
    def active(self) -> Segment:
        """The segment appends go to."""
        return self._segments[-1]

    @property
    def size(self) -> int:
        """Bytes of batches in every segment."""
        return sum(segment.size for segment in self._segments)

    def from_offset(self, offset: int) -> list[Segment]:
        """The segment that would hold ``offset`` and every later one."""
        return self._segments[max(bisect_right(self._bases, offset) - 1, 0) :]

    def below(self, base_offset: int) -> list[Segment]:
        """The sealed segments whose base offset is below ``base_offset``."""
        count = bisect_right(self._bases, base_offset - 1)
        return self._segments[: min(count, len(self._segments) - 1)]

    def add(self, segment: Segment) -> None:
        """Make ``segment`` the active one; the previous one (sealed) awaits an fsync."""
        self._unsynced.append(self._segments[-1])
        self._segments.append(segment)
        self._bases.append(segment.base_offset)

    def unsynced(self) -> list[Segment]:
        """The sealed segments not yet fsynced, oldest first."""
        return list(self._unsynced)

    def synced(self, segments: list[Segment]) -> None:
        """Record that ``segments`` (from :meth:`unsynced`) were fsynced."""
        for segment in segments:
            self._unsynced.remove(segment)
            self.use(segment)

    def use(self, segment: Segment) -> None:
        """Mark a sealed, synced segment used; release the least recent beyond the cap."""
        if segment.writable or segment in self._unsynced:
            return
        loaded = self._loaded
        loaded[segment.base_offset] = segment
        loaded.move_to_end(segment.base_offset)
        while len(loaded) > LOADED_SEGMENTS:
            _, oldest = loaded.popitem(last=False)
            oldest.release()

    def drop_oldest(self, count: int) -> list[Segment]:
        """Remove the ``count`` oldest segments (never the active one); return them."""
        assert count < len(self._segments)
        dropped = self._segments[:count]
        del self._segments[:count]
        del self._bases[:count]
        for segment in dropped:
            self._loaded.pop(segment.base_offset, None)
        return dropped

    def replace(self, first_base: int, count: int, segment: Segment) -> list[Segment]:
        """Put ``segment`` in place of ``count`` segments from ``first_base``; return them."""
        first = self._bases.index(first_base)
        old = self._segments[first : first + count]
        self._segments[first : first + count] = [segment]
        self._bases[first : first + count] = [segment.base_offset]
        for previous in old:
            self._loaded.pop(previous.base_offset, None)
        self.use(segment)
        return old

    def release_all(self) -> None:
        """Close every segment's files."""
        for segment in self._segments:
            segment.release()
        self._loaded.clear()
