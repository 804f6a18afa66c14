"""A fault-injecting :class:`~eventyard.storage.FileSystem` for crash and failure tests.

It wraps the real :class:`~eventyard.storage.OSFileSystem` (files really reach the disk,
so a reopened log sees exactly what a crashed process would leave behind) and can:

- ``crash_after(n)``: let ``n`` more bytes be written, cut the write that crosses the
  budget after its first bytes, and from then on fail every mutating call, as if the
  process had died at that byte (nothing else reaches the disk);
- ``disk_full_after(n)``: same cut, but as ``ENOSPC``, and the "process" lives on: a
  truncate (freeing space) still works, later writes keep failing until ``free_space()``;
- ``crash_after_ops(n)``: let ``n`` more directory changes (rename, remove) happen, then
  die at the next one (to cut a compaction's swap at every step);
- ``fail_fsync``: every fsync raises ``EIO``;
- ``fsync_gate``: an event every fsync waits for (to act while a flush is in its fsync);
- ``on_open``: a callback with the path of every file opened, to run code at a precise
  moment (e.g. append while a compaction writes its output).

``FaultFileSystem(real_sync=False)`` counts fsyncs without doing them: the simulated
crashes are process deaths, after which the page cache survives, so skipping the disk
flush changes nothing a test can observe and keeps loops of hundreds of crashes fast.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable

from eventyard.storage import File, FileSystem, OSFileSystem


class SimulatedCrash(OSError):
    """Raised by every mutating call once the simulated process has died."""


class FaultState:
    """The faults shared by a :class:`FaultFileSystem` and every file it opened."""

    def __init__(self, real_sync: bool) -> None:
        self.real_sync = real_sync
        self.budget: int | None = None
        self.ops_budget: int | None = None
        self.errno = errno.EIO
        self.crashed = False
        self.fail_fsync = False
        self.fsyncs = 0
        self.fsync_gate: threading.Event | None = None
        self.fsync_waiting = threading.Event()

    def before_fsync(self) -> None:
        self.check_alive()
        if self.fail_fsync:
            raise OSError(errno.EIO, "Input/output error (simulated fsync failure)")
        if self.fsync_gate is not None:
            self.fsync_waiting.set()
            self.fsync_gate.wait()
        self.fsyncs += 1

    def check_alive(self) -> None:
        if self.crashed:
            raise SimulatedCrash(errno.EIO, "simulated crash: the process is dead")

    def directory_change(self) -> None:
        """Count one rename or remove against ``ops_budget``; die when it is spent."""
        self.check_alive()
        if self.ops_budget is not None:
            if self.ops_budget == 0:
                self.crashed = True
                raise SimulatedCrash(errno.EIO, "simulated crash before a directory change")
            self.ops_budget -= 1

    def allow(self, size: int) -> int:
        """How many of ``size`` bytes may be written now."""
        self.check_alive()
        if self.budget is None:
            return size
        return min(size, self.budget)


class FaultFile:
    def __init__(self, inner: File, state: FaultState) -> None:
        self._inner = inner
        self._state = state

    def pread(self, size: int, position: int) -> bytes:
        return self._inner.pread(size, position)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        state = self._state
        allowed = state.allow(len(data))
        if allowed < len(data):
            if allowed:
                self._inner.write(memoryview(data)[:allowed])
            state.budget = 0
            if state.errno == errno.ENOSPC:
                raise OSError(errno.ENOSPC, "No space left on device (simulated)")
            state.crashed = True
            raise SimulatedCrash(errno.EIO, f"simulated crash after {allowed} bytes")
        self._inner.write(data)
        if state.budget is not None:
            state.budget -= len(data)

    def truncate(self, size: int) -> None:
        self._state.check_alive()
        self._inner.truncate(size)

    def fsync(self) -> None:
        self._state.before_fsync()
        if self._state.real_sync:
            self._inner.fsync()

    def size(self) -> int:
        return self._inner.size()

    def try_lock(self) -> bool:
        return self._inner.try_lock()

    def close(self) -> None:
        self._inner.close()


class FaultFileSystem:
    """:class:`OSFileSystem` with the faults of the module docstring."""

    def __init__(self, real_sync: bool = True) -> None:
        self._inner: FileSystem = OSFileSystem()
        self.state = FaultState(real_sync)
        self.on_open: Callable[[str], None] | None = None

    # -- fault controls ----------------------------------------------------------------

    def crash_after(self, size: int) -> None:
        self.state.budget = size
        self.state.errno = errno.EIO

    def disk_full_after(self, size: int) -> None:
        self.state.budget = size
        self.state.errno = errno.ENOSPC

    def crash_after_ops(self, count: int) -> None:
        self.state.ops_budget = count

    def free_space(self) -> None:
        self.state.budget = None

    @property
    def crashed(self) -> bool:
        return self.state.crashed

    # -- FileSystem --------------------------------------------------------------------

    def _opened(self, path: str, file: File) -> File:
        if self.on_open is not None:
            self.on_open(path)
        return FaultFile(file, self.state)

    def open_append(self, path: str) -> File:
        self.state.check_alive()
        return self._opened(path, self._inner.open_append(path))

    def open_read(self, path: str) -> File:
        return self._opened(path, self._inner.open_read(path))

    def open_readwrite(self, path: str) -> File:
        self.state.check_alive()
        return self._opened(path, self._inner.open_readwrite(path))

    def listdir(self, path: str) -> list[str]:
        return self._inner.listdir(path)

    def exists(self, path: str) -> bool:
        return self._inner.exists(path)

    def file_size(self, path: str) -> int:
        return self._inner.file_size(path)

    def remove(self, path: str) -> None:
        self.state.directory_change()
        self._inner.remove(path)

    def rename(self, source: str, target: str) -> None:
        self.state.directory_change()
        self._inner.rename(source, target)

    def makedirs(self, path: str) -> None:
        self.state.check_alive()
        self._inner.makedirs(path)

    def rmdir(self, path: str) -> None:
        self.state.check_alive()
        self._inner.rmdir(path)

    def fsync_dir(self, path: str) -> None:
        self.state.before_fsync()
        if self.state.real_sync:
            self._inner.fsync_dir(path)
