"""Zigzag variable-length integers, as Kafka's records encode lengths, deltas and counts.

A zigzag varint maps a signed integer to an unsigned one (0, -1, 1, -2 ... become 0, 1, 2,
3 ...) so small magnitudes of either sign stay short, then writes 7 bits per byte, least
significant group first, with the high bit set on every byte but the last. Kafka's
``varint`` holds an int32 (at most 5 bytes) and ``varlong`` an int64 (at most 10 bytes).

The hot paths of the builder and decoder inline the one-byte case; these functions are the
general case, plus :data:`SMALL`, a table of the encodings of 0 to ``SMALL_LIMIT - 1`` so the
builder writes a typical length, delta or count with one list lookup.
"""

from __future__ import annotations

from eventyard.errors import CorruptRecordError

__all__ = ["SMALL", "SMALL_LIMIT", "ZIGZAG", "decode_varint", "encode_varint", "varint_size"]

_MAX_BYTES = 10
"""A varlong needs at most 10 bytes (64 bits in 7-bit groups)."""

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _encode(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{value} does not fit a varlong (int64)")
    unsigned = value << 1 if value >= 0 else ((-value) << 1) - 1
    out = bytearray()
    while unsigned > 0x7F:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)
    return bytes(out)


SMALL_LIMIT = 1 << 14
"""Values below this have a precomputed encoding in :data:`SMALL` (up to 3 bytes each)."""

SMALL: list[bytes] = [_encode(value) for value in range(SMALL_LIMIT)]
"""``SMALL[n]`` is the zigzag varint encoding of ``n`` for ``0 <= n < SMALL_LIMIT``."""


ZIGZAG: list[int] = [(unsigned >> 1) ^ -(unsigned & 1) for unsigned in range(SMALL_LIMIT)]
"""``ZIGZAG[u]`` is the signed value of the unsigned varint payload ``u < SMALL_LIMIT``.

Decoders index it with a one-byte varint's byte, or with ``b0 - 0x80 + (b1 << 7)`` for a
two-byte one, which costs one lookup instead of the shift, mask and xor of zigzag.
"""


def encode_varint(value: int) -> bytes:
    """Return the zigzag varint encoding of ``value`` (any int64).

    Raises :class:`ValueError` when ``value`` lies outside the int64 range: that is a
    caller's mistake, not corrupt input.
    """
    if 0 <= value < SMALL_LIMIT:
        return SMALL[value]
    return _encode(value)


def varint_size(value: int) -> int:
    """Return the number of bytes :func:`encode_varint` writes for ``value``."""
    return len(encode_varint(value))


def decode_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode the zigzag varint at ``buf[pos]``; return ``(value, position after it)``.

    Raises :class:`CorruptRecordError` when the buffer ends inside the varint or the
    varint runs longer than the 10 bytes of a varlong.
    """
    end = len(buf)
    unsigned = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise CorruptRecordError(f"varint at byte {start} runs past the end of the buffer")
        byte = buf[pos]
        pos += 1
        unsigned |= (byte & 0x7F) << shift
        if byte < 0x80:
            if unsigned >> 64:
                raise CorruptRecordError(f"varint at byte {start} does not fit 64 bits")
            return (unsigned >> 1) ^ -(unsigned & 1), pos
        shift += 7
        if shift >= 7 * _MAX_BYTES:
            raise CorruptRecordError(f"varint at byte {start} is longer than {_MAX_BYTES} bytes")
