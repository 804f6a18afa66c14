"""Opening a partition directory after a clean stop or a crash: what is kept, what is cut.

The rules, in order:

1. Finish or undo interrupted maintenance. A compaction writes ``*.cleaned`` files, renames
   them ``*.swap`` (the log file last: the commit point), then replaces the segments it
   rewrote. A ``NNN.log.swap`` therefore means "committed": the segments it covers (bases
   up to its last offset) are deleted and the swap files renamed into place. Leftover
   ``*.cleaned``, ``*.deleted`` and index ``*.swap`` files without their log are removed,
   as are index files whose log is gone (a retention deletion cut short).
2. Segments below the recovery point (:mod:`~eventyard.storage.checkpoint`) are trusted:
   complete and durable, opened without reading a byte (their indexes load on first use,
   and each batch is checked, CRC-32C included, the first time it is read, so damage
   there surfaces as :class:`~eventyard.errors.LogCorruptionError`, never as silently
   skipped or served data).
3. The rest, from the recovery point on, is the tail: checked batch by batch (length,
   magic, CRC-32C, increasing offsets). At the first invalid byte the log is cut, any
   later segment deleted, and a warning names the offsets and bytes dropped. Durable data
   the recovery point vouches for but that is missing is corruption, not a torn tail.

Without a recovery point (a log that crashed before its first flush) every segment is tail.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from eventyard.errors import LogCorruptionError
from eventyard.storage.checkpoint import CHECKPOINT_NAME, RecoveryPoint, read_checkpoint
from eventyard.storage.fs import FileSystem
from eventyard.storage.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    Segment,
    segment_name,
)

__all__ = [
    "CLEANED_SUFFIX",
    "DELETED_SUFFIX",
    "SWAP_SUFFIX",
    "RecoveredLog",
    "recover_log",
    "remove_segment_files",
]

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
DELETED_SUFFIX = ".deleted"
_KINDS = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)
_DIGITS = 20

logger = logging.getLogger("eventyard.storage")


@dataclasses.dataclass(slots=True)
class RecoveredLog:
    """The segments of a recovered partition directory, oldest first."""

    sealed: list[Segment]
    """Segments before the active one."""
    unsynced: list[Segment]
    """Sealed segments checked during recovery that still need an fsync."""
    active: Segment
    checkpoint: RecoveryPoint | None
    scanned_segments: int = 0
    """Tail segments checked batch by batch (rule 3); the rest were trusted unread."""
    scanned_bytes: int = 0
    """Bytes of those segments read and checked, from the recovery point on."""


def _parse(name: str) -> tuple[int, str, str] | None:
    """``(base_offset, kind, suffix)`` of a segment file name, or ``None``."""
    stem, dot, rest = name.partition(".")
    if len(stem) != _DIGITS or not stem.isdigit() or not dot:
        return None
    kind, _, suffix = rest.partition(".")
    kind = "." + kind
    suffix = "." + suffix if suffix else ""
    if kind not in _KINDS or suffix not in ("", CLEANED_SUFFIX, SWAP_SUFFIX, DELETED_SUFFIX):
        return None
    return int(stem), kind, suffix


def remove_segment_files(fs: FileSystem, directory: str, base: int, suffix: str = "") -> None:
    """Delete a segment's files with ``suffix``, the log first (missing ones are fine).

    Removing the log first means a crash in between leaves only orphan index files,
    which the next recovery removes.
    """
    for kind in _KINDS:
        path = os.path.join(directory, segment_name(base) + kind + suffix)
        if fs.exists(path):
            fs.remove(path)


def recover_log(fs: FileSystem, directory: str, index_interval: int, now_ms: int) -> RecoveredLog:
    """Recover the partition in ``directory`` (created if missing); see the module rules."""
    fs.makedirs(directory)
    files = [parsed for name in fs.listdir(directory) if (parsed := _parse(name)) is not None]
    changed = _finish_swaps(fs, directory, files, index_interval)
    if changed:
        files = [p for name in fs.listdir(directory) if (p := _parse(name)) is not None]
    bases = sorted({base for base, kind, suffix in files if kind == LOG_SUFFIX and not suffix})
    for base, kind, suffix in files:
        if suffix or base not in bases:
            os_path = os.path.join(directory, segment_name(base) + kind + suffix)
            if fs.exists(os_path):
                fs.remove(os_path)
                changed = True
    temporary = os.path.join(directory, CHECKPOINT_NAME + ".tmp")
    if fs.exists(temporary):
        fs.remove(temporary)
    if changed:
        fs.fsync_dir(directory)
    if not bases:
        active = Segment.create(fs, directory, 0, index_interval, now_ms)
        return RecoveredLog([], [], active, None)

    checkpoint = read_checkpoint(fs, directory)
    if checkpoint is not None and checkpoint.segment not in bases:
        raise LogCorruptionError(
            f"partition log {directory}: segment {segment_name(checkpoint.segment)}.log,"
            f" which holds durable offsets from {checkpoint.segment} to"
            f" {checkpoint.next_offset - 1}, is missing"
        )
    first_tail = bases.index(checkpoint.segment) if checkpoint is not None else 0
    sealed = [
        Segment(
            fs,
            directory,
            base,
            index_interval,
            size=fs.file_size(os.path.join(directory, segment_name(base) + LOG_SUFFIX)),
            next_offset=bases[i + 1],
        )
        for i, base in enumerate(bases[:first_tail])
    ]
    scan = _TailScan()
    unsynced, active = _recover_tail(
        fs, directory, bases[first_tail:], checkpoint, index_interval, scan
    )
    if active.rolling_base_ms is None or not 0 <= active.rolling_base_ms <= now_ms:
        active.rolling_base_ms = now_ms
    return RecoveredLog(
        sealed + unsynced, unsynced, active, checkpoint, len(scan.opened), scan.bytes
    )


@dataclasses.dataclass(slots=True)
class _TailScan:
    """What :func:`_check_tail` opened and how much it read (for cleanup and the result)."""

    opened: list[Segment] = dataclasses.field(default_factory=list)
    bytes: int = 0


def _finish_swaps(
    fs: FileSystem, directory: str, files: list[tuple[int, str, str]], index_interval: int
) -> bool:
    """Complete every committed compaction swap (rule 1); ``True`` if files changed."""
    swaps = sorted(
        base for base, kind, suffix in files if kind == LOG_SUFFIX and suffix == SWAP_SUFFIX
    )
    others = sorted({base for base, _, suffix in files if suffix in ("", DELETED_SUFFIX)})
    for base in swaps:
        path = os.path.join(directory, segment_name(base) + LOG_SUFFIX + SWAP_SUFFIX)
        swap = Segment(
            fs,
            directory,
            base,
            index_interval,
            size=fs.file_size(path),
            next_offset=base,
            suffix=SWAP_SUFFIX,
        )
        try:
            last = swap.last_offset()
        finally:
            swap.release()
        for other in others:
            if base < other <= last:
                remove_segment_files(fs, directory, other)
                remove_segment_files(fs, directory, other, DELETED_SUFFIX)
        # Index files are renamed before the log, so a missing index swap file was
        # already moved into place.
        for kind in (INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX):
            source = swap.path(kind)
            if fs.exists(source):
                fs.rename(source, os.path.join(directory, segment_name(base) + kind))
        logger.info(
            "partition log %s: finished the compaction of offsets %d to %d", directory, base, last
        )
    return bool(swaps)


def _recover_tail(
    fs: FileSystem,
    directory: str,
    bases: list[int],
    checkpoint: RecoveryPoint | None,
    index_interval: int,
    scan: _TailScan,
) -> tuple[list[Segment], Segment]:
    """Check the tail segments (rule 3); return the sealed ones and the active one."""
    try:
        return _check_tail(fs, directory, bases, checkpoint, index_interval, scan)
    except BaseException:
        for segment in scan.opened:
            segment.release()
        raise


def _check_tail(
    fs: FileSystem,
    directory: str,
    bases: list[int],
    checkpoint: RecoveryPoint | None,
    index_interval: int,
    scan: _TailScan,
) -> tuple[list[Segment], Segment]:
    """The loop of :func:`_recover_tail`; every segment it opens goes into ``scan``."""
    opened = scan.opened
    for i, base in enumerate(bases):
        if checkpoint is not None and base == checkpoint.segment:
            position = checkpoint.position
            next_offset = checkpoint.next_offset
            max_timestamp = checkpoint.max_timestamp
        else:
            position, next_offset, max_timestamp = 0, base, -1
        log_path = os.path.join(directory, segment_name(base) + LOG_SUFFIX)
        size = fs.file_size(log_path)
        if size < position:
            raise LogCorruptionError(
                f"segment {log_path} has {size} bytes but {position} were durable: offsets"
                f" before {next_offset} were lost"
            )
        segment, result = Segment.recover(
            fs,
            directory,
            base,
            index_interval,
            position=position,
            next_offset=next_offset,
            max_timestamp=max_timestamp,
        )
        opened.append(segment)
        scan.bytes += result.file_size - position
        later = bases[i + 1 :]
        if result.damage is not None or (later and segment.next_offset > later[0]):
            _drop(fs, directory, segment, result.file_size - result.end, later, result.damage)
            return opened[:-1], segment
        if not later:
            return opened[:-1], segment
        segment.seal()
    raise AssertionError("a tail has at least one segment")


def _drop(
    fs: FileSystem,
    directory: str,
    segment: Segment,
    torn_bytes: int,
    later: list[int],
    reason: str | None,
) -> None:
    """Delete the segments after a damaged one and say what was dropped."""
    dropped = torn_bytes
    for base in later:
        dropped += fs.file_size(os.path.join(directory, segment_name(base) + LOG_SUFFIX))
        remove_segment_files(fs, directory, base)
    fs.fsync_dir(directory)
    where = segment.path(LOG_SUFFIX)
    extra = f" and {len(later)} later segment(s)" if later else ""
    logger.warning(
        "partition log %s: recovery dropped offsets from %d on (%d bytes after byte %d of"
        " %s%s): %s",
        directory,
        segment.next_offset,
        dropped,
        segment.size,
        where,
        extra,
        reason or "segments overlap",
    )
