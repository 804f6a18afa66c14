"""Helpers for the Kafka interop matrix: group members in real processes, and a raw Fetch.

:class:`Member` runs one consumer-group member in its own process, so a test can stop it
gracefully (SIGTERM: the client closes and sends LeaveGroup) or kill it (SIGKILL: the
coordinator only notices at the session timeout). Every member writes one line per record
to its stdout, ``partition<TAB>offset<TAB>value``, only after the record's offset was
committed (kcat's balanced consumer prints on delivery and auto-commits later, so a test
waits for the group's committed offsets as well). The Python clients' members are this
file run as a script::

    python matrix_support.py kafka-python 127.0.0.1:9092 GROUP TOPIC CLIENT_ID range

kcat runs as itself (``kcat -G``). :func:`fetch_batches` reads a partition's stored record
batches over the wire with one Fetch v4 and decodes their v2 headers by hand, without any
client library, so a test can check what a producer really sent: its compression codec, its
producer id and sequence numbers.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

__all__ = [
    "ASSIGNORS",
    "HEARTBEAT_INTERVAL_MS",
    "SESSION_TIMEOUT_MS",
    "Batch",
    "Consumed",
    "Member",
    "fetch_batches",
    "kcat_path",
    "wait_until",
]

SESSION_TIMEOUT_MS = 2000
"""Members' session timeout: how long a killed member holds its partitions."""
HEARTBEAT_INTERVAL_MS = 300
"""Members' heartbeat interval: how soon an eager member notices a rebalance."""

ASSIGNORS = {
    "kafka-python": ("range", "roundrobin", "cooperative-sticky"),
    "aiokafka": ("range", "roundrobin"),
    "confluent-kafka": ("range", "roundrobin", "cooperative-sticky"),
    "kcat": ("range", "roundrobin", "cooperative-sticky"),
}
"""The Kafka assignors each client implements (aiokafka has no cooperative protocol)."""

T = TypeVar("T")


class Consumed(NamedTuple):
    """One record a member consumed (and committed)."""

    partition: int
    offset: int
    value: bytes


def kcat_path() -> str | None:
    """kcat's path, or None where it is not installed (``.ci/tools`` installs it)."""
    return shutil.which("kcat")


class Member:
    """One consumer-group member of ``client`` in its own process.

    ``name`` is its Kafka ``client.id``, which DescribeGroups reports, so a test can tell
    the members apart. Its stderr goes to ``log``.
    """

    def __init__(
        self,
        client: str,
        bootstrap: str,
        group: str,
        topic: str,
        name: str,
        assignor: str,
        log: Path,
    ) -> None:
        self.name = name
        self.records: list[Consumed] = []
        with log.open("ab") as errors:
            self._process = subprocess.Popen(
                _command(client, bootstrap, group, topic, name, assignor),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            partition, offset, value = line.rstrip(b"\n").split(b"\t", 2)
            self.records.append(Consumed(int(partition), int(offset), value))

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def leave(self) -> int:
        """SIGTERM: the client closes (commits, leaves the group); its exit status."""
        self._process.send_signal(signal.SIGTERM)
        return self._wait()

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no last commit; the coordinator must expire it."""
        self._process.kill()
        self._wait()

    def _wait(self) -> int:
        try:
            status = self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            status = self._process.wait()
        self._reader.join(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()
        return status

    def close(self) -> None:
        """Kill the process if it still runs (test clean-up)."""
        if self.running:
            self.kill()


def _command(
    client: str, bootstrap: str, group: str, topic: str, name: str, assignor: str
) -> list[str]:
    if client != "kcat":
        return [sys.executable, __file__, client, bootstrap, group, topic, name, assignor]
    kcat = kcat_path()
    assert kcat is not None, "kcat is not installed"
    settings = {
        "client.id": name,
        "partition.assignment.strategy": assignor,
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    }
    options = [arg for key, value in settings.items() for arg in ("-X", f"{key}={value}")]
    return [kcat, "-b", bootstrap, *options, "-G", group, "-u", "-f", "%p\t%o\t%s\n", topic]


def wait_until(probe: Callable[[], T | None], what: str, timeout: float = 25.0) -> T:
    """Call ``probe`` until it returns something other than None; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


# -- a raw Fetch ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """The v2 record-batch header fields a producer sets."""

    base_offset: int
    compression: str
    producer_id: int
    producer_epoch: int
    base_sequence: int
    count: int


_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
_HEADER = struct.Struct(">qiibIhiqqqhii")


def fetch_batches(bootstrap: str, topic: str, partition: int) -> list[Batch]:
    """Every record batch stored in ``topic``/``partition``, read with one Fetch v4."""
    from kio.schema.fetch.v4.request import FetchPartition, FetchRequest, FetchTopic
    from kio.schema.fetch.v4.response import FetchResponse
    from kio.schema.request_header.v1.header import RequestHeader
    from kio.schema.types import TopicName
    from kio.serial import entity_reader, entity_writer
    from kio.static.primitive import i16, i32, i32Timedelta, i64

    request = FetchRequest(
        max_wait=i32Timedelta.parse(datetime.timedelta(0)),
        min_bytes=i32(1),
        topics=(
            FetchTopic(
                topic=TopicName(topic),
                partitions=(
                    FetchPartition(
                        partition=i32(partition),
                        fetch_offset=i64(0),
                        partition_max_bytes=i32(1 << 24),
                    ),
                ),
            ),
        ),
    )
    header = RequestHeader(
        request_api_key=i16(1), request_api_version=i16(4), correlation_id=i32(1), client_id="raw"
    )
    buffer = io.BytesIO()
    entity_writer(RequestHeader)(buffer, header)
    entity_writer(FetchRequest)(buffer, request)
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(buffer.getvalue())) + buffer.getvalue())
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        frame = _read_exactly(sock, size)
    response, _ = entity_reader(FetchResponse)(frame, 4)  # after the correlation id
    (answer,) = response.responses[0].partitions
    assert answer.error_code == 0, answer.error_code
    return _batches(bytes(answer.records or b""))


def _batches(data: bytes) -> list[Batch]:
    batches = []
    position = 0
    while position + _HEADER.size <= len(data):
        fields = _HEADER.unpack_from(data, position)
        base_offset, length, _epoch, magic, _crc, attributes = fields[:6]
        producer_id, producer_epoch, base_sequence, count = fields[9:]
        assert magic == 2, magic
        codec = _CODECS[attributes & 7]
        batches.append(Batch(base_offset, codec, producer_id, producer_epoch, base_sequence, count))
        position += 12 + length
    return batches


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


# -- the member processes ------------------------------------------------------------------


def _emit(records: list[tuple[int, int, bytes]]) -> None:
    out = sys.stdout.buffer
    for partition, offset, value in records:
        out.write(b"%d\t%d\t%s\n" % (partition, offset, value))
    out.flush()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_kafka_python(
    bootstrap: str, group: str, topic: str, name: str, assignor: str, stop: threading.Event
) -> None:
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.errors import KafkaError

    assignors: dict[str, Any] = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "cooperative-sticky": CooperativeStickyAssignor,
    }
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        fetch_max_wait_ms=100,
        partition_assignment_strategy=[assignors[assignor]],
    )
    while not stop.is_set():
        batches = consumer.poll(timeout_ms=100)
        records = [(r.partition, r.offset, r.value) for rs in batches.values() for r in rs]
        if not records:
            continue
        try:
            consumer.commit()
        except KafkaError as exc:
            _log(f"commit failed, {len(records)} records will be redelivered: {exc!r}")
            continue
        _emit(records)
    consumer.close()


def _run_aiokafka(
    bootstrap: str, group: str, topic: str, name: str, assignor: str, stop: threading.Event
) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.errors import KafkaError

    assignors: dict[str, Any] = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
    }

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id=name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            fetch_max_wait_ms=100,
            partition_assignment_strategy=(assignors[assignor],),
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                records = [(r.partition, r.offset, r.value) for rs in batches.values() for r in rs]
                if not records:
                    continue
                try:
                    await consumer.commit()
                except KafkaError as exc:
                    _log(f"commit failed, {len(records)} records will be redelivered: {exc!r}")
                    continue
                _emit([(p, o, v or b"") for p, o, v in records])
        finally:
            await consumer.stop()

    asyncio.run(run())


def _run_confluent(
    bootstrap: str, group: str, topic: str, name: str, assignor: str, stop: threading.Event
) -> None:
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
            "fetch.wait.max.ms": 100,
            "partition.assignment.strategy": assignor,
        }
    )
    consumer.subscribe([topic])
    while not stop.is_set():
        messages = [m for m in consumer.consume(num_messages=100, timeout=0.1) if not m.error()]
        if not messages:
            continue
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            _log(f"commit failed, {len(messages)} records will be redelivered: {exc!r}")
            continue
        _emit([(m.partition(), m.offset(), m.value()) for m in messages])
    consumer.close()


_RUNNERS = {
    "kafka-python": _run_kafka_python,
    "aiokafka": _run_aiokafka,
    "confluent-kafka": _run_confluent,
}


def main(argv: list[str]) -> None:
    """``CLIENT BOOTSTRAP GROUP TOPIC CLIENT_ID ASSIGNOR``: be one member until SIGTERM."""
    client, bootstrap, group, topic, name, assignor = argv
    warnings.simplefilter("ignore")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _RUNNERS[client](bootstrap, group, topic, name, assignor, stop)


if __name__ == "__main__":
    main(sys.argv[1:])
