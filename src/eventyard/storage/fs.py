"""The filesystem seam: every byte ``eventyard.storage`` reads or writes goes through here.

:class:`FileSystem` and :class:`File` are small :class:`typing.Protocol` s so tests can
inject a filesystem that cuts a write at any byte, fails ``fsync`` or raises ``ENOSPC``,
and check that the log survives. :class:`OSFileSystem` is the real one, on plain ``os``
calls (no Python buffering: a write either reached the kernel or raised).

Contracts every implementation keeps:

- ``File.write`` writes all of ``data`` at the file's end (files are opened for appending)
  or at the current position, or raises :class:`OSError`; after an error an unknown prefix
  of ``data`` may have been written, which is why callers truncate back.
- ``File.fsync`` makes the file's data (and the size needed to read it) durable:
  ``fdatasync`` where the OS has it.
- ``FileSystem.fsync_dir`` makes the directory's entries (created, renamed, removed files)
  durable.
- Errors are :class:`OSError` with an ``errno``; ``eventyard.storage`` translates them.
"""

from __future__ import annotations

import fcntl
import os
from typing import Protocol

__all__ = ["File", "FileSystem", "OSFile", "OSFileSystem"]

_fdatasync = getattr(os, "fdatasync", os.fsync)


class File(Protocol):
    """An open file: positional reads, writes, truncation, sync and an advisory lock."""

    def pread(self, size: int, position: int) -> bytes:
        """Read up to ``size`` bytes at ``position``; fewer only at the end of the file."""
        ...

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` (at the end for append files) or raise :class:`OSError`."""
        ...

    def truncate(self, size: int) -> None:
        """Cut (or extend with zeros) the file to ``size`` bytes."""
        ...

    def fsync(self) -> None:
        """Make everything written so far durable."""
        ...

    def size(self) -> int:
        """The file's current size in bytes."""
        ...

    def try_lock(self) -> bool:
        """Take an exclusive advisory lock without waiting; ``False`` when held elsewhere."""
        ...

    def close(self) -> None:
        """Release the file (and its lock); later calls are errors."""
        ...


class FileSystem(Protocol):
    """Opening files and changing directories."""

    def open_append(self, path: str) -> File:
        """Open ``path`` for reading and appending, creating it empty when missing."""
        ...

    def open_read(self, path: str) -> File:
        """Open an existing ``path`` read-only."""
        ...

    def open_readwrite(self, path: str) -> File:
        """Open ``path`` for reading and writing at the start, creating it when missing."""
        ...

    def listdir(self, path: str) -> list[str]:
        """The names in directory ``path``."""
        ...

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists."""
        ...

    def file_size(self, path: str) -> int:
        """The size of the file at ``path``."""
        ...

    def remove(self, path: str) -> None:
        """Delete the file ``path``."""
        ...

    def rename(self, source: str, target: str) -> None:
        """Atomically rename ``source`` to ``target``, replacing ``target`` if it exists."""
        ...

    def makedirs(self, path: str) -> None:
        """Create directory ``path`` and its parents; no error when it exists."""
        ...

    def rmdir(self, path: str) -> None:
        """Delete the empty directory ``path``."""
        ...

    def fsync_dir(self, path: str) -> None:
        """Make the entries of directory ``path`` durable."""
        ...


class OSFile:
    """A :class:`File` on a raw file descriptor."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def pread(self, size: int, position: int) -> bytes:
        fd = self._fd
        data = os.pread(fd, size, position)
        if len(data) == size or not data:
            return data
        # A short read before the end of file is legal POSIX; keep reading.
        parts = [data]
        got = len(data)
        while got < size:
            more = os.pread(fd, size - got, position + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        fd = self._fd
        written = os.write(fd, data)
        if written == len(data):
            return
        view = memoryview(data)
        while written < len(view):
            written += os.write(fd, view[written:])

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def fsync(self) -> None:
        _fdatasync(self._fd)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def try_lock(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        os.close(self._fd)


class OSFileSystem:
    """The real filesystem, through ``os`` calls."""

    def open_append(self, path: str) -> File:
        return OSFile(os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644))

    def open_read(self, path: str) -> File:
        return OSFile(os.open(path, os.O_RDONLY | os.O_CLOEXEC))

    def open_readwrite(self, path: str) -> File:
        return OSFile(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def file_size(self, path: str) -> int:
        return os.stat(path).st_size

    def remove(self, path: str) -> None:
        os.remove(path)

    def rename(self, source: str, target: str) -> None:
        os.replace(source, target)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
