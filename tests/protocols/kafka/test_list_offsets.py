"""The ListOffsets handler, called directly with an in-process ``Broker``.

Every answer is also written with kio's writer for its version, so a field missing in one
version fails here rather than on a client's connection.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode

from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.protocols.kafka.registry import load_all, supported
from eventyard.records import BatchBuilder
from tests.protocols.kafka.handlers import call_handler

LIST_OFFSETS = 2
BASE_MS = 1_700_000_000_000


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with await Broker.open(tmp_path, BrokerConfig()) as opened:
        await opened.create_topic("orders", TopicConfig(partitions=2))
        for second in range(3):
            builder = BatchBuilder()
            builder.append(b"a", timestamp_ms=BASE_MS + second * 1000)
            builder.append(b"b", timestamp_ms=BASE_MS + second * 1000 + 500)
            await opened.produce("orders", 0, builder.build())
        yield opened


async def call(broker: Broker, version: int, body: Any) -> Any:
    return await call_handler(broker, LIST_OFFSETS, version, body)


def list_request(version: int, wanted: dict[str, dict[int, int]]) -> Any:
    module = importlib.import_module(load_request_schema(LIST_OFFSETS, version).__module__)
    values: dict[str, Any] = {
        "replica_id": -1,
        "topics": tuple(
            module.ListOffsetsTopic(
                name=name,
                partitions=tuple(
                    module.ListOffsetsPartition(partition_index=index, timestamp=timestamp)
                    for index, timestamp in partitions.items()
                ),
            )
            for name, partitions in wanted.items()
        ),
    }
    if version >= 2:
        values["isolation_level"] = 0
    return module.ListOffsetsRequest(**values)


async def answers(broker: Broker, version: int, wanted: dict[str, dict[int, int]]) -> Any:
    answer = await call(broker, version, list_request(version, wanted))
    return {
        (topic.name, partition.partition_index): (
            partition.error_code,
            partition.offset,
            partition.timestamp,
        )
        for topic in answer.topics
        for partition in topic.partitions
    }


def test_registered_versions() -> None:
    load_all()
    assert supported()[LIST_OFFSETS] == (0, 5)


@pytest.mark.parametrize("version", [1, 2, 5])
async def test_latest_and_earliest(broker: Broker, version: int) -> None:
    got = await answers(broker, version, {"orders": {0: -1, 1: -2}})
    assert got == {("orders", 0): (ErrorCode.none, 6, -1), ("orders", 1): (ErrorCode.none, 0, -1)}
    got = await answers(broker, version, {"orders": {0: -2}})
    assert got == {("orders", 0): (ErrorCode.none, 0, -1)}


async def test_by_timestamp_answers_the_record_and_its_time(broker: Broker) -> None:
    got = await answers(broker, 5, {"orders": {0: BASE_MS + 1200}})
    assert got == {("orders", 0): (ErrorCode.none, 3, BASE_MS + 1500)}
    got = await answers(broker, 5, {"orders": {0: BASE_MS}})
    assert got == {("orders", 0): (ErrorCode.none, 0, BASE_MS)}
    got = await answers(broker, 5, {"orders": {0: BASE_MS + 10_000}})
    assert got == {("orders", 0): (ErrorCode.none, -1, -1)}


async def test_unknown_partitions(broker: Broker) -> None:
    got = await answers(broker, 5, {"orders": {7: -1}, "missing": {0: -2}})
    assert got == {
        ("orders", 7): (ErrorCode.unknown_topic_or_partition, -1, -1),
        ("missing", 0): (ErrorCode.unknown_topic_or_partition, -1, -1),
    }
