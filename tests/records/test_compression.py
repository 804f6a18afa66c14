"""Codecs: round trips, the snappy framings other clients write, and corrupt input."""

from __future__ import annotations

import gzip

import cramjam
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.errors import CorruptRecordError
from eventyard.records.compression import XERIAL_MAGIC, Compression, compress, decompress

from .clients import aiokafka_codec

PAYLOAD = b"".join(b'{"event": %d, "pad": "%s"}' % (i, b"x" * (i % 40)) for i in range(4000))


@pytest.mark.parametrize("codec", list(Compression))
def test_round_trip(codec: Compression) -> None:
    compressed = compress(codec, bytearray(PAYLOAD))
    if codec != Compression.NONE:
        assert len(compressed) < len(PAYLOAD) // 2
    assert decompress(codec, compressed) == PAYLOAD
    assert decompress(codec, memoryview(compressed)) == PAYLOAD


@given(st.sampled_from(list(Compression)), st.binary(max_size=2000))
def test_round_trip_of_arbitrary_bytes(codec: Compression, data: bytes) -> None:
    assert decompress(codec, compress(codec, data)) == data


def test_snappy_is_written_xerial_framed_in_32k_blocks() -> None:
    # The Java client's SnappyOutputStream framing; the payload spans several blocks.
    assert len(PAYLOAD) > 2 * 32 * 1024
    compressed = compress(Compression.SNAPPY, PAYLOAD)
    assert compressed.startswith(XERIAL_MAGIC + b"\x00\x00\x00\x01\x00\x00\x00\x01")
    assert aiokafka_codec.snappy_decode(compressed) == PAYLOAD


def test_snappy_reads_raw_blocks_as_librdkafka_writes_them() -> None:
    raw = bytes(cramjam.snappy.compress_raw(PAYLOAD))
    assert not raw.startswith(XERIAL_MAGIC)
    assert decompress(Compression.SNAPPY, raw) == PAYLOAD


def test_snappy_reads_xerial_frames_written_by_another_client() -> None:
    framed = aiokafka_codec.snappy_encode(PAYLOAD, xerial_compatible=True, xerial_blocksize=4096)
    assert framed.startswith(XERIAL_MAGIC)
    assert decompress(Compression.SNAPPY, framed) == PAYLOAD


def test_lz4_is_a_frame_with_independent_blocks() -> None:
    compressed = compress(Compression.LZ4, PAYLOAD)
    assert compressed[:4] == b"\x04\x22\x4d\x18"  # the LZ4 frame magic number
    flags = compressed[4]
    assert flags & 0x20, "KIP-57: Kafka's readers refuse linked blocks"
    assert not flags & 0x04, "no content checksum, as the Java client writes"
    assert aiokafka_codec.lz4_decode(compressed) == PAYLOAD


def test_gzip_is_a_standard_gzip_member() -> None:
    assert gzip.decompress(compress(Compression.GZIP, PAYLOAD)) == PAYLOAD


def test_zstd_reads_what_another_client_writes() -> None:
    assert decompress(Compression.ZSTD, aiokafka_codec.zstd_encode(PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize(
    "codec", [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]
)
def test_garbage_raises_corrupt_record_error(codec: Compression) -> None:
    with pytest.raises(CorruptRecordError, match=codec.name.lower()):
        decompress(codec, b"\x07 this is not a compressed stream at all")


@pytest.mark.parametrize(
    "codec", [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]
)
def test_truncated_stream_raises(codec: Compression) -> None:
    compressed = compress(codec, PAYLOAD)
    with pytest.raises(CorruptRecordError):
        decompress(codec, compressed[: len(compressed) // 2])


@pytest.mark.parametrize(
    ("framed", "message"),
    [
        (XERIAL_MAGIC + b"\x00\x00\x00\x01", "shorter than its 16-byte header"),
        (XERIAL_MAGIC + bytes(8) + b"\x00\x00", "length cut"),
        (XERIAL_MAGIC + bytes(8) + b"\x00\x00\x10\x00abc", "overruns the stream"),
        (XERIAL_MAGIC + bytes(8) + b"\xff\xff\xff\xff", "overruns the stream"),
    ],
)
def test_malformed_xerial_frames_raise(framed: bytes, message: str) -> None:
    with pytest.raises(CorruptRecordError, match=message):
        decompress(Compression.SNAPPY, framed)


@pytest.mark.parametrize("codec_id", [5, 6, 7])
def test_unknown_codec_id_raises(codec_id: int) -> None:
    with pytest.raises(CorruptRecordError, match=f"unknown compression codec id {codec_id}"):
        decompress(codec_id, b"data")
