"""Kafka's old message sets (magic 0 and 1) to and from record batches v2, for the old APIs.

The broker stores record batches v2 only (``eventyard.records``). Produce v0-2 carries a
*message set* instead, and Fetch v0-3 must answer one, so this module converts both ways,
the way a Kafka broker up- and down-converts. kafka-python's ``kafka.record.legacy_records``
reads and writes the message sets (framing, CRC-32, compressed wrapper messages); eventyard's
``records`` writes and reads the batches. Sans-io and synchronous, like both libraries.

Up-conversion (:func:`to_batch`): every message of the set, in order, becomes one record of
one batch, with the same key and value. A magic 1 message keeps its timestamp; a magic 0
message (which has none), or a magic 1 message whose timestamp is -1, gets ``append_time_ms``.
Compressed wrapper messages (gzip, snappy, lz4) are opened and their inner messages taken in
order; the batch is compressed with the first wrapper's codec (Kafka keeps the producer's
codec), or not at all. The producer fields are -1: old producers are not idempotent.

Down-conversion (:func:`to_message_set`): the records of stored batches, from a first offset,
become uncompressed messages of one magic with their absolute offsets; headers are dropped
(message sets have none), as Kafka drops them.

Every malformed message set raises :class:`~eventyard.errors.CorruptRecordError`: a CRC-32
mismatch (outer or inner message), a message cut short, a batch of magic 2 in a message set,
bytes that do not decompress, or an empty set.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

from eventyard.errors import CorruptRecordError
from eventyard.records import BatchBuilder, Compression, decode_batches

with warnings.catch_warnings():
    # kafka-python's package import reads its JSON schemas with a call deprecated in 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.record.legacy_records import (  # type: ignore[import-untyped]
        LegacyRecordBatch,
        LegacyRecordBatchBuilder,
    )
    from kafka.record.memory_records import MemoryRecords  # type: ignore[import-untyped]

__all__ = ["to_batch", "to_message_set"]

_NO_TIMESTAMP = -1
_UNLIMITED = (1 << 31) - 1
_Message = tuple[int, bytes | None, bytes | None]
"""``(timestamp_ms, key, value)`` of one message, in set order."""


def to_batch(message_set: bytes, *, append_time_ms: int) -> bytes:
    """One record batch v2 (base offset 0) with every message of ``message_set`` in order.

    Raises :class:`CorruptRecordError` when the set is malformed (module docstring).
    """
    try:
        codec, messages = _read(message_set, append_time_ms)
    except CorruptRecordError:
        raise
    except Exception as exc:  # kafka-python raises assorted types on bad bytes
        raise CorruptRecordError(f"a message set that does not decode: {exc!r}") from exc
    if not messages:
        raise CorruptRecordError("an empty message set")
    builder = BatchBuilder(compression=codec)
    for timestamp, key, value in messages:
        builder.append(value, key=key, timestamp_ms=timestamp)
    return builder.build()


def _read(message_set: bytes, append_time_ms: int) -> tuple[Compression, list[_Message]]:
    """The batch codec and the messages of ``message_set``; raises on any damage."""
    sets = MemoryRecords(message_set)
    codec = Compression.NONE
    messages: list[_Message] = []
    for wrapper in sets:
        if not isinstance(wrapper, LegacyRecordBatch):
            raise CorruptRecordError("a record batch of magic 2 in a message set of magic 0/1")
        if not wrapper.validate_crc():
            raise CorruptRecordError(f"CRC-32 mismatch in the message at {wrapper.base_offset}")
        if wrapper.compression_type and codec == Compression.NONE:
            codec = Compression(wrapper.compression_type)
        messages.extend(_messages(wrapper, append_time_ms))
    if sets.valid_bytes() != len(message_set):
        raise CorruptRecordError(
            f"a message cut short at byte {sets.valid_bytes()} of a {len(message_set)}-byte set"
        )
    return codec, messages


def _messages(wrapper: LegacyRecordBatch, append_time_ms: int) -> Iterator[_Message]:
    """The messages of one outer message: itself, or the inner messages it compresses."""
    for message in wrapper:
        if wrapper.compression_type and not message.validate_crc():
            raise CorruptRecordError(f"CRC-32 mismatch in the inner message {message.offset}")
        timestamp = message.timestamp
        if timestamp is None or timestamp == _NO_TIMESTAMP:
            timestamp = append_time_ms
        yield timestamp, message.key, message.value


def to_message_set(
    batches: bytes, *, magic: int, first_offset: int, max_bytes: int, at_least_one: bool
) -> bytes:
    """The records of ``batches`` from ``first_offset`` as one message set of ``magic``.

    Whole messages only, at most ``max_bytes`` of them, except that the first one is always
    there when ``at_least_one`` (so a message larger than a fetch's limit still makes
    progress). Stored data that does not decode raises :class:`CorruptRecordError`.
    """
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=0, batch_size=_UNLIMITED)
    for record in decode_batches(batches):
        if record.offset < first_offset:
            continue
        size = builder.size_in_bytes(record.offset, record.timestamp, record.key, record.value)
        if builder.size() + size > max_bytes and (builder.size() or not at_least_one):
            break
        builder.append(record.offset, record.timestamp, record.key, record.value)
    return bytes(builder.build())
