"""KafkaTransport: the shared contract against a real ``eventyard serve``, and an app on it.

The server is a subprocess on a free loopback port with a temporary data directory, shared
by the module; every case uses its own topics and groups. Receivers use short heartbeats so
that rebalances take a fraction of a second rather than Kafka's default seconds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest

from eventyard.app import App, RetryPolicy, dlq_topic, parse_dead_letter
from eventyard.broker import Broker
from eventyard.errors import ConfigError, InvalidPartitionsError, TransportError
from eventyard.events import EventRegistry
from eventyard.records import split_batches
from eventyard.testing import AppHarness
from eventyard.transports import KafkaTransport, MemoryTransport, Outgoing, Transport
from eventyard.transports.kafka import INSTALL_HINT
from tests.transports.contract import (
    TransportContract,
    collect,
    numbered,
    partitions_of,
    settle,
    unique,
)
from tests.transports.kafka_server import free_port, start_server, stop_server

FAST = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 100, "request_timeout_ms": 10_000}


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ``eventyard serve``; its ``"127.0.0.1:PORT"``."""
    port = free_port()
    process = start_server(tmp_path_factory.mktemp("kafka") / "data", port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_server(process)


class TestKafkaTransport(TransportContract):
    @pytest.fixture
    async def transport(self, bootstrap: str) -> AsyncIterator[Transport]:
        async with KafkaTransport(bootstrap, **FAST) as transport:  # type: ignore[arg-type]
            yield transport


def test_importing_the_transports_does_not_import_aiokafka() -> None:
    code = (
        "import sys, eventyard.transports\n"
        "from eventyard.transports import KafkaTransport\n"
        "assert 'aiokafka' not in sys.modules, 'aiokafka was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_aiokafka_construction_says_what_to_install(tmp_path: Path) -> None:
    blocker = tmp_path / "aiokafka.py"
    blocker.write_text("raise ImportError('aiokafka is not installed')\n")
    code = (
        "from eventyard.errors import MissingDependencyError\n"
        "from eventyard.transports import KafkaTransport\n"
        "try:\n"
        "    KafkaTransport('127.0.0.1:9092')\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == INSTALL_HINT


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError):
        KafkaTransport("")
    with pytest.raises(InvalidPartitionsError):
        KafkaTransport("h:1", partitions=0)
    with pytest.raises(ConfigError):
        KafkaTransport("h:1", acks=1)  # idempotence needs acks="all"
    KafkaTransport("h:1", acks=1, enable_idempotence=False)
    with pytest.raises(ConfigError):
        KafkaTransport("h:1", compression="brotli")
    with pytest.raises(ConfigError, match="max_batch_size"):
        KafkaTransport("h:1", max_batch_size=0)
    with pytest.raises(ConfigError):
        KafkaTransport("h:1", session_timeout_ms=1_000, heartbeat_interval_ms=1_000)


async def test_an_unreachable_cluster_is_a_transport_error() -> None:
    transport = KafkaTransport(f"127.0.0.1:{free_port()}", request_timeout_ms=1_000)
    with pytest.raises(TransportError, match="cannot reach"):
        await transport.start()
    await transport.close()


async def test_compressed_batches_round_trip(bootstrap: str) -> None:
    topic = unique("t")
    async with KafkaTransport(bootstrap, compression="gzip", **FAST) as transport:  # type: ignore[arg-type]
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, numbered(500))
        async with transport.receiver([topic], unique("g")) as receiver:
            got = await collect(receiver, 500)
    assert [m.value for m in got] == [f"m{i}".encode() for i in range(500)]


async def test_a_publish_bigger_than_a_batch_keeps_its_order(bootstrap: str) -> None:
    topic = unique("t")
    big = b"x" * 200_000  # over a 16 KiB batch: a batch of its own
    messages = [Outgoing(None, f"{i:04d}".encode() + b"." * 2_000) for i in range(300)]
    async with KafkaTransport(bootstrap, max_batch_size=16_384, **FAST) as transport:  # type: ignore[arg-type]
        await transport.ensure_topic(topic, 1)
        await transport.publish(topic, [*messages[:150], Outgoing(b"big", big), *messages[150:]])
        async with transport.receiver([topic], unique("g")) as receiver:
            got = await collect(receiver, 301)
    assert [m.offset for m in got] == list(range(301))
    assert got[150].value == big
    assert [m.value for m in got[:150] + got[151:]] == [m.value for m in messages]


@pytest.mark.parametrize(("size", "batches"), [({}, 1), ({"max_batch_size": 16_384}, 38)])
async def test_a_publish_goes_as_one_batch_when_it_fits(
    tmp_path: Path, size: dict[str, int], batches: int
) -> None:
    """300 records of about 2 KB (600 KB) make one record batch, so one produce request and
    one fetch for a consumer; aiokafka's own 16 KiB default would make 38, sent one after
    another. Counted in the server's log, read back once it has stopped."""
    data, port = tmp_path / "data", free_port()
    messages = [Outgoing(None, f"{i:04d}".encode() + b"." * 2_000) for i in range(300)]
    server = start_server(data, port)
    try:
        async with KafkaTransport(f"127.0.0.1:{port}", **size, **FAST) as transport:  # type: ignore[arg-type]
            await transport.ensure_topic("t", 1)
            await transport.publish("t", messages)
    finally:
        stop_server(server)
    async with await Broker.open(data) as broker:
        stored = (await broker.fetch("t", 0, 0, max_bytes=2_000_000)).records
    headers = [header for _, header in split_batches(stored)]
    assert len(headers) == batches
    assert sum(h.record_count for h in headers) == 300


async def test_topics_it_creates_get_its_partition_count(bootstrap: str) -> None:
    mine, default = unique("t"), unique("t")
    async with KafkaTransport(bootstrap, partitions=3, **FAST) as transport:  # type: ignore[arg-type]
        await transport.ensure_topic(mine)
        async with transport.receiver([mine], unique("g")) as receiver:
            await settle([receiver], partitions_of(mine, 3))
    async with KafkaTransport(bootstrap, **FAST) as transport:  # type: ignore[arg-type]
        await transport.ensure_topic(default)  # the cluster's default: one, on eventyard serve
        async with transport.receiver([default], unique("g")) as receiver:
            await settle([receiver], partitions_of(default, 1))


registry = EventRegistry()


@registry.event("test.listing", version=1)
class Listing(msgspec.Struct):
    id: str
    price: int


class Unpriced(Exception):
    pass


async def test_an_app_runs_on_kafka_and_dead_letters_land(bootstrap: str) -> None:
    topic, group = unique("listings"), unique("valuer")
    app = App(MemoryTransport(), source="tests", registry=registry, commit_interval=0.05)
    seen: list[str] = []

    @app.subscribe(topic, group=group, retry=RetryPolicy(max_attempts=2, initial_delay=0.001))
    async def value(listing: Listing) -> None:
        if listing.price < 0:
            raise Unpriced(f"listing {listing.id} has no price")
        seen.append(listing.id)

    transport = KafkaTransport(bootstrap, partitions=2, **FAST)  # type: ignore[arg-type]
    async with AppHarness(app, transport=transport, timeout=30.0) as harness:
        for i in range(6):
            await harness.publish(topic, Listing(f"L{i}", -1 if i == 3 else 100 + i), key=f"L{i}")
        await harness.settle()
        dead = [parse_dead_letter(m) for m in await harness.messages(dlq_topic(topic, group))]
        assert harness.stats(group).handled == 5
    assert sorted(seen) == ["L0", "L1", "L2", "L4", "L5"]
    assert [(d.reason, d.attempts, d.group, d.original_topic) for d in dead] == [
        ("handler", 2, group, topic)
    ]
    assert "listing L3 has no price" in dead[0].error
