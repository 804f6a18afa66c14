"""OSFileSystem: the real filesystem behind the storage seam."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventyard.storage import OSFileSystem


def test_append_file_writes_at_the_end_and_reads_by_position(tmp_path: Path) -> None:
    fs = OSFileSystem()
    path = str(tmp_path / "a.log")
    file = fs.open_append(path)
    file.write(b"hello ")
    file.write(memoryview(b"world"))
    assert file.size() == 11
    assert file.pread(5, 6) == b"world"
    assert file.pread(100, 6) == b"world"
    assert file.pread(10, 50) == b""
    file.truncate(5)
    file.write(b"!")
    file.fsync()
    assert file.pread(100, 0) == b"hello!"
    file.close()
    assert fs.file_size(path) == 6


def test_readwrite_file_writes_from_the_start(tmp_path: Path) -> None:
    fs = OSFileSystem()
    path = str(tmp_path / "b")
    (tmp_path / "b").write_bytes(b"0123456789")
    file = fs.open_readwrite(path)
    file.write(b"ab")
    file.close()
    assert (tmp_path / "b").read_bytes() == b"ab23456789"


def test_directory_operations(tmp_path: Path) -> None:
    fs = OSFileSystem()
    directory = str(tmp_path / "x" / "y")
    fs.makedirs(directory)
    fs.makedirs(directory)
    fs.open_append(directory + "/one").close()
    assert fs.listdir(directory) == ["one"]
    fs.rename(directory + "/one", directory + "/two")
    assert not fs.exists(directory + "/one") and fs.exists(directory + "/two")
    fs.fsync_dir(directory)
    fs.remove(directory + "/two")
    fs.rmdir(directory)
    assert not fs.exists(directory)
    with pytest.raises(FileNotFoundError):
        fs.open_read(directory + "/missing")


def test_lock_is_exclusive_per_open_file(tmp_path: Path) -> None:
    fs = OSFileSystem()
    first = fs.open_readwrite(str(tmp_path / ".lock"))
    second = fs.open_readwrite(str(tmp_path / ".lock"))
    assert first.try_lock()
    assert not second.try_lock()
    first.close()
    assert second.try_lock()
    second.close()
