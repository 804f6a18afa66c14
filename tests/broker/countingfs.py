"""A real file system that counts file fsyncs, can hold them at a gate or fail them.

Injected through ``BrokerConfig(fs=...)``: the broker and its logs run unchanged on the real
disk, while the test sees how many fsyncs the durability policy issued and can keep an
fsync from finishing to observe what producers and fetchers do meanwhile.
"""

from __future__ import annotations

import errno
import threading

from eventyard.storage.fs import File, OSFileSystem


class CountingFile:
    """Delegates to a real file; ``fsync`` counts, and waits for the gate when one is set."""

    def __init__(self, inner: File, fs: CountingFileSystem) -> None:
        self._inner = inner
        self._fs = fs

    def pread(self, size: int, position: int) -> bytes:
        return self._inner.pread(size, position)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def truncate(self, size: int) -> None:
        self._inner.truncate(size)

    def fsync(self) -> None:
        self._fs.before_fsync()
        self._inner.fsync()

    def size(self) -> int:
        return self._inner.size()

    def try_lock(self) -> bool:
        return self._inner.try_lock()

    def close(self) -> None:
        self._inner.close()


class CountingFileSystem(OSFileSystem):
    """``OSFileSystem`` whose files count fsyncs (``fsyncs``), honour ``gate`` and fail
    every fsync with ``EIO`` while ``fail`` is set."""

    def __init__(self) -> None:
        self.fsyncs = 0
        self.gate: threading.Event | None = None
        self.fail = False
        self.waiting = threading.Event()
        self._lock = threading.Lock()

    def before_fsync(self) -> None:
        if self.fail:
            raise OSError(errno.EIO, "injected fsync failure")
        with self._lock:
            self.fsyncs += 1
        gate = self.gate
        if gate is not None:
            self.waiting.set()
            gate.wait(10)

    def open_append(self, path: str) -> File:
        return CountingFile(super().open_append(path), self)

    def open_read(self, path: str) -> File:
        return CountingFile(super().open_read(path), self)

    def open_readwrite(self, path: str) -> File:
        return CountingFile(super().open_readwrite(path), self)
