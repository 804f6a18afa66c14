"""Decoding: fetch responses (control batches, cut batches, log-append time), every kind of
malformed input, and fuzzing that proves nothing but CorruptRecordError escapes."""

from __future__ import annotations

import contextlib

import crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventyard.errors import CorruptRecordError
from eventyard.records import (
    HEADER_SIZE,
    BatchBuilder,
    Compression,
    Record,
    TimestampType,
    decode_batch,
    decode_batches,
    encode_batch,
    split_batches,
)
from eventyard.records.header import HEADER_STRUCT
from eventyard.records.varint import encode_varint

from .clients import aiokafka_records
from .strategies import COMPRESSIONS, RECORD_ARGS, RecordArgs


def make_batch(
    values: list[bytes], base_offset: int = 0, codec: Compression = Compression.NONE
) -> bytes:
    builder = BatchBuilder(compression=codec)
    for i, value in enumerate(values):
        builder.append(value, key=b"k%d" % i, timestamp_ms=1000 + i)
    return builder.build(base_offset)


def fix_crc(batch: bytearray) -> None:
    """Store the CRC-32C of ``batch`` as its length field delimits it, so damage placed on
    purpose reaches the record parser instead of failing the CRC check."""
    end = 12 + int.from_bytes(batch[8:12], "big", signed=True)
    batch[17:21] = crc32c.crc32c(bytes(batch[21:end])).to_bytes(4, "big")


def raw_record(body: bytes) -> bytes:
    return encode_varint(len(body)) + body


def record_body(
    key: bytes = b"\x01", value: bytes = b"\x04hi", headers: bytes = b"\x00", deltas: bytes = b""
) -> bytes:
    """A record's fields after its length; the defaults: null key, value b"hi", no headers."""
    return b"\x00" + (deltas or b"\x00\x00") + key + value + headers


def raw_batch(block: bytes, count: int, attributes: int = 0) -> bytes:
    """A batch around an arbitrary records block, with a correct header and CRC."""
    buf = bytearray(
        HEADER_STRUCT.pack(
            0,
            HEADER_SIZE - 12 + len(block),
            -1,
            2,
            0,
            attributes,
            max(count - 1, 0),
            1000,
            1000,
            -1,
            -1,
            -1,
            count,
        )
    )
    buf += block
    fix_crc(buf)
    return bytes(buf)


def control_batch(offset: int) -> bytes:
    # A commit marker: key = version 0, type 1 (COMMIT); value = version 0, coordinator epoch.
    marker = Record(offset, 1000, b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x05", ())
    return encode_batch([marker], is_control=True, is_transactional=True, producer_id=4)


def test_raw_batch_helper_builds_what_the_builder_builds() -> None:
    builder = BatchBuilder()
    builder.append(b"hi", timestamp_ms=1000)
    built = bytearray(builder.build())
    built[12:16] = b"\xff\xff\xff\xff"
    assert raw_batch(raw_record(record_body()), 1) == bytes(built)


def test_decode_batches_concatenates_every_batch_in_offset_order() -> None:
    fetch = make_batch([b"a", b"b"], 0) + make_batch([b"c"], 2, Compression.GZIP)
    assert [(r.offset, r.key, r.value, r.timestamp) for r in decode_batches(fetch)] == [
        (0, b"k0", b"a", 1000),
        (1, b"k1", b"b", 1001),
        (2, b"k0", b"c", 1000),
    ]
    assert decode_batches(b"") == []


def test_decode_batches_accepts_bytearray_and_memoryview() -> None:
    batch = make_batch([b"a", b"b"])
    expected = decode_batches(batch)
    for buf in (bytearray(batch), memoryview(batch)):
        records = decode_batches(buf)
        assert records == expected
        assert all(type(r.value) is bytes and type(r.key) is bytes for r in records)


def test_decode_batches_skips_control_batches_and_decode_batch_does_not() -> None:
    fetch = make_batch([b"a"], 0) + control_batch(1) + make_batch([b"b"], 2)
    assert [r.value for r in decode_batches(fetch)] == [b"a", b"b"]
    (marker,) = decode_batch(fetch, len(make_batch([b"a"], 0)))
    assert marker.key == b"\x00\x00\x00\x01"


def test_decode_batches_stops_quietly_at_a_batch_the_fetch_cut() -> None:
    whole = make_batch([b"a", b"b"], 0) + make_batch([b"c"], 2)
    last = make_batch([b"d" * 100], 3)
    for cut in range(len(last)):
        assert [r.offset for r in decode_batches(whole + last[:cut])] == [0, 1, 2]


def test_log_append_time_gives_every_record_the_max_timestamp() -> None:
    records = [Record(0, 10, None, b"x", ()), Record(1, 20, None, b"y", ())]
    for codec in (Compression.NONE, Compression.SNAPPY):
        batch = encode_batch(
            records, timestamp_type=TimestampType.LOG_APPEND_TIME, compression=codec
        )
        assert [r.timestamp for r in decode_batches(batch)] == [20, 20]


@pytest.mark.parametrize("their_builder", [aiokafka_records.DefaultRecordBatchBuilder])
def test_their_batches_in_one_fetch(their_builder: type) -> None:
    batches = []
    for base in (0, 3):
        builder = their_builder(2, int(Compression.LZ4), 0, -1, -1, -1, 1 << 20)
        for delta in range(3):
            builder.append(delta, 5000 + delta, None, b"v%d" % (base + delta), [("h", b"1")])
        batch = bytearray(builder.build())
        batch[0:8] = base.to_bytes(8, "big")
        batches.append(bytes(batch))
    records = decode_batches(b"".join(batches))
    assert [(r.offset, r.value, r.headers) for r in records] == [
        (i, b"v%d" % i, (("h", b"1"),)) for i in range(6)
    ]


def test_truncated_batch_raises_in_decode_batch() -> None:
    batch = make_batch([b"hello"])
    for cut in (0, 12, HEADER_SIZE - 1, HEADER_SIZE, len(batch) - 1):
        with pytest.raises(CorruptRecordError, match="needs"):
            decode_batch(batch[:cut])


@pytest.mark.parametrize("codec", list(Compression))
def test_bad_crc_raises(codec: Compression) -> None:
    batch = bytearray(make_batch([b"hello", b"world"], codec=codec))
    batch[-2] ^= 0x01
    with pytest.raises(CorruptRecordError, match="CRC-32C"):
        decode_batch(batch)
    with pytest.raises(CorruptRecordError, match="CRC-32C"):
        decode_batches(bytes(batch) + make_batch([b"next"], 2))


def test_bad_magic_in_a_complete_batch_raises_in_decode_batches() -> None:
    batch = bytearray(make_batch([b"hello"]))
    batch[16] = 1
    with pytest.raises(CorruptRecordError, match="magic 1"):
        decode_batches(bytes(batch))


@pytest.mark.parametrize(
    ("block", "count", "message"),
    [
        (raw_record(record_body())[:-1], 1, "runs past the end"),
        (
            b"\x00" + record_body(),
            1,
            "should end at byte 1 of the records block but its fields end at byte 9",
        ),
        (b"\x03" + record_body(), 1, "should end at byte -1 of the records block"),
        (raw_record(record_body(key=b"\x03")), 1, "key length -2"),
        (raw_record(record_body(value=b"\x05")), 1, "value length -3"),
        (raw_record(record_body(value=b"\x7e" + b"x" * 8)), 1, "runs past the end"),
        (raw_record(record_body(key=b"\x08ab")), 1, "value length -53"),
        (
            b"\x14" + record_body() + b"\x00\x00",
            1,
            "should end at byte 11 of the records block but its fields end at byte 9",
        ),
        (raw_record(record_body()), 2, "runs past the end"),
        (raw_record(record_body()) * 2, 1, "bytes follow"),
        (raw_record(record_body(headers=b"\x03")), 1, "header count -2"),
        (raw_record(record_body(headers=b"\x20")), 1, "header count 16"),
        (raw_record(record_body(headers=b"\x02\x02\xff\x00")), 1, "not UTF-8"),
        (raw_record(record_body(headers=b"\x02\x03")), 1, "header name length -2"),
        (raw_record(record_body(headers=b"\x02\x02h\x05")), 1, "header value length -3"),
        (raw_record(record_body(headers=b"\x02\x02h\x0aab")), 1, "header value length 5"),
        (raw_record(record_body(deltas=b"\x80" * 11 + b"\x00")), 1, "longer than 10 bytes"),
        (raw_record(record_body(deltas=b"\x00" + b"\xff" * 11)), 1, "longer than 10 bytes"),
        (b"\xff\xff", 1, "runs past the end"),
        (b"", 1, "runs past the end"),
    ],
)
def test_malformed_records_raise_with_what_and_where(
    block: bytes, count: int, message: str
) -> None:
    batch = raw_batch(block, count)
    with pytest.raises(CorruptRecordError, match=message) as info:
        decode_batch(batch)
    assert "batch at byte 0 (offset 0)" in str(info.value)
    with pytest.raises(CorruptRecordError, match=message):
        decode_batches(make_batch([b"ok"]) + batch)


def test_records_running_into_the_next_batch_raise() -> None:
    # The record lacks its last byte, its header count; the next batch's first byte (0) reads
    # as one, so the record's own framing agrees and only the batch boundary tells.
    block = raw_record(record_body())[:-1]
    fetch = raw_batch(block, 1) + make_batch([b"next"], 1)
    with pytest.raises(CorruptRecordError, match="records run 1 bytes past its end"):
        decode_batches(fetch)


def test_malformed_compressed_block_raises() -> None:
    batch = raw_batch(b"definitely not zstd", 1, attributes=int(Compression.ZSTD))
    with pytest.raises(CorruptRecordError, match="zstd records block does not decompress"):
        decode_batch(batch)


def test_a_well_formed_handmade_record_with_headers_decodes() -> None:
    headers = b"\x04" + b"\x02a\x02x" + b"\x02b\x01"  # two headers: a=b"x", b=None
    (record,) = decode_batch(raw_batch(raw_record(record_body(key=b"\x02k", headers=headers)), 1))
    assert record == Record(0, 1000, b"k", b"hi", (("a", b"x"), ("b", None)))


def test_headers_with_multi_byte_lengths_and_counts() -> None:
    # Counts, name and value lengths of 64 and more take two-byte varints (the slow path).
    headers = tuple(
        ("é" * (i % 3 * 40) + f"h{i}", None if i % 5 == 0 else bytes([i]) * (i * 7))
        for i in range(70)
    )
    builder = BatchBuilder()
    builder.append(b"v", key=b"k", headers=headers, timestamp_ms=5)
    builder.append(None, headers=headers[:1], timestamp_ms=6)
    batch = builder.build(10)
    expected = [Record(10, 5, b"k", b"v", headers), Record(11, 6, None, None, headers[:1])]
    assert decode_batches(batch) == expected
    theirs = list(aiokafka_records._DefaultRecordBatchPy(batch))
    assert [tuple(r.headers) for r in theirs] == [headers, headers[:1]]


# Fuzzing: whatever the bytes, only CorruptRecordError may escape.


def decode_everything(buf: bytes) -> None:
    for decode in (decode_batch, decode_batches, split_batches):
        with contextlib.suppress(CorruptRecordError):
            decode(buf)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_corrupt_record_error(buf: bytes) -> None:
    decode_everything(buf)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=HEADER_SIZE - 20, max_size=200))
def test_random_records_blocks_raise_only_corrupt_record_error(block: bytes) -> None:
    # Random bytes behind a valid header and CRC reach the record parser.
    for count in (0, 1, 3, len(block)):
        decode_everything(raw_batch(block, count))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(RECORD_ARGS, min_size=1, max_size=5),
    COMPRESSIONS,
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4),
    st.booleans(),
)
def test_mutated_batches_raise_only_corrupt_record_error(
    args: list[RecordArgs],
    codec: Compression,
    mutations: list[tuple[int, int]],
    recompute_crc: bool,
) -> None:
    builder = BatchBuilder(compression=codec)
    for value, key, headers, timestamp in args:
        builder.append(value, key=key, headers=headers, timestamp_ms=timestamp)
    batch = bytearray(builder.build())
    for where, byte in mutations:
        batch[where % len(batch)] = byte
    if recompute_crc:
        fix_crc(batch)
    decode_everything(bytes(batch))


@settings(max_examples=100, deadline=None)
@given(st.lists(RECORD_ARGS, min_size=1, max_size=5), st.integers(min_value=0))
def test_any_cut_of_a_fetch_yields_the_whole_batches_before_it(
    args: list[RecordArgs], cut: int
) -> None:
    batches = []
    for i in range(3):
        builder = BatchBuilder()
        for value, key, headers, timestamp in args:
            builder.append(value, key=key, headers=headers, timestamp_ms=timestamp)
        batches.append(builder.build(i * len(args)))
    fetch = b"".join(batches)
    cut %= len(fetch) + 1
    whole = cut // len(batches[0])
    assert [r.offset for r in decode_batches(fetch[:cut])] == list(range(whole * len(args)))
