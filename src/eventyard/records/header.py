"""The 61-byte header of a Kafka record batch v2, and the checks a stored batch must pass.

Layout (big-endian), with each field's byte position::

     0 baseOffset int64          27 baseTimestamp int64
     8 batchLength int32         35 maxTimestamp int64
    12 partitionLeaderEpoch int32 43 producerId int64
    16 magic int8 (= 2)          51 producerEpoch int16
    17 crc uint32                53 baseSequence int32
    21 attributes int16          57 records count int32
    23 lastOffsetDelta int32     61 records...

``batchLength`` counts the bytes after itself, so a batch occupies ``batchLength + 12``
bytes. The CRC-32C covers ``attributes`` to the end of the batch: neither the base offset
nor the leader epoch is inside it, which is why the broker may patch the base offset
(:func:`set_base_offset`) and serve the stored bytes unchanged ever after.

Attributes: bits 0-2 compression, bit 3 timestamp type, bit 4 transactional, bit 5 control.
"""

from __future__ import annotations

import enum
import struct

import crc32c
import msgspec

from eventyard.errors import CorruptRecordError
from eventyard.records.compression import Compression

__all__ = [
    "CONTROL_FLAG",
    "CRC_START",
    "HEADER_SIZE",
    "HEADER_STRUCT",
    "LENGTH_OVERHEAD",
    "MAGIC",
    "TIMESTAMP_TYPE_FLAG",
    "TRANSACTIONAL_FLAG",
    "BatchHeader",
    "TimestampType",
    "check_crc",
    "read_header",
    "set_base_offset",
    "split_batches",
]

HEADER_STRUCT = struct.Struct(">qiibIhiqqqhii")
"""The header's fields in order; see the module docstring for the layout."""

HEADER_SIZE = HEADER_STRUCT.size
"""61: bytes before the first record."""

LENGTH_OVERHEAD = 12
"""Bytes of a batch not counted by ``batchLength``: the base offset and the length itself."""

CRC_START = 21
"""Position of ``attributes`` in a batch: the CRC-32C covers from here to the end."""

MAGIC = 2
"""The magic byte of record batch v2, the only format eventyard reads or writes."""

TIMESTAMP_TYPE_FLAG = 0x08
TRANSACTIONAL_FLAG = 0x10
CONTROL_FLAG = 0x20

_MIN_BATCH_LENGTH = HEADER_SIZE - LENGTH_OVERHEAD
_MAGIC_POS = 16
_INT64 = struct.Struct(">q")


class TimestampType(enum.IntEnum):
    """Bit 3 of the attributes: who set the records' timestamps."""

    CREATE_TIME = 0
    """The producer set each record's timestamp."""

    LOG_APPEND_TIME = 1
    """The broker stamped the batch; every record's timestamp is ``max_timestamp``."""


class BatchHeader(msgspec.Struct, frozen=True, gc=False):
    """The decoded header of one batch, field for field (immutable)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def compression(self) -> Compression:
        """The codec of the records block (bits 0-2)."""
        return Compression(self.attributes & 0x07)

    @property
    def timestamp_type(self) -> TimestampType:
        """Create time or log-append time (bit 3)."""
        return TimestampType((self.attributes & TIMESTAMP_TYPE_FLAG) >> 3)

    @property
    def is_transactional(self) -> bool:
        """Whether a transactional producer wrote the batch (bit 4)."""
        return bool(self.attributes & TRANSACTIONAL_FLAG)

    @property
    def is_control(self) -> bool:
        """Whether the batch holds control records (commit/abort markers), not data (bit 5)."""
        return bool(self.attributes & CONTROL_FLAG)

    @property
    def last_offset(self) -> int:
        """The offset of the batch's last record: ``base_offset + last_offset_delta``."""
        return self.base_offset + self.last_offset_delta

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies: ``batch_length + 12``."""
        return self.batch_length + LENGTH_OVERHEAD


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the header of the batch at ``buf[pos]``.

    Checks that the 61 header bytes lie inside ``buf``, that the magic byte is 2, that
    ``batchLength`` covers at least the header, that the record count is not negative and
    that the compression codec is known. It does not check that the rest of the batch lies
    inside ``buf`` nor its CRC: :func:`check_crc` does, so a caller may read a header alone.
    Raises :class:`CorruptRecordError` naming the failed check and the position.
    """
    if pos < 0 or pos + HEADER_SIZE > len(buf):
        raise CorruptRecordError(
            f"batch header at byte {pos} needs {HEADER_SIZE} bytes,"
            f" the buffer has {max(len(buf) - pos, 0)}"
        )
    header = BatchHeader(*HEADER_STRUCT.unpack_from(buf, pos))
    if header.magic != MAGIC:
        raise CorruptRecordError(
            f"batch at byte {pos} has magic {header.magic}, only record batch v2 (magic 2)"
            " is supported"
        )
    if header.batch_length < _MIN_BATCH_LENGTH:
        raise CorruptRecordError(
            f"batch at byte {pos} has length {header.batch_length},"
            f" less than its own {_MIN_BATCH_LENGTH}-byte header"
        )
    if header.record_count < 0:
        raise CorruptRecordError(
            f"batch at byte {pos} has a negative record count {header.record_count}"
        )
    if header.attributes & 0x07 > Compression.ZSTD:
        raise CorruptRecordError(
            f"batch at byte {pos} names unknown compression codec {header.attributes & 0x07}"
        )
    return header


def check_crc(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader) -> None:
    """Check that the batch at ``buf[pos]`` lies inside ``buf`` and matches its CRC-32C.

    ``header`` is the batch's header as :func:`read_header` returned it. Raises
    :class:`CorruptRecordError` when the batch is cut short or its CRC does not match.
    """
    end = pos + header.batch_length + LENGTH_OVERHEAD
    if pos < 0 or end > len(buf):
        raise CorruptRecordError(
            f"batch at byte {pos} (offset {header.base_offset}) needs {end - pos} bytes,"
            f" the buffer has {len(buf) - pos}"
        )
    actual = crc32c.crc32c(memoryview(buf)[pos + CRC_START : end])
    if actual != header.crc:
        raise CorruptRecordError(
            f"batch at byte {pos} (offset {header.base_offset}) fails its CRC-32C check:"
            f" stored {header.crc:#010x}, computed {actual:#010x}"
        )


def split_batches(buf: bytes | bytearray | memoryview) -> list[tuple[int, BatchHeader]]:
    """Validate a concatenation of whole batches; return each one's position and header.

    Every batch must pass :func:`read_header` and :func:`check_crc`, and the last one must
    end exactly at the end of ``buf``; otherwise :class:`CorruptRecordError` names the
    first failing batch. An empty buffer holds no batches.
    """
    out: list[tuple[int, BatchHeader]] = []
    pos = 0
    end = len(buf)
    while pos < end:
        header = read_header(buf, pos)
        check_crc(buf, pos, header)
        out.append((pos, header))
        pos += header.batch_length + LENGTH_OVERHEAD
    return out


def set_base_offset(buf: bytearray | memoryview, pos: int, offset: int) -> None:
    """Write ``offset`` as the base offset of the batch at ``buf[pos]``, in place.

    The base offset lies outside the CRC range, so the batch stays valid. ``buf`` must be
    writable (a ``bytearray`` or a writable ``memoryview``); raises :class:`ValueError`
    when the 8 bytes at ``pos`` are outside it.
    """
    if pos < 0 or pos + 8 > len(buf):
        raise ValueError(f"no batch base offset at byte {pos} of a {len(buf)}-byte buffer")
    _INT64.pack_into(buf, pos, offset)
