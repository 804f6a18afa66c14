"""A segment on its own: append, locate, read, scan a damaged tail, reload a sealed one."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventyard.errors import LogCorruptionError
from eventyard.records import split_batches
from eventyard.storage import OSFileSystem
from eventyard.storage.segment import Segment, segment_name
from tests.storage.batches import make_batch, payload, values_in


def build(directory: Path, batches: int = 40, base: int = 1000) -> Segment:
    segment = Segment.create(OSFileSystem(), str(directory), base, 256, now_ms=0)
    for _ in range(batches):
        offset = segment.next_offset
        data = bytearray(make_batch(payload(offset), payload(offset + 1), timestamp_ms=offset))
        data[:8] = offset.to_bytes(8, "big")
        segment.append(data, offset, offset + 1, offset + 1)
    return segment


def test_names_are_twenty_digit_base_offsets() -> None:
    assert segment_name(0) == "00000000000000000000"
    assert segment_name(1234) == "00000000000000001234"


def test_locate_and_read_by_offset(tmp_path: Path) -> None:
    segment = build(tmp_path)
    assert segment.next_offset == 1080
    for offset in (1000, 1001, 1041, 1079):
        position = segment.locate(offset)
        assert position is not None
        assert (offset, payload(offset)) in values_in(segment.read(position, 1))
    assert segment.locate(1080) is None
    assert segment.last_offset() == 1079
    assert segment.find_time(1041) == 1041
    assert segment.find_time(5000) is None
    segment.release()


def test_sealed_segment_reloads_its_indexes_on_demand(tmp_path: Path) -> None:
    segment = build(tmp_path)
    segment.seal()
    segment.sync()
    size, next_offset = segment.size, segment.next_offset
    segment.release()
    assert not segment.loaded
    again = Segment(OSFileSystem(), str(tmp_path), 1000, 256, size=size, next_offset=next_offset)
    assert again.max_timestamp == 1079
    position = again.locate(1051)
    assert position is not None
    assert values_in(again.read(position, 1))[1] == (1051, payload(1051))
    assert again.loaded
    again.release()


def test_recover_cuts_a_damaged_tail_and_rebuilds_indexes(tmp_path: Path) -> None:
    segment = build(tmp_path)
    segment.seal()
    segment.release()
    log_path = tmp_path / f"{segment_name(1000)}.log"
    data = log_path.read_bytes()
    position, header = split_batches(data)[30]
    log_path.write_bytes(data[: position + 20])
    recovered, result = Segment.recover(
        OSFileSystem(), str(tmp_path), 1000, 256, position=0, next_offset=1000, max_timestamp=-1
    )
    assert result.end == position and result.damage is not None
    assert "needs" in result.damage or "header" in result.damage
    assert recovered.next_offset == header.base_offset == 1060
    assert log_path.stat().st_size == position
    located = recovered.locate(1059)
    assert located is not None
    assert values_in(recovered.read(located, 1))[-1] == (1059, payload(1059))
    recovered.release()


def test_damage_found_while_walking_names_the_offsets(tmp_path: Path) -> None:
    segment = build(tmp_path)
    segment.seal()
    segment.release()
    log_path = tmp_path / f"{segment_name(1000)}.log"
    data = bytearray(log_path.read_bytes())
    position, _ = split_batches(bytes(data))[5]
    data[position + 16] = 7  # magic byte
    log_path.write_bytes(bytes(data))
    sealed = Segment(OSFileSystem(), str(tmp_path), 1000, 256, size=len(data), next_offset=1080)
    with pytest.raises(LogCorruptionError, match="offsets 1010 to 1079"):
        sealed.locate(1011)
    sealed.release()
