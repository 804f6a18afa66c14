"""``eventyard serve``: argument checks, the ready line, and a clean stop on a signal."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from eventyard.cli.serve import parse_address
from eventyard.errors import ConfigError
from tests.cli.support import Cli
from tests.protocols.kafka.conftest import free_port


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:9092", ("127.0.0.1", 9092)), ("[::1]:0", ("::1", 0)), ("h:65535", ("h", 65535))],
)
def test_parse_address(text: str, address: tuple[str, int]) -> None:
    assert parse_address("--kafka", text) == address


@pytest.mark.parametrize("text", ["9092", ":9092", "host:", "host:port", "host:65536", "h:-1"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="--kafka wants HOST:PORT"):
        parse_address("--kafka", text)


def test_bad_kafka_address_is_a_clean_error(cli: Cli) -> None:
    cli("serve", "--kafka", "nowhere").failed("--kafka", "HOST:PORT")


def test_bad_fsync_is_a_clean_error(cli: Cli, data_dir: Path) -> None:
    cli("serve", "--kafka", "127.0.0.1:0", "--fsync", "sometimes").failed("sometimes")
    assert not data_dir.exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_announces_readiness_and_stops_on_a_signal(
    cli: Cli, data_dir: Path, cli_env: dict[str, str], signum: int
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "eventyard.cli", "serve", "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [*command, "--kafka", f"127.0.0.1:{port}", "--fsync", "interval:50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line == f"eventyard serve: Kafka protocol on 127.0.0.1:{port}, data in {data_dir}\n"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        process.send_signal(signum)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err.decode()
    assert err == b""
    cli("topics", "list").ok()


def test_busy_port_is_a_clean_error(cli: Cli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cli("serve", "--kafka", f"127.0.0.1:{port}").failed(f"--kafka 127.0.0.1:{port}")
