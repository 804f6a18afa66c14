"""Idempotent producers: durable producer ids and per-partition sequence checks.

Kafka's idempotence contract: a producer gets a producer id (and epoch) once, then numbers
each partition's records ``0, 1, 2, ...``; every batch carries its first sequence. The
partition keeps, per producer, the sequence ranges and offsets of its last five batches:

- a batch whose range equals a remembered one is a retry of an appended batch: it is not
  appended again and is answered with the original offsets;
- a batch must otherwise start right after the last remembered sequence (wrapping after
  ``2**31 - 1``), else :class:`~eventyard.errors.OutOfOrderSequenceError`;
- an epoch older than the remembered one is a fenced ("zombie") producer:
  :class:`~eventyard.errors.InvalidProducerEpochError`; a newer epoch starts again at 0.

A producer the partition does not know (never seen, or its batches are older than the tail
scanned at open) is accepted at any sequence, as a Kafka broker accepts a producer whose
state was removed by retention: refusing it would wedge a live producer forever.

After a restart the state is rebuilt from the batch headers of the tail of each log
(:meth:`ProducerStateTable.load`), so a retry that races a crash is still recognized.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Final, NamedTuple

import msgspec

from eventyard.broker.metafile import read_json, write_atomically
from eventyard.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from eventyard.records import BatchHeader
from eventyard.storage import FileSystem

__all__ = [
    "ID_BLOCK_SIZE",
    "REMEMBERED_BATCHES",
    "BatchAppend",
    "ProducerIdAllocator",
    "ProducerStateTable",
]

REMEMBERED_BATCHES: Final = 5
"""Kafka's ``max.in.flight.requests.per.connection`` bound for idempotence."""
_SEQUENCE_WRAP: Final = 1 << 31
ID_BLOCK_SIZE: Final = 1000
"""Producer ids are reserved durably in blocks, as Kafka's ProducerIdManager does."""


class BatchAppend(NamedTuple):
    """One appended batch as the sequence check remembers it."""

    first_sequence: int
    last_sequence: int
    base_offset: int
    last_offset: int


class _ProducerEntry:
    __slots__ = ("batches", "epoch", "last_timestamp")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches: deque[BatchAppend] = deque(maxlen=REMEMBERED_BATCHES)
        self.last_timestamp = 0


def _last_sequence(header: BatchHeader) -> int:
    """Return the sequence of the batch's last record (Kafka wraps it at ``2**31``)."""
    return (header.base_sequence + header.last_offset_delta) % _SEQUENCE_WRAP


class ProducerStateTable:
    """The idempotence state of one partition; owned by that partition alone."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, _ProducerEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def check(
        self, header: BatchHeader, pending: dict[int, tuple[int, int]] | None = None
    ) -> BatchAppend | None:
        """Validate ``header``'s sequence; return the original append if it is a duplicate.

        Returns ``None`` when the batch must be appended (including non-idempotent batches).
        ``pending`` maps producer id -> (epoch, last sequence) of batches of the same produce
        request already checked but not yet recorded, so a multi-batch payload is checked as
        a whole before anything is appended; this method updates it for appendable batches.
        """
        producer_id = header.producer_id
        if producer_id < 0:
            return None
        epoch = header.producer_epoch
        first = header.base_sequence
        last = _last_sequence(header)
        entry = self._entries.get(producer_id)
        if pending is not None and producer_id in pending:
            known_epoch, known_last = pending[producer_id]
            self._check_next(producer_id, epoch, first, known_epoch, known_last)
        elif entry is not None:
            if epoch < entry.epoch:
                raise InvalidProducerEpochError(
                    f"producer {producer_id} epoch {epoch} is older than the current "
                    f"epoch {entry.epoch}: the producer was fenced"
                )
            if epoch == entry.epoch:
                for batch in entry.batches:
                    if batch.first_sequence == first and batch.last_sequence == last:
                        return batch
            if entry.batches:
                self._check_next(
                    producer_id, epoch, first, entry.epoch, entry.batches[-1].last_sequence
                )
        if pending is not None:
            pending[producer_id] = (epoch, last)
        return None

    @staticmethod
    def _check_next(
        producer_id: int, epoch: int, first: int, known_epoch: int, known_last: int
    ) -> None:
        if epoch > known_epoch:
            if first != 0:
                raise OutOfOrderSequenceError(
                    f"producer {producer_id} started epoch {epoch} at sequence {first}, not 0"
                )
            return
        if epoch < known_epoch:
            raise InvalidProducerEpochError(
                f"producer {producer_id} epoch {epoch} is older than the current "
                f"epoch {known_epoch}: the producer was fenced"
            )
        expected = (known_last + 1) % _SEQUENCE_WRAP
        if first != expected:
            raise OutOfOrderSequenceError(
                f"producer {producer_id} sent sequence {first}, expected {expected}"
            )

    def record(self, header: BatchHeader, base_offset: int, last_offset: int) -> None:
        """Remember an appended batch of an idempotent producer (others are ignored)."""
        producer_id = header.producer_id
        if producer_id < 0:
            return
        entry = self._entries.get(producer_id)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = _ProducerEntry(header.producer_epoch)
            self._entries[producer_id] = entry
        entry.batches.append(
            BatchAppend(header.base_sequence, _last_sequence(header), base_offset, last_offset)
        )
        entry.last_timestamp = max(entry.last_timestamp, header.max_timestamp)

    def load(self, headers: Iterable[BatchHeader]) -> None:
        """Rebuild the state from stored batch headers, oldest first (at open)."""
        for header in headers:
            if header.producer_id >= 0 and not header.is_control:
                self.record(header, header.base_offset, header.last_offset)

    def expire(self, before_ms: int) -> int:
        """Forget producers whose newest batch is timestamped before ``before_ms``.

        Kafka's ``producer.id.expiration.ms``: without it every producer that ever wrote
        would stay in memory. A forgotten producer that writes again is accepted at any
        sequence (see the module docstring). Returns how many were forgotten.
        """
        stale = [pid for pid, e in self._entries.items() if e.last_timestamp < before_ms]
        for producer_id in stale:
            del self._entries[producer_id]
        return len(stale)


class _IdState(msgspec.Struct):
    next_block: int


class ProducerIdAllocator:
    """Hands out durable, increasing producer ids (epoch 0), thread-safe.

    Ids are reserved in blocks of :data:`ID_BLOCK_SIZE`: the end of the current block is
    written atomically to ``path`` before any id of it is handed out, so after a crash the
    next broker starts at a fresh block and never reuses an id (unused ids of a block are
    skipped, as in Kafka). :meth:`allocate` may write and fsync: call it off the event loop.
    """

    __slots__ = ("_fs", "_lock", "_next", "_path", "_reserved")

    def __init__(self, path: Path, fs: FileSystem) -> None:
        self._path = path
        self._fs = fs
        self._lock = threading.Lock()
        state = read_json(fs, path, _IdState)
        start = 0 if state is None else state.next_block
        self._next = start
        self._reserved = start

    def allocate(self) -> tuple[int, int]:
        """Return a new ``(producer_id, epoch)``."""
        with self._lock:
            if self._next >= self._reserved:
                reserved = self._next + ID_BLOCK_SIZE
                write_atomically(
                    self._fs, self._path, msgspec.json.encode(_IdState(next_block=reserved))
                )
                self._reserved = reserved
            producer_id = self._next
            self._next += 1
            return producer_id, 0
