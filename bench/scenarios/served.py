"""A real ``eventyard serve`` subprocess, for the scenarios that go through the Kafka front.

The server runs as its own process (as a user runs it), on a free loopback port, with a fresh
data directory that is removed when the scenario ends, whatever happened in it. Its output
goes to a file beside the data directory, never to a pipe nobody drains; when the server fails
to start, the error says what it printed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Served", "free_port", "serve"]


@dataclass(frozen=True)
class Served:
    """A running server: its bootstrap address and its process id (for profilers)."""

    bootstrap: str
    pid: int


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace").strip()
            raise RuntimeError(f"eventyard serve exited with {process.returncode}: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"eventyard serve did not listen on port {port} within {timeout} s")


@contextmanager
def serve(directory: Path, fsync: str = "always", timeout: float = 20.0) -> Iterator[Served]:
    """Run ``eventyard serve --fsync FSYNC`` on a new ``directory``; stop it and delete after.

    The server is stopped with SIGTERM (its graceful stop flushes the log), and killed if it
    has not exited within 10 s.
    """
    directory.mkdir(parents=True)
    data_dir, log = directory / "data", directory / "serve.log"
    port = free_port()
    command = [sys.executable, "-m", "eventyard.cli", "serve", "--data-dir", str(data_dir)]
    command += ["--kafka", f"127.0.0.1:{port}", "--fsync", fsync]
    try:
        with log.open("ab") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(port, process, log, timeout)
            yield Served(f"127.0.0.1:{port}", process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
