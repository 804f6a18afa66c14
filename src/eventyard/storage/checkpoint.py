"""The recovery point: how much of the log is known durable, so recovery scans only the rest.

After each ``flush()`` the log records (here, in ``recovery.checkpoint``) the point up to
which everything was fsynced: every segment below ``segment`` is complete and durable with
its index files, and segment ``segment`` holds valid batches up to byte ``position``, where
the next offset is ``next_offset`` and the newest timestamp so far ``max_timestamp``. On
open, closed segments below the point are trusted (never scanned: opening a 1 GiB log
stays fast) and only bytes after it are checked batch by batch.

The file is written only after the fsync it describes returned, so whatever version
survives a crash is a true lower bound. It is replaced by write, fsync, then rename, so a
crash leaves the old or the new version, never an empty one. The rename itself is made
durable (directory fsync) only when the point moves to another segment: an older point in
the same segment costs a longer scan, never data, but one naming a segment that retention
has since deleted would not open. A file that fails its CRC-32C is treated as absent.
"""

from __future__ import annotations

import dataclasses
import os
import struct

import crc32c

from eventyard.storage.fs import FileSystem

__all__ = ["CHECKPOINT_NAME", "RecoveryPoint", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_NAME = "recovery.checkpoint"
_MAGIC = b"EYRP"
_BODY = struct.Struct(">4sqqqq")
_CRC = struct.Struct(">I")


@dataclasses.dataclass(frozen=True, slots=True)
class RecoveryPoint:
    """Everything up to byte ``position`` of segment ``segment`` is durable and valid."""

    segment: int
    position: int
    next_offset: int
    max_timestamp: int


def read_checkpoint(fs: FileSystem, directory: str) -> RecoveryPoint | None:
    """The recovery point stored in ``directory``, or ``None`` if missing or damaged."""
    path = os.path.join(directory, CHECKPOINT_NAME)
    if not fs.exists(path):
        return None
    file = fs.open_read(path)
    try:
        data = file.pread(_BODY.size + _CRC.size, 0)
    finally:
        file.close()
    if len(data) != _BODY.size + _CRC.size:
        return None
    (crc,) = _CRC.unpack_from(data, _BODY.size)
    if crc != crc32c.crc32c(data[: _BODY.size]):
        return None
    magic, segment, position, next_offset, max_timestamp = _BODY.unpack_from(data)
    if magic != _MAGIC or segment < 0 or position < 0 or next_offset < segment:
        return None
    return RecoveryPoint(segment, position, next_offset, max_timestamp)


def write_checkpoint(fs: FileSystem, directory: str, point: RecoveryPoint, sync_dir: bool) -> None:
    """Replace the stored recovery point; also fsync the directory when ``sync_dir``."""
    body = _BODY.pack(_MAGIC, point.segment, point.position, point.next_offset, point.max_timestamp)
    data = body + _CRC.pack(crc32c.crc32c(body))
    path = os.path.join(directory, CHECKPOINT_NAME)
    temporary = path + ".tmp"
    file = fs.open_readwrite(temporary)
    try:
        file.truncate(0)
        file.write(data)
        file.fsync()
    finally:
        file.close()
    fs.rename(temporary, path)
    if sync_dir:
        fs.fsync_dir(directory)
