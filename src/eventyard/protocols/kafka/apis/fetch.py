"""Fetch (API key 1), versions 0-11: stored records with long polling.

Every requested partition becomes one ``broker.FetchRequest`` with its ``partition_max_bytes``;
``Broker.fetch_many`` long-polls up to ``max_wait`` for ``min_bytes`` and caps the answer at
``max_bytes`` (v3+), always returning the first batch found whole (Kafka's rule, so a batch
larger than the limits still makes progress).

Versions 4-11 (kio) answer the stored batches v2 exactly as stored; the first may start
before ``fetch_offset`` and clients skip its earlier records. Versions 0-3 (kafka-python's
codec) answer message sets, as a Kafka broker down-converts for old consumers: magic 0 for
v0-1, magic 1 (with timestamps) for v2-3, uncompressed, headers dropped, starting exactly at
``fetch_offset`` (``message_sets.to_message_set``). Those sets hold whole messages within
``partition_max_bytes``, and in v3 within the request's ``max_bytes`` overall; a first
message larger than the limit is still sent whole (only the first non-empty partition's in
v3), so a consumer never stalls on it.

Each partition answers separately: OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION,
KAFKA_STORAGE_ERROR, or CORRUPT_MESSAGE for stored data that does not down-convert, there
never fails the others. There are no transactions, so the last stable offset is the high
watermark and no aborted transactions are listed. Fetch sessions (v7+, KIP-227) are not
kept: every answer has session id 0, which tells clients to send full fetch requests, and
``forgotten_topics_data`` is ignored.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker import FetchRequest, FetchResult
from eventyard.errors import CorruptRecordError
from eventyard.protocols.kafka.apis import _kafka_python
from eventyard.protocols.kafka.apis._entities import (
    build,
    error_code,
    millis,
    response_class,
    response_module,
)
from eventyard.protocols.kafka.codecs import KafkaPython
from eventyard.protocols.kafka.message_sets import to_message_set
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["fetch", "fetch_message_sets"]

API_KEY = 1


async def _read(
    ctx: RequestContext, request: Any, max_wait_ms: int, max_bytes: int
) -> list[FetchResult]:
    """``broker.fetch_many`` over every requested partition, in request order."""
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
    return await ctx.broker.fetch_many(
        wanted,
        max_wait_ms=max(max_wait_ms, 0),
        min_bytes=request.min_bytes,
        max_bytes=max(max_bytes, 1),
    )


@register(API_KEY, 4, 11)
async def fetch(ctx: RequestContext, request: Any) -> Any:
    """Read every requested partition through ``broker.fetch_many`` and answer in order."""
    results = await _read(ctx, request, millis(request.max_wait), request.max_bytes)
    module = response_module(API_KEY, ctx.api_version)
    answers = iter(results)
    return build(
        response_class(API_KEY, ctx.api_version),
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


@register(API_KEY, 0, 3, codec=KafkaPython(_kafka_python.FetchRequest, _kafka_python.FetchResponse))
async def fetch_message_sets(ctx: RequestContext, request: Any) -> Any:
    """Fetch v0-3: read as v4+, then down-convert each partition's batches to a message set."""
    results = await _read(ctx, request, request.max_wait_ms, request.max_bytes)
    magic = 0 if ctx.api_version < 2 else 1
    budget = request.max_bytes
    response = _kafka_python.FetchResponse
    topics = []
    answers = iter(results)
    for topic in request.topics:
        partitions = []
        for partition in topic.partitions:
            result = next(answers)
            code = ErrorCode.none if result.error is None else error_code(result.error)
            records = b""
            if result.records:
                try:
                    records = to_message_set(
                        result.records,
                        magic=magic,
                        first_offset=partition.fetch_offset,
                        max_bytes=min(partition.partition_max_bytes, budget),
                        at_least_one=ctx.api_version < 3 or budget == request.max_bytes,
                    )
                except CorruptRecordError as exc:
                    code = error_code(exc)
                budget = max(budget - len(records), 0)
            partitions.append(
                response.FetchableTopicResponse.PartitionData(
                    partition_index=partition.partition,
                    error_code=code,
                    high_watermark=result.high_watermark,
                    records=records,
                )
            )
        topics.append(response.FetchableTopicResponse(topic=topic.topic, partitions=partitions))
    return response(throttle_time_ms=0, responses=topics)
