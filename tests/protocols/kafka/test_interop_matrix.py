"""The Kafka interop matrix of issue 4 with real clients against ``eventyard serve``.

Clients: kafka-python, aiokafka, confluent-kafka (librdkafka) and kcat (Debian's). Each table
is one parametrised test:

* produce and consume: client × codec (none, gzip, snappy, lz4, zstd) × idempotent producer
  on or off. The records come back with their keys, values, partitions and offsets, and a raw
  Fetch shows what the producer stored: every batch in the codec asked for, with a producer
  id and gapless sequence numbers exactly when the producer is idempotent. (Debian's kcat
  links librdkafka 2.0.2, which compresses with gzip, snappy or lz4 only when the broker
  advertises Produce v0: those cells are strict xfails on a broker that does not.)
* keyed placement: Kafka's Java vectors, an empty key and binary keys land on the partition
  Kafka's Java client gives them (murmur2; librdkafka told ``partitioner=murmur2_random``),
  which is also eventyard's own partitioner's choice; librdkafka's default
  ``consistent_random`` is CRC-32, pinned here because it puts keys elsewhere.
* consumer groups: client × assignor (range, round-robin, cooperative-sticky where the client
  has it), and groups mixing three clients. Members run as real processes. Two members split
  the topic, a third joins, one leaves (SIGTERM, LeaveGroup), one is killed (SIGKILL,
  expelled at the session timeout); after each change the live members hold the assignor's
  shape (cooperative-sticky members keep what they held) and consume the records produced in
  that phase from their own partitions; in the end every record was consumed exactly once
  and its offset committed.
* committed offsets survive a broker restart, per client: a new member of the group resumes
  after the committed records, and gets none of them again.

One server serves the produce, placement and group tables (each test has its own topics and
group); the restart table starts its own. Small counts and a 2 s session timeout keep it fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from eventyard.broker import DefaultPartitioner, partition_for_key
from eventyard.protocols.kafka.registry import load_all, lookup
from tests.protocols.kafka.conftest import free_port, start_server, stop_server
from tests.protocols.kafka.matrix_support import (
    ASSIGNORS,
    Member,
    fetch_batches,
    kcat_path,
    wait_until,
)

with warnings.catch_warnings():
    # kafka-python loads its schemas with a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

pytestmark = pytest.mark.filterwarnings(
    "ignore:(read_text|open_text) is deprecated:DeprecationWarning"
)

CLIENTS = ("kafka-python", "aiokafka", "confluent-kafka", "kcat")
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
OLD_LIBRDKAFKA_CELLS = {("kcat", "gzip"), ("kcat", "snappy"), ("kcat", "lz4")}


def produce_v0_served() -> bool:
    """Whether ApiVersions advertises Produce v0 (old librdkafka compresses only then)."""
    load_all()
    return lookup(0, 0) is not None


OLD_LIBRDKAFKA = pytest.mark.xfail(
    not produce_v0_served(),
    strict=True,
    reason="kcat's librdkafka 2.0.2 compresses with gzip, snappy or lz4 only if the broker "
    "advertises Produce v0; without it, it sends these batches uncompressed",
)
PRODUCE_CELLS = [
    pytest.param(*cell, marks=OLD_LIBRDKAFKA if cell[:2] in OLD_LIBRDKAFKA_CELLS else ())
    for cell in itertools.product(CLIENTS, CODECS, (True, False))
]
PRODUCE_PARTITIONS = 3
PRODUCE_KEYS = [f"k-{i}".encode() for i in range(12)]
PADDING = b" compressible" * 16  # kafka-python sends a batch raw if compressing it gains nothing

JAVA_MURMUR2 = {
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2: the Java client's own hashes.
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
BINARY_KEYS = [bytes(0x80 + 7 * i + j for j in range(i)) for i in range(1, 13)]
KEYED_KEYS = [b"", *JAVA_MURMUR2, *BINARY_KEYS, b"\xff\xfe\xfd", "ключ-ü".encode()]
KEYED_PARTITIONS = 7


def java_partition(key: bytes) -> int:
    """Where Kafka's Java producer puts ``key``: from its own test vectors where it has one."""
    hashed = JAVA_MURMUR2.get(key, kafka_python_murmur2(key))
    return (hashed & 0x7FFFFFFF) % KEYED_PARTITIONS


def crc32_partition(key: bytes) -> int:
    """librdkafka's ``consistent_random`` (its default): CRC-32 of the key."""
    return zlib.crc32(key) % KEYED_PARTITIONS


KEYED_CELLS = [
    # (client, partitioner setting, expected placement); None: the client's default.
    ("kafka-python", None, java_partition),
    ("aiokafka", None, java_partition),
    ("confluent-kafka", "murmur2_random", java_partition),
    ("kcat", "murmur2_random", java_partition),
    ("confluent-kafka", None, crc32_partition),
    ("kcat", None, crc32_partition),
]

GROUP_CELLS = [(client, assignor) for client in CLIENTS for assignor in ASSIGNORS[client]]
GROUP_PARTITIONS = 6
MIXED_CELLS = [
    # Every client in a group with others; each assignor with three clients that have it. The
    # second member is the one killed: never kcat here, whose 5 s auto-commit the kill waits for.
    ("range", ("kafka-python", "aiokafka", "confluent-kafka")),
    ("roundrobin", ("aiokafka", "kafka-python", "kcat")),
    ("cooperative-sticky", ("kafka-python", "confluent-kafka", "kcat")),
]


class Record(NamedTuple):
    """A record as a consumer reads it back."""

    partition: int
    offset: int
    key: bytes
    value: bytes


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``eventyard serve`` for the module's tables (each test uses its own topics)."""
    root = tmp_path_factory.mktemp("matrix")
    port = free_port()
    server = start_server(root / "data", port, log=root / "serve.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        assert stop_server(server) == 0


@pytest.fixture(scope="module")
def admin(bootstrap: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    yield client
    client.close()


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "kcat":
        require_kcat()
    return name


# -- produce and consume: client × codec × idempotence ---------------------------------------


@pytest.mark.parametrize(("client", "codec", "idempotent"), PRODUCE_CELLS, indirect=["client"])
def test_produce_and_consume(
    bootstrap: str, admin: KafkaAdminClient, client: str, codec: str, idempotent: bool
) -> None:
    topic = f"produce-{client}-{codec}-{'idempotent' if idempotent else 'plain'}"
    create_topic(admin, topic, PRODUCE_PARTITIONS)
    values = {key: key + PADDING for key in PRODUCE_KEYS}
    PRODUCERS[client](bootstrap, topic, list(values.items()), codec, idempotent, "murmur2_random")

    got = CONSUMERS[client](bootstrap, topic, PRODUCE_PARTITIONS, len(values))
    placement = {key: partition_for_key(key, PRODUCE_PARTITIONS) for key in PRODUCE_KEYS}
    assert sorted(got) == sorted(expected_records(values, placement))

    batches = [fetch_batches(bootstrap, topic, p) for p in range(PRODUCE_PARTITIONS)]
    assert {batch.compression for batch in itertools.chain(*batches)} == {codec}
    assert sum(batch.count for batch in itertools.chain(*batches)) == len(values)
    producer_ids = {batch.producer_id for batch in itertools.chain(*batches)}
    if idempotent:
        (producer_id,) = producer_ids
        assert producer_id >= 0
        assert all(b.producer_epoch >= 0 for b in itertools.chain(*batches))
        for partition in batches:
            starts = list(itertools.accumulate((b.count for b in partition), initial=0))[:-1]
            assert [b.base_sequence for b in partition] == starts
    else:
        assert producer_ids == {-1}  # (aiokafka still writes base sequence 0; brokers ignore it)


# -- keyed placement ----------------------------------------------------------------------------


def test_eventyard_places_keys_as_the_java_client() -> None:
    partitioner = DefaultPartitioner()
    for key in KEYED_KEYS:
        assert partition_for_key(key, KEYED_PARTITIONS) == java_partition(key), key
        assert partitioner.partition("t", key, KEYED_PARTITIONS) == java_partition(key), key


@pytest.mark.parametrize(
    ("client", "partitioner", "placement"),
    KEYED_CELLS,
    indirect=["client"],
    ids=[f"{c}-{p or 'default'}" for c, p, _ in KEYED_CELLS],
)
def test_keyed_records_land_on_the_partition_kafka_would_choose(
    bootstrap: str,
    admin: KafkaAdminClient,
    client: str,
    partitioner: str | None,
    placement: Callable[[bytes], int],
) -> None:
    topic = f"keyed-{client}-{partitioner or 'default'}"
    create_topic(admin, topic, KEYED_PARTITIONS)
    # An empty key is a key to murmur2 (Java hashes it too); consistent_random places it at random.
    keys = KEYED_KEYS if placement is java_partition else [key for key in KEYED_KEYS if key]
    values = {key: b"value-of-" + key for key in keys}
    PRODUCERS[client](bootstrap, topic, list(values.items()), "none", True, partitioner)
    got = CONSUMERS[client](bootstrap, topic, KEYED_PARTITIONS, len(values))
    assert sorted(got) == sorted(expected_records(values, {key: placement(key) for key in keys}))
    if placement is crc32_partition:
        moved = [key for key in keys if crc32_partition(key) != java_partition(key)]
        assert len(moved) > len(keys) // 2, "CRC-32 and murmur2 should mostly disagree"


def expected_records(values: dict[bytes, bytes], placement: dict[bytes, int]) -> list[Record]:
    """The records in produce order, on their partitions, numbered from 0 per partition."""
    offsets: Counter[int] = Counter()
    records = []
    for key, value in values.items():
        partition = placement[key]
        records.append(Record(partition, offsets[partition], key, value))
        offsets[partition] += 1
    return records


# -- consumer groups: client × assignor, join, leave, kill ---------------------------------------


@pytest.mark.parametrize(("client", "assignor"), GROUP_CELLS, indirect=["client"])
def test_group_rebalances_when_members_join_leave_and_die(
    bootstrap: str, admin: KafkaAdminClient, client: str, assignor: str, tmp_path: Path
) -> None:
    group = f"group-{client}-{assignor}"
    run = GroupRun(bootstrap, admin, group, assignor, tmp_path / "members.log")
    try:
        join_leave_and_die(run, dict.fromkeys(("m0", "m1", "m2"), client))
    finally:
        run.close()


@pytest.mark.parametrize(
    ("assignor", "clients"), MIXED_CELLS, ids=[f"{a}-{'+'.join(c)}" for a, c in MIXED_CELLS]
)
def test_a_group_of_different_clients_rebalances(
    bootstrap: str, admin: KafkaAdminClient, assignor: str, clients: tuple[str, ...], tmp_path: Path
) -> None:
    if "kcat" in clients:
        require_kcat()
    run = GroupRun(bootstrap, admin, f"mixed-{assignor}", assignor, tmp_path / "members.log")
    try:
        join_leave_and_die(run, dict(zip(("m0", "m1", "m2"), clients, strict=True)))
    finally:
        run.close()


def join_leave_and_die(run: GroupRun, clients: dict[str, str]) -> None:
    """Two members, a third joins, the first leaves, the second is killed; records all along."""
    sticky = run.assignor == "cooperative-sticky"
    run.start("m0", clients["m0"])
    run.start("m1", clients["m1"])
    two = run.split({"m0", "m1"})
    run.phase("two", two)

    run.start("m2", clients["m2"])
    three = run.split({"m0", "m1", "m2"})
    assert not sticky or all(three[name] <= two[name] for name in ("m0", "m1")), (two, three)
    run.phase("joined", three)

    assert run.members["m0"].leave() == 0
    left = run.split({"m1", "m2"})
    assert not sticky or all(left[name] >= three[name] for name in ("m1", "m2")), (three, left)
    run.phase("left", left)

    run.settle(left["m1"])  # so m2 does not consume m1's records again
    run.members["m1"].kill()
    alone = run.split({"m2"})
    run.phase("killed", alone)

    assert run.members["m2"].leave() == 0
    run.settle(frozenset(range(GROUP_PARTITIONS)))
    run.check_each_record_consumed_once()


class GroupRun:
    """One group of member processes on its own six-partition topic (named as the group).

    Records are produced in phases, two to each partition, while the group is stable; a phase
    ends when the members consumed every record, each on a partition it holds. ``settle``
    waits for the group's commits to catch up (on a victim's partitions before it is killed,
    on all of them at the end).
    """

    def __init__(
        self, bootstrap: str, admin: KafkaAdminClient, group: str, assignor: str, log: Path
    ) -> None:
        self.bootstrap = bootstrap
        self.admin = admin
        self.assignor = assignor
        self.log = log
        self.topic = self.group = group
        create_topic(admin, self.topic, GROUP_PARTITIONS)
        self.members: dict[str, Member] = {}
        self.produced: dict[bytes, tuple[int, int]] = {}
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")

    def start(self, name: str, client: str) -> None:
        self.members[name] = Member(
            client, self.bootstrap, self.group, self.topic, name, self.assignor, self.log
        )

    def split(self, names: set[str]) -> dict[str, frozenset[int]]:
        """Wait until exactly ``names`` are members holding a partition of the assignor's shape.

        Returns each member's partitions; the group must run the assignor asked for.
        """
        split = self._wait(lambda: self._stable_split(names), f"a stable group of {names}")
        partitions = sorted(split.values(), key=min)
        size = GROUP_PARTITIONS // len(names)
        assert [len(held) for held in partitions] == [size] * len(names), split
        if self.assignor == "range":
            assert [sorted(held) for held in partitions] == [
                list(range(start, start + size)) for start in range(0, GROUP_PARTITIONS, size)
            ], split
        if self.assignor == "roundrobin":
            assert all(len({p % len(names) for p in held}) == 1 for held in partitions), split
        return split

    def _stable_split(self, names: set[str]) -> dict[str, frozenset[int]] | None:
        described = self.admin.describe_groups([self.group])[self.group]
        if described["group_state"] != "Stable":
            return None
        split: dict[str, frozenset[int]] = {}
        for member in described["members"]:
            assigned = member["member_assignment"] or {"assigned_partitions": []}
            split[member["client_id"]] = frozenset(
                p
                for topic in assigned["assigned_partitions"]
                if topic["topic"] == self.topic
                for p in topic["partitions"]
            )
        held = list(split.values())
        if set(split) != names or len(held) != len(described["members"]):
            return None
        if (
            sum(map(len, held)) != GROUP_PARTITIONS
            or len(frozenset().union(*held)) != GROUP_PARTITIONS
        ):
            return None  # cooperative-sticky's first round: revoked partitions are unowned
        assert described["protocol_data"] == self.assignor, described
        return split

    def phase(self, label: str, split: dict[str, frozenset[int]]) -> None:
        """Produce two records to each partition; each must reach the member owning it."""
        values = [f"{label}:{p}:{i}".encode() for p in range(GROUP_PARTITIONS) for i in range(2)]
        sent = {
            value: self._producer.send(self.topic, value, partition=int(value.split(b":")[1]))
            for value in values
        }
        self._producer.flush(timeout=10)
        for value, future in sent.items():
            metadata = future.get(timeout=10)
            self.produced[value] = (metadata.partition, metadata.offset)
        self._wait(self._all_consumed, f"every record of phase {label!r} consumed")
        for name, member in self.members.items():
            mine = {r.partition for r in member.records if r.value.startswith(f"{label}:".encode())}
            assert mine <= split.get(name, frozenset()), (label, name, mine, split)

    def settle(self, partitions: frozenset[int]) -> None:
        """Wait until the group committed the offset after every record of ``partitions``.

        The Python members commit before they report a record; kcat auto-commits every 5 s
        (its ``-X auto.commit.interval.ms`` lands on the legacy topic property), and on
        revocation and close.
        """
        self._wait(lambda: self._committed(partitions), f"offsets of {set(partitions)} committed")

    def _all_consumed(self) -> bool | None:
        consumed = {r.value for member in self.members.values() for r in member.records}
        return True if consumed >= set(self.produced) else None

    def _committed(self, partitions: frozenset[int]) -> bool | None:
        ends = Counter(partition for partition, _ in self.produced.values())
        committed = self.admin.list_group_offsets(self.group)[self.group]
        offsets = {tp.partition: meta.offset for tp, meta in committed.items()}
        return True if all(offsets.get(p) == ends[p] for p in partitions) else None

    def check_each_record_consumed_once(self) -> None:
        consumed = [r for member in self.members.values() for r in member.records]
        counts = Counter(r.value for r in consumed)
        assert [v for v, n in counts.items() if n > 1] == [], "duplicates"
        assert {r.value: (r.partition, r.offset) for r in consumed} == self.produced

    def _wait(self, probe: Callable[[], Any], what: str) -> Any:
        try:
            return wait_until(probe, what)
        except AssertionError as exc:
            described = self.admin.describe_groups([self.group])[self.group]
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise AssertionError(f"{exc}\ngroup: {described}\nmember logs:\n{tail}") from None

    def close(self) -> None:
        self._producer.close(timeout=5)
        for member in self.members.values():
            member.close()


# -- committed offsets survive a broker restart ------------------------------------------------


def test_committed_offsets_survive_a_broker_restart(client: str, tmp_path: Path) -> None:
    data_dir, topic = tmp_path / "data", f"restart-{client}"
    with served(data_dir, tmp_path / "serve.log") as bootstrap:
        create_topic_at(bootstrap, topic, 3)
        assert consume_in_group(bootstrap, client, topic, "before", tmp_path) == {0: 2, 1: 2, 2: 2}
    with served(data_dir, tmp_path / "serve.log") as bootstrap:
        assert committed_offsets(bootstrap, topic) == {0: 2, 1: 2, 2: 2}
        assert consume_in_group(bootstrap, client, topic, "after", tmp_path) == {0: 4, 1: 4, 2: 4}


@contextlib.contextmanager
def served(data_dir: Path, log: Path) -> Iterator[str]:
    """``eventyard serve`` on ``data_dir`` (a fresh port each time) until the block ends."""
    port = free_port()
    server = start_server(data_dir, port, log=log)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        assert stop_server(server) == 0


def consume_in_group(
    bootstrap: str, client: str, topic: str, label: str, tmp_path: Path
) -> dict[int, int]:
    """Produce two ``label`` records to each partition; a member of group ``topic`` must
    consume exactly those (none consumed before), then close; the committed offsets after.
    """
    values = [f"{label}:{p}:{i}".encode() for p in range(3) for i in range(2)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for value in values:
            producer.send(topic, value, partition=int(value.split(b":")[1]))
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)
    member = Member(client, bootstrap, topic, topic, "m0", "range", tmp_path / "member.log")
    try:
        wait_until(
            lambda: True if len(member.records) >= len(values) else None,
            f"{len(values)} records consumed by the {client} member",
        )
        assert member.leave() == 0  # kcat commits as it closes
    finally:
        member.close()
    assert sorted(r.value for r in member.records) == sorted(values)
    return committed_offsets(bootstrap, topic)


def committed_offsets(bootstrap: str, group: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        committed = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in committed.items()}


# -- the clients' producers and consumers -------------------------------------------------------


def require_kcat() -> None:
    """kcat is needed: skip without it (fail under EVENTYARD_REQUIRE_SERVICES=1, as in CI)."""
    if kcat_path() is None:
        reason = "kcat is not installed (apt-get install kcat; .ci/tools does)"
        if os.environ.get("EVENTYARD_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def create_topic(admin: KafkaAdminClient, name: str, partitions: int) -> None:
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])


def create_topic_at(bootstrap: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        create_topic(admin, name, partitions)
    finally:
        admin.close()


Pairs = Sequence[tuple[bytes, bytes]]


def produce_kafka_python(
    bootstrap: str, topic: str, pairs: Pairs, codec: str, idempotent: bool, _: str | None
) -> None:
    from kafka import codec as codecs

    has = {"none": True, "gzip": True, "snappy": codecs.has_snappy(), "lz4": codecs.has_lz4()}
    assert has.get(codec, codecs.has_zstd()), f"kafka-python lacks {codec}: pip install -e '.[dev]'"
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        enable_idempotence=idempotent,
        acks="all",
        linger_ms=5,
    )
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in pairs]
        for future in futures:
            future.get(timeout=10)
    finally:
        producer.close(timeout=5)


def produce_aiokafka(
    bootstrap: str, topic: str, pairs: Pairs, codec: str, idempotent: bool, _: str | None
) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=None if codec == "none" else codec,
            enable_idempotence=idempotent,
            acks="all",
            linger_ms=5,
        )
        await producer.start()
        try:
            sent = [await producer.send(topic, key=key, value=value) for key, value in pairs]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(run())


def produce_confluent(
    bootstrap: str, topic: str, pairs: Pairs, codec: str, idempotent: bool, partitioner: str | None
) -> None:
    from confluent_kafka import Producer

    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "compression.type": codec,
        "enable.idempotence": idempotent,
        "acks": "all",
        "linger.ms": 5,
    }
    if partitioner is not None:
        settings["partitioner"] = partitioner
    producer = Producer(settings)
    errors: list[str] = []

    def delivered(error: Any, _: Any) -> None:
        if error is not None:
            errors.append(str(error))

    for key, value in pairs:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    assert producer.flush(10) == 0
    assert errors == []


def produce_kcat(
    bootstrap: str, topic: str, pairs: Pairs, codec: str, idempotent: bool, partitioner: str | None
) -> None:
    kcat = kcat_path()
    assert kcat is not None
    assert all(b"\t" not in key + value and b"\n" not in key + value for key, value in pairs)
    settings = [f"enable.idempotence={str(idempotent).lower()}", "acks=all"]
    if partitioner is not None:
        settings.append(f"partitioner={partitioner}")
    command = [kcat, "-b", bootstrap, "-P", "-t", topic, "-K", "\t", "-z", codec]
    command += [arg for setting in settings for arg in ("-X", setting)]
    lines = b"".join(key + b"\t" + value + b"\n" for key, value in pairs)
    subprocess.run(command, input=lines, check=True, capture_output=True, timeout=20)


def consume_kafka_python(bootstrap: str, topic: str, partitions: int, count: int) -> list[Record]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        records: list[Record] = []

        def read() -> list[Record] | None:
            batches = consumer.poll(timeout_ms=200)
            records.extend(
                Record(r.partition, r.offset, r.key, r.value) for rs in batches.values() for r in rs
            )
            return records if len(records) >= count else None

        return wait_until(read, f"{count} records of {topic}", timeout=15)
    finally:
        consumer.close()


def consume_aiokafka(bootstrap: str, topic: str, partitions: int, count: int) -> list[Record]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> list[Record]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await consumer.start()
        records: list[Record] = []
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            await consumer.seek_to_beginning()
            async with asyncio.timeout(15):
                while len(records) < count:
                    batches = await consumer.getmany(timeout_ms=200)
                    records.extend(
                        Record(r.partition, r.offset, r.key or b"", r.value or b"")
                        for rs in batches.values()
                        for r in rs
                    )
        finally:
            await consumer.stop()
        return records

    return asyncio.run(run())


def consume_confluent(bootstrap: str, topic: str, partitions: int, count: int) -> list[Record]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        records: list[Record] = []

        def read() -> list[Record] | None:
            for message in consumer.consume(num_messages=count, timeout=0.2):
                assert message.error() is None, message.error()
                records.append(
                    Record(message.partition(), message.offset(), message.key(), message.value())
                )
            return records if len(records) >= count else None

        return wait_until(read, f"{count} records of {topic}", timeout=15)
    finally:
        consumer.close()


def consume_kcat(bootstrap: str, topic: str, partitions: int, count: int) -> list[Record]:
    kcat = kcat_path()
    assert kcat is not None
    command = [kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e"]
    out = subprocess.run(
        [*command, "-f", "%p\t%o\t%k\t%s\n"], check=True, capture_output=True, timeout=20
    ).stdout
    records = []
    for line in out.splitlines():
        partition, offset, key, value = line.split(b"\t")
        records.append(Record(int(partition), int(offset), key, value))
    return records


Produce = Callable[[str, str, Pairs, str, bool, str | None], None]
Consume = Callable[[str, str, int, int], list[Record]]

PRODUCERS: dict[str, Produce] = {
    "kafka-python": produce_kafka_python,
    "aiokafka": produce_aiokafka,
    "confluent-kafka": produce_confluent,
    "kcat": produce_kcat,
}
CONSUMERS: dict[str, Consume] = {
    "kafka-python": consume_kafka_python,
    "aiokafka": consume_aiokafka,
    "confluent-kafka": consume_confluent,
    "kcat": consume_kcat,
}
