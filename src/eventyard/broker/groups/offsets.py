"""Durable committed offsets: an in-memory table backed by an internal compacted log.

Every commit is one record batch appended to a ``storage.PartitionLog`` with cleanup policy
``compact``, one record per partition::

    key   = msgpack [group_id, topic, partition]
    value = msgpack [offset, metadata, leader_epoch, commit_timestamp_ms]   (None: deleted)

Compaction keeps the latest value per key, so the log stays about as large as the table.
Opening replays the log into memory. A commit is acknowledged only after an fsync covers it:
fsyncs run on one worker thread, and every commit appended while one fsync runs is covered by
the next (group commit), so many concurrent commits cost one fsync. The table is updated when
the fsync returns, in append order, so a reader never sees an offset a crash could lose.

The store is owned by the coordinator's event loop; only ``flush`` and ``compact`` run on the
worker thread, which ``PartitionLog`` allows while the owner keeps appending.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import msgspec

from eventyard.records import BatchBuilder, decode_batch, split_batches
from eventyard.storage import Durability, FileSystem, LogConfig, PartitionLog

__all__ = ["OffsetAndMetadata", "OffsetStore", "OffsetTable"]

log = logging.getLogger(__name__)

TopicPartitionKey = tuple[str, int]
OffsetTable = dict[TopicPartitionKey, "OffsetAndMetadata"]

_READ_CHUNK = 1 << 20


class OffsetAndMetadata(msgspec.Struct, frozen=True, array_like=True):
    """A committed position: the next offset to consume, with the committer's metadata.

    ``commit_timestamp_ms`` is set by the store when the commit is written.
    """

    offset: int
    metadata: str = ""
    leader_epoch: int = -1
    commit_timestamp_ms: int = -1


_KEY = msgspec.msgpack.Decoder(tuple[str, str, int])
_VALUE = msgspec.msgpack.Decoder(OffsetAndMetadata)
_ENCODER = msgspec.msgpack.Encoder()


@dataclass(slots=True)
class _PendingCommit:
    last_offset: int
    group_id: str
    offsets: dict[TopicPartitionKey, OffsetAndMetadata | None]
    future: asyncio.Future[None]


class OffsetStore:
    """The committed offsets of every group, durable in a compacted log."""

    def __init__(self, partition_log: PartitionLog, table: dict[str, OffsetTable]) -> None:
        self._log = partition_log
        self._table = table
        self._pending: collections.deque[_PendingCommit] = collections.deque()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="eventyard-offsets")
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(
        cls, directory: Path, fs: FileSystem, *, segment_bytes: int = 16 * 1024 * 1024
    ) -> OffsetStore:
        """Open (creating if needed) the offsets log in ``directory`` and replay it."""
        config = LogConfig(
            segment_bytes=segment_bytes,
            cleanup_policy="compact",
            durability=Durability.parse("always"),
        )
        partition_log, table = await asyncio.to_thread(_load, directory, config, fs)
        return cls(partition_log, table)

    def groups(self) -> list[str]:
        """Every group id with at least one committed offset."""
        return list(self._table)

    def fetch(
        self, group_id: str, partitions: Iterable[TopicPartitionKey] | None = None
    ) -> OffsetTable:
        """The group's committed offsets (all, or those of ``partitions`` that exist)."""
        table = self._table.get(group_id, {})
        if partitions is None:
            return dict(table)
        return {tp: table[tp] for tp in partitions if tp in table}

    async def commit(
        self, group_id: str, offsets: Mapping[TopicPartitionKey, OffsetAndMetadata | None]
    ) -> None:
        """Write ``offsets`` (``None`` deletes a partition's entry); return once durable."""
        if self._closed:
            raise RuntimeError("the offset store is closed")
        if not offsets:
            return
        now = int(time.time() * 1000)
        builder = BatchBuilder()
        stamped: dict[TopicPartitionKey, OffsetAndMetadata | None] = {}
        for (topic, partition), value in offsets.items():
            key = _ENCODER.encode((group_id, topic, partition))
            if value is None:
                stamped[(topic, partition)] = None
                builder.append(None, key=key, timestamp_ms=now)
            else:
                value = msgspec.structs.replace(value, commit_timestamp_ms=now)
                stamped[(topic, partition)] = value
                builder.append(_ENCODER.encode(value), key=key, timestamp_ms=now)
        _, last_offset = self._log.append(builder.build())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_PendingCommit(last_offset, group_id, stamped, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_pending())
        await asyncio.shield(future)

    async def delete_group(self, group_id: str) -> None:
        """Delete every committed offset of ``group_id`` (tombstones, durable on return)."""
        table = self._table.get(group_id)
        if table:
            await self.commit(group_id, dict.fromkeys(table))

    async def compact(self) -> int:
        """Compact the closed segments on the worker thread; return the bytes reclaimed."""
        now = int(time.time() * 1000)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._log.compact, now
        )

    @property
    def size_bytes(self) -> int:
        """Bytes the offsets log takes on disk."""
        return self._log.size_bytes

    async def close(self) -> None:
        """Wait for pending commits, then close the log and the worker thread."""
        self._closed = True
        if self._flusher is not None:
            await self._flusher
        await asyncio.get_running_loop().run_in_executor(self._executor, self._log.close)
        self._executor.shutdown(wait=True)

    async def _flush_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            try:
                durable = await loop.run_in_executor(self._executor, self._log.flush)
            except Exception as exc:
                log.error("offsets log flush failed; failing %d commits", len(self._pending))
                while self._pending:
                    failed = self._pending.popleft().future
                    if not failed.done():
                        failed.set_exception(exc)
                return
            while self._pending and self._pending[0].last_offset < durable:
                entry = self._pending.popleft()
                _apply(self._table, entry.group_id, entry.offsets)
                if not entry.future.done():
                    entry.future.set_result(None)


def _apply(
    table: dict[str, OffsetTable],
    group_id: str,
    offsets: Mapping[TopicPartitionKey, OffsetAndMetadata | None],
) -> None:
    group = table.setdefault(group_id, {})
    for tp, value in offsets.items():
        if value is None:
            group.pop(tp, None)
        else:
            group[tp] = value
    if not group:
        del table[group_id]


def _load(
    directory: Path, config: LogConfig, fs: FileSystem
) -> tuple[PartitionLog, dict[str, OffsetTable]]:
    """Open the log and replay it into a table (runs on a worker thread)."""
    partition_log = PartitionLog.open(str(directory), config, fs)
    table: dict[str, OffsetTable] = {}
    offset = partition_log.start_offset
    while offset < partition_log.end_offset:
        chunk = partition_log.read(offset, _READ_CHUNK)
        if not chunk:
            break
        for pos, header in split_batches(chunk):
            if not header.is_control:
                for record in decode_batch(chunk, pos):
                    _replay(table, record.key, record.value)
            offset = header.last_offset + 1
    return partition_log, table


def _replay(table: dict[str, OffsetTable], key: bytes | None, value: bytes | None) -> None:
    if key is None:
        log.warning("offsets log record without a key skipped")
        return
    group_id, topic, partition = _KEY.decode(key)
    _apply(table, group_id, {(topic, partition): None if value is None else _VALUE.decode(value)})
