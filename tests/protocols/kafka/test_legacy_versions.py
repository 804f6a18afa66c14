"""The old API versions and message formats, through real clients and a real library's encoders.

Against ``eventyard serve`` (``--fsync always``, its default):

- kcat (librdkafka) with ``api.version.request=false`` and ``broker.version.fallback`` 0.8.2
  or 0.9.0 speaks Produce v0/v1, Fetch v0/v1 and ListOffsets v0 with magic 0 message sets;
  every codec it has (none, gzip, snappy, lz4 with Kafka 0.8's broken lz4 header checksum)
  must round-trip. librdkafka turns the ApiVersions request back on for any fallback from
  0.10.0, so that setting is checked too but negotiates current versions.
- kafka-python 3 with ``api_version`` (0, 8, 2), (0, 9) and (0, 10, 0) produces (magic 0,
  or 1 with timestamps from 0.10), fetches and commits through the consumer.
- Records cross formats both ways: old producers to confluent-kafka and aiokafka, new
  producers (headers, zstd) to old consumers.
- The requests clients rarely send (ListOffsets v0 with ``max_num_offsets``, OffsetCommit v0,
  OffsetFetch v0, CreateTopics v0-1, DeleteTopics v0, Fetch v3's ``max_bytes``, corrupt
  message sets) are sent over a raw socket, encoded by kafka-python's own message classes.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from tests.protocols.kafka.test_connection import connect, receive

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.protocol.admin import (
        CreateTopicsRequest,
        CreateTopicsResponse,
        DeleteTopicsRequest,
        DeleteTopicsResponse,
    )
    from kafka.protocol.consumer import (
        FetchRequest,
        FetchResponse,
        ListOffsetsRequest,
        ListOffsetsResponse,
        OffsetCommitRequest,
        OffsetCommitResponse,
        OffsetFetchRequest,
        OffsetFetchResponse,
    )
    from kafka.protocol.metadata import MetadataRequest, MetadataResponse
    from kafka.protocol.producer import ProduceRequest, ProduceResponse
    from kafka.record.legacy_records import LegacyRecordBatchBuilder
    from kafka.record.memory_records import MemoryRecords

pytestmark = pytest.mark.filterwarnings(
    "ignore:(read_text|open_text) is deprecated:DeprecationWarning"
)

CODECS = ("none", "gzip", "snappy", "lz4")
CORRUPT_MESSAGE = 2
TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3
KEYS = [b"key-%d" % i for i in range(12)]


def value_of(topic: str, key: bytes) -> bytes:
    return topic.encode() + b"/" + key


# -- helpers ----------------------------------------------------------------------------


@pytest.fixture
def kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.skip("kcat is not installed")
    return path


def kcat_produce(kcat: str, bootstrap: str, topic: str, codec: str, *settings: str) -> None:
    lines = b"".join(key + b"\t" + value_of(topic, key) + b"\n" for key in KEYS)
    command = [kcat, "-b", bootstrap, "-P", "-t", topic, "-p", "0", "-K", "\t", "-z", codec]
    command += [arg for setting in settings for arg in ("-X", setting)]
    subprocess.run(command, input=lines, check=True, capture_output=True, timeout=30)


def kcat_consume(kcat: str, bootstrap: str, topic: str, *settings: str) -> list[list[bytes]]:
    """``[offset, key, value]`` of every record of partition 0, read from the beginning."""
    command = [kcat, "-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e"]
    command += [arg for setting in settings for arg in ("-X", setting)]
    out = subprocess.run(
        [*command, "-f", "%o\t%k\t%s\n"], check=True, capture_output=True, timeout=30
    ).stdout
    return [line.split(b"\t") for line in out.splitlines()]


def legacy(fallback: str) -> tuple[str, str]:
    return ("api.version.request=false", f"broker.version.fallback={fallback}")


def exchange(sock: socket.socket, request: Any, response: Any, version: int) -> Any:
    """Send ``request`` at ``version`` (kafka-python's encoder) and decode the answer."""
    request.with_header(correlation_id=version + 100, client_id="legacy-test")
    sock.sendall(request.encode(version=version, header=True, framed=True))
    frame = receive(sock)
    assert frame, "the server closed the connection"
    answer = response.decode(frame, version=version, header=True)
    assert answer.header.correlation_id == version + 100
    return answer


def message_set(magic: int, pairs: list[tuple[bytes, bytes]], codec: int = 0) -> bytes:
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=codec, batch_size=1 << 20)
    for offset, (key, value) in enumerate(pairs):
        builder.append(offset, timestamp=1_000 + offset, key=key, value=value)
    return bytes(builder.build())


def produce(topic: str, partitions: dict[int, bytes], acks: int = 1) -> Any:
    data = ProduceRequest.TopicProduceData
    return ProduceRequest(
        acks=acks,
        timeout_ms=10_000,
        topic_data=[
            data(
                name=topic,
                partition_data=[
                    data.PartitionProduceData(index=index, records=records)
                    for index, records in partitions.items()
                ],
            )
        ],
    )


def fetch(topic: str, offset: int, *, max_wait_ms: int = 0, max_bytes: int = 1 << 20) -> Any:
    fetch_topic = FetchRequest.FetchTopic
    return FetchRequest(
        replica_id=-1,
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        max_bytes=max_bytes,
        topics=[
            fetch_topic(
                topic=topic,
                partitions=[
                    fetch_topic.FetchPartition(
                        partition=0, fetch_offset=offset, partition_max_bytes=1 << 20
                    )
                ],
            )
        ],
    )


def fetched(answer: Any) -> list[tuple[int, int | None, bytes | None, bytes | None]]:
    """``(offset, timestamp, key, value)`` of the message set of the first partition."""
    (partition,) = answer.responses[0].partitions
    assert partition.error_code == 0
    return [
        (m.offset, m.timestamp, m.key, m.value)
        for wrapper in MemoryRecords(partition.records)
        for m in wrapper
    ]


# -- kcat (librdkafka 2) with old broker versions ---------------------------------------


@pytest.mark.parametrize("fallback", ["0.8.2", "0.9.0", "0.10.0"])
def test_kcat_round_trips_every_codec(kafka_server: str, kcat: str, fallback: str) -> None:
    for codec in CODECS:
        topic = f"kcat-{fallback.replace('.', '')}-{codec}"
        kcat_produce(kcat, kafka_server, topic, codec, *legacy(fallback))
        got = kcat_consume(kcat, kafka_server, topic, *legacy(fallback))
        assert got == [
            [str(i).encode(), key, value_of(topic, key)] for i, key in enumerate(KEYS)
        ], codec


# -- kafka-python 3 with old api_version settings -----------------------------------------


@pytest.mark.parametrize("api_version", [(0, 8, 2), (0, 9), (0, 10, 0)])
def test_kafka_python_produces_fetches_and_commits(
    kafka_server: str, api_version: tuple[int, ...]
) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    for codec in CODECS:
        topic = f"kp-{''.join(map(str, api_version))}-{codec}"
        producer = KafkaProducer(
            bootstrap_servers=kafka_server,
            api_version=api_version,
            compression_type=None if codec == "none" else codec,
            enable_idempotence=False,
            acks=1,
        )
        before = int(time.time() * 1000)
        for key in KEYS:
            producer.send(topic, key=key, value=value_of(topic, key), partition=0)
        producer.flush(10)
        producer.close(5)
        consumer = KafkaConsumer(
            bootstrap_servers=kafka_server,
            api_version=api_version,
            group_id=f"group-{topic}",
            enable_auto_commit=False,
            consumer_timeout_ms=5000,
        )
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        got = []
        for message in consumer:
            got.append(message)
            if len(got) == len(KEYS):
                break
        assert [(m.offset, m.key, m.value) for m in got] == [
            (i, key, value_of(topic, key)) for i, key in enumerate(KEYS)
        ], codec
        if api_version >= (0, 10):
            assert all(before <= m.timestamp <= before + 10_000 for m in got), codec
        consumer.commit({partition: OffsetAndMetadata(7, "legacy", -1)})
        assert consumer.committed(partition) == 7
        consumer.close()


# -- records across formats ---------------------------------------------------------------


def test_old_producers_records_are_read_by_new_clients(kafka_server: str, kcat: str) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as ConfluentPartition
    from kafka import KafkaProducer

    kcat_produce(kcat, kafka_server, "from-old", "gzip", *legacy("0.8.2"))
    producer = KafkaProducer(
        bootstrap_servers=kafka_server, api_version=(0, 10, 0), enable_idempotence=False
    )
    producer.send("from-old", key=b"magic-1", value=b"with a time", partition=0, timestamp_ms=42)
    producer.flush(10)
    producer.close(5)
    want = [(key, value_of("from-old", key)) for key in KEYS] + [(b"magic-1", b"with a time")]

    consumer = Consumer({"bootstrap.servers": kafka_server, "group.id": "new-reader"})
    consumer.assign([ConfluentPartition("from-old", 0, 0)])
    messages: list[Any] = []
    deadline = time.monotonic() + 20
    while len(messages) < len(want) and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            messages.append(message)
    consumer.close()
    assert [(m.key(), m.value()) for m in messages] == want
    assert messages[-1].timestamp()[1] == 42

    async def aiokafka_read() -> list[Any]:
        reader = AIOKafkaConsumer(bootstrap_servers=kafka_server, enable_auto_commit=False)
        await reader.start()
        try:
            reader.assign([TopicPartition("from-old", 0)])
            reader.seek(TopicPartition("from-old", 0), 0)
            records: list[Any] = []
            while len(records) < len(want):
                batches = await reader.getmany(timeout_ms=1000)
                records += [r for batch in batches.values() for r in batch]
            return records
        finally:
            await reader.stop()

    records = asyncio.run(aiokafka_read())
    assert [(r.key, r.value) for r in records] == want
    assert records[-1].timestamp == 42


def test_new_producers_records_are_read_by_old_clients(kafka_server: str, kcat: str) -> None:
    from confluent_kafka import Producer
    from kafka import KafkaConsumer, TopicPartition

    producer = Producer(
        {"bootstrap.servers": kafka_server, "compression.type": "zstd", "linger.ms": 5}
    )
    for i, key in enumerate(KEYS):
        producer.produce(
            "from-new",
            key=key,
            value=value_of("from-new", key),
            partition=0,
            timestamp=5_000 + i,
            headers=[("trace", b"dropped for old readers")],
        )
    assert producer.flush(10) == 0

    got = kcat_consume(kcat, kafka_server, "from-new", *legacy("0.8.2"))
    assert got == [[str(i).encode(), k, value_of("from-new", k)] for i, k in enumerate(KEYS)]

    for api_version in [(0, 9), (0, 10, 0)]:
        consumer = KafkaConsumer(
            bootstrap_servers=kafka_server, api_version=api_version, consumer_timeout_ms=5000
        )
        partition = TopicPartition("from-new", 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        messages = []
        for message in consumer:
            messages.append(message)
            if len(messages) == len(KEYS):
                break
        consumer.close()
        assert [(m.key, m.value) for m in messages] == [
            (key, value_of("from-new", key)) for key in KEYS
        ]
        timestamps = [m.timestamp for m in messages]
        if api_version >= (0, 10):
            assert timestamps == [5_000 + i for i in range(len(KEYS))]
        else:
            assert timestamps == [None] * len(KEYS), "magic 0 messages have no timestamp"


# -- requests over a raw socket, encoded by kafka-python --------------------------------


@pytest.fixture
def sock(kafka_server: str) -> Iterator[socket.socket]:
    with connect(kafka_server) as opened:
        opened.settimeout(10)
        yield opened


def test_produce_v0_to_v2_answers_with_each_versions_fields(sock: socket.socket) -> None:
    for version in (0, 1, 2):
        magic = 0 if version < 2 else 1
        records = message_set(magic, [(b"k", b"v%d" % version)])
        answer = exchange(sock, produce("answers", {0: records}), ProduceResponse, version)
        (partition,) = answer.responses[0].partition_responses
        assert (partition.error_code, partition.base_offset) == (0, version)
        if version >= 1:
            assert answer.throttle_time_ms == 0
        if version == 2:
            assert partition.log_append_time_ms == -1
    answer = exchange(sock, fetch("answers", 0), FetchResponse, 2)
    assert [(o, k, v) for o, _, k, v in fetched(answer)] == [
        (0, b"k", b"v0"),
        (1, b"k", b"v1"),
        (2, b"k", b"v2"),
    ]


def test_corrupt_message_crc_is_refused_and_the_connection_carries_on(
    sock: socket.socket,
) -> None:
    good = message_set(1, [(b"good", b"message")])
    bad = bytearray(message_set(1, [(b"bad", b"message")]))
    bad[-1] ^= 0x20
    request = produce("crc", {0: good})
    request.topic_data += produce("crc-other", {0: bytes(bad)}).topic_data
    answer = exchange(sock, request, ProduceResponse, 2)
    codes = {t.name: t.partition_responses[0].error_code for t in answer.responses}
    assert codes == {"crc": 0, "crc-other": CORRUPT_MESSAGE}
    garbage = exchange(sock, produce("crc", {0: b"\x00" * 30}), ProduceResponse, 1)
    assert garbage.responses[0].partition_responses[0].error_code == CORRUPT_MESSAGE
    again = exchange(sock, produce("crc", {0: good}), ProduceResponse, 2)
    assert again.responses[0].partition_responses[0].base_offset == 1
    answer = exchange(sock, fetch("crc", 0), FetchResponse, 3)
    assert [k for _, _, k, _ in fetched(answer)] == [b"good", b"good"]
    answer = exchange(sock, fetch("crc-other", 0), FetchResponse, 3)
    (nothing,) = answer.responses[0].partitions
    assert nothing.error_code == UNKNOWN_TOPIC_OR_PARTITION, "nothing of it was stored"


def test_fetch_v3_answers_whole_messages_within_max_bytes(sock: socket.socket) -> None:
    pairs = [(b"key-%d" % i, b"x" * 100) for i in range(10)]
    exchange(sock, produce("capped", {0: message_set(1, pairs)}), ProduceResponse, 2)
    one = len(message_set(1, pairs[:1]))
    answer = exchange(sock, fetch("capped", 0, max_bytes=3 * one + 10), FetchResponse, 3)
    assert [o for o, *_ in fetched(answer)] == [0, 1, 2]
    answer = exchange(sock, fetch("capped", 4, max_bytes=1), FetchResponse, 3)
    assert [o for o, *_ in fetched(answer)] == [4], "the first message always comes whole"
    answer = exchange(sock, fetch("capped", 8), FetchResponse, 0)
    assert [(o, t) for o, t, *_ in fetched(answer)] == [(8, None), (9, None)]


def test_fetch_v0_long_polls_until_a_message_arrives(kafka_server: str) -> None:
    with connect(kafka_server) as setup:
        exchange(
            setup, produce("polled", {0: message_set(0, [(b"a", b"first")])}), ProduceResponse, 0
        )

    def produce_later() -> None:
        time.sleep(0.4)
        with connect(kafka_server) as other:
            exchange(
                other, produce("polled", {0: message_set(0, [(b"b", b"late")])}), ProduceResponse, 0
            )

    with connect(kafka_server) as sock:
        sock.settimeout(10)
        thread = threading.Thread(target=produce_later)
        started = time.monotonic()
        thread.start()
        answer = exchange(sock, fetch("polled", 1, max_wait_ms=5000), FetchResponse, 0)
        waited = time.monotonic() - started
        thread.join()
    assert [(o, v) for o, _, _, v in fetched(answer)] == [(1, b"late")]
    assert 0.3 < waited < 4


def test_list_offsets_v0_answers_a_list_of_offsets(sock: socket.socket) -> None:
    records = message_set(0, [(b"k", b"v")] * 5)
    exchange(sock, produce("listed", {0: records}), ProduceResponse, 0)
    lo_topic = ListOffsetsRequest.ListOffsetsTopic

    def ask(timestamp: int, max_num_offsets: int, partition: int = 0) -> Any:
        request = ListOffsetsRequest(
            replica_id=-1,
            topics=[
                lo_topic(
                    name="listed",
                    partitions=[
                        lo_topic.ListOffsetsPartition(
                            partition_index=partition,
                            timestamp=timestamp,
                            max_num_offsets=max_num_offsets,
                        )
                    ],
                )
            ],
        )
        (answer,) = exchange(sock, request, ListOffsetsResponse, 0).topics[0].partitions
        return answer

    assert ask(-1, 1).old_style_offsets == [5]
    assert ask(-2, 3).old_style_offsets == [0]
    assert ask(-1, 0).old_style_offsets == []
    assert ask(-1, 1, partition=7).error_code == UNKNOWN_TOPIC_OR_PARTITION


def test_offset_commit_v0_v1_and_offset_fetch_v0_share_the_offsets_store(
    sock: socket.socket,
) -> None:
    exchange(
        sock, produce("committed", {0: message_set(0, [(b"k", b"v")] * 3)}), ProduceResponse, 0
    )
    commit_topic = OffsetCommitRequest.OffsetCommitRequestTopic

    def commit(version: int, offset: int) -> int:
        request = OffsetCommitRequest(
            group_id="old-group",
            generation_id_or_member_epoch=-1,
            member_id="",
            topics=[
                commit_topic(
                    name="committed",
                    partitions=[
                        commit_topic.OffsetCommitRequestPartition(
                            partition_index=0,
                            committed_offset=offset,
                            commit_timestamp=-1,
                            committed_metadata=f"v{version}",
                        )
                    ],
                )
            ],
        )
        answer = exchange(sock, request, OffsetCommitResponse, version)
        return int(answer.topics[0].partitions[0].error_code)

    def committed(version: int) -> tuple[int, str]:
        request = OffsetFetchRequest(
            group_id="old-group",
            topics=[
                OffsetFetchRequest.OffsetFetchRequestTopic(name="committed", partition_indexes=[0])
            ],
        )
        (partition,) = exchange(sock, request, OffsetFetchResponse, version).topics[0].partitions
        assert partition.error_code == 0
        return partition.committed_offset, partition.metadata

    assert commit(0, 2) == 0
    assert committed(0) == committed(1) == (2, "v0")
    assert commit(1, 3) == 0
    assert committed(0) == (3, "v1")


def test_create_topics_v0_v1_and_delete_topics_v0(sock: socket.socket) -> None:
    creatable = CreateTopicsRequest.CreatableTopic

    def create(version: int, name: str, validate_only: bool = False) -> Any:
        request = CreateTopicsRequest(
            topics=[
                creatable(
                    name=name, num_partitions=3, replication_factor=1, assignments=[], configs=[]
                )
            ],
            timeout_ms=5000,
            validate_only=validate_only,
        )
        (result,) = exchange(sock, request, CreateTopicsResponse, version).topics
        return result

    assert create(0, "made-by-v0").error_code == 0
    assert create(0, "made-by-v0").error_code == TOPIC_ALREADY_EXISTS
    checked = create(1, "only-checked", validate_only=True)
    assert (checked.error_code, checked.error_message) == (0, None)
    assert create(1, "made-by-v0").error_message

    metadata = exchange(sock, MetadataRequest(topics=None), MetadataResponse, 0)
    partitions = {t.name: len(t.partitions) for t in metadata.topics}
    assert partitions.get("made-by-v0") == 3
    assert "only-checked" not in partitions

    request = DeleteTopicsRequest(topic_names=["made-by-v0", "never-made"], timeout_ms=5000)
    deleted = exchange(sock, request, DeleteTopicsResponse, 0)
    assert {r.name: r.error_code for r in deleted.responses} == {
        "made-by-v0": 0,
        "never-made": UNKNOWN_TOPIC_OR_PARTITION,
    }
