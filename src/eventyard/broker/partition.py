"""One partition and its single owner: log, producer state, long-poll waiters, durability.

Everything that changes a partition goes through its :class:`Partition`, on the broker's
event loop, so none of this needs a lock; only the blocking storage calls (``flush``,
opening the log, the tail scan) run in worker threads, which ``storage.PartitionLog`` allows.

Durability policies, applied after each append:

``always``
    group commit: the produce waits until a ``flush()`` that started after its append has
    returned. One flush runs at a time in a worker thread and covers every batch appended
    before it started; batches appended while it runs wait for the next one, which starts as
    soon as the current one returns. So concurrent producers share fsyncs, and an fsync is
    never issued per batch. Fetches of an ``always`` partition see only flushed data (the
    high watermark is the durable offset), so no consumer acts on an event a crash can undo.
``interval:MS``
    the first append after a flush arms a timer; when it fires the partition is flushed in a
    worker thread. Acknowledged at once; at most about MS of acknowledged data is at risk.
``never``
    left to the OS; ``close()`` still flushes.

Long-poll: a fetcher registers a future with :meth:`Partition.add_waiter`; the partition
completes every registered future when its high watermark advances, and the fetcher reads
again. A future may wait on several partitions at once (``Broker.fetch_many``).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from eventyard.broker.producers import ProducerStateTable
from eventyard.errors import (
    BrokerError,
    LogCorruptionError,
    MessageTooLargeError,
    OffsetOutOfRangeError,
    StorageError,
)
from eventyard.records import HEADER_SIZE, BatchHeader, read_header, split_batches
from eventyard.storage import Durability, FileSystem, LogConfig, PartitionLog

__all__ = ["FetchResult", "Partition", "ProduceResult", "tail_headers"]

logger = logging.getLogger("eventyard.broker")

PRODUCER_STATE_TAIL: Final = 100_000
"""Offsets at the end of a log scanned at open to rebuild the idempotence state."""
PRODUCER_STATE_BYTES: Final = 32 << 20
"""About how many bytes that scan reads at most (see :func:`tail_headers`)."""
_SCAN_CHUNK: Final = 4 << 20
_LENGTH: Final = struct.Struct(">qi")


@dataclass(frozen=True, slots=True)
class ProduceResult:
    """Where a produced payload landed: its first and last offsets, and the log start."""

    base_offset: int
    last_offset: int
    log_start_offset: int


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Stored record batches, byte for byte, with the partition's watermarks.

    ``records`` holds whole batches (decode with ``records.decode_batches``); the first may
    start before the requested offset, since batches are never split. ``error`` is set only
    by ``Broker.fetch_many``, which answers each partition separately as Kafka's Fetch does
    (``Broker.fetch`` raises instead); ``records`` is then empty.
    """

    records: bytes
    high_watermark: int
    log_start_offset: int
    error: BrokerError | StorageError | None = None


class Partition:
    """The owner of one partition's log (see the module docstring for the policies)."""

    __slots__ = (
        "_always",
        "_closed",
        "_durable_end",
        "_durable_waiters",
        "_flusher",
        "_interval_s",
        "_log",
        "_loop",
        "_max_message_bytes",
        "_producers",
        "_timer",
        "_waiters",
        "index",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        index: int,
        log: PartitionLog,
        durability: Durability,
        *,
        max_message_bytes: int,
        producers: ProducerStateTable | None = None,
    ) -> None:
        self.topic = topic
        self.index = index
        self._log = log
        self._loop = asyncio.get_running_loop()
        self._always = durability.mode == "always"
        self._interval_s = durability.interval_ms / 1000 if durability.mode == "interval" else None
        self._max_message_bytes = max_message_bytes
        self._producers = producers if producers is not None else ProducerStateTable()
        self._durable_end = log.durable_offset
        self._durable_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        topic: str,
        index: int,
        directory: Path,
        config: LogConfig,
        *,
        fs: FileSystem,
        max_message_bytes: int,
    ) -> Partition:
        """Open (or create) the log in ``directory`` and rebuild its producer state."""

        def load() -> tuple[PartitionLog, ProducerStateTable]:
            log = PartitionLog.open(str(directory), config, fs=fs)
            try:
                producers = ProducerStateTable()
                producers.load(tail_headers(log))
            except BaseException:
                log.close()
                raise
            return log, producers

        log, producers = await asyncio.to_thread(load)
        return cls(
            topic,
            index,
            log,
            config.durability,
            max_message_bytes=max_message_bytes,
            producers=producers,
        )

    @property
    def log(self) -> PartitionLog:
        """The partition's log (for retention, compaction and description)."""
        return self._log

    @property
    def high_watermark(self) -> int:
        """The end of what fetchers see: the durable end under ``always``, else the log end."""
        return self._durable_end if self._always else self._log.end_offset

    async def produce(self, payload: bytes) -> ProduceResult:
        """Append one produce payload and wait until the durability policy is met."""
        result, durable = self.append(payload)
        if durable is not None:
            await durable
        return result

    def append(self, payload: bytes) -> tuple[ProduceResult, asyncio.Future[None] | None]:
        """Validate and append one produce payload now; return where it landed and, under
        ``always``, a future completed once it is durable (``None`` when nothing to wait for).

        ``payload`` is one or more record batches. Everything is checked before anything is
        appended: framing, magic, CRC-32C, each batch's size (``max_message_bytes`` bounds
        one batch, as Kafka's ``message.max.bytes``) and idempotent sequences. A retried batch is
        answered with its original offsets and not appended again. Being synchronous, calls
        are appended in the order they are made, which idempotent producers rely on.
        """
        if self._closed:
            raise BrokerError(f"partition {self.topic}-{self.index} is closed")
        batches = split_batches(payload)
        if len(payload) > self._max_message_bytes:
            for _, header in batches:
                if header.size > self._max_message_bytes:
                    raise MessageTooLargeError(
                        f"a record batch of {header.size} bytes to {self.topic}-{self.index} "
                        f"exceeds max_message_bytes {self._max_message_bytes}"
                    )
        producers = self._producers
        log = self._log
        if len(batches) == 1:
            header = batches[0][1]
            duplicate = producers.check(header)
            if duplicate is None:
                base_offset, last_offset = log.append(payload)
                producers.record(header, base_offset, last_offset)
                self._after_append()
            else:
                base_offset, last_offset = duplicate.base_offset, duplicate.last_offset
        else:
            base_offset, last_offset = self._append_many(payload, batches)
        result = ProduceResult(base_offset, last_offset, log.start_offset)
        if self._always and last_offset >= self._durable_end:
            return result, self._wait_durable(last_offset)
        return result, None

    def _append_many(
        self, payload: bytes, batches: list[tuple[int, BatchHeader]]
    ) -> tuple[int, int]:
        producers = self._producers
        pending: dict[int, tuple[int, int]] = {}
        duplicates = [producers.check(header, pending) for _, header in batches]
        base_offset = last_offset = -1
        appended = False
        for (pos, header), duplicate in zip(batches, duplicates, strict=True):
            if duplicate is not None:
                first, last = duplicate.base_offset, duplicate.last_offset
            else:
                first, last = self._log.append(payload[pos : pos + header.size])
                producers.record(header, first, last)
                appended = True
            if base_offset < 0:
                base_offset = first
            last_offset = last
        if appended:
            self._after_append()
        return base_offset, last_offset

    def _after_append(self) -> None:
        if self._always:
            return
        if self._interval_s is not None and self._timer is None and self._flusher is None:
            self._timer = self._loop.call_later(self._interval_s, self._on_timer)
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        if waiters:
            self._waiters = set()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def expire_producers(self, before_ms: int) -> int:
        """Forget idempotent producers silent since before ``before_ms``; return how many."""
        return self._producers.expire(before_ms)

    def add_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Complete ``waiter`` when the high watermark advances (or the partition closes)."""
        if self._closed:
            waiter.set_result(None)
        else:
            self._waiters.add(waiter)

    def remove_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Forget ``waiter`` (the fetch finished for another reason)."""
        self._waiters.discard(waiter)

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Return whole batches from the one holding ``offset``, up to the high watermark.

        Raises ``OffsetOutOfRangeError`` outside ``[log_start_offset, high_watermark]``.
        """
        if not self._always:
            return self._log.read(offset, max_bytes)
        end = self._durable_end
        if offset >= end:
            if offset > self._log.end_offset:
                raise OffsetOutOfRangeError(
                    f"offset {offset} is beyond the end {self._log.end_offset} "
                    f"of {self.topic}-{self.index}"
                )
            return b""
        data = self._log.read(offset, max_bytes)
        return _cut_before(data, end)

    def _wait_durable(self, last_offset: int) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._durable_waiters.append((last_offset, waiter))
        if self._flusher is None:
            self._flusher = self._loop.create_task(self._flush_loop())
        return waiter

    def _on_timer(self) -> None:
        self._timer = None
        if self._flusher is None and not self._closed:
            self._flusher = self._loop.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        """Run flushes back to back while anyone waits for one (the group commit)."""
        try:
            while True:
                end = await asyncio.to_thread(self._log.flush)
                self._flushed(end)
                if not self._durable_waiters:
                    break
        except Exception as exc:
            logger.error("flush of %s-%d failed: %s", self.topic, self.index, exc)
            error = exc if isinstance(exc, StorageError) else StorageError(str(exc))
            waiters, self._durable_waiters = self._durable_waiters, []
            for _, waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
        finally:
            self._flusher = None
            if (
                self._interval_s is not None
                and not self._closed
                and self._log.end_offset > self._durable_end
                and self._timer is None
            ):
                self._timer = self._loop.call_later(self._interval_s, self._on_timer)

    def _flushed(self, end: int) -> None:
        advanced = end > self._durable_end
        self._durable_end = max(self._durable_end, end)
        remaining = []
        for last_offset, waiter in self._durable_waiters:
            if waiter.done():
                continue
            if last_offset < end:
                waiter.set_result(None)
            else:
                remaining.append((last_offset, waiter))
        self._durable_waiters = remaining
        if advanced and self._always:
            self._wake()

    async def flush(self) -> None:
        """Make everything appended so far durable (whatever the policy)."""
        if self._log.end_offset > self._durable_end:
            await self._wait_durable(self._log.end_offset - 1)

    async def close(self) -> None:
        """Flush, close the log and release every waiter. Idempotent."""
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            await self.flush()
        finally:
            self._closed = True
            self._wake()
            await asyncio.to_thread(self._log.close)

    async def delete(self) -> None:
        """Refuse appends, let a running group commit finish (its producers were promised
        an answer), release fetchers and remove the log's files."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._wake()
        await asyncio.to_thread(self._log.delete)


def _cut_before(data: bytes, end: int) -> bytes:
    """Return the leading whole batches of ``data`` whose offsets are all below ``end``."""
    pos = 0
    size = len(data)
    while pos < size:
        base_offset, length = _LENGTH.unpack_from(data, pos)
        if base_offset >= end:
            break
        pos += length + 12
    return data if pos >= size else data[:pos]


def tail_headers(
    log: PartitionLog,
    max_offsets: int = PRODUCER_STATE_TAIL,
    max_bytes: int = PRODUCER_STATE_BYTES,
) -> list[BatchHeader]:
    """Return the headers of the batches at the end of ``log``, oldest first.

    The window is ``max_offsets`` offsets, narrowed so that about ``max_bytes`` are read,
    judged by the size per offset of the last batch: opening a log of large batches must
    not read most of it. Damage inside the window (``LogCorruptionError``) halves the window
    until the scan succeeds, with one warning: an unreadable old segment must cost at most
    some duplicate detection, never the ability to open the partition (reads of the damaged
    range keep failing loudly).
    """
    end = log.end_offset
    start = log.start_offset
    if end <= start:
        return []
    window = max_offsets
    try:
        tail = log.read(end - 1, 1)
    except LogCorruptionError as exc:
        logger.warning("%s: no idempotence state recovered: %s", log.directory, exc)
        return []
    if tail:
        last = read_header(tail)
        per_offset = max(1, last.size // (last.last_offset_delta + 1))
        window = max(1, min(max_offsets, max_bytes // per_offset))
    damage: LogCorruptionError | None = None
    while True:
        try:
            headers = _scan_headers(log, max(start, end - window), end)
        except LogCorruptionError as exc:
            if window <= 1:
                logger.warning("%s: no idempotence state recovered: %s", log.directory, exc)
                return []
            damage = damage or exc  # each halving meets the same damage: say it once
            window //= 2
            continue
        if damage is not None:
            logger.warning(
                "%s: %s; idempotence state recovered from the last %d offsets only",
                log.directory,
                damage,
                end - max(start, end - window),
            )
        return headers


def _scan_headers(log: PartitionLog, offset: int, end: int) -> list[BatchHeader]:
    headers: list[BatchHeader] = []
    while offset < end:
        data = log.read(offset, _SCAN_CHUNK)
        if not data:
            break
        pos = 0
        while pos + HEADER_SIZE <= len(data):
            header = read_header(data, pos)
            headers.append(header)
            pos += header.size
        offset = max(offset + 1, headers[-1].last_offset + 1)
    return headers
