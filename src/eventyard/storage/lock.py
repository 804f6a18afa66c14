"""The data-directory lock: one process (and one opener) per data directory.

Two brokers appending to the same segment files would interleave batches and corrupt
both logs, so opening a data directory takes an exclusive ``flock`` on ``<dir>/.lock``
and writes the owner's pid and host name into it for the error the next opener gets.

``flock`` locks belong to an open file, so a second :class:`DataDirLock` in the same
process conflicts just as another process does, and the kernel drops the lock when its
holder dies (even by SIGKILL): there are no stale locks to clean up. The file itself is
left in place on release; deleting it would let two openers lock two different files.
"""

from __future__ import annotations

import os
import socket
from types import TracebackType

from eventyard.errors import DataDirLockedError, StorageError
from eventyard.storage.fs import File, FileSystem, OSFileSystem

__all__ = ["LOCK_NAME", "DataDirLock"]

LOCK_NAME = ".lock"
_OWNER_BYTES = 1024


class DataDirLock:
    """An exclusive lock on a data directory, taken on construction.

    ``DataDirLock(path)`` creates ``path`` if needed and locks it, or raises
    :class:`~eventyard.errors.DataDirLockedError` naming the holder's pid and host.
    Release with :meth:`release` or by using it as a context manager.
    """

    def __init__(self, path: str, fs: FileSystem | None = None) -> None:
        self._fs = fs or OSFileSystem()
        self.path = path
        lock_path = os.path.join(path, LOCK_NAME)
        try:
            self._fs.makedirs(path)
            file = self._fs.open_readwrite(lock_path)
        except OSError as exc:
            raise StorageError(f"cannot lock data directory {path}: {exc}") from exc
        try:
            locked = file.try_lock()
            if not locked:
                owner = file.pread(_OWNER_BYTES, 0)
            else:
                file.truncate(0)
                file.write(f"{os.getpid()} {socket.gethostname()}\n".encode())
                file.fsync()
        except OSError as exc:
            file.close()
            raise StorageError(f"cannot lock data directory {path}: {exc}") from exc
        if not locked:
            file.close()
            pid, host = _parse_owner(owner)
            raise DataDirLockedError(f"data directory {path} is in use by pid {pid} on host {host}")
        self._file: File | None = file

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._file is not None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"DataDirLock({self.path!r}, held={self.held})"


def _parse_owner(data: bytes) -> tuple[str, str]:
    """The ``(pid, host)`` written by the holder; ``"unknown"`` while it is still writing."""
    fields = data.decode("utf-8", errors="replace").split()
    if len(fields) == 2 and fields[0].isdigit():
        return fields[0], fields[1]
    return "unknown", "unknown"
