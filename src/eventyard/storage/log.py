"""One partition's log: append batches, read them back, make them durable, trim the past.

:class:`PartitionLog` owns a directory of segments (:mod:`~eventyard.storage.segment`).
Its owner (the broker's partition, one asyncio task) appends and reads; worker threads may
run :meth:`~PartitionLog.flush`, :meth:`~PartitionLog.enforce_retention` and
:meth:`~PartitionLog.compact` at the same time. Three locks make that safe:

- ``_lock`` guards the in-memory state and is held only briefly: an append's write, a
  read's ``pread``, the bookkeeping of a flush or a swap; never an fsync or a compaction.
- ``_flush_lock`` serializes flushes and roll syncs: a flush snapshots what to sync
  under ``_lock``, fsyncs outside it (appends go on meanwhile: group commit), then
  publishes the new durable offset.
- ``_maintenance_lock`` serializes retention and compaction, which only touch closed
  segments below the recovery point (already durable), so they never race a flush.

Rolls: whatever the durability policy, a roll has the segment it closed fsynced (with its
indexes and the directory) and moves the recovery point to the start of the next segment,
as Kafka flushes a segment on roll, so a crash rescans at most the active segment even when
nothing ever calls :meth:`~PartitionLog.flush` (durability ``never``). The append that
rolls does not wait for that fsync: it hands a job to ``run_in_background`` (a daemon
thread by default), which takes ``_flush_lock`` like a flush. One pending job covers every
roll before it starts; a flush that gets there first syncs the closed segments itself.

Failures: a failed write (an append, a roll, index entries) is cut back and raised
(:class:`~eventyard.errors.DiskFullError` for ENOSPC) and the log stays usable: once space
is freed, appends go on. A failure that may leave the files out of step with memory (an
fsync error, whose dirty pages the kernel may have dropped; a write that cannot be cut
back) *poisons* the log: every later append or flush raises
:class:`~eventyard.errors.StorageError` until it is reopened, and recovery decides what
survived. Nothing acknowledged as durable is ever lost either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from eventyard.errors import CorruptRecordError, OffsetOutOfRangeError, StorageError
from eventyard.records import BatchHeader, check_crc, read_header, set_base_offset
from eventyard.storage.checkpoint import RecoveryPoint, write_checkpoint
from eventyard.storage.config import LogConfig
from eventyard.storage.fs import FileSystem, OSFileSystem
from eventyard.storage.log_maintenance import LogMaintenance, storage_error
from eventyard.storage.recovery import recover_log, remove_segment_files
from eventyard.storage.segment import Segment
from eventyard.storage.segments import SegmentList

__all__ = ["PartitionLog"]

logger = logging.getLogger("eventyard.storage")

_CHECKPOINT_EVERY = 16 << 20
"""Durable bytes between two recovery-point writes (each costs three fsyncs: the index
files and the point itself). At most this much durable data is rescanned after a crash,
about 0.2 s even for 200-byte batches, against a tenth of append bandwidth at 4 MiB."""
_INT32_MAX = (1 << 31) - 1


def wall_clock_ms() -> int:
    """Milliseconds since the epoch: the default clock of segment ages."""
    return time.time_ns() // 1_000_000


def start_daemon_thread(job: Callable[[], None]) -> None:
    """Run ``job`` in a new daemon thread: the default runner of a roll's fsync."""
    threading.Thread(target=job, name="eventyard-roll-sync", daemon=True).start()


class PartitionLog(LogMaintenance):
    """A partition's durable, segmented log of record batches (see the module docstring).

    Offsets run from :attr:`start_offset` (retention moves it up) to :attr:`end_offset`
    (the next offset to assign); :attr:`durable_offset` is the end as of the last
    completed :meth:`flush`.
    """

    def __init__(
        self,
        fs: FileSystem,
        directory: str,
        config: LogConfig,
        clock: Callable[[], int],
        segments: SegmentList,
        checkpoint: RecoveryPoint | None,
        run_in_background: Callable[[Callable[[], None]], None],
    ) -> None:
        """Use :meth:`open`: it recovers the directory first."""
        self._fs = fs
        self._directory = directory
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._maintenance_lock = threading.Lock()
        self._segments = segments
        self._checkpoint = checkpoint
        self._dir_dirty = True
        self._durable_offset = -1
        self._failure: str | None = None
        self._closed = False
        self._run_in_background = run_in_background
        self._roll_sync_pending = False

    @classmethod
    def open(
        cls,
        directory: str,
        config: LogConfig | None = None,
        fs: FileSystem | None = None,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        run_in_background: Callable[[Callable[[], None]], None] = start_daemon_thread,
    ) -> PartitionLog:
        """Open (creating if needed) and recover the partition log in ``directory``.

        Recovery (:mod:`~eventyard.storage.recovery`) checks the tail, cuts a torn or
        corrupt end with a warning on the ``eventyard.storage`` logger, and makes the
        result durable, so :attr:`durable_offset` equals :attr:`end_offset` on return.
        Raises :class:`~eventyard.errors.LogCorruptionError` when durable data is
        missing, :class:`~eventyard.errors.StorageError` when the files cannot be used.
        ``clock`` (ms) times segment ages; ``run_in_background`` runs the fsync of a
        segment closed by a roll (see the module docstring); tests inject their own.
        """
        fs = fs or OSFileSystem()
        config = config or LogConfig()
        try:
            recovered = recover_log(fs, directory, config.index_interval_bytes, clock())
        except OSError as exc:
            raise storage_error(exc, f"cannot open partition log {directory}") from exc
        segments = SegmentList([*recovered.sealed, recovered.active], recovered.unsynced)
        log = cls(fs, directory, config, clock, segments, recovered.checkpoint, run_in_background)
        try:
            log._flush(sync_checkpoint=True)
        except BaseException:
            segments.release_all()
            raise
        return log

    # -- state ------------------------------------------------------------------------

    @property
    def directory(self) -> str:
        """The partition's directory."""
        return self._directory

    @property
    def config(self) -> LogConfig:
        """The settings the log was opened with."""
        return self._config

    @property
    def start_offset(self) -> int:
        """The first offset still in the log (the oldest segment's base offset)."""
        with self._lock:
            return self._segments.first.base_offset

    @property
    def end_offset(self) -> int:
        """The offset the next appended record gets (the high watermark)."""
        with self._lock:
            return self._segments.active.next_offset

    @property
    def durable_offset(self) -> int:
        """The end offset as of the last completed flush: everything below is fsynced."""
        with self._lock:
            return self._durable_offset

    @property
    def size_bytes(self) -> int:
        """Bytes of batches in every segment."""
        with self._lock:
            return self._segments.size

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"partition log {self._directory} is closed")
        if self._failure is not None:
            raise StorageError(
                f"partition log {self._directory} failed earlier ({self._failure});"
                " reopen it to recover"
            )

    def _fail(self, exc: OSError, what: str) -> StorageError:
        """Poison the log (see the module docstring) and return the error to raise."""
        self._failure = f"{what}: {exc}"
        return storage_error(exc, f"partition log {self._directory}: {what}")

    # -- appending --------------------------------------------------------------------

    def append(
        self, batch: bytes | bytearray | memoryview, header: BatchHeader | None = None
    ) -> tuple[int, int]:
        """Append one record batch; return its ``(base_offset, last_offset)``.

        The batch must be one whole batch (length, magic, CRC-32C; else
        :class:`~eventyard.errors.CorruptRecordError`). A caller that already checked it
        (the broker runs ``split_batches`` on every produce request) passes the
        ``header`` it got, and the CRC is not computed twice; only the length is
        checked against it. The batch gets the next offset as its base offset and is
        written verbatim. It is durable only after a later :meth:`flush`.

        A batch with a bad CRC must never reach the file: recovery would take it for a
        torn write and cut the log there, dropping later batches.
        """
        if header is None:
            header = read_header(batch)
            check_crc(batch, 0, header)
        if header.size != len(batch):
            raise CorruptRecordError(
                f"expected one record batch of {header.size} bytes, got {len(batch)} bytes"
            )
        data = bytearray(batch)
        now = self._clock()
        schedule = False
        try:
            with self._lock:
                self._check_usable()
                active = self._segments.active
                if self._needs_roll(active, len(data), header.last_offset_delta, now):
                    active = self._roll(now)
                    schedule, self._roll_sync_pending = not self._roll_sync_pending, True
                base = active.next_offset
                last = base + header.last_offset_delta
                set_base_offset(data, 0, base)
                try:
                    active.append(data, base, last, header.max_timestamp)
                except OSError as exc:
                    if active.broken:
                        raise self._fail(exc, "append left a torn batch") from exc
                    raise storage_error(
                        exc, f"partition log {self._directory}: append failed"
                    ) from exc
        finally:
            if schedule:
                self._start_roll_sync()
        return base, last

    def _needs_roll(self, active: Segment, size: int, last_delta: int, now: int) -> bool:
        if not active.size:
            return False
        config = self._config
        age = now - (active.rolling_base_ms if active.rolling_base_ms is not None else now)
        return (
            active.size + size > config.segment_bytes
            or age >= config.segment_ms
            or active.next_offset + last_delta - active.base_offset > _INT32_MAX
        )

    def _roll(self, now: int) -> Segment:
        """Seal the active segment and start a new one (under ``_lock``).

        On failure (say ENOSPC) nothing changes: the new segment's files are removed and
        the old segment stays active, so the append fails alone and later ones may work.
        """
        old = self._segments.active
        base = old.next_offset
        new: Segment | None = None
        try:
            new = Segment.create(
                self._fs, self._directory, base, self._config.index_interval_bytes, now
            )
            old.seal()
        except OSError as exc:
            if new is not None:
                new.release()
            # Left behind, the empty files would read as an empty active segment: harmless.
            with contextlib.suppress(OSError):
                remove_segment_files(self._fs, self._directory, base)
            if old.broken:
                raise self._fail(exc, "rolling a new segment") from exc
            raise storage_error(
                exc, f"partition log {self._directory}: rolling a new segment"
            ) from exc
        self._segments.add(new)
        self._dir_dirty = True
        return new

    # -- durability -------------------------------------------------------------------

    def flush(self) -> int:
        """Fsync everything appended before the call; return the durable end offset.

        Safe from a worker thread while the owner keeps appending: only the bookkeeping
        holds the append lock, not the fsync. Raises :class:`~eventyard.errors.
        StorageError` (and poisons the log) when an fsync fails.
        """
        return self._flush(sync_checkpoint=False)

    def _flush(self, sync_checkpoint: bool) -> int:
        with self._flush_lock:
            return self._flush_locked(sync_checkpoint)

    def _flush_locked(self, sync_checkpoint: bool) -> int:
        """:meth:`flush`'s work, under ``_flush_lock``."""
        with self._lock:
            self._check_usable()
            active = self._segments.active
            sealed = self._segments.unsynced()
            if active.next_offset == self._durable_offset and not sealed and not self._dir_dirty:
                return self._durable_offset
            point = RecoveryPoint(
                active.base_offset, active.size, active.next_offset, active.max_timestamp
            )
            record = sync_checkpoint or self._checkpoint_due(point)
            if record:
                try:
                    active.write_indexes()
                except OSError as exc:
                    if active.broken:
                        raise self._fail(exc, "writing index files") from exc
                    # The data can still be made durable; the recovery point waits.
                    logger.warning(
                        "partition log %s: cannot write index files: %s",
                        self._directory,
                        exc,
                    )
                    record = False
            dir_dirty, self._dir_dirty = self._dir_dirty, False
        try:
            for segment in sealed:
                segment.sync()
            active.sync(indexes=record)
            if dir_dirty:
                self._fs.fsync_dir(self._directory)
        except OSError as exc:
            with self._lock:
                raise self._fail(exc, "fsync failed") from exc
        with self._lock:
            self._durable_offset = max(self._durable_offset, point.next_offset)
            durable = self._durable_offset
            self._segments.synced(sealed)
        if record:
            self._store_checkpoint(point, sync=sync_checkpoint or self._new_segment(point))
        return durable

    def _start_roll_sync(self) -> None:
        """Hand :meth:`_sync_rolled` to ``run_in_background`` (the roll itself succeeded).

        If no thread can be had, the append still stands: the closed segment waits for
        the next flush or roll, and only recovery after a crash takes longer.
        """
        try:
            self._run_in_background(self._sync_rolled)
        except RuntimeError as exc:
            with self._lock:
                self._roll_sync_pending = False
            logger.error(
                "partition log %s: cannot start the fsync of a closed segment: %s",
                self._directory,
                exc,
            )

    def _sync_rolled(self) -> None:
        """Fsync the segments rolls closed; move the recovery point to the next segment.

        The background job a roll starts (see the module docstring). The recovery point
        becomes the start of the segment after the last one synced: everything before it
        is durable with its indexes, and the directory fsync makes that segment's file
        exist after a crash. An fsync failure poisons the log (the next append or flush
        raises) and is logged, as nobody waits on this job.
        """
        with self._flush_lock:
            with self._lock:
                self._roll_sync_pending = False
                if self._closed or self._failure is not None:
                    return
                sealed = self._segments.unsynced()
                if not sealed:
                    return
                following = self._segments.from_offset(sealed[-1].next_offset)[0]
                point = RecoveryPoint(following.base_offset, 0, following.base_offset, -1)
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            try:
                for segment in sealed:
                    segment.sync()
                if dir_dirty:
                    self._fs.fsync_dir(self._directory)
            except OSError as exc:
                with self._lock:
                    error = self._fail(exc, "fsync of a closed segment failed")
                logger.error("%s", error)
                return
            with self._lock:
                self._durable_offset = max(self._durable_offset, point.next_offset)
                self._segments.synced(sealed)
            current = self._checkpoint
            if current is None or current.segment < point.segment:
                self._store_checkpoint(point, sync=True)

    def _new_segment(self, point: RecoveryPoint) -> bool:
        return self._checkpoint is None or self._checkpoint.segment != point.segment

    def _checkpoint_due(self, point: RecoveryPoint) -> bool:
        """Whether the recovery point moved enough (another segment, 16 MiB) to record."""
        current = self._checkpoint
        if current is None or current.segment != point.segment:
            return True
        return point.position - current.position >= _CHECKPOINT_EVERY

    def _store_checkpoint(self, point: RecoveryPoint, sync: bool) -> None:
        """Record ``point`` as the recovery point (its files were just fsynced)."""
        try:
            write_checkpoint(self._fs, self._directory, point, sync_dir=sync)
        except OSError as exc:
            # A stale recovery point costs a longer scan after a crash, never data.
            logger.warning(
                "partition log %s: cannot write the recovery point: %s", self._directory, exc
            )
            return
        self._checkpoint = point

    # -- reading ----------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole stored batches from the one holding ``offset``, up to ``max_bytes``.

        At least one batch even when it alone exceeds ``max_bytes`` (so a consumer always
        progresses); ``b""`` at :attr:`end_offset`. Raises :class:`~eventyard.errors.
        OffsetOutOfRangeError` outside ``[start_offset, end_offset]`` and
        :class:`~eventyard.errors.LogCorruptionError` when a batch fails its checks.
        Reads one segment per call, like Kafka. A read at the end answers at once: it is
        what a caught-up consumer's every fetch asks of its idle partitions, and the index
        lookup and header walk would only find nothing.
        """
        with self._lock:
            self._check_open()
            start = self._segments.first.base_offset
            end = self._segments.active.next_offset
            if not start <= offset <= end:
                raise OffsetOutOfRangeError(
                    f"offset {offset} is outside partition log {self._directory} [{start}, {end}]"
                )
            if offset == end:
                return b""
            for segment in self._segments.from_offset(offset):
                if not segment.size:
                    continue
                self._segments.use(segment)
                position = segment.locate(offset)
                if position is not None:
                    return segment.read(position, max_bytes)
            return b""

    def offset_for_time(self, timestamp_ms: int) -> int | None:
        """The first offset whose record timestamp is at least ``timestamp_ms``, or ``None``.

        Kafka's ListOffsets by time: segments are skipped by their newest timestamp,
        then the time index and a header walk find the batch, which alone is decoded.
        """
        with self._lock:
            self._check_open()
            for segment in self._segments:
                if segment.size and segment.max_timestamp >= timestamp_ms:
                    self._segments.use(segment)
                    found = segment.find_time(timestamp_ms)
                    if found is not None:
                        return found
            return None

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"partition log {self._directory} is closed")

    # -- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Flush, record the recovery point and release every file (idempotent).

        Holds ``_flush_lock`` throughout, so a roll's background fsync never runs on
        released files: it either finished before or finds the log closed.
        """
        with self._maintenance_lock, self._flush_lock:
            if self._closed:
                return
            try:
                if self._failure is None:
                    self._flush_locked(sync_checkpoint=True)
            finally:
                with self._lock:
                    self._closed = True
                    self._segments.release_all()

    def delete(self) -> None:
        """Close the log and delete its directory with every file in it."""
        self.close()
        fs = self._fs
        try:
            for name in fs.listdir(self._directory):
                fs.remove(os.path.join(self._directory, name))
            fs.rmdir(self._directory)
        except OSError as exc:
            raise storage_error(exc, f"cannot delete partition log {self._directory}") from exc

    def __repr__(self) -> str:
        return f"PartitionLog({self._directory!r})"
