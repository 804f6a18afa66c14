"""Small metadata files written atomically through the injected file system.

The broker's own metadata (the topic catalog, the producer-id block) must never be seen
half-written after a crash: :func:`write_atomically` writes a temporary file, fsyncs it,
renames it over the target and fsyncs the directory, so a reader finds either the old or the
new content. All I/O goes through a ``storage.FileSystem`` so fault tests can inject failures.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec

from eventyard.errors import StorageError
from eventyard.storage import FileSystem

__all__ = ["read_file", "read_json", "write_atomically"]

T = TypeVar("T")


def write_atomically(fs: FileSystem, path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new content."""
    temporary = str(path.with_name(path.name + ".tmp"))
    handle = fs.open_readwrite(temporary)
    try:
        handle.truncate(0)
        handle.write(data)
        handle.fsync()
    finally:
        handle.close()
    fs.rename(temporary, str(path))
    fs.fsync_dir(str(path.parent))


def read_file(fs: FileSystem, path: Path) -> bytes | None:
    """Return the whole content of ``path``, or ``None`` when it does not exist."""
    if not fs.exists(str(path)):
        return None
    handle = fs.open_read(str(path))
    try:
        return handle.pread(handle.size(), 0)
    finally:
        handle.close()


def read_json(fs: FileSystem, path: Path, kind: type[T]) -> T | None:
    """Decode ``path`` as JSON of ``kind``; ``None`` when it does not exist.

    A file that does not decode (edited by hand, or damaged outside eventyard) raises
    :class:`~eventyard.errors.StorageError` naming it, never a bare decoder error.
    """
    data = read_file(fs, path)
    if data is None:
        return None
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError as exc:
        raise StorageError(f"{path} is unreadable: {exc}") from exc
