"""Metadata: the handler in process (topic selection, auto-creation, errors) and real clients."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer

from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.protocols.kafka.registry import RequestContext, load_all, lookup

with warnings.catch_warnings():
    # kafka-python loads its schemas with a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaProducer

METADATA = 3


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with await Broker.open(tmp_path, BrokerConfig()) as opened:
        await opened.create_topic("two", TopicConfig(partitions=2))
        yield opened


async def call(broker: Broker, version: int, names: list[str] | None, **extra: Any) -> Any:
    """Run the Metadata handler as the connection would; prove the answer serializes."""
    load_all()
    handler = lookup(METADATA, version)
    assert handler is not None
    ctx = RequestContext(
        broker=broker,
        api_key=METADATA,
        api_version=version,
        correlation_id=1,
        client_id="test",
        client_host="127.0.0.1",
        node_id=0,
        advertised_host="broker.example",
        advertised_port=19092,
    )
    request_type = load_request_schema(METADATA, version)
    module = __import__(request_type.__module__, fromlist=["MetadataRequestTopic"])
    topics = None if names is None else tuple(module.MetadataRequestTopic(name=n) for n in names)
    if version >= 8:
        extra.setdefault("include_cluster_authorized_operations", False)
        extra.setdefault("include_topic_authorized_operations", False)
    answer = await handler(ctx, request_type(topics=topics, **extra))
    response = load_response_schema(METADATA, version)
    assert type(answer) is response
    entity_writer(response)(io.BytesIO(), answer)
    return answer


def by_name(answer: Any) -> dict[str, Any]:
    return {topic.name: topic for topic in answer.topics}


@pytest.mark.parametrize("version", range(1, 9))
async def test_all_topics_one_broker(broker: Broker, version: int) -> None:
    answer = await call(broker, version, None)
    assert [(b.node_id, b.host, b.port) for b in answer.brokers] == [(0, "broker.example", 19092)]
    topic = by_name(answer)["two"]
    assert topic.error_code == ErrorCode.none
    assert [
        (p.partition_index, p.leader_id, p.replica_nodes, p.isr_nodes) for p in topic.partitions
    ] == [
        (0, 0, (0,), (0,)),
        (1, 0, (0,), (0,)),
    ]
    assert answer.controller_id == 0


async def test_v0_empty_list_means_all_but_v1_empty_list_means_none(broker: Broker) -> None:
    assert set(by_name(await call(broker, 0, []))) == {"two"}
    assert by_name(await call(broker, 1, [])) == {}


async def test_missing_topic_is_auto_created(broker: Broker) -> None:
    topic = by_name(await call(broker, 4, ["fresh"], allow_auto_topic_creation=True))["fresh"]
    assert topic.error_code == ErrorCode.none
    assert len(topic.partitions) == 1
    assert broker.partition_count("fresh") == 1


async def test_request_can_forbid_auto_creation(broker: Broker) -> None:
    topic = by_name(await call(broker, 4, ["nope"], allow_auto_topic_creation=False))["nope"]
    assert topic.error_code == ErrorCode.unknown_topic_or_partition
    assert "nope" not in {info.name for info in broker.list_topics()}


async def test_broker_can_forbid_auto_creation(tmp_path: Path) -> None:
    async with await Broker.open(tmp_path, BrokerConfig(auto_create_topics=False)) as broker:
        topic = by_name(await call(broker, 8, ["nope"], allow_auto_topic_creation=True))["nope"]
    assert topic.error_code == ErrorCode.unknown_topic_or_partition


async def test_illegal_name_is_invalid_topic(broker: Broker) -> None:
    topic = by_name(await call(broker, 4, ["bad/name"], allow_auto_topic_creation=True))
    assert topic["bad/name"].error_code == ErrorCode.invalid_topic_exception


def test_kafka_python_sees_auto_created_topic(kafka_server: str) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_server, request_timeout_ms=5000)
    admin = KafkaAdminClient(bootstrap_servers=kafka_server, request_timeout_ms=5000)
    try:
        sent = producer.send("auto", b"event").get(timeout=10)
        assert (sent.topic, sent.partition, sent.offset) == ("auto", 0, 0)
        assert "auto" in admin.list_topics()
        cluster = admin.describe_cluster()
        assert cluster["controller_id"] == 0
        assert [(b["broker_id"], b["port"]) for b in cluster["brokers"]] == [
            (0, int(kafka_server.split(":")[1]))
        ]
    finally:
        producer.close()
        admin.close()


def test_kcat_lists_brokers_and_topics(kafka_server: str) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.skip("kcat is not installed")
    producer = KafkaProducer(bootstrap_servers=kafka_server)
    try:
        producer.send("listed", b"x").get(timeout=10)
    finally:
        producer.close()
    listing = subprocess.run(
        [kcat, "-b", kafka_server, "-L", "-J", "-m", "5"],
        capture_output=True,
        timeout=20,
        check=True,
    )
    described = json.loads(listing.stdout)
    assert [(b["id"], b["name"]) for b in described["brokers"]] == [(0, kafka_server)]
    assert [t["topic"] for t in described["topics"]] == ["listed"]
    assert described["topics"][0]["partitions"][0]["leader"] == 0
