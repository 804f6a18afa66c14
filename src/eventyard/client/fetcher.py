"""The consumer's fetcher: positions, fetches from the broker and the buffer of decoded records.

A :class:`Fetcher` holds the read state of the partitions one consumer is assigned and turns
stored batches into :class:`ConsumerRecord` values. Its contract with the consumer:

- **Positions.** :attr:`Fetcher.positions` maps every assigned partition to its *position*,
  the offset of the next record to return, or ``None`` while the consumer has not decided
  where to start (committed offset or reset policy; it then calls :meth:`Fetcher.reset`).
  Only records at or after the position are ever returned; returning a record moves the
  position just past it, so the positions are always "what was returned so far" and the
  consumer commits them as they are.
- **Buffer.** :meth:`Fetcher.fetch` asks ``broker.fetch_many`` once for every partition with
  a position and nothing buffered (whole stored batches, long-polling when there is no data),
  and decodes each partition's bytes into a per-partition buffer. :meth:`Fetcher.drain` and
  :meth:`Fetcher.take_one` return buffered records in offset order per partition. A seek
  (:meth:`Fetcher.move`) or a new assignment drops the affected buffers, so records fetched
  for an old position are never returned.
- **Errors.** A position the log no longer holds (``OffsetOutOfRangeError``) becomes ``None``
  and the partition joins :attr:`Fetcher.out_of_range`, telling the consumer to apply its reset
  policy rather than the committed offset; a topic deleted under the consumer is skipped; any
  other fetch error is raised.
- **Wake-ups.** A fetch or wait in progress returns early (``False``) when :meth:`Fetcher.wake`
  is called, which assignments and seeks do, and the consumer does on stop or when its group
  changes.

Speed: each partition's fetched bytes are decoded in one ``records.decode_batches`` call;
records below the position (a fetch starts at the batch *holding* the position) are skipped
with one bisection; the copy into :class:`ConsumerRecord` (which adds topic and partition) is
one comprehension per partition and fetch. That copy is about 5% of the decoding cost (some
80 ns of 1.5 µs a record, 200-byte values); a decoder loop constructing ``ConsumerRecord``
directly, through a factory passed into ``records``' loop, measured no faster (the factory
call costs what the copy saved), so the codec stays in ``records`` alone. Returning a record
from the buffer costs an index increment and a position update (the partition being read is
cached, not looked up), no fetch.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import operator
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from eventyard.broker import FetchRequest
from eventyard.errors import OffsetOutOfRangeError, UnknownTopicError
from eventyard.records import HEADER_SIZE, decode_batches, read_header

if TYPE_CHECKING:
    from eventyard.broker import Broker, FetchResult

__all__ = ["ConsumerRecord", "Fetcher", "TopicPartition", "decode_fetched"]

log = logging.getLogger(__name__)

_OFFSET = operator.attrgetter("offset")
_ALL: frozenset[TopicPartition] = frozenset()


class TopicPartition(NamedTuple):
    """One partition of one topic."""

    topic: str
    partition: int


class ConsumerRecord(msgspec.Struct, frozen=True, gc=False):
    """A record as the consumer returns it (aiokafka's field names).

    A ``msgspec.Struct`` without GC tracking, as ``records.Record`` is and for the same
    reason: the consumer builds one per record it returns.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def decode_fetched(tp: TopicPartition, data: bytes, offset: int) -> list[ConsumerRecord]:
    """Decode the records at or after ``offset`` of the complete data batches in ``data``.

    ``data`` is a fetch response's record set for ``tp``: its first batch may hold records
    below ``offset`` (skipped), its last batch may be cut short (ignored), control batches
    carry no records. Raises ``CorruptRecordError`` for a malformed complete batch.
    """
    records = decode_batches(data)
    if records and records[0].offset < offset:
        records = records[bisect.bisect_left(records, offset, key=_OFFSET) :]
    topic, partition = tp
    return [
        ConsumerRecord(topic, partition, r.offset, r.timestamp, r.key, r.value, r.headers)
        for r in records
    ]


class Fetcher:
    """Positions, fetches and buffered records of one consumer's assigned partitions.

    See the module docstring for the contract. Not thread-safe; every method runs on the
    consumer's event loop. ``partition_bytes`` and ``max_bytes`` are the per-partition and
    per-fetch byte limits passed to ``broker.fetch_many`` (a first batch larger than them
    is still returned whole, as in Kafka).
    """

    def __init__(self, broker: Broker, *, partition_bytes: int, max_bytes: int) -> None:
        self._broker = broker
        self._partition_bytes = partition_bytes
        self._max_bytes = max_bytes
        self.positions: dict[TopicPartition, int | None] = {}
        self.out_of_range: set[TopicPartition] = set()
        self._highwater: dict[TopicPartition, int] = {}
        self._buffer: dict[TopicPartition, _Buffered] = {}
        # The entry take_one reads from: the first of _buffer, cached so that returning a
        # record costs no dict iteration; None when it must be looked up (any removal from
        # _buffer resets it, while additions go to the end and leave it first).
        self._head: _Buffered | None = None
        self._wakeup: asyncio.Future[None] | None = None

    # -- positions ---------------------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly ``partitions``: kept ones keep position and buffer, new ones get none."""
        wanted = set(partitions)
        self.positions = {tp: self.positions.get(tp) for tp in sorted(wanted)}
        for tp in [tp for tp in self._buffer if tp not in wanted]:
            del self._buffer[tp]
        self._head = None
        self.out_of_range &= wanted
        self.wake()

    def revoke(self) -> None:
        """Forget every partition, its position and its buffered records."""
        self.positions = {}
        self._buffer.clear()
        self._head = None
        self.out_of_range.clear()
        self.wake()

    def move(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the position of the assigned ``tp`` (a seek): drop its buffer."""
        self.positions[tp] = offset
        self.out_of_range.discard(tp)
        self._buffer.pop(tp, None)
        self._head = None
        self.wake()

    def reset(self, tp: TopicPartition, offset: int) -> None:
        """Give ``tp`` its starting ``offset`` if it is still assigned without a position.

        The consumer looks starting offsets up asynchronously, so a rebalance or seek may
        have happened meanwhile; those win.
        """
        if tp in self.positions and self.positions[tp] is None:
            self.positions[tp] = offset
            self.out_of_range.discard(tp)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's high watermark as of the last fetch (``None`` before one)."""
        return self._highwater.get(tp)

    # -- the buffer --------------------------------------------------------------------------

    def buffered(self, only: frozenset[TopicPartition] = _ALL) -> bool:
        """Whether records of ``only`` (default: any partition) are buffered."""
        return any(not only or tp in only for tp in self._buffer)

    def take_one(self, only: frozenset[TopicPartition] = _ALL) -> ConsumerRecord | None:
        """Return the next buffered record of ``only`` (default: any partition), or ``None``."""
        entry = self._head
        if entry is None or only:
            entry = next((e for tp, e in self._buffer.items() if not only or tp in only), None)
            if entry is None:
                return None
            if not only:
                self._head = entry
        records = entry.records
        index = entry.index
        record = records[index]
        index += 1
        self.positions[entry.tp] = record.offset + 1
        if index == len(records):
            del self._buffer[entry.tp]
            self._head = None
        else:
            entry.index = index
        return record

    def drain(
        self, limit: int | None, only: frozenset[TopicPartition] = _ALL
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Return up to ``limit`` (``None``: all) buffered records of ``only``, by partition."""
        result: dict[TopicPartition, list[ConsumerRecord]] = {}
        room = limit
        for tp in list(self._buffer):
            if only and tp not in only:
                continue
            entry = self._buffer[tp]
            records, index = entry.records, entry.index
            end = len(records) if room is None else min(len(records), index + room)
            taken = records if index == 0 and end == len(records) else records[index:end]
            result[tp] = taken
            self.positions[tp] = taken[-1].offset + 1
            if end == len(records):
                del self._buffer[tp]
                self._head = None
            else:
                entry.index = end
            if room is not None:
                room -= len(taken)
                if room == 0:
                    break
        return result

    # -- fetching ----------------------------------------------------------------------------

    async def fetch(self, deadline: float, only: frozenset[TopicPartition] = _ALL) -> bool:
        """Fetch once for the partitions of ``only`` with a position and nothing buffered.

        Waits (long-polls) until data arrives or the event loop's clock reaches ``deadline``.
        True when the caller should stop waiting: records are buffered or the deadline
        passed. False when it should look again: woken (:meth:`wake`), or the data fetched
        was all below the positions, or a position was lost (see :attr:`out_of_range`).
        """
        loop = asyncio.get_running_loop()
        requests = [
            FetchRequest(tp.topic, tp.partition, position, self._partition_bytes)
            for tp, position in self.positions.items()
            if position is not None and tp not in self._buffer and (not only or tp in only)
        ]
        remaining = deadline - loop.time()
        if not requests:
            return remaining <= 0 or not await self._sleep(remaining)
        results = await self._broker.fetch_many(requests, max_wait_ms=0, max_bytes=self._max_bytes)
        if not any(r.records for r in results) and remaining > 0:
            long_poll = await self._long_poll(requests, remaining)
            if long_poll is None:
                return False
            results = long_poll
        return self._store(requests, results) or loop.time() >= deadline

    def wake(self) -> None:
        """End a :meth:`fetch` waiting for data or for a partition to fetch."""
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _long_poll(
        self, requests: list[FetchRequest], timeout: float
    ) -> list[FetchResult] | None:
        """Wait for data; ``None`` when a rebalance, seek or stop interrupts the wait.

        The broker's wait is rounded up to whole milliseconds: rounded down, the last
        millisecond before the deadline would be spent re-fetching without waiting. The
        wake-up future is the broker's ``interrupt``, so waiting costs no task of its own.
        """
        wake = self._wakeup = asyncio.get_running_loop().create_future()
        try:
            results = await self._broker.fetch_many(
                requests,
                max_wait_ms=math.ceil(timeout * 1000),
                max_bytes=self._max_bytes,
                interrupt=wake,
            )
        finally:
            self._wakeup = None
        return None if wake.done() else results

    async def _sleep(self, timeout: float) -> bool:
        """Sleep until woken or ``timeout``; False when the timeout ran out."""
        wake = self._wakeup = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait((wake,), timeout=timeout)
        finally:
            self._wakeup = None
        return wake.done()

    def _store(self, requests: list[FetchRequest], results: list[FetchResult]) -> bool:
        """Decode fetched batches into the buffer; True if any record is now buffered.

        A result whose request no longer matches the position (a seek or rebalance during
        the fetch) is dropped. When every fetched record is below the position (the fetch
        returned only the batch holding it), the position moves past the fetched batches so
        the next fetch does not return them again.
        """
        got = False
        positions = self.positions
        for request, result in zip(requests, results, strict=True):
            tp = TopicPartition(request.topic, request.partition)
            if positions.get(tp, -1) != request.offset:
                continue
            if result.error is not None:
                self._fetch_failed(tp, result.error)
                continue
            self._highwater[tp] = result.high_watermark
            data = result.records
            if not data:
                continue
            records = decode_fetched(tp, data, request.offset)
            if records:
                self._buffer[tp] = _Buffered(tp, records)
                got = True
            else:
                positions[tp] = max(request.offset, _next_offset(data))
        return got

    def _fetch_failed(self, tp: TopicPartition, error: Exception) -> None:
        if isinstance(error, OffsetOutOfRangeError):
            log.warning("%s: position %s out of range; resetting", tp, self.positions[tp])
            self.positions[tp] = None
            self.out_of_range.add(tp)
        elif not isinstance(error, UnknownTopicError):
            raise error


class _Buffered:
    """Decoded records of partition ``tp`` not returned yet; ``index`` is the next one."""

    __slots__ = ("index", "records", "tp")

    def __init__(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        self.tp = tp
        self.records = records
        self.index = 0


def _next_offset(data: bytes) -> int:
    """The offset after the last complete batch in ``data`` (a fetch may cut the last one)."""
    pos = 0
    next_offset = -1
    while len(data) - pos >= HEADER_SIZE:
        header = read_header(data, pos)
        if pos + header.size > len(data):
            break
        next_offset = header.last_offset + 1
        pos += header.size
    return next_offset
