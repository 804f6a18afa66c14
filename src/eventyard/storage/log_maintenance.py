"""Retention and compaction of a partition log: work on its closed, durable segments only.

:class:`LogMaintenance` is the part of :class:`~eventyard.storage.log.PartitionLog` that
trims the past: :meth:`~LogMaintenance.enforce_retention` deletes the oldest segments and
:meth:`~LogMaintenance.compact` rewrites them by key. Both run from a worker thread while
the owner appends, serialized by ``_maintenance_lock``, and touch only closed segments
below the recovery point (already durable, so they never race a flush or a roll's sync);
``_lock`` is held only to pick the segments and to swap the result in. The log's state
(files, locks, segment list, recovery point) is :class:`~eventyard.storage.log.
PartitionLog`'s; this class only declares what it uses.
"""

from __future__ import annotations

import errno
import logging
import threading
from typing import TYPE_CHECKING

from eventyard.errors import DiskFullError, StorageError
from eventyard.storage.checkpoint import RecoveryPoint
from eventyard.storage.compaction import (
    SegmentRef,
    commit_swap,
    compact_segments,
    discard_replaced,
    stage_swap,
)
from eventyard.storage.config import LogConfig
from eventyard.storage.fs import FileSystem
from eventyard.storage.recovery import remove_segment_files
from eventyard.storage.retention import expired_count
from eventyard.storage.segment import Segment
from eventyard.storage.segments import SegmentList

__all__ = ["LogMaintenance", "storage_error"]

logger = logging.getLogger("eventyard.storage")


class LogMaintenance:
    """Retention and compaction for :class:`~eventyard.storage.log.PartitionLog`."""

    _fs: FileSystem
    _directory: str
    _config: LogConfig
    _lock: threading.Lock
    _maintenance_lock: threading.Lock
    _segments: SegmentList
    _checkpoint: RecoveryPoint | None

    if TYPE_CHECKING:

        def _check_usable(self) -> None: ...

        def _fail(self, exc: OSError, what: str) -> StorageError: ...

    def _eligible(self) -> list[Segment]:
        """Closed segments below the recovery point: durable, safe to delete or rewrite."""
        point = self._checkpoint
        if point is None:
            return []
        return self._segments.below(point.segment)

    def enforce_retention(self, now_ms: int) -> int:
        """Delete the oldest closed segments past retention; return how many went.

        The rules are :mod:`~eventyard.storage.retention`'s (by age of the newest record,
        by total size); only whole closed segments go, oldest first, and
        :attr:`start_offset` moves up. Does nothing unless the cleanup policy includes
        ``delete``. Safe from a worker thread.
        """
        config = self._config
        if not config.deletes:
            return 0
        with self._maintenance_lock:
            with self._lock:
                self._check_usable()
                count = expired_count(self._eligible(), self._segments.size, config, now_ms)
                if not count:
                    return 0
                doomed = self._segments.drop_oldest(count)
            try:
                for segment in doomed:
                    segment.release()
                    remove_segment_files(self._fs, self._directory, segment.base_offset)
                self._fs.fsync_dir(self._directory)
            except OSError as exc:
                # The segments are out of the log already; recovery removes leftovers.
                raise storage_error(exc, f"partition log {self._directory}: retention") from exc
            logger.info(
                "partition log %s: retention deleted offsets %d to %d (%d segments)",
                self._directory,
                doomed[0].base_offset,
                doomed[-1].next_offset - 1,
                len(doomed),
            )
            return len(doomed)

    def compact(self, now_ms: int) -> int:
        """Compact closed segments by key (:mod:`~eventyard.storage.compaction`).

        Returns the bytes reclaimed. Appends and reads go on meanwhile; each rewritten
        group is swapped in atomically. Does nothing unless the policy includes
        ``compact``. Safe from a worker thread.
        """
        config = self._config
        if not config.compacts:
            return 0
        with self._maintenance_lock:
            with self._lock:
                self._check_usable()
                refs = [
                    SegmentRef(segment.base_offset, segment.size, segment.next_offset)
                    for segment in self._eligible()
                ]
            if not refs:
                return 0
            try:
                return compact_segments(
                    self._fs, self._directory, refs, config, now_ms, self._swap_in
                )
            except OSError as exc:
                raise storage_error(exc, f"partition log {self._directory}: compaction") from exc

    def _swap_in(self, group: list[SegmentRef], cleaned: Segment) -> None:
        """Replace ``group``'s segments by ``cleaned`` (crash-safe; see recovery rule 1)."""
        stage_swap(self._fs, self._directory, cleaned)
        with self._lock:
            bases = {ref.base_offset for ref in group}
            old = [segment for segment in self._segments if segment.base_offset in bases]
            try:
                commit_swap(old, cleaned)
            except OSError as exc:
                # Committed on disk (the .swap log exists): recovery finishes the swap.
                cleaned.release()
                raise self._fail(exc, "swapping in a compacted segment") from exc
            self._segments.replace(group[0].base_offset, len(group), cleaned)
        discard_replaced(self._fs, self._directory, old)
        logger.info(
            "partition log %s: compacted offsets %d to %d into %d bytes",
            self._directory,
            group[0].base_offset,
            group[-1].next_offset - 1,
            cleaned.size,
        )


def storage_error(exc: OSError, what: str) -> StorageError:
    """The error to raise for a failed file operation: :class:`DiskFullError` on ENOSPC."""
    if exc.errno == errno.ENOSPC:
        return DiskFullError(f"{what}: no space left on device")
    return StorageError(f"{what}: {exc}")
