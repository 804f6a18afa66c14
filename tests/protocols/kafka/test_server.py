"""``KafkaServer`` in process: serving real clients, and a graceful stop."""

from __future__ import annotations

import asyncio
import datetime
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer
from kio.schema.fetch.v4.request import FetchPartition, FetchRequest, FetchTopic
from kio.static.primitive import i32, i64

from eventyard.broker import Broker, BrokerConfig
from eventyard.protocols.kafka.server import KafkaServer
from tests.protocols.kafka.test_connection import encode


async def test_serves_aiokafka_then_stops_gracefully(tmp_path: Path) -> None:
    broker = await Broker.open(tmp_path, BrokerConfig())
    server = KafkaServer(broker, "127.0.0.1", 0)
    await server.start()
    assert server.identity.advertised_port == server.port != 0
    bootstrap = f"127.0.0.1:{server.port}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await producer.start()
    try:
        sent = await producer.send_and_wait("events", b"one")
        assert (sent.topic, sent.partition, sent.offset) == ("events", 0, 0)
    finally:
        await producer.stop()
    _, idle = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 2, "an idle connection must not delay the stop"
    idle.close()
    async with await Broker.open(tmp_path, BrokerConfig()) as reopened:
        assert reopened.describe_topic("events").partitions[0].end_offset == 1


async def test_advertised_address_is_reported(tmp_path: Path) -> None:
    broker = await Broker.open(tmp_path, BrokerConfig())
    server = KafkaServer(broker, "127.0.0.1", 0, advertised=("kafka.example", 9093))
    await server.start()
    try:
        assert (server.identity.advertised_host, server.identity.advertised_port) == (
            "kafka.example",
            9093,
        )
        assert server.identity.node_id == 0
    finally:
        await server.stop()


async def test_stop_finishes_the_request_in_flight(tmp_path: Path) -> None:
    broker = await Broker.open(tmp_path, BrokerConfig())
    await broker.create_topic("quiet")
    server = KafkaServer(broker, "127.0.0.1", 0)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    long_poll = FetchRequest(
        max_wait=datetime.timedelta(milliseconds=600),
        min_bytes=i32(1),
        topics=(
            FetchTopic(
                topic="quiet",
                partitions=(
                    FetchPartition(
                        partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(1024)
                    ),
                ),
            ),
        ),
    )
    writer.write(encode(1, 4, 77, long_poll))
    await writer.drain()
    await asyncio.sleep(0.2)
    stopping = asyncio.create_task(server.stop())
    size = int.from_bytes(await asyncio.wait_for(reader.readexactly(4), 5), "big")
    frame = await reader.readexactly(size)
    assert int.from_bytes(frame[:4], "big") == 77
    assert await reader.read() == b"", "the connection closes after the in-flight answer"
    await asyncio.wait_for(stopping, 5)
    writer.close()
