"""Fixtures running a real ``eventyard serve --kafka`` subprocess for client tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from eventyard.broker import Broker, BrokerConfig, TopicConfig


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Block until ``port`` accepts connections; fail if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"eventyard serve exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"eventyard serve did not listen on port {port} in {timeout} s")


def start_server(
    data_dir: Path, port: int, *extra: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``eventyard serve`` on ``data_dir`` and ``127.0.0.1:port``; wait until it listens.

    Its stdout and stderr are appended to ``log`` (default: ``<data_dir>.log`` beside it), a
    file rather than a pipe nobody drains, which could fill and block the server.
    """
    if log is None:
        log = data_dir.with_name(data_dir.name + ".log")
    command = [sys.executable, "-m", "eventyard.cli", "serve", "--data-dir", str(data_dir)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, "--kafka", f"127.0.0.1:{port}", *extra],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process)
    except BaseException:
        stop_server(process)
        raise
    return process


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


@pytest.fixture
def kafka_data_dir(tmp_path: Path) -> Path:
    """The data directory ``kafka_server`` serves (reuse it to restart a server on it)."""
    return tmp_path / "kafka-data"


@pytest.fixture
def kafka_server(kafka_data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """A running ``eventyard serve`` subprocess; yields its bootstrap ``"127.0.0.1:PORT"``.

    The server's output is in ``tmp_path / "serve.log"``.
    """
    port = free_port()
    process = start_server(kafka_data_dir, port, log=tmp_path / "serve.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """An in-process broker with topic ``orders`` of two partitions, for handler-level tests.

    Test modules that need another set-up define their own ``broker`` fixture.
    """
    async with await Broker.open(tmp_path, BrokerConfig()) as opened:
        await opened.create_topic("orders", TopicConfig(partitions=2))
        yield opened
