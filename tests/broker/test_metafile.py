"""Atomic metadata files: readers see the old or the new content, never a mix."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from eventyard.broker.metafile import read_file, read_json, write_atomically
from eventyard.errors import StorageError
from eventyard.storage import OSFileSystem
from tests.broker.countingfs import CountingFileSystem


def test_missing_files_read_as_none(tmp_path: Path) -> None:
    assert read_file(OSFileSystem(), tmp_path / "absent.json") is None


def test_a_rewrite_replaces_the_whole_content_and_is_synced(tmp_path: Path) -> None:
    fs = CountingFileSystem()
    path = tmp_path / "meta.json"
    write_atomically(fs, path, b"a much longer first version")
    write_atomically(fs, path, b"short")
    assert read_file(fs, path) == b"short"
    assert fs.fsyncs == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_a_torn_temporary_file_from_a_crash_is_ignored_and_overwritten(tmp_path: Path) -> None:
    fs = OSFileSystem()
    path = tmp_path / "meta.json"
    write_atomically(fs, path, b"committed")
    (tmp_path / "meta.json.tmp").write_bytes(b"half-writ")
    assert read_file(fs, path) == b"committed"
    write_atomically(fs, path, b"next")
    assert read_file(fs, path) == b"next"


class Version(msgspec.Struct):
    version: int


def test_json_files_decode_or_fail_with_the_file_named(tmp_path: Path) -> None:
    fs = OSFileSystem()
    path = tmp_path / "meta.json"
    assert read_json(fs, path, Version) is None
    write_atomically(fs, path, msgspec.json.encode(Version(3)))
    assert read_json(fs, path, Version) == Version(3)
    path.write_bytes(b"{not json")
    with pytest.raises(StorageError, match=r"meta\.json is unreadable"):
        read_json(fs, path, Version)
