"""Produce (API key 0), versions 0-8: append each partition's records to the broker.

Versions 3-8 (kio) carry record batches v2, which go to the broker unchanged: it checks magic
and CRC-32C, the batch size and idempotent-producer sequences, patches only the base offset
and stores the bytes as they arrived. Versions 0-2 (kafka-python's codec) carry message sets
of magic 0 (v0) or 1 (v1-2); each partition's set is converted into one batch v2 with the
same keys, values and timestamps (``message_sets.to_batch``; magic 0 messages get the append
time) and then appended the same way. v1 adds ``throttle_time`` to the answer and v2
``log_append_time``, always -1 here (topics use create time).

Partitions are appended in request order (an idempotent producer's batches must arrive in
sequence order) and then acknowledged together, so one group-commit fsync covers every
partition of the request. The handler detaches (``ctx.detach()``) between the two: the
connection starts the next request while this one waits for its fsync, which is what lets a
client keep several Produce requests in flight on one connection. A missing topic is created
with the broker's defaults when ``auto_create_topics`` allows it. Each partition's failure is
answered with its own error code (CORRUPT_MESSAGE, for a bad CRC of a message set too,
UNKNOWN_TOPIC_OR_PARTITION, MESSAGE_TOO_LARGE, INVALID_TOPIC_EXCEPTION,
OUT_OF_ORDER_SEQUENCE_NUMBER, DUPLICATE_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
UNKNOWN_PRODUCER_ID, KAFKA_STORAGE_ERROR). ``acks=0`` gets no response at all: the handler
returns ``None`` once the appends are acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker import Broker, ProduceResult
from eventyard.errors import CorruptRecordError, EventyardError, UnknownTopicError
from eventyard.protocols.kafka.apis._entities import (
    build,
    error_code,
    response_class,
    response_module,
)
from eventyard.protocols.kafka.apis._kafka_python import ProduceRequest, ProduceResponse
from eventyard.protocols.kafka.codecs import KafkaPython
from eventyard.protocols.kafka.message_sets import to_batch
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["produce", "produce_message_sets"]

API_KEY = 0


@dataclass(slots=True)
class _Outcome:
    """One partition's append: its result and pending durability, or its error."""

    index: int
    result: ProduceResult | None = None
    durable: asyncio.Future[None] | None = None
    error: EventyardError | None = None


_Appended = list[tuple[str, list[_Outcome]]]
"""Each topic of a request with its partitions' outcomes, in request order."""


async def _append(broker: Broker, topic: str, index: int, batch: bytes) -> _Outcome:
    """Append one partition's batch, creating the topic first if it is missing."""
    outcome = _Outcome(index)
    try:
        try:
            outcome.result, outcome.durable = broker.append(topic, index, batch)
        except UnknownTopicError:
            await broker.ensure_topic(topic)
            outcome.result, outcome.durable = broker.append(topic, index, batch)
    except EventyardError as exc:
        outcome.error = exc
    return outcome


async def _append_all(
    ctx: RequestContext, topic_data: Iterable[Any], to_v2: Callable[[bytes], bytes]
) -> _Appended:
    """Append every partition of the request in order (``to_v2`` turns records into a batch),
    detach, and wait until every append is acknowledged or has failed."""
    appended: _Appended = []
    for topic in topic_data:
        outcomes = []
        for partition in topic.partition_data:
            if partition.records is None:
                error = CorruptRecordError("a produce request with null records")
                outcomes.append(_Outcome(partition.index, error=error))
                continue
            try:
                batch = to_v2(partition.records)
            except CorruptRecordError as exc:
                outcomes.append(_Outcome(partition.index, error=exc))
                continue
            outcomes.append(await _append(ctx.broker, topic.name, partition.index, batch))
        appended.append((topic.name, outcomes))
    ctx.detach()
    pending = [
        (o, o.durable) for _, outcomes in appended for o in outcomes if o.durable is not None
    ]
    if pending:  # none under interval or never durability: no task per partition then
        await asyncio.gather(*(_acknowledge(outcome, durable) for outcome, durable in pending))
    return appended


async def _acknowledge(outcome: _Outcome, durable: asyncio.Future[None]) -> None:
    """Wait for the durability policy of an appended partition; record a failed flush."""
    try:
        await durable
    except EventyardError as exc:
        outcome.error = exc


def _verbatim(records: bytes) -> bytes:
    return records


@register(API_KEY, 3, 8, pipelined=True)
async def produce(ctx: RequestContext, request: Any) -> Any:
    """Append every partition of ``request``; answer offsets or errors (``None`` if acks=0)."""
    appended = await _append_all(ctx, request.topic_data, _verbatim)
    if request.acks == 0:
        return None
    module = response_module(API_KEY, ctx.api_version)
    return build(
        response_class(API_KEY, ctx.api_version),
        responses=tuple(
            module.TopicProduceResponse(
                name=name,
                partition_responses=tuple(_partition_response(module, o) for o in outcomes),
            )
            for name, outcomes in appended
        ),
    )


def _partition_response(module: Any, outcome: _Outcome) -> Any:
    """The kio ``PartitionProduceResponse`` of one partition: its offsets or its error."""
    if outcome.error is not None:
        return build(
            module.PartitionProduceResponse,
            index=outcome.index,
            error_code=error_code(outcome.error),
            base_offset=-1,
            log_start_offset=-1,
            record_errors=(),
            error_message=str(outcome.error),
        )
    assert outcome.result is not None, "an outcome holds a result or an error"
    return build(
        module.PartitionProduceResponse,
        index=outcome.index,
        error_code=ErrorCode.none,
        base_offset=outcome.result.base_offset,
        log_start_offset=outcome.result.log_start_offset,
        record_errors=(),
    )


@register(API_KEY, 0, 2, codec=KafkaPython(ProduceRequest, ProduceResponse), pipelined=True)
async def produce_message_sets(ctx: RequestContext, request: Any) -> Any:
    """Produce v0-2: convert each partition's message set to a batch v2, then as v3+."""
    append_time_ms = time.time_ns() // 1_000_000

    def to_v2(message_set: bytes) -> bytes:
        return to_batch(message_set, append_time_ms=append_time_ms)

    appended = await _append_all(ctx, request.topic_data, to_v2)
    if request.acks == 0:
        return None
    topic_response = ProduceResponse.TopicProduceResponse
    partition_response = topic_response.PartitionProduceResponse
    return ProduceResponse(
        responses=[
            topic_response(
                name=name,
                partition_responses=[
                    partition_response(
                        index=o.index,
                        error_code=ErrorCode.none if o.error is None else error_code(o.error),
                        base_offset=-1 if o.result is None else o.result.base_offset,
                        log_append_time_ms=-1,
                    )
                    for o in outcomes
                ],
            )
            for name, outcomes in appended
        ],
        throttle_time_ms=0,
    )
