"""Several Produce requests in flight on one connection, answered in request order.

In process, the broker's file system holds every fsync at a gate (``CountingFileSystem``),
so the tests see what the connection does while Produce requests wait for durability: later
requests are read and appended meanwhile, at most ``MAX_PENDING`` of them, nothing is
answered out of order, and a graceful stop answers what was read before closing. Against a
real ``eventyard serve --fsync always``, raw pipelined requests and confluent-kafka's
idempotent producer with five requests in flight get their answers and sequences in order.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import struct
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader

from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.protocols.kafka.connection import MAX_PENDING
from eventyard.protocols.kafka.server import KafkaServer
from eventyard.records import BatchBuilder
from tests.broker.countingfs import CountingFileSystem
from tests.protocols.kafka.test_connection import connect, encode, metadata_request, receive

PRODUCE = 0
VERSION = 8
TOPIC = "pipelined"


def batch(*values: bytes) -> bytes:
    builder = BatchBuilder()
    for value in values:
        builder.append(value)
    return builder.build()


BATCH_SIZE = len(batch(b"x"))


def produce_request(correlation_id: int, records: bytes, acks: int = -1) -> bytes:
    module = importlib.import_module(load_request_schema(PRODUCE, VERSION).__module__)
    body = module.ProduceRequest(
        transactional_id=None,
        acks=acks,
        timeout=datetime.timedelta(seconds=10),
        topic_data=(
            module.TopicProduceData(
                name=TOPIC,
                partition_data=(module.PartitionProduceData(index=0, records=records),),
            ),
        ),
    )
    return encode(PRODUCE, VERSION, correlation_id, body)


def produce_answer(frame: bytes) -> tuple[int, ErrorCode, int]:
    """``(correlation id, error code, base offset)`` of a Produce v8 response frame."""
    (correlation_id,) = struct.unpack_from(">i", frame)
    body, _ = entity_reader(load_response_schema(PRODUCE, VERSION))(frame, 4)
    (topic,) = body.responses
    (partition,) = topic.partition_responses
    return correlation_id, partition.error_code, partition.base_offset


# -- in process, with fsyncs held at a gate ----------------------------------------------


@dataclass
class Gated:
    broker: Broker
    server: KafkaServer
    fs: CountingFileSystem

    def appended(self) -> int:
        """Batches appended to the topic so far (flushed or not)."""
        return self.broker.describe_topic(TOPIC).partitions[0].size_bytes // BATCH_SIZE

    async def until_appended(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while self.appended() < count:
            assert time.monotonic() < deadline, f"{self.appended()} of {count} appended"
            await asyncio.sleep(0.01)


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[Gated]:
    fs = CountingFileSystem()
    broker = await Broker.open(tmp_path, BrokerConfig(fs=fs))
    await broker.create_topic(TOPIC, TopicConfig(partitions=1, durability="always"))
    server = KafkaServer(broker, "127.0.0.1", 0, grace_s=5)
    await server.start()
    fs.gate = threading.Event()
    try:
        yield Gated(broker, server, fs)
    finally:
        fs.gate.set()
        await server.stop()


async def read_answer(reader: asyncio.StreamReader, timeout: float = 5) -> bytes:
    size = int.from_bytes(await asyncio.wait_for(reader.readexactly(4), timeout), "big")
    return await reader.readexactly(size)


async def test_a_produce_waiting_for_its_fsync_does_not_hold_the_next(gated: Gated) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gated.server.port)
    writer.write(b"".join(produce_request(cid, batch(b"x")) for cid in range(1, 6)))
    await writer.drain()
    await gated.until_appended(5)
    with pytest.raises(TimeoutError):
        await read_answer(reader, timeout=0.2)
    assert gated.fs.gate is not None
    gated.fs.gate.set()
    answers = [produce_answer(await read_answer(reader)) for _ in range(5)]
    assert answers == [(cid, ErrorCode.none, cid - 1) for cid in range(1, 6)]
    writer.close()


async def test_answers_keep_request_order_across_apis(gated: Gated) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gated.server.port)
    writer.write(
        produce_request(1, batch(b"x")) + metadata_request(2) + produce_request(3, batch(b"x"))
    )
    await writer.drain()
    await gated.until_appended(2)
    assert gated.fs.gate is not None
    gated.fs.gate.set()
    frames = [await read_answer(reader) for _ in range(3)]
    assert [struct.unpack_from(">i", frame)[0] for frame in frames] == [1, 2, 3]
    assert produce_answer(frames[2])[2] == 1
    writer.close()


async def test_reading_stops_at_max_pending_unanswered_requests(gated: Gated) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gated.server.port)
    total = MAX_PENDING + 8
    writer.write(b"".join(produce_request(cid, batch(b"x")) for cid in range(total)))
    await writer.drain()
    await gated.until_appended(MAX_PENDING)
    await asyncio.sleep(0.3)
    assert gated.appended() == MAX_PENDING, "the connection must stop reading at the bound"
    assert gated.fs.gate is not None
    gated.fs.gate.set()
    answers = [produce_answer(await read_answer(reader)) for _ in range(total)]
    assert answers == [(cid, ErrorCode.none, cid) for cid in range(total)]
    writer.close()


async def test_acks_0_requests_are_pipelined_without_answers(gated: Gated) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gated.server.port)
    writer.write(
        produce_request(1, batch(b"x"), acks=0)
        + produce_request(2, batch(b"x"), acks=0)
        + produce_request(3, batch(b"x"))
    )
    await writer.drain()
    await gated.until_appended(3)
    assert gated.fs.gate is not None
    gated.fs.gate.set()
    assert produce_answer(await read_answer(reader)) == (3, ErrorCode.none, 2)
    writer.close()


async def test_stop_answers_the_pending_requests_then_closes(gated: Gated) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gated.server.port)
    writer.write(b"".join(produce_request(cid, batch(b"x")) for cid in range(1, 4)))
    await writer.drain()
    await gated.until_appended(3)
    stopping = asyncio.create_task(gated.server.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done(), "the stop waits for the pending answers"
    assert gated.fs.gate is not None
    gated.fs.gate.set()
    answers = [produce_answer(await read_answer(reader)) for _ in range(3)]
    assert answers == [(cid, ErrorCode.none, cid - 1) for cid in range(1, 4)]
    assert await asyncio.wait_for(reader.read(), 5) == b"", "closed after the last answer"
    await asyncio.wait_for(stopping, 5)
    writer.close()


async def test_a_bad_frame_after_pending_requests_gets_them_answered_first(
    gated: Gated,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gated.server.port)
    garbage = struct.pack(">i", 12) + struct.pack(">hhi", 3, 1, 9) + b"\xff" * 4
    writer.write(produce_request(1, batch(b"x")) + produce_request(2, batch(b"x")) + garbage)
    await writer.drain()
    await gated.until_appended(2)
    assert gated.fs.gate is not None
    gated.fs.gate.set()
    answers = [produce_answer(await read_answer(reader)) for _ in range(2)]
    assert answers == [(1, ErrorCode.none, 0), (2, ErrorCode.none, 1)]
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


# -- against eventyard serve (--fsync always, its default) ---------------------------------


def test_back_to_back_produce_requests_get_ordered_answers(kafka_server: str) -> None:
    with connect(kafka_server) as sock:
        sock.sendall(metadata_request(0))
        receive(sock)
        # The topic is auto-created by the first produce; send it alone first.
        sock.sendall(produce_request(1, batch(b"a", b"b")))
        assert produce_answer(receive(sock)) == (1, ErrorCode.none, 0)
        sock.sendall(
            b"".join(produce_request(cid, batch(b"x", b"y", b"z")) for cid in range(2, 22))
        )
        answers = [produce_answer(receive(sock)) for _ in range(20)]
    assert answers == [(cid, ErrorCode.none, 2 + 3 * (cid - 2)) for cid in range(2, 22)]


def test_idempotent_confluent_producer_with_five_in_flight_keeps_order(
    kafka_server: str,
) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    errors: list[Any] = []
    failed: list[Any] = []
    producer = Producer(
        {
            "bootstrap.servers": kafka_server,
            "enable.idempotence": True,
            "acks": "all",
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 0,
            "batch.num.messages": 10,
            "error_cb": errors.append,
        }
    )
    count = 2000

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failed.append(error)

    for i in range(count):
        producer.produce("in-flight", value=b"%06d" % i, partition=0, on_delivery=delivered)
        if i % 100 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == [] and failed == []
    consumer = Consumer(
        {"bootstrap.servers": kafka_server, "group.id": "in-flight", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition("in-flight", 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(values) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value())
    consumer.close()
    assert values == [b"%06d" % i for i in range(count)]
