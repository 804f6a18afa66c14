"""Batch headers: field decoding, the bounds, magic and CRC checks, and base-offset patching."""

from __future__ import annotations

import struct

import crc32c
import pytest

from eventyard.errors import CorruptRecordError
from eventyard.records import (
    HEADER_SIZE,
    BatchBuilder,
    Compression,
    TimestampType,
    check_crc,
    decode_batch,
    encode_batch,
    read_header,
    set_base_offset,
    split_batches,
)


def make_batch(count: int = 3, base_offset: int = 0, **options: object) -> bytes:
    builder = BatchBuilder(**options)  # type: ignore[arg-type]
    for i in range(count):
        builder.append(b"value-%d" % i, key=b"key", timestamp_ms=1_700_000_000_000 + 5 * i)
    return builder.build(base_offset)


def test_header_fields_match_the_bytes() -> None:
    batch = make_batch(
        3,
        base_offset=42,
        compression=Compression.ZSTD,
        producer_id=7,
        producer_epoch=2,
        base_sequence=11,
        is_transactional=True,
    )
    header = read_header(batch)
    fields = struct.unpack_from(">qiibIhiqqqhii", batch)
    assert fields == (
        42,
        len(batch) - 12,
        -1,
        2,
        crc32c.crc32c(batch[21:]),
        Compression.ZSTD | 0x10,
        2,
        1_700_000_000_000,
        1_700_000_000_010,
        7,
        2,
        11,
        3,
    )
    assert (
        header.base_offset,
        header.batch_length,
        header.partition_leader_epoch,
        header.magic,
        header.crc,
        header.attributes,
        header.last_offset_delta,
        header.base_timestamp,
        header.max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        header.record_count,
    ) == fields
    assert header.compression is Compression.ZSTD
    assert header.timestamp_type is TimestampType.CREATE_TIME
    assert header.is_transactional
    assert not header.is_control
    assert header.last_offset == 44
    assert header.size == len(batch)
    check_crc(batch, 0, header)


def test_control_and_log_append_time_flags() -> None:
    records = decode_batch(make_batch(1))
    batch = encode_batch(records, is_control=True, timestamp_type=TimestampType.LOG_APPEND_TIME)
    header = read_header(batch)
    assert header.is_control
    assert header.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert header.attributes == 0x20 | 0x08


def test_header_is_immutable() -> None:
    header = read_header(make_batch())
    with pytest.raises(AttributeError):
        header.base_offset = 5  # type: ignore[misc]


def test_read_header_at_a_position() -> None:
    first, second = make_batch(2, base_offset=0), make_batch(4, base_offset=2)
    header = read_header(first + second, len(first))
    assert (header.base_offset, header.record_count) == (2, 4)


@pytest.mark.parametrize("cut", [0, 1, 17, HEADER_SIZE - 1])
def test_read_header_refuses_a_truncated_header(cut: int) -> None:
    with pytest.raises(CorruptRecordError, match=f"needs 61 bytes, the buffer has {cut}"):
        read_header(make_batch()[:cut])


def test_read_header_refuses_a_position_outside_the_buffer() -> None:
    batch = make_batch()
    with pytest.raises(CorruptRecordError, match="needs 61 bytes"):
        read_header(batch, len(batch) + 5)
    with pytest.raises(CorruptRecordError, match="needs 61 bytes"):
        read_header(batch, -1)


@pytest.mark.parametrize("magic", [0, 1, 3, 255])
def test_read_header_refuses_other_magic_bytes(magic: int) -> None:
    batch = bytearray(make_batch())
    batch[16] = magic
    with pytest.raises(CorruptRecordError, match=f"magic {struct.unpack('b', bytes([magic]))[0]}"):
        read_header(batch)


@pytest.mark.parametrize("length", [-1, 0, 48])
def test_read_header_refuses_a_length_shorter_than_the_header(length: int) -> None:
    batch = bytearray(make_batch())
    struct.pack_into(">i", batch, 8, length)
    with pytest.raises(CorruptRecordError, match=f"length {length}, less than"):
        read_header(batch)


def test_read_header_refuses_a_negative_record_count() -> None:
    batch = bytearray(make_batch())
    struct.pack_into(">i", batch, 57, -3)
    with pytest.raises(CorruptRecordError, match="negative record count -3"):
        read_header(batch)


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_read_header_refuses_unknown_codecs(codec: int) -> None:
    batch = bytearray(make_batch())
    batch[22] = codec
    with pytest.raises(CorruptRecordError, match=f"unknown compression codec {codec}"):
        read_header(batch)


def test_check_crc_detects_any_flipped_bit_inside_the_crc_range() -> None:
    batch = make_batch()
    header = read_header(batch)
    for pos in range(21, len(batch)):
        damaged = bytearray(batch)
        damaged[pos] ^= 0x10
        with pytest.raises(CorruptRecordError, match="fails its CRC-32C check"):
            check_crc(damaged, 0, header)


def test_check_crc_refuses_a_truncated_batch() -> None:
    batch = make_batch()
    header = read_header(batch)
    with pytest.raises(CorruptRecordError, match=f"needs {len(batch)} bytes, the buffer has"):
        check_crc(batch[:-1], 0, header)


def test_check_crc_refuses_a_negative_position() -> None:
    batch = make_batch()
    with pytest.raises(CorruptRecordError, match="batch at byte -1"):
        check_crc(b"\x00" + batch, -1, read_header(batch))


def test_split_batches_returns_every_position() -> None:
    batches = [make_batch(n, base_offset=10 * n) for n in (1, 5, 2)]
    buf = b"".join(batches)
    split = split_batches(buf)
    assert [pos for pos, _ in split] == [0, len(batches[0]), len(batches[0]) + len(batches[1])]
    assert [h.base_offset for _, h in split] == [10, 50, 20]
    assert split_batches(b"") == []


def test_split_batches_refuses_a_trailing_partial_batch() -> None:
    buf = make_batch() + make_batch()[:70]
    with pytest.raises(CorruptRecordError, match=f"batch at byte {len(make_batch())}"):
        split_batches(buf)


def test_split_batches_refuses_trailing_bytes_too_short_for_a_header() -> None:
    with pytest.raises(CorruptRecordError, match="needs 61 bytes"):
        split_batches(make_batch() + b"\x00" * 10)


def test_split_batches_names_the_damaged_batch() -> None:
    first = make_batch()
    damaged = bytearray(first + first)
    damaged[-1] ^= 1
    with pytest.raises(CorruptRecordError, match=f"batch at byte {len(first)} .*CRC"):
        split_batches(damaged)


def test_set_base_offset_keeps_the_batch_valid() -> None:
    first, second = make_batch(3), make_batch(2)
    buf = bytearray(first + second)
    set_base_offset(buf, len(first), 1 << 40)
    header = read_header(buf, len(first))
    assert header.base_offset == 1 << 40
    check_crc(buf, len(first), header)
    assert [r.offset for r in decode_batch(buf, len(first))] == [1 << 40, (1 << 40) + 1]
    assert read_header(buf).base_offset == 0


def test_set_base_offset_refuses_positions_outside_the_buffer() -> None:
    buf = bytearray(make_batch())
    with pytest.raises(ValueError, match="no batch base offset"):
        set_base_offset(buf, len(buf) - 7, 0)
