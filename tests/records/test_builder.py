"""Encoding: round trips of arbitrary records, byte-for-byte agreement with kafka-python and
aiokafka, and the encode_batch contract compaction relies on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventyard.records import (
    BatchBuilder,
    Compression,
    Record,
    TimestampType,
    decode_batch,
    encode_batch,
    read_header,
    split_batches,
)

from .clients import aiokafka_records, kafka_records
from .strategies import COMPRESSIONS, INTEROP_RECORD_ARGS, RECORD_ARGS, RecordArgs

# Their builders and batch readers, with the codecs each can use: kafka-python (pure
# Python; no snappy, lz4 or zstd library is installed for it) and aiokafka's C extension
# plus its pure-Python fallback (every codec, through cramjam).
_KAFKA_CODECS = [Compression.NONE, Compression.GZIP]
_ALL_CODECS = list(Compression)
BUILDERS = [
    pytest.param(kafka_records.DefaultRecordBatchBuilder, _KAFKA_CODECS, id="kafka-python"),
    pytest.param(aiokafka_records.DefaultRecordBatchBuilder, _ALL_CODECS, id="aiokafka"),
    pytest.param(aiokafka_records._DefaultRecordBatchBuilderPy, _ALL_CODECS, id="aiokafka-py"),
]
READERS = [
    pytest.param(kafka_records.DefaultRecordBatch, _KAFKA_CODECS, id="kafka-python"),
    pytest.param(aiokafka_records.DefaultRecordBatch, _ALL_CODECS, id="aiokafka"),
    pytest.param(aiokafka_records._DefaultRecordBatchPy, _ALL_CODECS, id="aiokafka-py"),
]


def build(args: list[RecordArgs], **options: object) -> bytes:
    builder = BatchBuilder(**options)  # type: ignore[arg-type]
    for value, key, headers, timestamp in args:
        builder.append(value, key=key, headers=headers, timestamp_ms=timestamp)
    return builder.build()


def their_build(cls: type, args: list[RecordArgs], codec: Compression = Compression.NONE) -> bytes:
    builder = cls(2, int(codec), 0, -1, -1, -1, 1 << 30)
    for delta, (value, key, headers, timestamp) in enumerate(args):
        builder.append(delta, timestamp, key, value, list(headers))
    return bytes(builder.build())


def without_leader_epoch(batch: bytes) -> bytes:
    """The leader epoch (bytes 12-16, outside the CRC): Java and eventyard write -1, the
    Python clients 0; the broker owns the field either way."""
    return batch[:12] + b"\xff\xff\xff\xff" + batch[16:]


@settings(max_examples=150, deadline=None)
@given(st.lists(RECORD_ARGS, min_size=1, max_size=20), COMPRESSIONS, st.integers(0, 1 << 62))
def test_round_trip(args: list[RecordArgs], codec: Compression, base_offset: int) -> None:
    builder = BatchBuilder(compression=codec)
    for value, key, headers, timestamp in args:
        builder.append(value, key=key, headers=headers, timestamp_ms=timestamp)
    assert len(builder) == len(args)
    batch = builder.build(base_offset)
    header = read_header(batch)
    assert header.compression is codec
    assert header.record_count == len(args)
    assert header.last_offset == base_offset + len(args) - 1
    assert header.base_timestamp == args[0][3]
    assert header.max_timestamp == max(a[3] for a in args)
    assert split_batches(batch) == [(0, header)]
    assert decode_batch(batch) == [
        Record(base_offset + i, timestamp, key, value, headers)
        for i, (value, key, headers, timestamp) in enumerate(args)
    ]


@settings(max_examples=60, deadline=None)
@pytest.mark.parametrize(("their_builder", "codecs"), BUILDERS)
@given(args=st.lists(INTEROP_RECORD_ARGS, min_size=1, max_size=20))
def test_uncompressed_bytes_equal_theirs(
    their_builder: type, codecs: list[Compression], args: list[RecordArgs]
) -> None:
    ours = build(args)
    theirs = their_build(their_builder, args)
    assert without_leader_epoch(theirs) == ours


@settings(max_examples=30, deadline=None)
@pytest.mark.parametrize(("their_builder", "codecs"), BUILDERS)
@given(args=st.lists(INTEROP_RECORD_ARGS, min_size=1, max_size=20), data=st.data())
def test_compressed_batches_of_theirs_decode_to_the_same_records(
    their_builder: type, codecs: list[Compression], args: list[RecordArgs], data: st.DataObject
) -> None:
    codec = data.draw(st.sampled_from(codecs))
    theirs = their_build(their_builder, args, codec)
    # kafka-python sends a batch uncompressed when compressing would make it larger.
    assert read_header(theirs).compression in (codec, Compression.NONE)
    assert decode_batch(theirs) == [
        Record(i, timestamp, key, value, headers)
        for i, (value, key, headers, timestamp) in enumerate(args)
    ]


@settings(max_examples=30, deadline=None)
@pytest.mark.parametrize(("their_reader", "codecs"), READERS)
@given(args=st.lists(INTEROP_RECORD_ARGS, min_size=1, max_size=20), data=st.data())
def test_their_readers_decode_our_batches(
    their_reader: type, codecs: list[Compression], args: list[RecordArgs], data: st.DataObject
) -> None:
    codec = data.draw(st.sampled_from(codecs))
    batch = their_reader(build(args, compression=codec, producer_id=3, producer_epoch=1))
    assert batch.validate_crc()
    assert batch.compression_type == codec
    assert [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch] == [
        (i, timestamp, key, value, list(headers))
        for i, (value, key, headers, timestamp) in enumerate(args)
    ]


def test_timestamps_default_to_now() -> None:
    import time

    before = time.time_ns() // 1_000_000
    builder = BatchBuilder()
    builder.append(b"v")
    after = time.time_ns() // 1_000_000
    (record,) = decode_batch(builder.build())
    assert before <= record.timestamp <= after


def test_build_can_repeat_with_another_base_offset() -> None:
    builder = BatchBuilder(producer_id=9, producer_epoch=0, base_sequence=100)
    for i in range(3):
        builder.append(b"%d" % i, timestamp_ms=1)
    first, again = builder.build(0), builder.build(500)
    assert first[8:] == again[8:]
    header = read_header(again)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (9, 0, 100)
    assert [r.offset for r in decode_batch(again)] == [500, 501, 502]


def test_large_values_and_negative_timestamp_deltas() -> None:
    big = bytes(range(256)) * 400  # past the precomputed varint table
    args: list[RecordArgs] = [
        (big, big[:20000], (), 10_000),
        (b"", None, (), 5),
        (None, b"k", (), 1 << 45),
    ]
    records = decode_batch(build(args))
    assert [(r.value, r.key, r.timestamp) for r in records] == [(v, k, t) for v, k, _, t in args]


def test_more_distinct_header_names_than_the_name_cache_holds() -> None:
    # Names are remembered up to a bound; past it they are encoded each time, same bytes.
    headers = tuple((f"name-{i}", b"%d" % i) for i in range(5000))
    first, second = build([(b"v", None, headers, 1)]), build([(b"v", None, headers, 1)])
    assert first == second
    assert decode_batch(first)[0].headers == headers


def test_building_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="no records"):
        BatchBuilder().build()


@pytest.mark.parametrize(
    "options",
    [{"producer_id": 1 << 63}, {"producer_epoch": 1 << 15}, {"base_sequence": -(1 << 31) - 1}],
)
def test_header_fields_that_do_not_fit_are_refused(options: dict[str, int]) -> None:
    builder = BatchBuilder(**options)  # type: ignore[arg-type]
    builder.append(b"v")
    with pytest.raises(ValueError, match="does not fit"):
        builder.build()


def test_encode_batch_keeps_offsets_timestamps_and_gaps() -> None:
    kept = [Record(103, 7, b"a", b"1", ()), Record(107, 9, b"b", None, (("h", None),))]
    batch = encode_batch(kept, base_offset=100, last_offset_delta=9, compression=Compression.LZ4)
    header = read_header(batch)
    assert (header.base_offset, header.last_offset, header.record_count) == (100, 109, 2)
    assert decode_batch(batch) == kept


def test_encode_batch_defaults_to_the_records_own_range() -> None:
    records = [Record(5, 1, None, b"x", ()), Record(6, 2, None, b"y", ())]
    header = read_header(encode_batch(records))
    assert (header.base_offset, header.last_offset) == (5, 6)


def test_encode_batch_can_write_an_empty_batch_with_its_offsets() -> None:
    # What compaction leaves of a batch whose records were all superseded.
    batch = encode_batch([], base_offset=40, last_offset_delta=4, producer_id=12)
    header = read_header(batch)
    assert (header.record_count, header.last_offset, header.producer_id) == (0, 44, 12)
    assert decode_batch(batch) == []


def test_encode_batch_keeps_a_given_max_timestamp() -> None:
    # Compaction keeps the original batch's max timestamp, emptied or thinned.
    empty = read_header(encode_batch([], base_offset=0, last_offset_delta=2, max_timestamp=77))
    assert (empty.base_timestamp, empty.max_timestamp) == (77, 77)
    thinned = encode_batch([Record(1, 10, b"k", b"v", ())], base_offset=0, max_timestamp=99)
    header = read_header(thinned)
    assert (header.base_timestamp, header.max_timestamp) == (10, 99)
    assert decode_batch(thinned) == [Record(1, 10, b"k", b"v", ())]
    default = read_header(
        encode_batch([Record(1, 10, None, b"v", ()), Record(2, 30, None, b"", ())])
    )
    assert default.max_timestamp == 30


def test_encode_batch_log_append_time() -> None:
    records = [Record(0, 10, None, b"x", ()), Record(1, 30, None, b"y", ())]
    batch = encode_batch(records, timestamp_type=TimestampType.LOG_APPEND_TIME)
    assert [r.timestamp for r in decode_batch(batch)] == [30, 30]


@pytest.mark.parametrize(
    ("records", "options", "message"),
    [
        ([], {}, "empty batch needs"),
        ([Record(2, 0, None, b"", ()), Record(2, 0, None, b"", ())], {}, "must increase"),
        ([Record(2, 0, None, b"", ())], {"base_offset": 3}, "must increase"),
        (
            [Record(2, 0, None, b"", ()), Record(5, 0, None, b"", ())],
            {"last_offset_delta": 1},
            "below the last record",
        ),
    ],
)
def test_encode_batch_refuses_inconsistent_offsets(
    records: list[Record], options: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_batch(records, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "key", "headers"),
    [
        ("text", None, ()),
        (b"v", "text", ()),
        (b"v", None, ((b"name", b"x"),)),
        (b"v", None, (("n", "x"),)),
    ],
)
def test_values_that_are_not_bytes_are_refused_at_build(
    value: object, key: object, headers: object
) -> None:
    builder = BatchBuilder()
    builder.append(value, key=key, headers=headers)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        builder.build()
