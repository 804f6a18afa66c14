"""One log segment: a ``.log`` file of record batches and its two sparse indexes.

Files are named by the segment's base offset (:func:`segment_name`). Batches are stored
verbatim; their positions come from the sparse :class:`~eventyard.storage.index.
OffsetIndex`, then a walk over batch headers (never records). Every batch served by
:meth:`Segment.read` has passed its header and CRC-32C checks in this process: when
written, when scanned by recovery, or, for a segment recovery trusted without scanning,
when first read. This module holds a segment's state, creation, recovery, writing and
indexes; the read path (locating, serving and time lookups) is its base class,
:class:`~eventyard.storage.segment_read.SegmentReads`.

A segment is *writable* (the active one) or *sealed*. A sealed segment may drop its open
files and loaded indexes (:meth:`release`) and load them again on demand, so a partition
with thousands of segments holds only a few open; the log decides when (an LRU).

Not thread-safe: :class:`~eventyard.storage.log.PartitionLog` serializes access, except
:meth:`sync`, which only fsyncs already-open files and may run concurrently.
"""

from __future__ import annotations

import dataclasses
import os

from eventyard.storage.fs import File, FileSystem
from eventyard.storage.index import (
    OffsetIndex,
    TimeIndex,
    last_time_entry,
    read_index_file,
    write_index_file,
)
from eventyard.storage.scan import BatchScanner
from eventyard.storage.segment_read import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    SegmentReads,
    segment_name,
)

__all__ = [
    "INDEX_SUFFIX",
    "LOG_SUFFIX",
    "TIME_INDEX_SUFFIX",
    "ScanResult",
    "Segment",
    "segment_name",
]


@dataclasses.dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of checking a segment's batches: where the valid ones end, and why."""

    end: int
    """Bytes of the log file holding valid batches."""
    damage: str | None
    """What is wrong at byte ``end``, or ``None`` when the file ends there cleanly."""
    file_size: int
    """The file's size when scanned (bytes after ``end`` are damaged or torn)."""


class Segment(SegmentReads):
    """A segment's files, size, offsets and indexes (see the module docstring)."""

    __slots__ = (
        "_index_file",
        "_max_timestamp",
        "_offsets",
        "_since_entry",
        "_time_file",
        "_times",
        "base_offset",
        "broken",
        "directory",
        "fs",
        "index_interval",
        "next_offset",
        "rolling_base_ms",
        "size",
        "suffix",
        "writable",
    )

    def __init__(
        self,
        fs: FileSystem,
        directory: str,
        base_offset: int,
        index_interval: int,
        *,
        size: int,
        next_offset: int,
        suffix: str = "",
    ) -> None:
        self.fs = fs
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval = index_interval
        self.size = size
        self.next_offset = next_offset
        self.suffix = suffix
        self.writable = False
        self.broken = False
        """A failed write could not be undone: the files no longer match memory."""
        self.verified_from = size
        """Batches from this byte on passed their checks in this process (written by it
        or scanned by recovery); those before are checked when read."""
        self._checked_until = 0
        """Batches before this byte were checked by reads (reads from the start extend
        it), so a consumer replaying a trusted segment pays for the check only once."""
        self.rolling_base_ms: int | None = None
        """Wall-clock ms from which the active segment's age counts (``segment_ms``)."""
        self._log: File | None = None
        self._index_file: File | None = None
        self._time_file: File | None = None
        self._offsets: OffsetIndex | None = None
        self._times: TimeIndex | None = None
        self._max_timestamp: int | None = None
        self._since_entry = 0

    # -- construction -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        fs: FileSystem,
        directory: str,
        base_offset: int,
        index_interval: int,
        now_ms: int,
        suffix: str = "",
    ) -> Segment:
        """Create an empty writable segment (replacing any stale files of that name)."""
        segment = cls(
            fs,
            directory,
            base_offset,
            index_interval,
            size=0,
            next_offset=base_offset,
            suffix=suffix,
        )
        try:
            segment._open_for_writing(truncate=True)
        except OSError:
            segment.release()
            raise
        segment._offsets = OffsetIndex(base_offset)
        segment._times = TimeIndex(base_offset)
        segment._max_timestamp = -1
        segment.rolling_base_ms = now_ms
        segment.verified_from = 0
        return segment

    @classmethod
    def recover(
        cls,
        fs: FileSystem,
        directory: str,
        base_offset: int,
        index_interval: int,
        *,
        position: int,
        next_offset: int,
        max_timestamp: int,
    ) -> tuple[Segment, ScanResult]:
        """Open a tail segment writable and check its batches from byte ``position``.

        Bytes before ``position`` are trusted (the recovery point), where the next offset
        is ``next_offset`` and the newest timestamp ``max_timestamp``. Damaged or torn
        bytes after the last valid batch are cut off; the indexes are rebuilt from the
        kept entries and the scan, and rewritten. The caller reports any damage.
        """
        segment = cls(
            fs, directory, base_offset, index_interval, size=position, next_offset=next_offset
        )
        try:
            segment._open_for_writing(truncate=False)
            result = segment._recover_from(position, next_offset, max_timestamp)
        except BaseException:
            segment.release()
            raise
        return segment, result

    def _recover_from(self, position: int, next_offset: int, max_timestamp: int) -> ScanResult:
        """:meth:`recover`'s work once the files are open."""
        base = self.base_offset
        offsets_data = read_index_file(self.fs, self.path(INDEX_SUFFIX)) if position else b""
        times_data = read_index_file(self.fs, self.path(TIME_INDEX_SUFFIX)) if position else b""
        self._offsets = OffsetIndex.decode(base, offsets_data, position)
        self._times = TimeIndex.decode(base, times_data, next_offset)
        self._max_timestamp = max_timestamp
        self._since_entry = position - self._offsets.last()[1]
        result = self._scan(position)
        if result.end < result.file_size:
            self.log_file().truncate(result.end)
        self._rewrite_indexes()
        if self.size:
            self.rolling_base_ms = self._header_at(0).max_timestamp
        return result

    def _open_for_writing(self, truncate: bool) -> None:
        fs = self.fs
        self._log = fs.open_append(self.path(LOG_SUFFIX))
        self._index_file = fs.open_append(self.path(INDEX_SUFFIX))
        self._time_file = fs.open_append(self.path(TIME_INDEX_SUFFIX))
        if truncate:
            self._log.truncate(0)
            self._index_file.truncate(0)
            self._time_file.truncate(0)
        self.writable = True

    # -- files ------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether files or indexes are held in memory (what :meth:`release` frees)."""
        return self._log is not None or self._offsets is not None

    def release(self) -> None:
        """Close files and drop loaded indexes; they load again on demand (sealed only)."""
        for file in (self._log, self._index_file, self._time_file):
            if file is not None:
                file.close()
        self._log = self._index_file = self._time_file = None
        self._offsets = None
        self._times = None
        self.writable = False

    def rename_suffix(self, suffix: str) -> None:
        """Rename the files (indexes first, the log last) to carry ``suffix`` instead."""
        for kind in (INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX):
            source = self.path(kind)
            target = os.path.join(self.directory, segment_name(self.base_offset) + kind + suffix)
            self.fs.rename(source, target)
        self.suffix = suffix

    # -- writing ----------------------------------------------------------------------

    def append(
        self, data: bytes | bytearray, base_offset: int, last_offset: int, max_timestamp: int
    ) -> None:
        """Write one batch at the end; raises :class:`OSError` with the size unchanged.

        On a failed write the file is cut back to its previous size; if even that fails
        :attr:`broken` is set and the segment must not be written again (the log poisons
        itself until reopened, and recovery cuts the torn tail).
        """
        log = self._log
        assert log is not None and self.writable
        position = self.size
        try:
            log.write(data)
        except OSError:
            try:
                log.truncate(position)
            except OSError:
                self.broken = True
            raise
        self.size = position + len(data)
        self.next_offset = last_offset + 1
        self._note_batch(position, base_offset, max_timestamp, len(data))

    def _note_batch(self, position: int, base_offset: int, max_timestamp: int, size: int) -> None:
        """Account for a batch at ``position``: running maximum and sparse index entries."""
        assert self._offsets is not None and self._times is not None
        running = self._max_timestamp if self._max_timestamp is not None else -1
        if max_timestamp > running:
            running = max_timestamp
            self._max_timestamp = running
        if self._since_entry >= self.index_interval:
            self._offsets.append(base_offset, position)
            self._times.maybe_append(running, base_offset)
            self._since_entry = 0
        elif not len(self._times):
            self._times.maybe_append(running, base_offset)
        self._since_entry += size

    def write_indexes(self) -> None:
        """Append buffered index entries to the index files (one write each).

        All or nothing per file: a failed write is cut back and its entries stay pending
        for the next call. If even the cut fails, :attr:`broken` is set: the file no
        longer matches memory, and the log must be reopened.
        """
        files = ((self._offsets, self._index_file), (self._times, self._time_file))
        for index, file in files:
            if index is None or file is None:
                continue
            written = index.written
            if written == len(index):
                continue
            size = file.size()
            try:
                file.write(index.pending())
            except OSError:
                index.rewind(written)
                try:
                    file.truncate(size)
                except OSError:
                    self.broken = True
                raise

    def _rewrite_indexes(self) -> None:
        assert self._offsets is not None and self._times is not None
        assert self._index_file is not None and self._time_file is not None
        self._index_file.truncate(0)
        self._index_file.write(self._offsets.encode())
        self._time_file.truncate(0)
        self._time_file.write(self._times.encode())

    def seal(self) -> None:
        """Stop writing: record the final maximum timestamp and write the indexes.

        When the index write fails the segment stays writable and the error propagates.
        """
        if self._times is not None:
            self._final_time_entry(self._times)
        self.write_indexes()
        self.writable = False

    def _final_time_entry(self, times: TimeIndex) -> None:
        """Record the segment's maximum timestamp as the time index's last entry.

        Against the segment's last offset: whatever batch holds it, every batch up to it
        is no newer than the maximum, which is all a time-index entry promises.
        """
        if self.size:
            times.maybe_append(self.max_timestamp, self.next_offset - 1)

    def sync(self, indexes: bool = True) -> None:
        """Fsync the log file, and the open index files when ``indexes``.

        The active segment's indexes need syncing only when a recovery point is about
        to vouch for them; between two, recovery rebuilds their tail from the log.
        """
        files = (self._log, self._index_file, self._time_file) if indexes else (self._log,)
        for file in files:
            if file is not None:
                file.fsync()

    # -- indexes ----------------------------------------------------------------------

    @property
    def max_timestamp(self) -> int:
        """The newest batch timestamp in the segment (-1 when empty or unknown)."""
        if self._max_timestamp is None:
            if self._times is None:
                path = self.path(TIME_INDEX_SUFFIX)
                tail = last_time_entry(self.fs, path, self.base_offset, self.next_offset)
                if tail is not None:
                    self._max_timestamp = tail
                    return tail
            self._max_timestamp = self._time_index().max_timestamp
        return self._max_timestamp

    def _offset_index(self) -> OffsetIndex:
        if self._offsets is None:
            self._load_indexes()
        assert self._offsets is not None
        return self._offsets

    def _time_index(self) -> TimeIndex:
        if self._times is None:
            self._load_indexes()
        assert self._times is not None
        return self._times

    def _load_indexes(self) -> None:
        """Load a sealed segment's index files, rebuilding them if missing."""
        if self.fs.exists(self.path(INDEX_SUFFIX)) and self.fs.exists(self.path(TIME_INDEX_SUFFIX)):
            offsets = read_index_file(self.fs, self.path(INDEX_SUFFIX))
            times = read_index_file(self.fs, self.path(TIME_INDEX_SUFFIX))
            self._offsets = OffsetIndex.decode(self.base_offset, offsets, self.size)
            self._times = TimeIndex.decode(self.base_offset, times, self.next_offset)
            return
        self._offsets = OffsetIndex(self.base_offset)
        self._times = TimeIndex(self.base_offset)
        self._max_timestamp = -1
        self._since_entry = 0
        limit = self.next_offset
        self.next_offset = self.base_offset
        size = self.size
        result = self._scan(0)
        if result.damage is not None or result.end != size:
            error = self._damaged(result.end, self.next_offset, result.damage or "size changed")
            self.size, self.next_offset = size, limit
            self._offsets = self._times = None
            self._max_timestamp = None
            raise error
        self.verified_from = 0
        self.next_offset = max(limit, self.next_offset)
        self._final_time_entry(self._times)
        write_index_file(self.fs, self.path(INDEX_SUFFIX), self._offsets.encode())
        write_index_file(self.fs, self.path(TIME_INDEX_SUFFIX), self._times.encode())

    # -- checking ---------------------------------------------------------------------

    def _scan(self, position: int) -> ScanResult:
        """Check every batch from ``position`` to the file's end (header, CRC, offsets).

        Valid batches are accounted (size, next offset, index entries); the scan stops
        at the first invalid byte and says why.
        """
        file_size = self.log_file().size()
        scanner = BatchScanner(self.log_file(), position, file_size)
        for batch_position, header, _, _ in scanner:
            if header.base_offset < self.next_offset:
                scanner.stop(
                    f"the batch at offset {header.base_offset} does not follow offset"
                    f" {self.next_offset - 1}"
                )
                break
            self._note_batch(batch_position, header.base_offset, header.max_timestamp, header.size)
            self.next_offset = header.last_offset + 1
        self.size = scanner.position
        return ScanResult(scanner.position, scanner.damage, file_size)
