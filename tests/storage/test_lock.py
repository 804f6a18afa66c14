"""DataDirLock: one opener per data directory, in this process or another."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from eventyard.errors import DataDirLockedError
from eventyard.storage import DataDirLock


def test_second_opener_in_the_same_process_is_refused(tmp_path: Path) -> None:
    directory = str(tmp_path / "data")
    lock = DataDirLock(directory)
    with pytest.raises(DataDirLockedError) as info:
        DataDirLock(directory)
    message = str(info.value)
    assert message == (
        f"data directory {directory} is in use by pid {os.getpid()} on host {socket.gethostname()}"
    )
    lock.release()
    assert not lock.held
    with DataDirLock(directory) as again:
        assert again.held
    assert not again.held


def test_another_process_is_refused_until_the_owner_exits(tmp_path: Path) -> None:
    directory = str(tmp_path)
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from eventyard.storage import DataDirLock;"
            f" lock = DataDirLock({directory!r}); print('locked', flush=True);"
            " sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
            with pytest.raises(DataDirLockedError, match=f"in use by pid {holder.pid} on host"):
                DataDirLock(directory)
        finally:
            holder.kill()
            holder.wait()
    DataDirLock(directory).release()


def test_lock_file_names_the_owner(tmp_path: Path) -> None:
    with DataDirLock(str(tmp_path)):
        content = (tmp_path / ".lock").read_text()
    assert content == f"{os.getpid()} {socket.gethostname()}\n"
