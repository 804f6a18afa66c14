"""Sparse segment indexes: offset to file position, and timestamp to offset.

Both use Kafka's on-disk formats, so a segment directory reads like Kafka's:

- ``.index``: entries of (offset - segment base) int32 and file position int32, big-endian,
  one every ``index_interval_bytes`` of batches, pointing at a batch's first byte;
- ``.timeindex``: entries of timestamp int64 and (offset - segment base) int32, the
  running maximum timestamp up to and including the batch at that offset, added when the
  maximum grows (and once more when the segment is sealed, so the last entry holds the
  segment's newest timestamp).

In memory an index is two :mod:`array` columns (8 or 12 bytes an entry, no objects), so a
1 GiB segment with the default 4 KiB interval costs about 2 MiB; lookups bisect them.
Entries are buffered and written to the file in one call (:meth:`pending`) when a
recovery point is recorded, at roll and at close; after a crash the tail segment's entries
past the recovery point are rebuilt from the log, so a short index file costs a scan,
never correctness.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_left, bisect_right

from eventyard.storage.fs import FileSystem

__all__ = [
    "OffsetIndex",
    "TimeIndex",
    "last_time_entry",
    "read_index_file",
    "write_index_file",
]

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
_SWAP = sys.byteorder == "little"


def _big_endian_int32s(data: bytes) -> array[int]:
    values = array("i")
    values.frombytes(data)
    if _SWAP:
        values.byteswap()
    return values


class _Columns:
    """Two :mod:`array` columns of entries, and how many of them the file already holds.

    Entries past ``written`` are pending: buffered in memory until :meth:`pending` hands
    them, packed by ``_entry`` in the file's format, to the segment to write in one call.
    Subclasses name the columns (``_columns`` returns them in file order).
    """

    __slots__ = ("_written",)

    _entry: struct.Struct
    _written: int

    def _columns(self) -> tuple[array[int], array[int]]:
        raise NotImplementedError

    def _keep(self, keep: int) -> bool:
        """Keep the first ``keep`` entries; ``True`` if written ones went."""
        for column in self._columns():
            del column[keep:]
        if keep < self._written:
            self._written = keep
            return True
        return False

    @property
    def written(self) -> int:
        """How many entries the file holds (the rest are pending)."""
        return self._written

    def rewind(self, written: int) -> None:
        """Mark the entries from ``written`` on as pending again (their write failed)."""
        self._written = written

    def pending(self) -> bytes:
        """The encoded entries not yet written to the file; marks them written."""
        start = self._written
        first, second = self._columns()
        self._written = len(first)
        pack = self._entry.pack
        return b"".join(pack(a, b) for a, b in zip(first[start:], second[start:], strict=True))

    def encode(self) -> bytes:
        """Every entry encoded (to rewrite the file); marks them all written."""
        self._written = 0
        return self.pending()


class OffsetIndex(_Columns):
    """Offsets of some batches of one segment, with the file position of each."""

    __slots__ = ("_positions", "_relative", "base_offset")

    ENTRY_SIZE = _OFFSET_ENTRY.size
    _entry = _OFFSET_ENTRY

    def __init__(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self._relative: array[int] = array("i")
        self._positions: array[int] = array("i")
        self._written = 0

    @classmethod
    def decode(cls, base_offset: int, data: bytes, limit: int) -> OffsetIndex:
        """Load an ``.index`` file's bytes, keeping the valid prefix of its entries.

        Entries must increase in offset and position and point below ``limit`` (the
        segment's size); the first that does not, and all after it, are dropped (a torn
        or stale tail). The kept entries count as already written.
        """
        count = len(data) // cls.ENTRY_SIZE
        pairs = _big_endian_int32s(data[: count * cls.ENTRY_SIZE])
        relative = pairs[0::2]
        positions = pairs[1::2]
        keep = 0
        previous_offset = previous_position = -1
        for rel, pos in zip(relative, positions, strict=True):
            if rel <= previous_offset or pos <= previous_position or pos >= limit:
                break
            previous_offset, previous_position = rel, pos
            keep += 1
        index = cls(base_offset)
        index._relative = relative[:keep]
        index._positions = positions[:keep]
        index._written = keep
        return index

    def __len__(self) -> int:
        return len(self._relative)

    def _columns(self) -> tuple[array[int], array[int]]:
        return self._relative, self._positions

    def append(self, offset: int, position: int) -> None:
        """Add an entry for the batch starting at ``offset`` at byte ``position``."""
        self._relative.append(offset - self.base_offset)
        self._positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """The entry with the largest offset not above ``offset``: ``(offset, position)``.

        Returns ``(base_offset, 0)`` when there is none: scanning starts at the segment's
        first batch.
        """
        i = bisect_right(self._relative, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._relative[i], self._positions[i]

    def last(self) -> tuple[int, int]:
        """The last entry, or ``(base_offset, 0)`` when empty."""
        if not self._relative:
            return self.base_offset, 0
        return self.base_offset + self._relative[-1], self._positions[-1]

    def truncate(self, position: int) -> bool:
        """Drop entries at or after byte ``position``; ``True`` if written ones went."""
        return self._keep(bisect_left(self._positions, position))


class TimeIndex(_Columns):
    """The running maximum timestamp of one segment at some of its batches."""

    __slots__ = ("_relative", "_timestamps", "base_offset")

    ENTRY_SIZE = _TIME_ENTRY.size
    _entry = _TIME_ENTRY

    def __init__(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self._timestamps: array[int] = array("q")
        self._relative: array[int] = array("i")
        self._written = 0

    @classmethod
    def decode(cls, base_offset: int, data: bytes, next_offset: int) -> TimeIndex:
        """Load a ``.timeindex`` file's bytes, keeping its valid prefix.

        Entries must increase in timestamp and offset and name offsets below
        ``next_offset``; the first that does not, and all after it, are dropped.
        """
        index = cls(base_offset)
        count = len(data) // cls.ENTRY_SIZE
        limit = next_offset - base_offset
        for timestamp, rel in _TIME_ENTRY.iter_unpack(data[: count * cls.ENTRY_SIZE]):
            if index._timestamps and (
                timestamp <= index._timestamps[-1] or rel < index._relative[-1]
            ):
                break
            if rel < 0 or rel >= limit:
                break
            index._timestamps.append(timestamp)
            index._relative.append(rel)
        index._written = len(index._timestamps)
        return index

    def __len__(self) -> int:
        return len(self._timestamps)

    def _columns(self) -> tuple[array[int], array[int]]:
        return self._timestamps, self._relative

    @property
    def max_timestamp(self) -> int:
        """The newest timestamp recorded, or -1."""
        return self._timestamps[-1] if self._timestamps else -1

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Record that the maximum timestamp up to the batch at ``offset`` is ``timestamp``.

        Ignored unless ``timestamp`` is newer than the last entry: entries stay strictly
        increasing so lookups can bisect.
        """
        if not self._timestamps or timestamp > self._timestamps[-1]:
            self._timestamps.append(timestamp)
            self._relative.append(offset - self.base_offset)

    def lookup(self, timestamp: int) -> int:
        """An offset from which to scan for the first batch with a timestamp >= ``timestamp``.

        Every batch before the batch at the returned offset has an older maximum
        timestamp, so nothing earlier can match. ``base_offset`` when there is no such
        entry.
        """
        i = bisect_left(self._timestamps, timestamp) - 1
        if i < 0:
            return self.base_offset
        return self.base_offset + self._relative[i]

    def truncate(self, offset: int) -> bool:
        """Drop entries at or after ``offset``; ``True`` if written ones went."""
        return self._keep(bisect_left(self._relative, offset - self.base_offset))


def read_index_file(fs: FileSystem, path: str) -> bytes:
    """The whole content of an index file, or ``b""`` when it does not exist."""
    if not fs.exists(path):
        return b""
    file = fs.open_read(path)
    try:
        return file.pread(file.size(), 0)
    finally:
        file.close()


def write_index_file(fs: FileSystem, path: str, data: bytes) -> None:
    """Replace an index file's content with ``data`` and fsync it."""
    file = fs.open_readwrite(path)
    try:
        file.truncate(0)
        file.write(data)
        file.fsync()
    finally:
        file.close()


def last_time_entry(fs: FileSystem, path: str, base_offset: int, next_offset: int) -> int | None:
    """The timestamp of a ``.timeindex`` file's last entry (a sealed segment's maximum).

    Reads 12 bytes, not the file: retention asks this of every segment. ``None`` when the
    file is missing, empty or its last entry is invalid.
    """
    if not fs.exists(path):
        return None
    file = fs.open_read(path)
    try:
        size = file.size()
        size -= size % TimeIndex.ENTRY_SIZE
        if not size:
            return None
        data = file.pread(TimeIndex.ENTRY_SIZE, size - TimeIndex.ENTRY_SIZE)
    finally:
        file.close()
    entry = TimeIndex.decode(base_offset, data, next_offset)
    return entry.max_timestamp if len(entry) else None
