"""The compression codecs of a record batch, through ``cramjam``'s C implementations.

A batch's attributes carry the codec in bits 0-2; the records that follow the 61-byte header
are compressed as one block. Each codec's wire form is the one Kafka's own clients write and
read, so batches move between eventyard and any Kafka client unchanged:

- ``GZIP``: a gzip member (RFC 1952).
- ``SNAPPY``: the Java client writes xerial's framed stream (a 16-byte header starting with
  ``\\x82SNAPPY\\x00``, then blocks of a big-endian int32 length and raw snappy data);
  librdkafka and others write one raw snappy block. Both are read; xerial frames are written,
  as the Java client does, because every client reads them.
- ``LZ4``: the LZ4 *frame* format with independent blocks (KIP-57: Kafka's readers refuse
  linked blocks) and no content checksum.
- ``ZSTD``: a zstd frame, level 3 (the broker's default) unless told otherwise.

Decompression failures of every codec raise :class:`~eventyard.errors.CorruptRecordError`.
"""

from __future__ import annotations

import enum
import struct

import cramjam

from eventyard.errors import CorruptRecordError

__all__ = ["Compression", "compress", "decompress"]


class Compression(enum.IntEnum):
    """The codec ids of bits 0-2 of a batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


XERIAL_MAGIC = b"\x82SNAPPY\x00"
"""The first eight bytes of a xerial-framed snappy stream."""

_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
"""Uncompressed bytes per xerial block: the size xerial's ``SnappyOutputStream`` uses."""

_INT32 = struct.Struct(">i")


def compress(codec: Compression, data: bytes | bytearray | memoryview) -> bytes:
    """Return ``data`` compressed with ``codec`` in the form Kafka clients expect.

    Levels: gzip 6 (zlib's and the Java client's default), zstd 3 (Kafka's default), lz4
    cramjam's default (fast; Kafka's reader accepts any level). A level changes only size
    and speed, never what a reader accepts.
    """
    if codec == Compression.GZIP:
        return bytes(cramjam.gzip.compress(data, level=6))
    if codec == Compression.SNAPPY:
        return _xerial_encode(memoryview(data))
    if codec == Compression.LZ4:
        compressor = cramjam.lz4.Compressor(content_checksum=False, block_linked=False)
        compressor.compress(bytes(data))
        return bytes(compressor.finish())
    if codec == Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data, level=3))
    if codec == Compression.NONE:
        return bytes(data)
    raise ValueError(f"unknown compression codec {codec!r}")


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """Return the records block ``data`` decompressed with the codec id ``codec``.

    Raises :class:`CorruptRecordError` when the codec id is unknown or ``data`` is not a
    valid stream of that codec.
    """
    try:
        if codec == Compression.GZIP:
            return bytes(cramjam.gzip.decompress(data))
        if codec == Compression.SNAPPY:
            if bytes(data[:8]) == XERIAL_MAGIC:
                return _xerial_decode(memoryview(data))
            return bytes(cramjam.snappy.decompress_raw(data))
        if codec == Compression.LZ4:
            return bytes(cramjam.lz4.decompress(data))
        if codec == Compression.ZSTD:
            return bytes(cramjam.zstd.decompress(data))
    except cramjam.DecompressionError as exc:
        name = Compression(codec).name.lower()
        raise CorruptRecordError(f"{name} records block does not decompress: {exc}") from exc
    if codec == Compression.NONE:
        return bytes(data)
    raise CorruptRecordError(f"unknown compression codec id {codec} in batch attributes")


def _xerial_encode(data: memoryview) -> bytes:
    """Frame ``data`` as xerial's ``SnappyOutputStream`` does: header, then sized blocks."""
    out = bytearray(_XERIAL_HEADER)
    compress_raw = cramjam.snappy.compress_raw
    for start in range(0, len(data), _XERIAL_BLOCK):
        block = compress_raw(data[start : start + _XERIAL_BLOCK])
        out += _INT32.pack(len(block))
        out += block
    return bytes(out)


def _xerial_decode(data: memoryview) -> bytes:
    """Decode a xerial-framed snappy stream: a 16-byte header, then sized raw blocks."""
    if len(data) < len(_XERIAL_HEADER):
        raise CorruptRecordError(
            f"xerial snappy stream of {len(data)} bytes is shorter than its 16-byte header"
        )
    out = bytearray()
    decompress_raw = cramjam.snappy.decompress_raw
    pos = len(_XERIAL_HEADER)
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            raise CorruptRecordError(f"xerial snappy block length cut at byte {pos}")
        (size,) = _INT32.unpack_from(data, pos)
        pos += 4
        if size < 0 or pos + size > end:
            raise CorruptRecordError(
                f"xerial snappy block of {size} bytes at byte {pos} overruns the stream"
                f" of {end} bytes"
            )
        out += decompress_raw(data[pos : pos + size])
        pos += size
    return bytes(out)
