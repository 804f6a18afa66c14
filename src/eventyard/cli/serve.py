"""``eventyard serve``: run the broker as a long-lived Kafka-protocol server.

Unlike every other command, which opens the data directory for one short task, ``serve``
holds the data directory's lock until SIGINT or SIGTERM, serving Kafka clients on
``--kafka HOST:PORT``. It prints one line to stdout once the port accepts connections, so a
script can wait for it, and on a signal stops gracefully: no new connections, in-flight
requests finished, logs flushed. Topics are auto-created as a Kafka broker's default
``auto.create.topics.enable=true`` does, since Kafka clients expect it.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from eventyard.broker import BrokerConfig
from eventyard.cli.runner import DataDir, open_broker, run
from eventyard.errors import ConfigError

__all__ = ["parse_address", "serve", "serve_until_signal"]


def parse_address(option: str, value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` too); a :class:`ConfigError` naming ``option``."""
    host, sep, port_text = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{option} wants HOST:PORT, got {value!r}")
    return host, int(port_text)


def serve(
    kafka: Annotated[
        str, typer.Option("--kafka", help="Serve the Kafka protocol on HOST:PORT.")
    ] = "127.0.0.1:9092",
    advertised: Annotated[
        str | None,
        typer.Option(
            "--advertised", help="HOST:PORT clients are told to connect to (default: --kafka)."
        ),
    ] = None,
    fsync: Annotated[
        str,
        typer.Option("--fsync", help="Default durability: always, interval:MS or never."),
    ] = "always",
    data_dir: DataDir = Path(".eventyard"),
) -> None:
    """Serve Kafka clients from the data directory until interrupted (Ctrl-C or SIGTERM)."""
    host, port = parse_address("--kafka", kafka)
    announced = parse_address("--advertised", advertised) if advertised else None
    config = BrokerConfig(default_durability=fsync)
    run(serve_until_signal(data_dir, host, port, announced, config))


async def serve_until_signal(
    data_dir: Path,
    host: str,
    port: int,
    advertised: tuple[str, int] | None,
    config: BrokerConfig,
) -> None:
    # Imported here, not at the top: kio's schemas cost every other command's start-up time.
    from eventyard.protocols.kafka.server import KafkaServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with open_broker(data_dir, create=True, config=config) as broker:
        server = KafkaServer(broker, host, port, advertised)
        try:
            await server.start()
        except OSError as exc:
            raise ConfigError(f"--kafka {host}:{port}: {exc.strerror or exc}") from exc
        try:
            shown = f"{host}:{server.port}"
            typer.echo(f"eventyard serve: Kafka protocol on {shown}, data in {data_dir}")
            await stop.wait()
        finally:
            await server.stop()
