"""The Fetch handler, called directly with an in-process ``Broker``.

Every answer is also written with kio's writer for its version, so a field missing in one
version fails here rather than on a client's connection.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import time
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode

from eventyard.broker import Broker
from eventyard.protocols.kafka.registry import load_all, supported
from eventyard.records import BatchBuilder, decode_batches
from tests.protocols.kafka.handlers import call_handler

FETCH = 1
MS = datetime.timedelta(milliseconds=1)


async def call(broker: Broker, version: int, body: Any) -> Any:
    return await call_handler(broker, FETCH, version, body)


def fetch_request(
    version: int,
    wanted: dict[str, dict[int, int]],
    *,
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    max_bytes: int = 1 << 20,
    partition_max_bytes: int = 1 << 20,
) -> Any:
    module = importlib.import_module(load_request_schema(FETCH, version).__module__)
    values: dict[str, Any] = {
        "max_wait": max_wait_ms * MS,
        "min_bytes": min_bytes,
        "max_bytes": max_bytes,
        "topics": tuple(
            module.FetchTopic(
                topic=name,
                partitions=tuple(
                    module.FetchPartition(
                        partition=index,
                        fetch_offset=offset,
                        partition_max_bytes=partition_max_bytes,
                    )
                    for index, offset in partitions.items()
                ),
            )
            for name, partitions in wanted.items()
        ),
    }
    if version >= 7:
        values["forgotten_topics_data"] = ()
    return module.FetchRequest(**values)


def batch(*values: bytes) -> bytes:
    builder = BatchBuilder()
    for value in values:
        builder.append(value)
    return builder.build()


def partitions(answer: Any) -> dict[tuple[str, int], Any]:
    return {
        (topic.topic, partition.partition_index): partition
        for topic in answer.responses
        for partition in topic.partitions
    }


def test_registered_versions() -> None:
    load_all()
    assert supported()[FETCH] == (0, 11)


@pytest.mark.parametrize("version", [4, 7, 11])
async def test_returns_stored_batches_verbatim(broker: Broker, version: int) -> None:
    await broker.produce("orders", 0, batch(b"a", b"b"))
    await broker.produce("orders", 0, batch(b"c"))
    stored = (await broker.fetch("orders", 0, 0)).records
    answer = partitions(
        await call(broker, version, fetch_request(version, {"orders": {0: 2, 1: 0}}))
    )
    first, second = answer["orders", 0], answer["orders", 1]
    assert first.error_code == ErrorCode.none
    assert first.records == stored[len(stored) - len(first.records) :]
    assert [r.value for r in decode_batches(first.records)] == [b"c"]
    assert (first.high_watermark, first.last_stable_offset) == (3, 3)
    if version >= 5:
        assert first.log_start_offset == 0
    assert (second.error_code, second.records, second.high_watermark) == (ErrorCode.none, b"", 0)


async def test_partition_errors_do_not_fail_the_others(broker: Broker) -> None:
    await broker.produce("orders", 1, batch(b"v"))
    body = fetch_request(11, {"orders": {0: 5, 1: 0, 9: 0}, "missing": {0: 0}})
    answer = partitions(await call(broker, 11, body))
    assert answer["orders", 0].error_code == ErrorCode.offset_out_of_range
    assert answer["orders", 1].error_code == ErrorCode.none
    assert [r.value for r in decode_batches(answer["orders", 1].records)] == [b"v"]
    assert answer["orders", 9].error_code == ErrorCode.unknown_topic_or_partition
    assert answer["missing", 0].error_code == ErrorCode.unknown_topic_or_partition


async def test_long_polls_until_data_arrives(broker: Broker) -> None:
    body = fetch_request(11, {"orders": {0: 0}}, max_wait_ms=5_000)
    pending = asyncio.create_task(call(broker, 11, body))
    await asyncio.sleep(0.05)
    assert not pending.done()
    await broker.produce("orders", 0, batch(b"late"))
    answer = partitions(await asyncio.wait_for(pending, 2))
    assert [r.value for r in decode_batches(answer["orders", 0].records)] == [b"late"]


async def test_waits_at_most_max_wait(broker: Broker) -> None:
    started = time.monotonic()
    answer = partitions(
        await call(broker, 11, fetch_request(11, {"orders": {0: 0}}, max_wait_ms=100))
    )
    elapsed = time.monotonic() - started
    assert answer["orders", 0].records == b""
    assert 0.09 <= elapsed < 2


async def test_byte_limits_keep_the_first_batch_whole(broker: Broker) -> None:
    for value in (b"a" * 300, b"b" * 300, b"c" * 300):
        await broker.produce("orders", 0, batch(value))
    body = fetch_request(11, {"orders": {0: 0}}, partition_max_bytes=10)
    (only,) = decode_batches(partitions(await call(broker, 11, body))["orders", 0].records)
    assert only.value == b"a" * 300
    body = fetch_request(11, {"orders": {0: 0}}, max_bytes=800)
    values = [
        r.value
        for r in decode_batches(partitions(await call(broker, 11, body))["orders", 0].records)
    ]
    assert values == [b"a" * 300, b"b" * 300]
