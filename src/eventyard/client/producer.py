"""The asyncio producer: records in, one record batch per partition out, idempotent by default.

:meth:`Producer.send` places one record (murmur2 for a key, the sticky partition otherwise,
or the partition given), adds it to that partition's open batch and waits for the batch's
acknowledgement; every ``send`` made before the batch is drained (the same event-loop turn
when ``linger_ms`` is 0, else within ``linger_ms``) shares one batch and one broker
append. :meth:`Producer.send_batch` is the bulk path: one ``BatchBuilder`` batch
per partition, every batch appended at once and their durability awaited together; per
record it only places the record and appends it to the builder.

Idempotence (Kafka's): the producer obtains a producer id once and numbers each partition's
records from 0; a batch carries its first sequence, so the broker appends a retried batch
only once. Batches of one partition reach the broker in sequence order because the sequence
is taken and the batch appended (``Broker.append``, synchronous) in one step; only the wait
for durability is asynchronous. After a failed batch, whose sequence numbers the broker never
accepted, the producer takes a fresh producer id before its next batch, as Kafka's producer
does, instead of leaving a gap every later batch would trip on.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Self, cast

from eventyard.broker.partition import ProduceResult
from eventyard.broker.partitioner import DefaultPartitioner, Partitioner
from eventyard.errors import EventyardError, UnknownTopicError
from eventyard.records import BatchBuilder, Compression

if TYPE_CHECKING:
    from eventyard.broker import Broker

__all__ = ["BatchMetadata", "Producer", "ProducerRecord", "RecordMetadata"]

_SEQUENCE_WRAP = 1 << 31
Headers = Sequence[tuple[str, bytes | None]]


class ProducerRecord(NamedTuple):
    """One record for :meth:`Producer.send_batch`; a plain ``(key, value)`` pair also works.

    ``key`` comes first so that a pair is this tuple's prefix; ``timestamp_ms`` defaults to
    the time of the call, ``partition`` to the partitioner's choice.
    """

    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int | None = None
    timestamp_ms: int | None = None


Pair = tuple[bytes | None, bytes | None] | ProducerRecord


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where one sent record was stored."""

    topic: str
    partition: int
    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """Where the records of one partition of a :meth:`Producer.send_batch` call were stored.

    They occupy ``base_offset`` to ``last_offset`` in the order they were given.
    """

    topic: str
    partition: int
    base_offset: int
    last_offset: int
    record_count: int


class _Open:
    """The batch being filled for one partition by :meth:`Producer.send`."""

    __slots__ = ("future", "handle", "records")

    def __init__(self, future: asyncio.Future[list[tuple[int, int]]]) -> None:
        self.records: list[ProducerRecord] = []
        self.future = future
        self.handle: asyncio.Handle | None = None


class Producer:
    """Sends records to a broker (see the module docstring).

    ``max_batch_records`` caps the records of one batch; a batch over the broker's
    ``max_message_bytes`` is split in two until it fits. ``partitioner`` defaults to
    Kafka's (murmur2 for keys, sticky for unkeyed records). Use as an async context manager
    or call :meth:`close`, which sends what is still open.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        compression: Compression = Compression.NONE,
        idempotent: bool = True,
        linger_ms: int = 0,
        max_batch_records: int = 1000,
        partitioner: Partitioner | None = None,
    ) -> None:
        if linger_ms < 0:
            raise ValueError(f"linger_ms must be >= 0, got {linger_ms}")
        if max_batch_records < 1:
            raise ValueError(f"max_batch_records must be >= 1, got {max_batch_records}")
        self._broker = broker
        self._compression = Compression(compression)
        self._idempotent = idempotent
        self._linger_s = linger_ms / 1000
        self._max_records = max_batch_records
        self._max_bytes = broker.config.max_message_bytes
        self._partitioner = partitioner if partitioner is not None else DefaultPartitioner()
        self._producer_id = -1
        self._epoch = -1
        self._needs_id = idempotent
        self._id_request: asyncio.Task[None] | None = None
        self._sequences: dict[tuple[str, int], int] = {}
        self._open: dict[tuple[str, int], _Open] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def producer_id(self) -> int:
        """The current producer id (-1 before the first send, or when not idempotent)."""
        return self._producer_id

    async def _prepare(self, topic: str) -> int:
        """Check the producer is usable, obtain a producer id if needed; return partitions."""
        if self._closed:
            raise EventyardError("the producer is closed")
        if self._needs_id:
            await self._new_producer_id()
        try:
            return self._broker.partition_count(topic)
        except UnknownTopicError:
            return len((await self._broker.ensure_topic(topic)).partitions)

    async def _new_producer_id(self) -> None:
        """Obtain a producer id. Every caller, the first included, waits on one shared
        request and resumes in the same event-loop turn, so their records meet in a batch."""
        request = self._id_request
        if request is None:
            request = self._id_request = asyncio.get_running_loop().create_task(
                self._request_producer_id()
            )
        await asyncio.shield(request)

    async def _request_producer_id(self) -> None:
        try:
            self._producer_id, self._epoch = await self._broker.init_producer_id()
            self._sequences.clear()
            self._needs_id = False
        finally:
            self._id_request = None

    def _encode(
        self, topic: str, partition: int, records: Sequence[Pair], now: int, pairs: bool
    ) -> list[tuple[bytes, int]]:
        """Encode ``records`` as one batch, or several when over ``max_message_bytes``;
        take their sequence numbers. Returns ``(batch, record count)`` pairs in order.

        ``pairs`` says every record is a plain ``(key, value)`` pair: the loop then only
        unpacks and appends, the hot path of :meth:`send_batch`."""
        slot = (topic, partition)
        if self._idempotent:
            sequence = self._sequences.get(slot, 0)
            builder = BatchBuilder(self._compression, self._producer_id, self._epoch, sequence)
        else:
            sequence = 0
            builder = BatchBuilder(self._compression)
        append = builder.append
        if pairs:
            for key, value in cast(Sequence[tuple[bytes | None, bytes | None]], records):
                append(value, key, (), now)
        else:
            for record in records:
                if len(record) == 2:
                    append(record[1], record[0], (), now)
                else:
                    timestamp = record[4]
                    append(record[1], record[0], record[2], now if timestamp is None else timestamp)
        data = builder.build()
        if len(data) > self._max_bytes and len(records) > 1:
            half = len(records) // 2
            return self._encode(topic, partition, records[:half], now, pairs) + self._encode(
                topic, partition, records[half:], now, pairs
            )
        if self._idempotent:
            self._sequences[slot] = (sequence + len(records)) % _SEQUENCE_WRAP
        return [(data, len(records))]

    def _append(
        self, topic: str, partition: int, batches: list[tuple[bytes, int]]
    ) -> list[tuple[ProduceResult, asyncio.Future[None] | None]]:
        """Append encoded batches now, in order; a failure costs the producer id."""
        append = self._broker.append
        try:
            return [append(topic, partition, data) for data, _ in batches]
        except BaseException:
            self._needs_id = self._idempotent
            raise

    async def _acknowledged(self, waits: list[asyncio.Future[None]]) -> None:
        try:
            if len(waits) == 1:
                await waits[0]
            else:
                await asyncio.gather(*waits)
        except BaseException:
            self._needs_id = self._idempotent
            raise

    # -- send_batch: the bulk path ------------------------------------------------------

    async def send_batch(
        self, topic: str, records: Sequence[Pair] | Iterable[Pair]
    ) -> list[BatchMetadata]:
        """Send ``(key, value)`` pairs or :class:`ProducerRecord`s; wait for all of them.

        Records of one partition keep their order and form one batch per
        ``max_batch_records``; every partition is appended at once and acknowledged
        concurrently. Returns one :class:`BatchMetadata` per batch, by partition. If a
        partition fails, the error is raised after the others were appended.
        """
        if not isinstance(records, Sequence):
            records = list(records)
        count = await self._prepare(topic)
        if not records:
            return []
        now = time.time_ns() // 1_000_000
        lengths = set(map(len, records))
        pairs = len(lengths) == 1 and 2 in lengths
        groups = self._group(topic, records, count, pairs)
        chunk = self._max_records
        batches: list[tuple[int, list[tuple[bytes, int]]]] = []
        for partition, members in groups.items():
            for start in range(0, len(members), chunk):
                piece = members[start : start + chunk] if len(members) > chunk else members
                batches.append((partition, self._encode(topic, partition, piece, now, pairs)))
        results: list[BatchMetadata] = []
        waits: list[asyncio.Future[None]] = []
        error: BaseException | None = None
        for partition, encoded in batches:
            try:
                appended = self._append(topic, partition, encoded)
            except EventyardError as exc:
                error = error or exc
                continue
            for (result, durable), (_, size) in zip(appended, encoded, strict=True):
                results.append(
                    BatchMetadata(topic, partition, result.base_offset, result.last_offset, size)
                )
                if durable is not None:
                    waits.append(durable)
        if waits:
            await self._acknowledged(waits)
        if error is not None:
            raise error
        return results

    def _group(
        self, topic: str, records: Sequence[Pair], count: int, pairs: bool
    ) -> dict[int, Sequence[Pair]]:
        """Place every record; unkeyed ones all go to the sticky partition of this call.

        Plain pairs bound for one partition (one partition, or no keys at all) are placed
        with C-level checks only, without a per-record Python step.
        """
        partitioner = self._partitioner
        if pairs:
            if count == 1:
                partitioner.batch_completed(topic, 0, count)
                return {0: records}
            keys = list(map(itemgetter(0), records))
            if keys.count(None) == len(keys):
                partition = partitioner.partition(topic, None, count)
                partitioner.batch_completed(topic, partition, count)
                return {partition: records}
        unkeyed = partitioner.partition(topic, None, count)
        place = partitioner.partition
        if pairs:
            placed = [unkeyed if key is None else place(topic, key, count) for key in keys]
            used_sticky = None in keys
        else:
            placed = []
            used_sticky = False
            for record in records:
                key = record[0]
                explicit = record[3] if len(record) > 2 else None
                if explicit is not None:
                    placed.append(explicit)
                elif key is None:
                    placed.append(unkeyed)
                    used_sticky = True
                else:
                    placed.append(place(topic, key, count))
        groups: defaultdict[int, list[Pair]] = defaultdict(list)
        for partition, record in zip(placed, records, strict=True):
            groups[partition].append(record)
        if used_sticky:
            partitioner.batch_completed(topic, unkeyed, count)
        return dict(sorted(groups.items()))

    # -- send: one record, batched with concurrent sends --------------------------------

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        """Send one record and wait until the broker acknowledged its batch.

        ``key`` and ``value`` must be bytes (or ``None``): checked here, so one bad record
        cannot fail the other records sharing its batch.
        """
        for name, field in (("value", value), ("key", key)):
            if field is not None and not isinstance(field, bytes):
                raise TypeError(f"{name} must be bytes or None, not {type(field).__name__}")
        count = await self._prepare(topic)
        if partition is None:
            partition = self._partitioner.partition(topic, key, count)
        timestamp = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
        slot = (topic, partition)
        batch = self._open.get(slot)
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = _Open(loop.create_future())
            self._open[slot] = batch
            if self._linger_s:
                batch.handle = loop.call_later(self._linger_s, self._drain, slot)
            else:
                batch.handle = loop.call_soon(self._drain, slot)
        index = len(batch.records)
        batch.records.append(ProducerRecord(key, value, headers, partition, timestamp))
        future = batch.future
        if index + 1 >= self._max_records or self._closed:
            self._drain(slot)
        pieces = await asyncio.shield(future)
        for size, base_offset in pieces:
            if index < size:
                return RecordMetadata(topic, partition, base_offset + index, timestamp)
            index -= size
        raise AssertionError("a sent record is missing from its acknowledged batch")

    def _drain(self, slot: tuple[str, int]) -> None:
        """Close the open batch of ``slot``: encode, append now, acknowledge in a task."""
        batch = self._open.pop(slot, None)
        if batch is None:
            return
        if batch.handle is not None:
            batch.handle.cancel()
        topic, partition = slot
        try:
            count = self._broker.partition_count(topic)
            self._partitioner.batch_completed(topic, partition, count)
            encoded = self._encode(topic, partition, batch.records, 0, False)
            appended = self._append(topic, partition, encoded)
        except Exception as exc:
            batch.future.set_exception(exc)
            return
        pieces = [
            (size, result.base_offset)
            for (result, _), (_, size) in zip(appended, encoded, strict=True)
        ]
        waits = [durable for _, durable in appended if durable is not None]
        if not waits:
            batch.future.set_result(pieces)
            return
        task = asyncio.get_running_loop().create_task(self._settle(batch.future, pieces, waits))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _settle(
        self,
        future: asyncio.Future[list[tuple[int, int]]],
        pieces: list[tuple[int, int]],
        waits: list[asyncio.Future[None]],
    ) -> None:
        try:
            await self._acknowledged(waits)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(pieces)

    # -- lifecycle ----------------------------------------------------------------------

    async def flush(self) -> None:
        """Send every open batch now and wait until all in-flight batches are acknowledged."""
        for slot in list(self._open):
            self._drain(slot)
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def close(self) -> None:
        """Refuse new sends, flush what is open. Idempotent; the broker stays open.

        A send that was already past its first await when ``close`` was called still
        completes, without lingering.
        """
        if self._closed:
            return
        self._closed = True
        await self.flush()
