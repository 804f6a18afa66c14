"""Encoding record batches: :class:`BatchBuilder` for producers, :func:`encode_batch` for
rewriting decoded records (compaction, tests).

Each record is written as Kafka's ``DefaultRecord``::

    length varint | attributes int8 (0) | timestampDelta varlong | offsetDelta varint |
    key length varint (-1: null) | key | value length varint (-1: null) | value |
    header count varint | [key length varint | key utf-8 | value length varint | value]*

Deltas are against the batch's ``baseTimestamp`` (the first record's timestamp, as the Java
client writes it) and base offset. The records block is compressed as a whole when asked,
the 61-byte header is packed once and one CRC-32C covers attributes to the end.

Speed: a producer appends a few hundred thousand records a second, so :meth:`BatchBuilder.
append` only stores a tuple and :func:`_encode_records` writes every record in one local
loop, looking small varints up in :data:`~eventyard.records.varint.SMALL` instead of
computing them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from time import time_ns as _time_ns

import crc32c

from eventyard.records.compression import Compression, compress
from eventyard.records.header import (
    CONTROL_FLAG,
    CRC_START,
    HEADER_SIZE,
    HEADER_STRUCT,
    LENGTH_OVERHEAD,
    MAGIC,
    TIMESTAMP_TYPE_FLAG,
    TRANSACTIONAL_FLAG,
    TimestampType,
)
from eventyard.records.record import Header, Record
from eventyard.records.varint import SMALL, SMALL_LIMIT, encode_varint

__all__ = ["BatchBuilder", "encode_batch"]

_Entry = tuple[int, bytes | None, bytes | None, Sequence[Header]]
"""One record to encode: ``(timestamp_ms, key, value, headers)``."""

_NO_PARTITION_LEADER_EPOCH = -1
_NULL = b"\x01"
"""The zigzag varint of -1: a null key, value or header value."""
_RECORD_ATTRIBUTES = b"\x00"
"""A record's attributes byte, always 0 in record batch v2."""
_NO_HEADERS = b"\x00"
_INT32_MAX = (1 << 31) - 1
_CRC_FIELD = 4
"""Index of the CRC among the header's fields."""


class BatchBuilder:
    """Collects records for one partition and encodes them as one record batch v2.

    ``append`` keeps the records; ``build`` encodes them (and may be called again, with
    the same or another base offset). The producer fields are written as given: -1 for a
    producer that is not idempotent. Not thread-safe: one builder belongs to one producer
    task.
    """

    __slots__ = (
        "_base_sequence",
        "_compression",
        "_entries",
        "_is_transactional",
        "_producer_epoch",
        "_producer_id",
    )

    def __init__(
        self,
        compression: Compression = Compression.NONE,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        is_transactional: bool = False,
    ) -> None:
        self._compression = Compression(compression)
        self._producer_id = producer_id
        self._producer_epoch = producer_epoch
        self._base_sequence = base_sequence
        self._is_transactional = is_transactional
        self._entries: list[_Entry] = []

    def append(
        self,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        timestamp_ms: int | None = None,
    ) -> None:
        """Add one record; its offset delta is ``len(builder)`` before the call.

        ``value`` ``None`` is a tombstone. ``timestamp_ms`` defaults to the current time.
        Arguments are checked when the batch is built, not here, to keep appends cheap.
        """
        self._entries.append(
            (
                _time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms,
                key,
                value,
                headers,
            )
        )

    def __len__(self) -> int:
        """The number of records appended so far."""
        return len(self._entries)

    def build(self, base_offset: int = 0) -> bytes:
        """Encode the appended records as one batch starting at ``base_offset``.

        Raises :class:`ValueError` when no record was appended (producers never send an
        empty batch) or a field does not fit its Kafka type, and :class:`TypeError` when a
        key, value or header is not bytes (header names: ``str``).
        """
        if not self._entries:
            raise ValueError("cannot build a record batch with no records")
        return _encode(
            range(len(self._entries)),
            self._entries,
            base_offset=base_offset,
            last_offset_delta=len(self._entries) - 1,
            compression=self._compression,
            timestamp_type=TimestampType.CREATE_TIME,
            producer_id=self._producer_id,
            producer_epoch=self._producer_epoch,
            base_sequence=self._base_sequence,
            is_transactional=self._is_transactional,
            is_control=False,
            partition_leader_epoch=_NO_PARTITION_LEADER_EPOCH,
        )


def encode_batch(
    records: Sequence[Record],
    *,
    base_offset: int | None = None,
    last_offset_delta: int | None = None,
    compression: Compression = Compression.NONE,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = _NO_PARTITION_LEADER_EPOCH,
    max_timestamp: int | None = None,
) -> bytes:
    """Encode decoded records, keeping their offsets and timestamps, as one batch.

    ``base_offset`` defaults to the first record's offset; each record's offset delta is its
    offset minus ``base_offset`` (gaps are allowed, as compaction leaves them).
    ``last_offset_delta`` defaults to the last record's delta; compaction passes the
    original batch's so the batch keeps covering the offsets it covered. ``max_timestamp``
    defaults to the records' largest timestamp (-1 without records); compaction passes the
    original batch's, as Kafka's cleaner does, so time indexes and time-based retention see
    an emptied or thinned batch as they saw the original (an empty batch then carries it
    as its base timestamp too). Records must be in offset order. Raises
    :class:`ValueError` for an empty ``records`` without both offsets given, out-of-order
    offsets or fields that do not fit their Kafka types.
    """
    if not records and (base_offset is None or last_offset_delta is None):
        raise ValueError("an empty batch needs base_offset and last_offset_delta")
    base = records[0].offset if base_offset is None else base_offset
    deltas = [record.offset - base for record in records]
    previous = -1
    for delta in deltas:
        if delta <= previous:
            raise ValueError(f"record offsets must increase from base offset {base}")
        previous = delta
    last = previous if last_offset_delta is None else last_offset_delta
    if last < previous:
        raise ValueError(f"last_offset_delta {last} is below the last record's delta {previous}")
    return _encode(
        deltas,
        [(r.timestamp, r.key, r.value, r.headers) for r in records],
        base_offset=base,
        last_offset_delta=last,
        compression=Compression(compression),
        timestamp_type=timestamp_type,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        is_transactional=is_transactional,
        is_control=is_control,
        partition_leader_epoch=partition_leader_epoch,
        max_timestamp=max_timestamp,
    )


def _encode(
    deltas: Sequence[int],
    entries: Sequence[_Entry],
    *,
    base_offset: int,
    last_offset_delta: int,
    compression: Compression,
    timestamp_type: TimestampType,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    is_transactional: bool,
    is_control: bool,
    partition_leader_epoch: int,
    max_timestamp: int | None = None,
) -> bytes:
    """Encode ``entries`` at offset ``deltas`` with the given header fields.

    The single path of every batch, from :class:`BatchBuilder` and :func:`encode_batch`.
    ``max_timestamp`` defaults to the entries' largest timestamp.
    """
    if entries:
        timestamps = [entry[0] for entry in entries]
        base_timestamp = timestamps[0]
        if max_timestamp is None:
            max_timestamp = max(timestamps)
    else:
        base_timestamp = max_timestamp = -1 if max_timestamp is None else max_timestamp
    attributes = int(compression)
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_FLAG
    if is_transactional:
        attributes |= TRANSACTIONAL_FLAG
    if is_control:
        attributes |= CONTROL_FLAG

    block = _encode_records(deltas, entries, base_timestamp)
    if compression != Compression.NONE:
        block = compress(compression, block)
    length = HEADER_SIZE - LENGTH_OVERHEAD + len(block)
    if length > _INT32_MAX:
        raise ValueError(f"a record batch of {length} bytes exceeds Kafka's int32 length")
    fields = [
        base_offset,
        length,
        partition_leader_epoch,
        MAGIC,
        0,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(entries),
    ]
    try:
        header = HEADER_STRUCT.pack(*fields)
    except struct.error as exc:
        raise ValueError(f"a batch header field does not fit its Kafka type: {exc}") from exc
    # The CRC covers the header from the attributes on, then the records block: computed
    # incrementally, so the block is copied once, into the returned batch.
    fields[_CRC_FIELD] = crc32c.crc32c(block, crc32c.crc32c(header[CRC_START:]))
    return HEADER_STRUCT.pack(*fields) + block


def _encode_records(deltas: Iterable[int], entries: Iterable[_Entry], base_timestamp: int) -> bytes:
    """Return the records block of ``entries``; timestamps relative to ``base_timestamp``.

    Each record is a handful of small byte strings (most varints come from the
    :data:`SMALL` table, and the record length is summed from the parts rather than
    measured on a joined body); one ``join`` at the end copies every byte once.
    """
    small = SMALL
    limit = SMALL_LIMIT
    null = _NULL
    attributes = _RECORD_ATTRIBUTES
    parts: list[bytes] = []
    extend = parts.extend
    for offset_delta, (timestamp, key, value, headers) in zip(deltas, entries, strict=True):
        delta = timestamp - base_timestamp
        delta_part = small[delta] if 0 <= delta < limit else encode_varint(delta)
        offset_part = small[offset_delta] if offset_delta < limit else encode_varint(offset_delta)
        if key is None:
            key_part = null
        else:
            size = len(key)
            key_part = (small[size] if size < limit else encode_varint(size)) + key
        if value is None:
            value_size = null
            value = b""
        else:
            size = len(value)
            value_size = small[size] if size < limit else encode_varint(size)
        header_part = _encode_headers(headers) if headers else _NO_HEADERS
        size = (
            1
            + len(delta_part)
            + len(offset_part)
            + len(key_part)
            + len(value_size)
            + len(value)
            + len(header_part)
        )
        extend(
            (
                small[size] if size < limit else encode_varint(size),
                attributes,
                delta_part,
                offset_part,
                key_part,
                value_size,
                value,
                header_part,
            )
        )
    return b"".join(parts)


_NAME_CACHE: dict[str, bytes] = {}
"""Encoded header names (length varint + UTF-8) by name: a record set repeats the same few
names (``ce_id``, ``ce_type`` ...) on every record. Bounded by :data:`_NAME_CACHE_LIMIT`;
names past the bound are encoded each time."""
_NAME_CACHE_LIMIT = 4096


def _encode_headers(headers: Sequence[Header]) -> bytes:
    """Encode a record's header count and headers (values may be null).

    CloudEvents' binary mode puts half a dozen ``ce_*`` headers on every record, so names
    come from :data:`_NAME_CACHE` and short lengths from the :data:`SMALL` table.
    """
    small = SMALL
    limit = SMALL_LIMIT
    names = _NAME_CACHE
    count = len(headers)
    parts = [small[count] if count < limit else encode_varint(count)]
    append = parts.append
    for name, value in headers:
        encoded = names.get(name)
        if encoded is None:
            encoded = _encode_name(name)
        append(encoded)
        if value is None:
            append(_NULL)
        else:
            size = len(value)
            append(small[size] if size < limit else encode_varint(size))
            append(value)
    return b"".join(parts)


def _encode_name(name: str) -> bytes:
    """Encode a header name as its length varint and UTF-8 bytes; remember it if room."""
    if not isinstance(name, str):
        raise TypeError(f"a header name must be str, not {type(name).__name__}")
    raw = name.encode()
    encoded = encode_varint(len(raw)) + raw
    if len(_NAME_CACHE) < _NAME_CACHE_LIMIT:
        _NAME_CACHE[name] = encoded
    return encoded
