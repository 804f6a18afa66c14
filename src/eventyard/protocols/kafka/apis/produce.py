"""Produce (API key 0), versions 3-8: append each partition's record batches verbatim.

kio serves Produce from v3 (magic 2 batches only, as Kafka 4), so older versions are not
advertised. Each partition's ``records`` go to the broker unchanged: it checks magic and
CRC-32C, the batch size and idempotent-producer sequences, patches only the base offset and
stores the bytes as they arrived. Partitions are appended in request order (an idempotent
producer's batches must arrive in sequence order) and then acknowledged together, so one
group-commit fsync covers every partition of the request. A missing topic is created with
the broker's defaults when ``auto_create_topics`` allows it. Each partition's failure is
answered with its own error code (CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION,
MESSAGE_TOO_LARGE, INVALID_TOPIC_EXCEPTION, OUT_OF_ORDER_SEQUENCE_NUMBER,
DUPLICATE_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID, KAFKA_STORAGE_ERROR).
``acks=0`` gets no response at all: the handler returns ``None`` after appending.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from eventyard.broker import Broker, ProduceResult
from eventyard.errors import CorruptRecordError, EventyardError, UnknownTopicError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["produce"]

API_KEY = 0


@dataclass(slots=True)
class _Outcome:
    """One partition's append: its result and pending durability, or its error."""

    index: int
    result: ProduceResult | None = None
    durable: asyncio.Future[None] | None = None
    error: EventyardError | None = None


async def _append(broker: Broker, topic: str, index: int, records: bytes | None) -> _Outcome:
    """Append one partition's payload, creating the topic first if it is missing."""
    outcome = _Outcome(index)
    if records is None:
        outcome.error = CorruptRecordError("a produce request with null records")
        return outcome
    try:
        try:
            outcome.result, outcome.durable = broker.append(topic, index, records)
        except UnknownTopicError:
            await broker.ensure_topic(topic)
            outcome.result, outcome.durable = broker.append(topic, index, records)
    except EventyardError as exc:
        outcome.error = exc
    return outcome


async def _acknowledge(outcome: _Outcome) -> None:
    """Wait for the durability policy of an appended partition; record a failed flush."""
    if outcome.durable is None:
        return
    try:
        await outcome.durable
    except EventyardError as exc:
        outcome.error = exc


@register(API_KEY, 3, 8)
async def produce(ctx: RequestContext, request: Any) -> Any:
    """Append every partition of ``request``; answer offsets or errors (``None`` if acks=0)."""
    appended: list[tuple[str, list[_Outcome]]] = []
    for topic in request.topic_data:
        outcomes = [
            await _append(ctx.broker, topic.name, partition.index, partition.records)
            for partition in topic.partition_data
        ]
        appended.append((topic.name, outcomes))
    pending = [outcome for _, outcomes in appended for outcome in outcomes]
    await asyncio.gather(*(_acknowledge(outcome) for outcome in pending))
    if request.acks == 0:
        return None
    module = response_module(API_KEY, ctx.api_version)
    return build(
        load_response_schema(API_KEY, ctx.api_version),
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
