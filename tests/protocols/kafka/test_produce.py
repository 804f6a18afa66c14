"""The Produce handler, called directly with an in-process ``Broker``.

Every answer is also written with kio's writer for its version, so a field missing in one
version fails here rather than on a client's connection.
"""

from __future__ import annotations

import datetime
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode

from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.protocols.kafka.apis.produce import produce
from eventyard.protocols.kafka.registry import RequestContext, load_all, supported
from eventyard.records import BatchBuilder, decode_batches
from tests.protocols.kafka.handlers import call_handler

PRODUCE = 0
MS = datetime.timedelta(milliseconds=1)


async def call(broker: Broker, version: int, body: Any) -> Any:
    return await call_handler(broker, PRODUCE, version, body)


def produce_request(version: int, topics: dict[str, dict[int, bytes | None]], acks: int = 1) -> Any:
    module = importlib.import_module(load_request_schema(PRODUCE, version).__module__)
    return module.ProduceRequest(
        acks=acks,
        timeout=1000 * MS,
        topic_data=tuple(
            module.TopicProduceData(
                name=name,
                partition_data=tuple(
                    module.PartitionProduceData(index=index, records=records)
                    for index, records in partitions.items()
                ),
            )
            for name, partitions in topics.items()
        ),
    )


def batch(
    *values: bytes, producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1
) -> bytes:
    builder = BatchBuilder(
        producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=base_sequence
    )
    for value in values:
        builder.append(value, key=b"k")
    return builder.build()


def partitions(answer: Any) -> dict[tuple[str, int], Any]:
    return {
        (topic.name, partition.index): partition
        for topic in answer.responses
        for partition in topic.partition_responses
    }


def test_registered_versions() -> None:
    load_all()
    assert supported()[PRODUCE] == (0, 8)


@pytest.mark.parametrize("version", [3, 5, 8])
async def test_appends_verbatim_and_answers_offsets(broker: Broker, version: int) -> None:
    first, second = batch(b"a", b"b", b"c"), batch(b"d")
    answer = await call(broker, version, produce_request(version, {"orders": {1: first}}))
    (result,) = partitions(answer).values()
    assert (result.index, result.error_code, result.base_offset) == (1, ErrorCode.none, 0)
    answer = await call(broker, version, produce_request(version, {"orders": {1: second}}))
    assert partitions(answer)["orders", 1].base_offset == 3
    stored = (await broker.fetch("orders", 1, 0)).records
    assert stored[8 : len(first)] == first[8:]
    assert stored[len(first) + 8 :] == second[8:]
    assert [r.value for r in decode_batches(stored)] == [b"a", b"b", b"c", b"d"]


async def test_each_partition_answers_its_own_error(broker: Broker) -> None:
    corrupt = bytearray(batch(b"x"))
    corrupt[-1] ^= 0xFF
    body = produce_request(
        8,
        {
            "orders": {0: bytes(corrupt), 1: batch(b"ok"), 5: batch(b"no")},
            "bad name!": {0: batch(b"y")},
        },
    )
    answer = partitions(await call(broker, 8, body))
    assert answer["orders", 0].error_code == ErrorCode.corrupt_message
    assert answer["orders", 1].error_code == ErrorCode.none
    assert answer["orders", 5].error_code == ErrorCode.unknown_topic_or_partition
    assert answer["bad name!", 0].error_code == ErrorCode.invalid_topic_exception
    assert answer["orders", 0].error_message
    assert (
        await broker.list_offset("orders", 0, -1),
        await broker.list_offset("orders", 1, -1),
    ) == (
        0,
        1,
    )


async def test_null_records_are_corrupt(broker: Broker) -> None:
    answer = partitions(await call(broker, 8, produce_request(8, {"orders": {0: None}})))
    assert answer["orders", 0].error_code == ErrorCode.corrupt_message


async def test_auto_creates_a_missing_topic(broker: Broker) -> None:
    answer = partitions(await call(broker, 8, produce_request(8, {"fresh": {0: batch(b"v")}})))
    assert answer["fresh", 0].error_code == ErrorCode.none
    assert broker.partition_count("fresh") == 1


async def test_no_auto_creation_when_disabled(tmp_path: Path) -> None:
    async with await Broker.open(tmp_path, BrokerConfig(auto_create_topics=False)) as broker:
        answer = partitions(await call(broker, 8, produce_request(8, {"fresh": {0: batch(b"v")}})))
    assert answer["fresh", 0].error_code == ErrorCode.unknown_topic_or_partition


def context(broker: Broker, detached: list[bool]) -> RequestContext:
    return RequestContext(
        broker,
        PRODUCE,
        8,
        7,
        "test-client",
        "127.0.0.1",
        0,
        "127.0.0.1",
        9092,
        lambda: detached.append(True),
    )


async def test_answers_at_once_when_no_append_waits_for_durability(broker: Broker) -> None:
    await broker.create_topic("quick", TopicConfig(partitions=1, durability="interval:200"))
    detached: list[bool] = []
    answer = produce(context(broker, detached), produce_request(8, {"quick": {0: batch(b"v")}}))
    assert not inspect.isawaitable(answer)
    assert partitions(answer)["quick", 0].error_code == ErrorCode.none
    assert await broker.list_offset("quick", 0, -1) == 1
    assert detached == []


async def test_appends_at_once_and_detaches_when_waiting_for_durability(broker: Broker) -> None:
    await broker.create_topic("synced", TopicConfig(partitions=1, durability="always"))
    detached: list[bool] = []
    answer = produce(context(broker, detached), produce_request(8, {"synced": {0: batch(b"v")}}))
    assert inspect.isawaitable(answer)
    assert detached == [True]  # appended already: the next request need not wait
    assert broker.describe_topic("synced").partitions[0].size_bytes > 0  # stored, not yet synced
    assert partitions(await answer)["synced", 0].base_offset == 0


async def test_a_missing_topic_is_created_before_the_request_detaches(broker: Broker) -> None:
    detached: list[bool] = []
    answer = produce(context(broker, detached), produce_request(8, {"new": {0: batch(b"v")}}))
    assert inspect.isawaitable(answer)
    assert detached == []  # nothing appended yet: the next request must wait
    assert partitions(await answer)["new", 0].error_code == ErrorCode.none
    assert detached == [True]
    assert await broker.list_offset("new", 0, -1) == 1


async def test_too_large_batch(tmp_path: Path) -> None:
    async with await Broker.open(tmp_path, BrokerConfig(max_message_bytes=200)) as broker:
        body = produce_request(8, {"big": {0: batch(b"v" * 500)}})
        answer = partitions(await call(broker, 8, body))
    assert answer["big", 0].error_code == ErrorCode.message_too_large


async def test_acks_zero_appends_without_answer(broker: Broker) -> None:
    assert await call(broker, 8, produce_request(8, {"orders": {0: batch(b"v")}}, acks=0)) is None
    assert await broker.list_offset("orders", 0, -1) == 1


async def test_idempotent_sequences(broker: Broker) -> None:
    producer_id, epoch = await broker.init_producer_id()
    ids = {"producer_id": producer_id, "producer_epoch": epoch}
    first = batch(b"a", b"b", base_sequence=0, **ids)
    answer = partitions(await call(broker, 8, produce_request(8, {"orders": {0: first}})))
    assert answer["orders", 0].base_offset == 0
    retry = partitions(await call(broker, 8, produce_request(8, {"orders": {0: first}})))
    assert (retry["orders", 0].error_code, retry["orders", 0].base_offset) == (ErrorCode.none, 0)
    assert await broker.list_offset("orders", 0, -1) == 2
    gap = batch(b"c", base_sequence=7, **ids)
    answer = partitions(await call(broker, 8, produce_request(8, {"orders": {0: gap}})))
    assert answer["orders", 0].error_code == ErrorCode.out_of_order_sequence_number
    stale = batch(b"d", base_sequence=2, producer_id=producer_id, producer_epoch=epoch - 1)
    answer = partitions(await call(broker, 8, produce_request(8, {"orders": {0: stale}})))
    assert answer["orders", 0].error_code == ErrorCode.invalid_producer_epoch
