"""A real ``eventyard serve`` subprocess for the Kafka transport's tests.

A copy of the minimal launcher in ``tests/protocols/kafka/conftest.py`` (not imported from
there: a conftest is that directory's fixtures, not a library). The server's output goes to a
log file beside the data directory, never to a pipe nobody drains.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(data_dir: Path, port: int, timeout: float = 20.0) -> subprocess.Popen[bytes]:
    """Start ``eventyard serve`` on ``data_dir`` and ``127.0.0.1:port``; wait until it listens."""
    log = data_dir.with_name(data_dir.name + ".log")
    command = [sys.executable, "-m", "eventyard.cli", "serve", "--data-dir", str(data_dir)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, "--kafka", f"127.0.0.1:{port}", "--fsync", "never"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"eventyard serve exited with {process.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError as exc:
            if time.monotonic() > deadline:
                stop_server(process)
                raise RuntimeError(
                    f"eventyard serve did not listen on {port} in {timeout} s"
                ) from exc
            time.sleep(0.05)


def stop_server(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the server, wait for its graceful stop (kill after 10 s); its exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
