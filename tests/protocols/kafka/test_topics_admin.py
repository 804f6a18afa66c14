"""CreateTopics and DeleteTopics: handlers in process, and kafka-python's admin client."""

from __future__ import annotations

import datetime
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode
from kio.static.primitive import i16, i32

from eventyard.broker import Broker, BrokerConfig
from tests.protocols.kafka.handlers import call_handler

with warnings.catch_warnings():
    # kafka-python loads its schemas with a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

CREATE_TOPICS = 19
DELETE_TOPICS = 20
TIMEOUT = datetime.timedelta(seconds=5)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with await Broker.open(tmp_path, BrokerConfig(default_partitions=3)) as opened:
        yield opened


async def call(broker: Broker, api_key: int, version: int, request: Any) -> Any:
    return await call_handler(broker, api_key, version, request)


def topic(
    name: str,
    partitions: int = 1,
    replication: int = 1,
    configs: dict[str, str] | None = None,
    assignments: list[list[int]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "partitions": partitions,
        "replication": replication,
        "configs": configs or {},
        "assignments": assignments or [],
    }


async def create(
    broker: Broker, *topics: dict[str, Any], version: int = 4, validate_only: bool = False
) -> dict[str, tuple[ErrorCode, str | None]]:
    module = __import__(
        load_request_schema(CREATE_TOPICS, version).__module__, fromlist=["CreatableTopic"]
    )
    request = module.CreateTopicsRequest(
        topics=tuple(
            module.CreatableTopic(
                name=t["name"],
                num_partitions=i32(t["partitions"]),
                replication_factor=i16(t["replication"]),
                assignments=tuple(
                    module.CreatableReplicaAssignment(
                        partition_index=i32(index), broker_ids=tuple(i32(b) for b in brokers)
                    )
                    for index, brokers in enumerate(t["assignments"])
                ),
                configs=tuple(
                    module.CreatableTopicConfig(name=k, value=v) for k, v in t["configs"].items()
                ),
            )
            for t in topics
        ),
        timeout=TIMEOUT,
        validate_only=validate_only,
    )
    answer = await call(broker, CREATE_TOPICS, version, request)
    return {r.name: (r.error_code, r.error_message) for r in answer.topics}


async def test_creates_topics_with_configs_and_default_partitions(broker: Broker) -> None:
    results = await create(
        broker, topic("a", 2, configs={"retention.ms": "1000"}), topic("b", -1, replication=-1)
    )
    assert results == {"a": (ErrorCode.none, None), "b": (ErrorCode.none, None)}
    assert broker.partition_count("a") == 2
    assert broker.describe_topic("a").config.retention_ms == 1000
    assert broker.partition_count("b") == 3


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (topic("x", replication=3), ErrorCode.invalid_replication_factor),
        (topic("x", assignments=[[0], [1]]), ErrorCode.invalid_replica_assignment),
        (topic("x", configs={"no.such.config": "1"}), ErrorCode.invalid_config),
        (topic("bad/name"), ErrorCode.invalid_topic_exception),
        (topic("x", partitions=0), ErrorCode.invalid_partitions),
    ],
)
async def test_refusals(broker: Broker, spec: dict[str, Any], code: ErrorCode) -> None:
    results = await create(broker, spec)
    assert results[spec["name"]][0] == code
    assert results[spec["name"]][1]
    assert broker.list_topics() == []


async def test_assignment_to_node_0_sets_partition_count(broker: Broker) -> None:
    results = await create(broker, topic("x", partitions=-1, replication=-1, assignments=[[0]] * 4))
    assert results["x"][0] == ErrorCode.none
    assert broker.partition_count("x") == 4


async def test_existing_topic_and_duplicates(broker: Broker) -> None:
    await create(broker, topic("old"))
    results = await create(broker, topic("old"), topic("dup"), topic("dup"), version=2)
    assert results["old"][0] == ErrorCode.topic_already_exists
    assert results["dup"][0] == ErrorCode.invalid_request
    assert [info.name for info in broker.list_topics()] == ["old"]


async def test_validate_only_checks_without_creating(broker: Broker) -> None:
    await create(broker, topic("old"))
    results = await create(broker, topic("new"), topic("old"), topic("a b"), validate_only=True)
    assert results["new"][0] == ErrorCode.none
    assert results["old"][0] == ErrorCode.topic_already_exists
    assert results["a b"][0] == ErrorCode.invalid_topic_exception
    assert [info.name for info in broker.list_topics()] == ["old"]


@pytest.mark.parametrize("version", [1, 4])
async def test_delete_answers_per_topic(broker: Broker, version: int) -> None:
    await create(broker, topic("gone"))
    request = load_request_schema(DELETE_TOPICS, version)(
        topic_names=("gone", "never"), timeout=TIMEOUT
    )
    answer = await call(broker, DELETE_TOPICS, version, request)
    assert {r.name: r.error_code for r in answer.responses} == {
        "gone": ErrorCode.none,
        "never": ErrorCode.unknown_topic_or_partition,
    }
    assert broker.list_topics() == []


def test_kafka_python_admin_creates_and_deletes(kafka_server: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_server, request_timeout_ms=5000)
    try:
        admin.create_topics([NewTopic("orders", 3, 1)])
        assert "orders" in admin.list_topics()
        described = admin.describe_topics(["orders"])
        assert len(described[0]["partitions"]) == 3
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("orders", 1, 1)])
        admin.delete_topics(["orders"])
        assert "orders" not in admin.list_topics()
    finally:
        admin.close()


def test_confluent_admin_creates_and_deletes(kafka_server: str) -> None:
    admin_module = pytest.importorskip("confluent_kafka.admin")
    admin = admin_module.AdminClient({"bootstrap.servers": kafka_server})
    created = admin.create_topics([admin_module.NewTopic("payments", 2, 1)])
    assert created["payments"].result(timeout=10) is None
    assert len(admin.list_topics(timeout=10).topics["payments"].partitions) == 2
    deleted = admin.delete_topics(["payments"])
    assert deleted["payments"].result(timeout=10) is None
    assert "payments" not in admin.list_topics(timeout=10).topics
