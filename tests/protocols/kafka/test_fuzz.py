"""Mutated frames from real client captures never crash ``eventyard serve``.

A recording proxy sits between real clients (kafka-python and confluent-kafka) and a real
``eventyard serve`` subprocess, which advertises the proxy's address so every connection the
clients open goes through it. The clients create a topic, produce with the idempotent
producer, consume in a group, commit and leave; kafka-python also runs as a 0.8.2 and a
0.10.0 client (Produce v0/v2 with message sets, Fetch v0/v2, ListOffsets v0, OffsetCommit
v1/v2). The proxy keeps every request frame they sent (the ApiVersions, Metadata, Produce,
Fetch, ListOffsets, group and offset requests of two client libraries, flexible versions and
not, old versions and new).

Each captured frame is then mutated by a seeded random loop (a bounded count, so the test is
repeatable and quick): bytes flipped, replaced, inserted or deleted, the frame cut short, its
api key or version changed, its size prefix made to lie. Every mutated frame goes to the
server on its own connection, the sender then half-closes. The server must, for each: answer
with well-formed frames carrying the request's correlation id (a response that decodes with
the schema of the request's api and version, error codes allowed), or close the connection,
or still be serving the request when the sender gives up (a Fetch or JoinGroup decoded with a
long wait is a valid request). Answers to the versions kio lacks are decoded with
kafka-python's classes, the library that serves them. Afterwards the server process is still
running and a fresh client still produces and consumes through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_response_schema
from kio.serial import entity_reader

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.protocol.admin import CreateTopicsResponse, DeleteTopicsResponse
    from kafka.protocol.consumer import (
        FetchResponse,
        ListOffsetsResponse,
        OffsetCommitResponse,
        OffsetFetchResponse,
    )
    from kafka.protocol.producer import ProduceResponse

from tests.protocols.kafka.conftest import free_port, start_server, stop_server

pytestmark = [
    pytest.mark.filterwarnings("ignore:(read_text|open_text) is deprecated:DeprecationWarning"),
    pytest.mark.slow,
]

SEED = 20261201
MUTATIONS_PER_FRAME = 12
CONCURRENCY = 48
ANSWER_TIMEOUT_S = 4.0
TOPIC = "fuzz-captured"
_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hhi")
OLD_RESPONSES: dict[int, tuple[int, Any]] = {
    0: (3, ProduceResponse),
    1: (4, FetchResponse),
    2: (1, ListOffsetsResponse),
    8: (2, OffsetCommitResponse),
    9: (1, OffsetFetchResponse),
    19: (2, CreateTopicsResponse),
    20: (1, DeleteTopicsResponse),
}
"""The APIs served below kio's oldest version: that version, and kafka-python's response."""


# -- capturing --------------------------------------------------------------------------


@dataclass
class _Recording:
    """The client-to-server bytes of every connection through the proxy."""

    streams: list[bytearray] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_stream(self) -> bytearray:
        stream = bytearray()
        with self.lock:
            self.streams.append(stream)
        return stream

    def frames(self) -> list[bytes]:
        """Every complete request frame recorded, size prefix included."""
        found: list[bytes] = []
        with self.lock:
            streams = [bytes(stream) for stream in self.streams]
        for data in streams:
            position = 0
            while position + _SIZE.size <= len(data):
                (size,) = _SIZE.unpack_from(data, position)
                end = position + _SIZE.size + size
                if size < _HEADER.size or end > len(data):
                    break
                found.append(data[position:end])
                position = end
        return found


class RecordingProxy:
    """A TCP proxy on ``127.0.0.1:port`` to ``upstream``, recording what clients send."""

    def __init__(self, port: int, upstream: int) -> None:
        self.recording = _Recording()
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", port))
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._upstream))
            self._sockets += [client, server]
            stream = self.recording.new_stream()
            threading.Thread(target=self._pump, args=(client, server, stream), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, record: bytearray | None) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if record is not None:
                    record += chunk
                target.sendall(chunk)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _kafka_python_session(bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    for i in range(20):
        producer.send(TOPIC, key=f"k{i}".encode(), value=b"kafka-python %d" % i)
    producer.flush(10)
    producer.close(5)
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id="fuzz-kafka-python",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=8000,
        fetch_max_wait_ms=100,
    )
    seen = 0
    for _ in consumer:
        seen += 1
        if seen == 20:
            break
    consumer.commit()
    consumer.close()
    assert seen == 20


def _old_kafka_python_session(bootstrap: str, api_version: tuple[int, ...]) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        api_version=api_version,
        enable_idempotence=False,
        compression_type="gzip",
    )
    for i in range(5):
        producer.send(TOPIC, key=b"old%d" % i, value=b"old %d" % i, partition=0)
    producer.flush(10)
    producer.close(5)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        api_version=api_version,
        group_id=f"fuzz-old-{api_version}",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    partition = TopicPartition(TOPIC, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    seen = 0
    for _ in consumer:
        seen += 1
        if seen == 5:
            break
    consumer.commit({partition: OffsetAndMetadata(seen, "", -1)})
    consumer.close()
    assert seen == 5


def _confluent_session(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 1}
    )
    for i in range(20):
        producer.produce(TOPIC, key=f"c{i}".encode(), value=b"confluent %d" % i)
    assert producer.flush(10) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "fuzz-confluent",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.subscribe([TOPIC])
    seen = 0
    for _ in range(100):
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            seen += 1
            if seen == 20:
                break
    consumer.commit(asynchronous=False)
    consumer.close()
    assert seen == 20


@dataclass(frozen=True)
class Served:
    """The fuzzed server: its process, its port, and the frames captured from clients."""

    process: Any
    port: int
    bootstrap: str
    """The proxy's address, which the server advertises: where clients connect."""
    frames: tuple[bytes, ...]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    port, proxy_port = free_port(), free_port()
    process = start_server(
        directory / "data",
        port,
        "--advertised",
        f"127.0.0.1:{proxy_port}",
        "--fsync",
        "never",
        log=directory / "serve.log",
    )
    proxy = RecordingProxy(proxy_port, port)
    try:
        _kafka_python_session(f"127.0.0.1:{proxy_port}")
        _confluent_session(f"127.0.0.1:{proxy_port}")
        _old_kafka_python_session(f"127.0.0.1:{proxy_port}", (0, 8, 2))
        _old_kafka_python_session(f"127.0.0.1:{proxy_port}", (0, 10, 0))
        frames = tuple(_distinct(proxy.recording.frames()))
        yield Served(process, port, f"127.0.0.1:{proxy_port}", frames)
    finally:
        proxy.close()
        stop_server(process)


def _distinct(frames: list[bytes]) -> Iterator[bytes]:
    """Up to three frames per (api key, version), the first ones sent."""
    kept: dict[tuple[int, int], int] = {}
    for frame in frames:
        key = _HEADER.unpack_from(frame, _SIZE.size)[:2]
        if kept.get(key, 0) < 3:
            kept[key] = kept.get(key, 0) + 1
            yield frame


# -- mutating ---------------------------------------------------------------------------


def _reframed(body: bytes) -> bytes:
    return _SIZE.pack(len(body)) + body


def _flip(rng: random.Random, frame: bytes) -> bytes:
    body = bytearray(frame[4:])
    for _ in range(rng.randint(1, 4)):
        body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
    return _reframed(bytes(body))


def _replace(rng: random.Random, frame: bytes) -> bytes:
    body = bytearray(frame[4:])
    start = rng.randrange(len(body))
    for i in range(start, min(len(body), start + rng.randint(1, 8))):
        body[i] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return _reframed(bytes(body))


def _insert(rng: random.Random, frame: bytes) -> bytes:
    body = frame[4:]
    at = rng.randrange(len(body) + 1)
    return _reframed(body[:at] + rng.randbytes(rng.randint(1, 16)) + body[at:])


def _delete(rng: random.Random, frame: bytes) -> bytes:
    body = frame[4:]
    at = rng.randrange(len(body))
    return _reframed(body[:at] + body[at + rng.randint(1, 16) :])


def _cut(rng: random.Random, frame: bytes) -> bytes:
    body = frame[4:]
    return _reframed(body[: rng.randrange(_HEADER.size, len(body))])


def _version(rng: random.Random, frame: bytes) -> bytes:
    body = bytearray(frame[4:])
    struct.pack_into(">h", body, 2, rng.choice((-1, 0, 1, 2, 3, 12, 17, 99, 32767)))
    return _reframed(bytes(body))


def _api_key(rng: random.Random, frame: bytes) -> bytes:
    body = bytearray(frame[4:])
    struct.pack_into(">h", body, 0, rng.choice((-1, 4, 5, 6, 7, 17, 21, 22, 57, 68, 1000)))
    return _reframed(bytes(body))


def _lying_size(rng: random.Random, frame: bytes) -> bytes:
    body = frame[4:]
    size = rng.choice((-1, 0, 3, len(body) - 1, len(body) + 1, len(body) + 1000, 2**31 - 1))
    return _SIZE.pack(size) + body


def _truncated_prefix(rng: random.Random, frame: bytes) -> bytes:
    return frame[: rng.randint(1, 3)]


MUTATORS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    _flip,
    _flip,
    _flip,
    _replace,
    _replace,
    _insert,
    _delete,
    _cut,
    _version,
    _api_key,
    _lying_size,
    _truncated_prefix,
)


def mutations(frames: tuple[bytes, ...], seed: int) -> list[bytes]:
    """``MUTATIONS_PER_FRAME`` mutants of every frame, the same ones for the same seed."""
    rng = random.Random(seed)
    return [
        rng.choice(MUTATORS)(rng, frame) for frame in frames for _ in range(MUTATIONS_PER_FRAME)
    ]


# -- sending ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the server did with one frame."""

    frames: tuple[bytes, ...]
    closed: bool
    """The server closed the connection (EOF after its answers, if any)."""
    held: bool = False
    """Still serving the request when the sender gave up (a long wait, validly decoded)."""


async def _send(port: int, frame: bytes) -> Reply:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        writer.write_eof()
        data = b""
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                while chunk := await reader.read(65536):
                    data += chunk
        except TimeoutError:
            return Reply(_split(data), closed=False, held=True)
        except ConnectionResetError:
            return Reply(_split(data), closed=True)
        return Reply(_split(data), closed=True)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _split(data: bytes) -> tuple[bytes, ...]:
    frames = []
    position = 0
    while position < len(data):
        assert position + 4 <= len(data), f"a torn size prefix in the reply: {data!r}"
        (size,) = _SIZE.unpack_from(data, position)
        end = position + 4 + size
        assert size >= 4 and end <= len(data), f"a torn response frame: {data[position:]!r}"
        frames.append(data[position + 4 : end])
        position = end
    return tuple(frames)


async def _send_all(port: int, frames: list[bytes]) -> list[Reply]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(frame: bytes) -> Reply:
        async with limit:
            return await _send(port, frame)

    return await asyncio.gather(*(one(frame) for frame in frames))


def _check(frame: bytes, reply: Reply) -> None:
    """The reply to ``frame`` is well-formed answers, a closed connection, or a long wait."""
    if not reply.frames:
        assert reply.closed or reply.held
        return
    assert len(reply.frames) == 1, "one request frame, at most one answer"
    api_key, version, correlation_id = _HEADER.unpack_from(frame, 4)
    (answered,) = struct.unpack_from(">i", reply.frames[0])
    assert answered == correlation_id
    if api_key == 18:
        return  # ApiVersions may answer an unsupported version in a v0 body
    oldest_kio, old_response = OLD_RESPONSES.get(api_key, (0, None))
    if version < oldest_kio:
        old_response.decode(reply.frames[0], version=version, header=True)
        return
    response_type = load_response_schema(api_key, version)
    flexible = response_type.__flexible__
    body_at = 4 + (1 if flexible else 0)  # response header v1 adds empty tagged fields
    _, used = entity_reader(response_type)(reply.frames[0], body_at)
    assert body_at + used == len(reply.frames[0])


# -- the tests --------------------------------------------------------------------------


def test_clients_were_captured(served: Served) -> None:
    keys = {_HEADER.unpack_from(frame, 4)[0] for frame in served.frames}
    # ApiVersions, Metadata, Produce, Fetch, ListOffsets, FindCoordinator, JoinGroup,
    # SyncGroup, OffsetCommit, OffsetFetch, LeaveGroup, InitProducerId, CreateTopics.
    assert {18, 3, 0, 1, 2, 10, 11, 14, 8, 9, 13, 22, 19} <= keys
    versions = {_HEADER.unpack_from(frame, 4)[:2] for frame in served.frames}
    # The old versions: Produce v0 and v2 (message sets), Fetch v0 and v2, ListOffsets v0.
    assert {(0, 0), (0, 2), (1, 0), (1, 2), (2, 0)} <= versions
    assert len(served.frames) >= 30


def test_captured_frames_are_served_as_sent(served: Served) -> None:
    """The unmutated frames get answers: the capture is real traffic the server accepts."""
    replies = asyncio.run(_send_all(served.port, list(served.frames)))
    answered = 0
    for frame, reply in zip(served.frames, replies, strict=True):
        _check(frame, reply)
        answered += bool(reply.frames)
    assert answered >= len(served.frames) * 0.9


def test_mutated_frames_never_crash_the_server(served: Served) -> None:
    frames = mutations(served.frames, SEED)
    assert len(frames) >= 300
    replies = asyncio.run(_send_all(served.port, frames))
    outcomes = {"answered": 0, "closed": 0, "held": 0}
    for frame, reply in zip(frames, replies, strict=True):
        _check(frame, reply)
        outcome = "answered" if reply.frames else "held" if reply.held else "closed"
        outcomes[outcome] += 1
    assert served.process.poll() is None, "the server process exited"
    assert outcomes["answered"] and outcomes["closed"], outcomes
    assert outcomes["held"] < len(frames) // 10, outcomes
    _fresh_client_round_trip(served.bootstrap)


def _fresh_client_round_trip(bootstrap: str) -> None:
    """A new client still produces and reads back through the fuzzed server."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    producer.produce("fuzz-after", b"still serving")
    assert producer.flush(15) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "fuzz-after"})
    consumer.assign([TopicPartition("fuzz-after", 0, 0)])
    message = None
    for _ in range(50):
        message = consumer.poll(0.2)
        if message is not None:
            break
    consumer.close()
    assert message is not None and message.error() is None
    assert message.value() == b"still serving"
