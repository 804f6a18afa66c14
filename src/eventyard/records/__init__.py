"""eventyard.records: the Kafka record batch v2 codec (sans-io, no asyncio).

The on-disk and on-wire format of every event: the broker stores producers' batches
verbatim (patching only the base offset) and serves them back byte for byte, so this
package is the only place records are encoded or decoded.

- :class:`BatchBuilder` / :func:`encode_batch` write batches;
- :func:`read_header`, :func:`check_crc`, :func:`split_batches`, :func:`set_base_offset`
  work on stored bytes without decoding records;
- :func:`decode_batch` / :func:`decode_batches` return :class:`Record` values.

Every malformed input raises :class:`eventyard.errors.CorruptRecordError`.
"""

from eventyard.records.builder import BatchBuilder, encode_batch
from eventyard.records.compression import Compression
from eventyard.records.decoder import decode_batch, decode_batches
from eventyard.records.header import (
    HEADER_SIZE,
    BatchHeader,
    TimestampType,
    check_crc,
    read_header,
    set_base_offset,
    split_batches,
)
from eventyard.records.record import Header, Record

__all__ = [
    "HEADER_SIZE",
    "BatchBuilder",
    "BatchHeader",
    "Compression",
    "Header",
    "Record",
    "TimestampType",
    "check_crc",
    "decode_batch",
    "decode_batches",
    "encode_batch",
    "read_header",
    "set_base_offset",
    "split_batches",
]
