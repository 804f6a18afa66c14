"""Sparse offset and time indexes: lookups, truncation, Kafka's file format, torn files."""

from __future__ import annotations

import struct

from eventyard.storage.index import OffsetIndex, TimeIndex


def test_offset_index_lookup_finds_the_entry_at_or_below() -> None:
    index = OffsetIndex(100)
    assert index.lookup(150) == (100, 0)
    for offset, position in ((110, 4096), (125, 8200), (140, 12400)):
        index.append(offset, position)
    assert index.lookup(100) == (100, 0)
    assert index.lookup(109) == (100, 0)
    assert index.lookup(110) == (110, 4096)
    assert index.lookup(139) == (125, 8200)
    assert index.lookup(10**6) == (140, 12400)
    assert index.last() == (140, 12400)


def test_offset_index_file_format_is_kafkas_and_pending_is_incremental() -> None:
    index = OffsetIndex(100)
    index.append(110, 4096)
    assert index.pending() == struct.pack(">ii", 10, 4096)
    assert index.pending() == b""
    index.append(125, 8200)
    assert index.pending() == struct.pack(">ii", 25, 8200)
    assert index.encode() == struct.pack(">iiii", 10, 4096, 25, 8200)


def test_offset_index_decode_keeps_the_valid_prefix() -> None:
    good = struct.pack(">iiii", 10, 4096, 25, 8200)
    index = OffsetIndex.decode(100, good + struct.pack(">ii", 20, 9000) + b"\x01\x02", 10_000)
    assert len(index) == 2 and index.last() == (125, 8200)
    assert index.pending() == b""
    limited = OffsetIndex.decode(100, good, 8200)
    assert len(limited) == 1
    assert len(OffsetIndex.decode(100, b"\x00" * 16, 10_000)) == 1  # (0, 0) then a repeat


def test_offset_index_truncate_reports_written_entries_dropped() -> None:
    index = OffsetIndex(0)
    index.append(10, 100)
    index.pending()
    index.append(20, 200)
    assert index.truncate(150) is False
    assert index.last() == (10, 100)
    assert index.truncate(50) is True
    assert len(index) == 0


def test_time_index_lookup_starts_after_every_older_batch() -> None:
    index = TimeIndex(0)
    index.maybe_append(1_000, 0)
    index.maybe_append(900, 5)  # not newer: ignored
    index.maybe_append(2_000, 10)
    index.maybe_append(3_000, 20)
    assert len(index) == 3
    assert index.max_timestamp == 3_000
    assert index.lookup(500) == 0
    assert index.lookup(1_000) == 0
    assert index.lookup(1_001) == 0
    assert index.lookup(2_500) == 10
    assert index.lookup(10_000) == 20


def test_time_index_decode_and_truncate() -> None:
    data = struct.pack(">qiqiqi", 1_000, 0, 2_000, 10, 1_500, 12) + b"\x00" * 5
    index = TimeIndex.decode(0, data, next_offset=100)
    assert len(index) == 2 and index.max_timestamp == 2_000
    assert len(TimeIndex.decode(0, data, next_offset=10)) == 1
    assert index.truncate(10) is True
    assert index.max_timestamp == 1_000
    assert index.encode() == struct.pack(">qi", 1_000, 0)
