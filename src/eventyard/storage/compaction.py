"""Log compaction by key: keep the latest record of each key in closed segments.

The algorithm is Kafka's cleaner, simplified:

1. **Key map.** Read the closed, durable segments once and remember, per key, the offset
   of its latest record. Long keys are remembered by a 33-byte BLAKE2b digest (a length no
   short key has, so the two never collide); memory grows with distinct keys, not records.
2. **Groups.** Consecutive segments whose sizes add up to at most ``segment_bytes`` are
   rewritten together into one, so compaction also merges the small segments it leaves.
3. **Rewrite.** Each batch keeps the records still the latest for their key, records
   without a key, and tombstones (null values) younger than ``delete_retention_ms`` by
   their timestamp. A batch left whole is copied verbatim; a thinned one is re-encoded
   with :func:`~eventyard.records.encode_batch` keeping its records' offsets and its
   original offset range (offset gaps are legal in Kafka logs); an emptied one is dropped,
   except the last of a group, kept empty so the log never ends in a gap a consumer could
   not step over. Control batches are kept as they are.

The output is written as ``*.cleaned`` files through a
:class:`~eventyard.storage.segment.Segment`, so its indexes are built the usual way, and
fsynced. Swapping it in is a rename protocol that survives a crash at any step
(:func:`stage_swap`, :func:`commit_swap`, :func:`discard_replaced`; recovery finishes or
undoes an interrupted one, see :mod:`~eventyard.storage.recovery`);
:class:`~eventyard.storage.log.PartitionLog` runs the commit step under its lock. This
module reads files through its own handles, so readers of live segments are undisturbed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator

from eventyard.errors import LogCorruptionError
from eventyard.records import BatchHeader, Record, decode_batch, encode_batch, read_header
from eventyard.storage.config import LogConfig
from eventyard.storage.fs import FileSystem
from eventyard.storage.recovery import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    SWAP_SUFFIX,
    remove_segment_files,
)
from eventyard.storage.scan import BatchScanner
from eventyard.storage.segment import LOG_SUFFIX, Segment, segment_name

__all__ = [
    "CompactionPolicy",
    "SegmentRef",
    "build_key_map",
    "commit_swap",
    "compact_segments",
    "discard_replaced",
    "plan_groups",
    "rewrite_group",
    "stage_swap",
]

_INT32_MAX = (1 << 31) - 1
_SHORT_KEY = 32
_DIGEST_SIZE = _SHORT_KEY + 1


@dataclasses.dataclass(frozen=True, slots=True)
class SegmentRef:
    """A snapshot of a closed segment: what compaction needs, without its open files."""

    base_offset: int
    size: int
    next_offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """What one compaction run keeps: the ``latest`` offset per key, and young tombstones."""

    latest: dict[bytes, int]
    tombstone_horizon_ms: int
    """Tombstones with a timestamp at or before this go (``now - delete_retention_ms``)."""


def _key_id(key: bytes) -> bytes:
    if len(key) <= _SHORT_KEY:
        return key
    return hashlib.blake2b(key, digest_size=_DIGEST_SIZE).digest()


def _batches(
    fs: FileSystem, directory: str, ref: SegmentRef
) -> Iterator[tuple[BatchHeader, bytes]]:
    """Every batch of a closed segment with its bytes, CRC-checked, in big reads."""
    path = os.path.join(directory, segment_name(ref.base_offset) + LOG_SUFFIX)
    file = fs.open_read(path)
    try:
        scanner = BatchScanner(file, 0, ref.size)
        for _, header, buffer, rel in scanner:
            yield header, buffer[rel : rel + header.size]
        if scanner.damage is not None:
            raise LogCorruptionError(
                f"segment {path} is damaged at byte {scanner.position}: offsets from"
                f" {ref.base_offset} to {ref.next_offset - 1} cannot be compacted"
                f" ({scanner.damage})"
            )
    finally:
        file.close()


def build_key_map(fs: FileSystem, directory: str, refs: list[SegmentRef]) -> dict[bytes, int]:
    """The offset of the latest record of every key in ``refs`` (pass 1)."""
    latest: dict[bytes, int] = {}
    for ref in refs:
        for header, data in _batches(fs, directory, ref):
            if header.is_control:
                continue
            for record in decode_batch(data):
                if record.key is not None:
                    latest[_key_id(record.key)] = record.offset
    return latest


def plan_groups(refs: list[SegmentRef], segment_bytes: int) -> list[list[SegmentRef]]:
    """Split consecutive segments into groups of at most ``segment_bytes`` together.

    A group also spans fewer than 2**31 offsets: index entries store offsets relative to
    the segment's base as int32.
    """
    groups: list[list[SegmentRef]] = []
    current: list[SegmentRef] = []
    total = 0
    for ref in refs:
        too_far = current and ref.next_offset - current[0].base_offset > _INT32_MAX
        if current and (total + ref.size > segment_bytes or too_far):
            groups.append(current)
            current, total = [], 0
        current.append(ref)
        total += ref.size
    if current:
        groups.append(current)
    return groups


def _keep(record: Record, policy: CompactionPolicy) -> bool:
    if record.key is None:
        return True
    if policy.latest.get(_key_id(record.key)) != record.offset:
        return False
    return record.value is not None or record.timestamp > policy.tombstone_horizon_ms


def _rewrite_batch(
    header: BatchHeader, data: bytes, policy: CompactionPolicy, last: bool
) -> bytes | None:
    """The batch as compaction leaves it: the same bytes, re-encoded, or ``None`` (dropped)."""
    if header.is_control:
        return data
    records = decode_batch(data)
    if not records:  # emptied by an earlier run: kept only while it ends a segment
        return data if last else None
    kept = [record for record in records if _keep(record, policy)]
    if len(kept) == len(records):
        return data
    if not kept and not last:
        return None
    # Offsets and the offset range stay, so the batch's base sequence stays valid too.
    return encode_batch(
        kept,
        base_offset=header.base_offset,
        last_offset_delta=header.last_offset_delta,
        compression=header.compression,
        timestamp_type=header.timestamp_type,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        is_transactional=header.is_transactional,
        partition_leader_epoch=header.partition_leader_epoch,
    )


def rewrite_group(
    fs: FileSystem,
    directory: str,
    group: list[SegmentRef],
    policy: CompactionPolicy,
    index_interval: int,
    now_ms: int,
) -> Segment | None:
    """Write ``group`` compacted as one sealed, fsynced ``*.cleaned`` segment.

    Returns ``None`` (and leaves no files) when the rewrite would change nothing: a
    single segment from which no record goes.
    """
    base = group[0].base_offset
    cleaned = Segment.create(fs, directory, base, index_interval, now_ms, suffix=CLEANED_SUFFIX)
    changed = len(group) > 1
    try:
        batches = (batch for ref in group for batch in _batches(fs, directory, ref))
        pending = next(batches, None)
        while pending is not None:
            header, data = pending
            pending = next(batches, None)
            out = _rewrite_batch(header, data, policy, last=pending is None)
            if out is not data:
                changed = True
            if out is not None:
                kept = read_header(out)
                cleaned.append(out, header.base_offset, header.last_offset, kept.max_timestamp)
        if not changed:
            cleaned.release()
            remove_segment_files(fs, directory, base, CLEANED_SUFFIX)
            return None
        cleaned.seal()
        cleaned.sync()
    except BaseException:
        cleaned.release()
        remove_segment_files(fs, directory, base, CLEANED_SUFFIX)
        raise
    cleaned.next_offset = group[-1].next_offset
    return cleaned


def compact_segments(
    fs: FileSystem,
    directory: str,
    refs: list[SegmentRef],
    config: LogConfig,
    now_ms: int,
    swap_in: Callable[[list[SegmentRef], Segment], None],
) -> int:
    """Compact ``refs`` (closed, durable segments) group by group; return bytes reclaimed.

    ``swap_in`` puts each rewritten group in place (the log does it under its lock with
    :func:`stage_swap`, :func:`commit_swap` and :func:`discard_replaced`).
    """
    policy = CompactionPolicy(
        build_key_map(fs, directory, refs), now_ms - config.delete_retention_ms
    )
    reclaimed = 0
    for group in plan_groups(refs, config.segment_bytes):
        cleaned = rewrite_group(fs, directory, group, policy, config.index_interval_bytes, now_ms)
        if cleaned is not None:
            swap_in(group, cleaned)
            reclaimed += sum(ref.size for ref in group) - cleaned.size
    return reclaimed


def stage_swap(fs: FileSystem, directory: str, cleaned: Segment) -> None:
    """Rename the ``.cleaned`` files ``.swap`` (the log last: the commit point), durably."""
    try:
        cleaned.rename_suffix(SWAP_SUFFIX)
        fs.fsync_dir(directory)
    except OSError:
        cleaned.release()
        raise


def commit_swap(old: list[Segment], cleaned: Segment) -> None:
    """Retire ``old`` (all but the first renamed ``.deleted``) and rename ``cleaned`` into
    place over the first (its indexes first, its log last). Fast renames only: the log
    runs this under its lock so no reader sees a half-swapped list.
    """
    for segment in old[1:]:
        segment.rename_suffix(DELETED_SUFFIX)
    cleaned.rename_suffix("")


def discard_replaced(fs: FileSystem, directory: str, old: list[Segment]) -> None:
    """Close the replaced segments and delete their ``.deleted`` files."""
    fs.fsync_dir(directory)
    for segment in old:
        segment.release()
    for segment in old[1:]:
        remove_segment_files(fs, directory, segment.base_offset, DELETED_SUFFIX)
