"""Message sets v0/v1 to and from record batches v2 (``protocols.kafka.message_sets``).

The message sets are written and read by kafka-python's ``legacy_records`` (the encoder its
0.8-0.10 producers use), the batches by eventyard's ``records``: each direction is checked
against the other library, never against bytes this module made up.
"""

from __future__ import annotations

import struct
import warnings

import pytest

from eventyard.errors import CorruptRecordError
from eventyard.protocols.kafka.message_sets import to_batch, to_message_set
from eventyard.records import BatchBuilder, Compression, decode_batches, read_header

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.record.legacy_records import LegacyRecordBatchBuilder
    from kafka.record.memory_records import MemoryRecords

APPEND_TIME = 1_700_000_000_000
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3}
MESSAGES = [(b"k0", b"v0"), (None, b"v1"), (b"k2", None), (b"k3", b"v3" * 100)]


def message_set(
    magic: int, codec: int = 0, messages: list[tuple[bytes | None, bytes | None]] | None = None
) -> bytes:
    """A message set as kafka-python's producer writes it (timestamps 1000, 1001, ...)."""
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=codec, batch_size=1 << 20)
    for offset, (key, value) in enumerate(MESSAGES if messages is None else messages):
        builder.append(offset, timestamp=1000 + offset, key=key, value=value)
    return bytes(builder.build())


def legacy_messages(data: bytes) -> list[tuple[int, int | None, bytes | None, bytes | None]]:
    """``(offset, timestamp, key, value)`` of every message, read by kafka-python."""
    found = []
    for wrapper in MemoryRecords(data):
        assert wrapper.validate_crc()
        found += [(m.offset, m.timestamp, m.key, m.value) for m in wrapper]
    return found


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("magic", [0, 1])
def test_up_conversion_keeps_keys_values_and_order(magic: int, codec: str) -> None:
    batch = to_batch(message_set(magic, CODECS[codec]), append_time_ms=APPEND_TIME)
    header = read_header(batch)
    assert header.compression == Compression(CODECS[codec])
    assert header.producer_id == -1
    records = decode_batches(batch)
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, key, value) for i, (key, value) in enumerate(MESSAGES)
    ]
    expected = [APPEND_TIME] * 4 if magic == 0 else [1000, 1001, 1002, 1003]
    assert [r.timestamp for r in records] == expected


def test_several_compressed_wrappers_in_one_set_become_one_batch() -> None:
    data = message_set(1, CODECS["gzip"], MESSAGES[:2]) + message_set(1, 0, MESSAGES[2:])
    records = decode_batches(to_batch(data, append_time_ms=APPEND_TIME))
    assert [(r.key, r.value) for r in records] == MESSAGES


def test_a_magic_1_message_without_timestamp_gets_the_append_time() -> None:
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    builder.append(0, timestamp=-1, key=b"k", value=b"v")
    (record,) = decode_batches(to_batch(bytes(builder.build()), append_time_ms=APPEND_TIME))
    assert record.timestamp == APPEND_TIME


@pytest.mark.parametrize("magic", [0, 1])
def test_a_flipped_bit_is_a_crc_mismatch(magic: int) -> None:
    data = bytearray(message_set(magic))
    data[-1] ^= 0x01
    with pytest.raises(CorruptRecordError, match="CRC-32"):
        to_batch(bytes(data), append_time_ms=APPEND_TIME)


def test_a_damaged_inner_message_of_a_compressed_wrapper_is_refused() -> None:
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=1, batch_size=1 << 20)
    for offset, (key, value) in enumerate(MESSAGES):
        builder.append(offset, timestamp=1000 + offset, key=key, value=value)
    # Damage the last inner message before kafka-python compresses the set into its wrapper,
    # whose own CRC then covers the damage: only the inner message's CRC can catch it.
    builder._buffer[-1] ^= 0x01
    with pytest.raises(CorruptRecordError, match="inner message 3"):
        to_batch(bytes(builder.build()), append_time_ms=APPEND_TIME)


@pytest.mark.parametrize("cut", [1, 10, 30])
def test_a_message_cut_short_is_refused(cut: int) -> None:
    data = message_set(0)
    with pytest.raises(CorruptRecordError):
        to_batch(data[:-cut], append_time_ms=APPEND_TIME)


def test_empty_and_garbage_sets_are_refused() -> None:
    with pytest.raises(CorruptRecordError, match="empty"):
        to_batch(b"", append_time_ms=APPEND_TIME)
    with pytest.raises(CorruptRecordError):
        to_batch(struct.pack(">qi", 0, 4) + b"\xff" * 4, append_time_ms=APPEND_TIME)


def test_a_batch_v2_is_not_a_message_set() -> None:
    builder = BatchBuilder()
    builder.append(b"v", key=b"k")
    with pytest.raises(CorruptRecordError, match="magic 2"):
        to_batch(builder.build(), append_time_ms=APPEND_TIME)


def stored(count: int, base_offset: int = 0, headers: bool = False) -> bytes:
    builder = BatchBuilder(compression=Compression.LZ4)
    for i in range(count):
        builder.append(
            b"v%d" % i,
            key=b"k%d" % i,
            timestamp_ms=2000 + i,
            headers=[("h", b"x")] if headers else (),
        )
    return builder.build(base_offset=base_offset)


@pytest.mark.parametrize("magic", [0, 1])
def test_down_conversion_gives_absolute_offsets_from_the_fetch_offset(magic: int) -> None:
    data = stored(5, base_offset=10, headers=True) + stored(2, base_offset=15)
    converted = to_message_set(
        data, magic=magic, first_offset=12, max_bytes=1 << 20, at_least_one=True
    )
    timestamps: list[int | None] = [None] * 5 if magic == 0 else [2002, 2003, 2004, 2000, 2001]
    assert legacy_messages(converted) == [
        (12, timestamps[0], b"k2", b"v2"),
        (13, timestamps[1], b"k3", b"v3"),
        (14, timestamps[2], b"k4", b"v4"),
        (15, timestamps[3], b"k0", b"v0"),
        (16, timestamps[4], b"k1", b"v1"),
    ]


def test_down_conversion_keeps_whole_messages_within_max_bytes() -> None:
    one = len(
        to_message_set(stored(1), magic=1, first_offset=0, max_bytes=1 << 20, at_least_one=True)
    )
    three = to_message_set(
        stored(5), magic=1, first_offset=0, max_bytes=3 * one + one // 2, at_least_one=True
    )
    assert [offset for offset, *_ in legacy_messages(three)] == [0, 1, 2]
    assert (
        len(to_message_set(stored(5), magic=1, first_offset=0, max_bytes=1, at_least_one=True))
        == one
    )
    assert (
        to_message_set(stored(5), magic=1, first_offset=0, max_bytes=1, at_least_one=False) == b""
    )


def test_round_trip_through_both_formats() -> None:
    batch = to_batch(message_set(1, CODECS["snappy"]), append_time_ms=APPEND_TIME)
    back = to_message_set(batch, magic=1, first_offset=0, max_bytes=1 << 20, at_least_one=True)
    assert legacy_messages(back) == [
        (i, 1000 + i, key, value) for i, (key, value) in enumerate(MESSAGES)
    ]
