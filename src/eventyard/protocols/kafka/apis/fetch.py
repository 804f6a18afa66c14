"""Fetch (API key 1), versions 4-11: stored record batches, byte for byte, with long polling.

kio serves Fetch from v4 (what Kafka 4 serves), so older versions are not advertised. Every
requested partition becomes one ``broker.FetchRequest`` with its ``partition_max_bytes``;
``Broker.fetch_many`` long-polls up to ``max_wait`` for ``min_bytes`` and caps the answer at
``max_bytes``, always returning the first batch found whole (Kafka's rule, so a batch larger
than the limits still makes progress). Batches go out exactly as stored; the first may start
before ``fetch_offset`` and clients skip its earlier records.

Each partition answers separately: OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION or
KAFKA_STORAGE_ERROR there never fails the others. There are no transactions, so the last
stable offset is the high watermark and no aborted transactions are listed. Fetch sessions
(v7+, KIP-227) are not kept: every answer has session id 0, which tells clients to send full
fetch requests, and ``forgotten_topics_data`` is ignored.
"""

from __future__ import annotations

from typing import Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from eventyard.broker import FetchRequest, FetchResult
from eventyard.protocols.kafka.apis._entities import (
    build,
    error_code,
    millis,
    response_module,
)
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["fetch"]

API_KEY = 1


@register(API_KEY, 4, 11)
async def fetch(ctx: RequestContext, request: Any) -> Any:
    """Read every requested partition through ``broker.fetch_many`` and answer in order."""
    wanted = [
        FetchRequest(
            topic.topic,
            partition.partition,
            partition.fetch_offset,
            max(partition.partition_max_bytes, 1),
        )
        for topic in request.topics
        for partition in topic.partitions
    ]
    results = await ctx.broker.fetch_many(
        wanted,
        max_wait_ms=max(millis(request.max_wait), 0),
        min_bytes=request.min_bytes,
        max_bytes=max(request.max_bytes, 1),
    )
    module = response_module(API_KEY, ctx.api_version)
    answers = iter(results)
    return build(
        load_response_schema(API_KEY, ctx.api_version),
        error_code=ErrorCode.none,
        session_id=0,
        responses=tuple(
            module.FetchableTopicResponse(
                topic=topic.topic,
                partitions=tuple(
                    _partition_data(module, partition.partition, next(answers))
                    for partition in topic.partitions
                ),
            )
            for topic in request.topics
        ),
    )


def _partition_data(module: Any, index: int, result: FetchResult) -> Any:
    """The kio ``PartitionData`` of one partition: its batches and watermarks, or its error."""
    return build(
        module.PartitionData,
        partition_index=index,
        error_code=ErrorCode.none if result.error is None else error_code(result.error),
        high_watermark=result.high_watermark,
        last_stable_offset=result.high_watermark,
        log_start_offset=result.log_start_offset,
        aborted_transactions=None,
        records=result.records,
    )
