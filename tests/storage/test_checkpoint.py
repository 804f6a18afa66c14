"""The recovery point file: round trip, damage and absence read as "scan everything"."""

from __future__ import annotations

from pathlib import Path

from eventyard.storage import OSFileSystem
from eventyard.storage.checkpoint import (
    CHECKPOINT_NAME,
    RecoveryPoint,
    read_checkpoint,
    write_checkpoint,
)


def test_round_trip(tmp_path: Path) -> None:
    fs = OSFileSystem()
    assert read_checkpoint(fs, str(tmp_path)) is None
    point = RecoveryPoint(segment=4096, position=123_456, next_offset=5000, max_timestamp=-1)
    write_checkpoint(fs, str(tmp_path), point, sync_dir=True)
    assert read_checkpoint(fs, str(tmp_path)) == point
    newer = RecoveryPoint(4096, 200_000, 6000, 1_700_000_000_000)
    write_checkpoint(fs, str(tmp_path), newer, sync_dir=False)
    assert read_checkpoint(fs, str(tmp_path)) == newer
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


def test_damaged_or_short_file_reads_as_none(tmp_path: Path) -> None:
    fs = OSFileSystem()
    write_checkpoint(fs, str(tmp_path), RecoveryPoint(0, 10, 1, 5), sync_dir=False)
    path = tmp_path / CHECKPOINT_NAME
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    assert read_checkpoint(fs, str(tmp_path)) is None
    path.write_bytes(b"")
    assert read_checkpoint(fs, str(tmp_path)) is None
