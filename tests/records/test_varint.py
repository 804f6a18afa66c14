"""Zigzag varints: round trips over the int64 range, known encodings, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.errors import CorruptRecordError
from eventyard.records.varint import (
    SMALL,
    SMALL_LIMIT,
    ZIGZAG,
    decode_varint,
    encode_varint,
    varint_size,
)

INT64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (-1, b"\x01"),
        (1, b"\x02"),
        (-2, b"\x03"),
        (63, b"\x7e"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
        (200, b"\x90\x03"),
        (-(1 << 63), b"\xff" * 9 + b"\x01"),
        ((1 << 63) - 1, b"\xfe" + b"\xff" * 8 + b"\x01"),
    ],
)
def test_known_encodings(value: int, encoded: bytes) -> None:
    # The zigzag examples of the protobuf specification, which Kafka follows.
    assert encode_varint(value) == encoded
    assert decode_varint(encoded, 0) == (value, len(encoded))


@given(INT64, st.binary(max_size=4), st.binary(max_size=4))
def test_round_trip_inside_a_buffer(value: int, before: bytes, after: bytes) -> None:
    encoded = encode_varint(value)
    assert varint_size(value) == len(encoded)
    assert decode_varint(before + encoded + after, len(before)) == (
        value,
        len(before) + len(encoded),
    )


def test_small_table_matches_the_general_encoder() -> None:
    assert len(SMALL) == SMALL_LIMIT
    for value in (0, 1, 63, 64, 127, 128, 8191, 8192, SMALL_LIMIT - 1):
        assert SMALL[value] == encode_varint(value)
        assert decode_varint(SMALL[value], 0) == (value, len(SMALL[value]))


def test_zigzag_table_decodes_one_and_two_byte_payloads() -> None:
    for unsigned in (0, 1, 2, 127, 128, 255, 4097, SMALL_LIMIT - 1):
        expected = unsigned >> 1 if unsigned % 2 == 0 else -((unsigned + 1) >> 1)
        assert ZIGZAG[unsigned] == expected
    # A two-byte varint b0 b1 carries (b0 - 0x80) + (b1 << 7): check the table agrees.
    b0, b1 = encode_varint(200)
    assert ZIGZAG[b0 - 0x80 + (b1 << 7)] == 200


@pytest.mark.parametrize("value", [1 << 63, -(1 << 63) - 1])
def test_values_outside_int64_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match="int64"):
        encode_varint(value)


@pytest.mark.parametrize(
    ("buf", "pos"), [(b"", 0), (b"\x80", 0), (b"\xff\xff", 0), (b"\x00\x80", 1), (b"\x00", 1)]
)
def test_truncated_varint_raises(buf: bytes, pos: int) -> None:
    with pytest.raises(CorruptRecordError, match=f"varint at byte {pos} runs past the end"):
        decode_varint(buf, pos)


def test_overlong_varint_raises() -> None:
    with pytest.raises(CorruptRecordError, match="longer than 10 bytes"):
        decode_varint(b"\x80" * 10 + b"\x01", 0)


def test_ten_byte_varint_beyond_64_bits_raises() -> None:
    with pytest.raises(CorruptRecordError, match="does not fit 64 bits"):
        decode_varint(b"\xff" * 9 + b"\x02", 0)
