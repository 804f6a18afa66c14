"""Consumer groups against ``eventyard serve`` with real clients.

kafka-python, aiokafka and confluent-kafka (librdkafka, cooperative-sticky) groups: members
split a topic's partitions, three members rebalance (range and round-robin) when one leaves,
a killed member is expelled at its session timeout and its partitions reassigned, committed
offsets survive a consumer restart and a broker restart, and the admin client lists and
describes the group. Timeouts are small so each test takes seconds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition

from tests.protocols.kafka.conftest import free_port, start_server, stop_server

with warnings.catch_warnings():
    # kafka-python loads its schemas with a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

pytestmark = pytest.mark.filterwarnings(
    "ignore:(read_text|open_text) is deprecated:DeprecationWarning"
)

FAST = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 200,
    "request_timeout_ms": 10_000,
}


@pytest.fixture
def admin(kafka_server: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=kafka_server, request_timeout_ms=5000)
    yield client
    client.close()


def create_topic(admin: KafkaAdminClient, name: str, partitions: int) -> None:
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for value in values:
        producer.send(topic, value, partition=partition)
    producer.flush(timeout=10)
    producer.close()


def consumer(bootstrap: str, group_id: str, *topics: str, **options: Any) -> KafkaConsumer:
    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST,
        **options,
    )


def take(member: KafkaConsumer, count: int, timeout: float = 15.0) -> list[bytes]:
    """Poll until ``count`` values arrived (joining the group on the way) or time runs out."""
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(values) < count and time.monotonic() < deadline:
        batches = member.poll(timeout_ms=200, max_records=count - len(values))
        values += [record.value for records in batches.values() for record in records]
    return values


class PollingGroup:
    """kafka-python consumers of one group, each polled by its own thread (JoinGroup blocks)."""

    def __init__(self, members: list[KafkaConsumer]) -> None:
        self.members = members
        self.views: list[set[TopicPartition]] = [set() for _ in members]
        self._stops = [threading.Event() for _ in members]
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(len(members))]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int) -> None:
        while not self._stops[index].is_set():
            self.members[index].poll(timeout_ms=100)
            self.views[index] = set(self.members[index].assignment())

    def live(self) -> list[int]:
        return [i for i, stop in enumerate(self._stops) if not stop.is_set()]

    def split(self, partitions: set[TopicPartition], timeout: float = 15.0) -> bool:
        """Wait until the live members hold disjoint, non-empty shares covering ``partitions``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = [self.views[i] for i in self.live()]
            union = set().union(*views)
            if all(views) and sum(map(len, views)) == len(union) and union == partitions:
                return True
            time.sleep(0.05)
        return False

    def leave(self, index: int) -> None:
        """Stop polling member ``index`` and close it (it sends LeaveGroup)."""
        self._stops[index].set()
        self._threads[index].join()
        self.members[index].close()

    def close(self) -> None:
        for index in self.live():
            self.leave(index)


def test_two_kafka_python_consumers_split_the_partitions(
    kafka_server: str, admin: KafkaAdminClient
) -> None:
    create_topic(admin, "split", 4)
    group = PollingGroup([consumer(kafka_server, "pair", "split") for _ in range(2)])
    try:
        assert group.split({TopicPartition("split", p) for p in range(4)}), group.views
        description = admin.describe_groups(["pair"])["pair"]
        assert description["error"] is None
        assert description["group_state"] == "Stable"
        assert description["protocol_type"] == "consumer"
        assert len(description["members"]) == 2
        listed = {g["group_id"]: g for g in admin.list_groups()}
        assert listed["pair"]["protocol_type"] == "consumer"
    finally:
        group.close()
    description = admin.describe_groups(["pair"])["pair"]
    assert (description["group_state"], description["members"]) == ("Empty", [])


@pytest.mark.parametrize("assignor", [RangePartitionAssignor, RoundRobinPartitionAssignor])
def test_three_members_rebalance_when_one_leaves(
    kafka_server: str, admin: KafkaAdminClient, assignor: type
) -> None:
    create_topic(admin, "trio", 6)
    partitions = {TopicPartition("trio", p) for p in range(6)}
    members = [
        consumer(kafka_server, "trio", "trio", partition_assignment_strategy=[assignor])
        for _ in range(3)
    ]
    group = PollingGroup(members)
    try:
        assert group.split(partitions), group.views
        assert [len(view) for view in group.views] == [2, 2, 2]
        group.leave(0)
        assert group.split(partitions), group.views
        assert sorted(len(group.views[i]) for i in group.live()) == [3, 3]
    finally:
        group.close()


def test_kafka_python_commit_survives_a_consumer_restart(kafka_server: str) -> None:
    produce(kafka_server, "restart", [b"a", b"b", b"c"])
    first = consumer(kafka_server, "keeper", "restart")
    try:
        assert take(first, 3) == [b"a", b"b", b"c"]
        first.commit()
    finally:
        first.close()

    produce(kafka_server, "restart", [b"d"])
    second = consumer(kafka_server, "keeper", "restart")
    try:
        assert second.committed(TopicPartition("restart", 0)) == 3
        assert take(second, 1) == [b"d"]
    finally:
        second.close()


async def test_aiokafka_group_consumes_commits_and_resumes(kafka_server: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server)
    await producer.start()
    try:
        for index in range(5):
            await producer.send_and_wait("aio", f"v{index}".encode(), partition=0)
    finally:
        await producer.stop()

    async def run_consumer() -> AIOKafkaConsumer:
        started = AIOKafkaConsumer(
            "aio",
            bootstrap_servers=kafka_server,
            group_id="aio-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **FAST,
        )
        await started.start()
        return started

    first = await run_consumer()
    try:
        values: list[bytes] = []
        while len(values) < 3:
            batches = await first.getmany(timeout_ms=1000, max_records=3 - len(values))
            values += [r.value for records in batches.values() for r in records if r.value]
        assert values == [b"v0", b"v1", b"v2"]
        await first.commit()
    finally:
        await first.stop()

    second = await run_consumer()
    try:
        assert await second.committed(AioTopicPartition("aio", 0)) == 3
        record = await second.getone()
        assert record.value == b"v3"
    finally:
        await second.stop()


def test_committed_offsets_survive_a_broker_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    server = start_server(data_dir, port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        produce(bootstrap, "durable", [b"a", b"b"])
        first = consumer(bootstrap, "survivor", "durable")
        try:
            assert take(first, 2) == [b"a", b"b"]
            first.commit()
        finally:
            first.close()
    finally:
        assert stop_server(server) == 0

    port = free_port()
    server = start_server(data_dir, port)
    try:
        second = consumer(f"127.0.0.1:{port}", "survivor", "durable")
        try:
            assert second.committed(TopicPartition("durable", 0)) == 2
        finally:
            second.close()
    finally:
        stop_server(server)


async def test_two_aiokafka_consumers_split_the_partitions(
    kafka_server: str, admin: KafkaAdminClient
) -> None:
    create_topic(admin, "aio-split", 3)
    wanted = {AioTopicPartition("aio-split", p) for p in range(3)}
    members = [
        AIOKafkaConsumer(
            "aio-split",
            bootstrap_servers=kafka_server,
            group_id="aio-pair",
            enable_auto_commit=False,
            **FAST,
        )
        for _ in range(2)
    ]
    await asyncio.gather(*(member.start() for member in members))
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            await asyncio.gather(*(member.getmany(timeout_ms=100) for member in members))
            one, two = (member.assignment() for member in members)
            if one and two and not one & two and one | two == wanted:
                break
        one, two = (member.assignment() for member in members)
        assert one and two and not one & two, (one, two)
        assert one | two == wanted
    finally:
        await asyncio.gather(*(member.stop() for member in members))


def test_confluent_kafka_cooperative_sticky_group_commits_and_resumes(kafka_server: str) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    produce(kafka_server, "rdkafka", [b"x", b"y", b"z"])

    def member() -> Any:
        created = confluent_kafka.Consumer(
            {
                "bootstrap.servers": kafka_server,
                "group.id": "rdkafka-group",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 200,
            }
        )
        created.subscribe(["rdkafka"])
        return created

    def consume(consumer: Any, count: int) -> list[bytes]:
        values: list[bytes] = []
        deadline = time.monotonic() + 15
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
        return values

    first = member()
    try:
        assert consume(first, 2) == [b"x", b"y"]
        first.commit(asynchronous=False)
    finally:
        first.close()

    second = member()
    try:
        assert consume(second, 1) == [b"z"]
        tp = confluent_kafka.TopicPartition("rdkafka", 0)
        assert [c.offset for c in second.committed([tp], timeout=10)] == [2]
    finally:
        second.close()


KILLABLE_MEMBER = """
import sys, warnings
warnings.simplefilter("ignore")
from kafka import KafkaConsumer
consumer = KafkaConsumer(
    sys.argv[2], bootstrap_servers=sys.argv[1], group_id=sys.argv[3],
    session_timeout_ms=1500, heartbeat_interval_ms=300, enable_auto_commit=False,
)
while True:
    consumer.poll(timeout_ms=100)
"""


def test_a_killed_member_is_expelled_and_its_partitions_reassigned(
    kafka_server: str, admin: KafkaAdminClient
) -> None:
    create_topic(admin, "killed", 4)
    partitions = {TopicPartition("killed", p) for p in range(4)}
    victim = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_MEMBER, kafka_server, "killed", "kill-group"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    group = PollingGroup([consumer(kafka_server, "kill-group", "killed")])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if 0 < len(group.views[0]) < 4:
                break
            time.sleep(0.05)
        assert 0 < len(group.views[0]) < 4, group.views
        victim.kill()
        victim.wait()
        assert group.split(partitions), group.views
    finally:
        group.close()
        if victim.poll() is None:
            victim.kill()
            victim.wait()
