"""Reading a segment: its file names, and finding and serving batches by offset or time.

:class:`SegmentReads` is the read path of :class:`~eventyard.storage.segment.Segment`
(which holds the state and the write path): :meth:`~SegmentReads.locate` walks batch
headers from a sparse index entry (never records), :meth:`~SegmentReads.read` serves
whole batches and checks those recovery trusted without a scan (header and CRC-32C) the
first time, :meth:`~SegmentReads.find_time` answers ListOffsets by time. Damage is
reported as :class:`~eventyard.errors.LogCorruptionError` with the offsets it makes
unreadable.

Files are named by the segment's base offset, zero-padded to 20 digits as Kafka names them
(``00000000000000000000.log``, ``.index``, ``.timeindex``).
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from eventyard.errors import CorruptRecordError, LogCorruptionError
from eventyard.records import HEADER_SIZE, BatchHeader, check_crc, decode_batch, read_header
from eventyard.storage.fs import File, FileSystem

if TYPE_CHECKING:
    from eventyard.storage.index import OffsetIndex, TimeIndex

__all__ = ["INDEX_SUFFIX", "LOG_SUFFIX", "TIME_INDEX_SUFFIX", "SegmentReads", "segment_name"]

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
_LENGTH_OVERHEAD = 12
"""Bytes of a batch not counted by its length field: the base offset and the length."""
_FRAME = struct.Struct(">qi")
"""A batch's base offset and length: its first 12 bytes."""
_LAST_DELTA = struct.Struct(">i")
"""A batch's last offset delta, at byte 23."""
_WALK_CHUNK = 16 << 10
"""Bytes read at once when walking headers from an index entry (about 4 KiB apart)."""


def segment_name(base_offset: int) -> str:
    """The file stem of the segment starting at ``base_offset``."""
    return f"{base_offset:020d}"


class SegmentReads:
    """The read path of a segment (see the module docstring).

    It owns the slots it assigns (the open log file and how far batches were checked);
    :class:`~eventyard.storage.segment.Segment` sets them up with the rest of the state.
    """

    __slots__ = ("_checked_until", "_log", "verified_from")

    fs: FileSystem
    directory: str
    base_offset: int
    suffix: str
    size: int
    next_offset: int
    verified_from: int
    _checked_until: int
    _log: File | None

    if TYPE_CHECKING:

        def _offset_index(self) -> OffsetIndex: ...

        def _time_index(self) -> TimeIndex: ...

    def path(self, kind: str) -> str:
        """The path of this segment's file of ``kind`` (a suffix such as ``.log``)."""
        return os.path.join(self.directory, segment_name(self.base_offset) + kind + self.suffix)

    def log_file(self) -> File:
        """The open ``.log`` file, opened read-only on demand for a sealed segment."""
        if self._log is None:
            self._log = self.fs.open_read(self.path(LOG_SUFFIX))
        return self._log

    def _header_at(self, position: int) -> BatchHeader:
        data = self.log_file().pread(HEADER_SIZE, position)
        try:
            return read_header(data)
        except CorruptRecordError as exc:
            raise self._damaged(position, self.base_offset, str(exc)) from None

    def locate(self, offset: int) -> int | None:
        """Position of the batch holding ``offset`` (or the first after it), else ``None``.

        Starts at the sparse index entry below ``offset`` and walks batch headers, a
        chunk of the file at a time; never decodes records.
        """
        index_offset, position = self._offset_index().lookup(offset)
        log = self.log_file()
        end = self.size
        expected = index_offset
        buffer = b""
        start = position
        while position < end:
            rel = position - start
            if rel + HEADER_SIZE > len(buffer):
                start, rel = position, 0
                buffer = log.pread(min(_WALK_CHUNK, end - position), position)
            base, size, last = self._frame(buffer, rel, position, expected)
            if position + size > end or base < expected:
                raise self._damaged(position, expected, "batch out of place")
            if last >= offset:
                return position
            expected = last + 1
            position += size
        return None

    def _frame(self, buffer: bytes, rel: int, position: int, expected: int) -> tuple[int, int, int]:
        """``(base_offset, size, last_offset)`` of the batch at ``buffer[rel]``.

        Batches past :attr:`verified_from` passed their checks when written or scanned by
        this process, so three fields are unpacked; otherwise the whole header is checked.
        """
        if position >= self.verified_from or position < self._checked_until:
            base, length = _FRAME.unpack_from(buffer, rel)
            return (
                base,
                length + _LENGTH_OVERHEAD,
                base + _LAST_DELTA.unpack_from(buffer, rel + 23)[0],
            )
        try:
            header = read_header(buffer, rel)
        except CorruptRecordError as exc:
            raise self._damaged(position, expected, str(exc)) from None
        return header.base_offset, header.size, header.last_offset

    def last_offset(self) -> int:
        """The last offset of the last batch (``base_offset - 1`` when empty)."""
        _, position = self._offset_index().last()
        last = self.base_offset - 1
        while position < self.size:
            header = self._header_at(position)
            last = header.last_offset
            position += header.size
        return last

    def read(self, position: int, max_bytes: int) -> bytes:
        """Whole batches from ``position``: at least one, then up to ``max_bytes``.

        Batches before :attr:`verified_from` (trusted by recovery without a scan) are
        checked here, header and CRC-32C, before they are served.
        """
        log = self.log_file()
        available = self.size - position
        data = log.pread(min(max(max_bytes, HEADER_SIZE), available), position)
        first = self._read_header(data, 0, position)
        if first.size > len(data):
            if first.size <= available:
                data = log.pread(first.size, position)
            if len(data) < first.size:
                raise self._damaged(position, first.base_offset, "batch cut short")
        verified = position >= self.verified_from or position + len(data) <= self._checked_until
        used = 0
        while used + HEADER_SIZE <= len(data):
            if verified:
                size = _FRAME.unpack_from(data, used)[1] + _LENGTH_OVERHEAD
                if used + size > len(data):
                    break
                used += size
                continue
            header = first if used == 0 else self._read_header(data, used, position)
            if used + header.size > len(data):
                break
            try:
                check_crc(data, used, header)
            except CorruptRecordError as exc:
                raise self._damaged(position + used, header.base_offset, str(exc)) from None
            used += header.size
        if not verified and position <= self._checked_until < position + used:
            self._checked_until = position + used
            if self._checked_until >= self.verified_from:
                self.verified_from = 0
        return data if used == len(data) else data[:used]

    def _read_header(self, data: bytes, rel: int, position: int) -> BatchHeader:
        try:
            return read_header(data, rel)
        except CorruptRecordError as exc:
            raise self._damaged(position + rel, -1, str(exc)) from None

    def find_time(self, timestamp: int) -> int | None:
        """The first offset whose record timestamp is at least ``timestamp``, or ``None``."""
        start = self._time_index().lookup(timestamp)
        _, position = self._offset_index().lookup(start)
        log = self.log_file()
        while position < self.size:
            header = self._header_at(position)
            if header.max_timestamp >= timestamp and not header.is_control:
                batch = log.pread(header.size, position)
                try:
                    records = decode_batch(batch)
                except CorruptRecordError as exc:
                    raise self._damaged(position, header.base_offset, str(exc)) from None
                for record in records:
                    if record.timestamp >= timestamp:
                        return record.offset
            position += header.size
        return None

    def _damaged(self, position: int, first_offset: int, reason: str) -> LogCorruptionError:
        first = first_offset if first_offset >= 0 else self.base_offset
        return LogCorruptionError(
            f"segment {self.path(LOG_SUFFIX)} is damaged at byte {position}: offsets"
            f" {first} to {max(first, self.next_offset - 1)} cannot be read ({reason})"
        )
