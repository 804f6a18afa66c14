"""Produce and consume round trips through ``eventyard serve`` with real Kafka clients.

kafka-python, aiokafka, confluent-kafka and kcat (skipped if missing) each produce keyed
records with every compression codec the client supports (none, gzip, snappy, lz4, zstd),
with the idempotent producer on (off for gzip), then read them back from the beginning. Each
record must land on the partition Kafka's murmur2 partitioner gives its key (librdkafka is
told to use ``murmur2_random``, the Java client's choice), and come back with its key, value
and offset. One server serves each client's whole matrix, one topic per codec, to keep the
suite fast.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventyard.broker import Broker, TopicConfig, partition_for_key

pytestmark = pytest.mark.filterwarnings(
    "ignore:(read_text|open_text) is deprecated:DeprecationWarning"
)

PARTITIONS = 3
COUNT = 30
KEYS = [f"key-{i}".encode() for i in range(COUNT)]
ALL_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
TOPICS = {codec: f"interop-{codec}" for codec in ALL_CODECS}


def expected(topic: str) -> dict[bytes, tuple[int, bytes]]:
    """Each key's partition by murmur2 and the value produced with it."""
    return {key: (partition_for_key(key, PARTITIONS), topic.encode() + b":" + key) for key in KEYS}


@pytest.fixture
def kafka_data_dir(tmp_path: Path) -> Path:
    """The served data dir, with one topic of ``PARTITIONS`` partitions per codec already in it.

    Overrides the conftest fixture so the topics exist before ``kafka_server`` starts, without
    depending on CreateTopics.
    """
    path = tmp_path / "kafka-data"

    async def create() -> None:
        async with await Broker.open(path) as broker:
            for name in TOPICS.values():
                await broker.create_topic(name, TopicConfig(partitions=PARTITIONS))

    asyncio.run(create())
    return path


def kafka_python_codecs() -> tuple[str, ...]:
    from kafka import codec

    available = {
        "none": True,
        "gzip": codec.has_gzip(),
        "snappy": codec.has_snappy(),
        "lz4": codec.has_lz4(),
        "zstd": codec.has_zstd(),
    }
    return tuple(name for name in ALL_CODECS if available[name])


def test_kafka_python_round_trip(kafka_server: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    for codec in kafka_python_codecs():
        topic = TOPICS[codec]
        producer = KafkaProducer(
            bootstrap_servers=kafka_server,
            compression_type=None if codec == "none" else codec,
            enable_idempotence=codec != "gzip",
            acks="all",
            linger_ms=5,
        )
        want = expected(topic)
        futures = {key: producer.send(topic, key=key, value=want[key][1]) for key in KEYS}
        placed = {key: future.get(timeout=10).partition for key, future in futures.items()}
        producer.close(timeout=5)
        assert placed == {key: partition for key, (partition, _) in want.items()}, codec

        consumer = KafkaConsumer(
            bootstrap_servers=kafka_server,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            consumer_timeout_ms=5_000,
        )
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        got: dict[bytes, tuple[int, bytes]] = {}
        offsets: dict[int, list[int]] = {}
        for message in consumer:
            got[message.key] = (message.partition, message.value)
            offsets.setdefault(message.partition, []).append(message.offset)
            if len(got) == COUNT:
                break
        consumer.close()
        assert got == want, codec
        assert all(seen == list(range(len(seen))) for seen in offsets.values()), codec


async def test_aiokafka_round_trip(kafka_server: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    for codec, topic in TOPICS.items():
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_server,
            compression_type=None if codec == "none" else codec,
            enable_idempotence=codec != "gzip",
            linger_ms=5,
        )
        await producer.start()
        want = expected(topic)
        try:
            sent = [await producer.send(topic, key=key, value=want[key][1]) for key in KEYS]
            placed = {key: (await future).partition for key, future in zip(KEYS, sent, strict=True)}
        finally:
            await producer.stop()
        assert placed == {key: partition for key, (partition, _) in want.items()}, codec

        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_server, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await consumer.start()
        got: dict[bytes, tuple[int, bytes]] = {}
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
            await consumer.seek_to_beginning()
            async with asyncio.timeout(10):
                while len(got) < COUNT:
                    batches = await consumer.getmany(timeout_ms=500)
                    for messages in batches.values():
                        for message in messages:
                            assert message.key is not None and message.value is not None
                            got[message.key] = (message.partition, message.value)
            assigned = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            ends = await consumer.end_offsets(assigned)
            starts = await consumer.beginning_offsets(assigned)
            by_time = await consumer.offsets_for_times({tp: 0 for tp in assigned})
        finally:
            await consumer.stop()
        assert got == want, codec
        placement = [p for p, _ in want.values()]
        counts = [placement.count(partition) for partition in range(PARTITIONS)]
        assert [ends[tp] for tp in assigned] == counts, codec
        assert [starts[tp] for tp in assigned] == [0] * PARTITIONS, codec
        assert [by_time[tp] and by_time[tp].offset for tp in assigned] == [
            0 if count else None for count in counts
        ], codec


@pytest.fixture
def confluent() -> Iterator[None]:
    pytest.importorskip("confluent_kafka")
    yield


def test_confluent_kafka_round_trip(kafka_server: str, confluent: None) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    for codec, topic in TOPICS.items():
        producer = Producer(
            {
                "bootstrap.servers": kafka_server,
                "compression.type": codec,
                "enable.idempotence": codec != "gzip",
                "linger.ms": 5,
                # librdkafka's default partitioner is consistent_random (crc32); Java's is murmur2.
                "partitioner": "murmur2_random",
            }
        )
        want = expected(topic)
        placed: dict[bytes, int] = {}
        errors: list[str] = []

        def delivered(
            error: object, message: Any, sink: dict[bytes, int] = placed, failed: list[str] = errors
        ) -> None:
            if error is not None:
                failed.append(str(error))
            else:
                sink[message.key()] = message.partition()

        for key in KEYS:
            producer.produce(topic, key=key, value=want[key][1], on_delivery=delivered)
        assert producer.flush(10) == 0, codec
        assert errors == [], codec
        assert placed == {key: partition for key, (partition, _) in want.items()}, codec

        consumer = Consumer(
            {
                "bootstrap.servers": kafka_server,
                "group.id": f"interop-{topic}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
            }
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        got: dict[bytes, tuple[int, bytes]] = {}
        try:
            for _ in range(100):
                if len(got) == COUNT:
                    break
                message: Any
                for message in consumer.consume(num_messages=COUNT, timeout=0.5):
                    assert message.error() is None, message.error()
                    got[message.key()] = (message.partition(), message.value())
        finally:
            consumer.close()
        assert got == want, codec


def test_kcat_round_trip(kafka_server: str) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.skip("kcat is not installed")
    for codec, topic in TOPICS.items():
        want = expected(topic)
        lines = b"".join(key + b"\t" + want[key][1] + b"\n" for key in KEYS)
        produce = [kcat, "-b", kafka_server, "-P", "-t", topic, "-K", "\t", "-z", codec]
        settings = ["partitioner=murmur2_random", f"enable.idempotence={codec != 'gzip'}".lower()]
        produce += [arg for setting in settings for arg in ("-X", setting)]
        subprocess.run(produce, input=lines, check=True, capture_output=True, timeout=20)
        consume = [kcat, "-b", kafka_server, "-C", "-t", topic, "-o", "beginning", "-e"]
        out = subprocess.run(
            [*consume, "-f", "%p\t%o\t%k\t%s\n"], check=True, capture_output=True, timeout=20
        ).stdout
        got: dict[bytes, tuple[int, bytes]] = {}
        offsets: dict[int, list[int]] = {}
        for line in out.splitlines():
            partition, offset, key, value = line.split(b"\t")
            got[key] = (int(partition), value)
            offsets.setdefault(int(partition), []).append(int(offset))
        assert got == want, codec
        assert all(seen == list(range(len(seen))) for seen in offsets.values()), codec
