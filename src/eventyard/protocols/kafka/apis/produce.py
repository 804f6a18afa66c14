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
partition of the request. The handler is ``pipelined``: it appends at once, in the
connection's reader, and answers there when no append waits for durability (interval or
``never`` durability: no task and no loop turn per request). Otherwise it detaches
(``ctx.detach()``) after the appends and returns an awaitable of the answer: the connection
starts the next request while this one waits for its fsync, which is what lets a client keep
several Produce requests in flight on one connection. A missing topic is created with the
broker's defaults when ``auto_create_topics`` allows it (the one case that awaits before the
appends, so the next request waits for them). Each partition's failure is
answered with its own error code (CORRUPT_MESSAGE, for a bad CRC of a message set too,
UNKNOWN_TOPIC_OR_PARTITION, MESSAGE_TOO_LARGE, INVALID_TOPIC_EXCEPTION,
OUT_OF_ORDER_SEQUENCE_NUMBER, DUPLICATE_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
UNKNOWN_PRODUCER_ID, KAFKA_STORAGE_ERROR). ``acks=0`` gets no response at all: the handler
returns ``None`` once the appends are acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker import Broker, ProduceResult
from eventyard.errors import CorruptRecordError, EventyardError
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

_Respond = Callable[[RequestContext, _Appended], Any]
"""Builds a version's answer from the outcomes."""


@dataclass(frozen=True, slots=True)
class _Request:
    """What a Produce version hands over: the partitions' records, ``acks``, how its records
    become one batch v2, and how its answer is built."""

    topic_data: Sequence[Any]
    acks: int
    to_v2: Callable[[bytes], bytes]
    respond: _Respond


def _produce(ctx: RequestContext, request: _Request) -> Any:
    """Append every partition now and answer, or return an awaitable of the answer when a
    topic must be created first or an append waits for durability (``None``: acks=0)."""
    broker = ctx.broker
    if not all(broker.has_topic(topic.name) for topic in request.topic_data):
        return _create_then_produce(ctx, request)
    appended = [
        (
            topic.name,
            [_append(broker, topic.name, p, request.to_v2) for p in topic.partition_data],
        )
        for topic in request.topic_data
    ]
    if any(o.durable is not None for _, outcomes in appended for o in outcomes):
        ctx.detach()
        return _acknowledged(ctx, appended, request)
    return None if request.acks == 0 else request.respond(ctx, appended)


def _append(
    broker: Broker, topic: str, partition: Any, to_v2: Callable[[bytes], bytes]
) -> _Outcome:
    """Append one partition's records to an existing topic."""
    outcome = _Outcome(partition.index)
    try:
        batch = _batch(partition, to_v2)
        outcome.result, outcome.durable = broker.append(topic, partition.index, batch)
    except EventyardError as exc:
        outcome.error = exc
    return outcome


def _batch(partition: Any, to_v2: Callable[[bytes], bytes]) -> bytes:
    """A partition's records as one batch v2 (``CorruptRecordError`` if they are not)."""
    if partition.records is None:
        raise CorruptRecordError("a produce request with null records")
    return to_v2(partition.records)


async def _create_then_produce(ctx: RequestContext, request: _Request) -> Any:
    """Append every partition in order, first creating a missing topic with the broker's
    defaults (where auto-creation allows) when it gets valid records; detach; answer once
    acknowledged."""
    broker = ctx.broker
    appended: _Appended = []
    for topic in request.topic_data:
        outcomes = []
        for partition in topic.partition_data:
            outcome = _Outcome(partition.index)
            try:
                batch = _batch(partition, request.to_v2)
                if not broker.has_topic(topic.name):
                    await broker.ensure_topic(topic.name)
                outcome.result, outcome.durable = broker.append(topic.name, partition.index, batch)
            except EventyardError as exc:
                outcome.error = exc
            outcomes.append(outcome)
        appended.append((topic.name, outcomes))
    ctx.detach()
    return await _acknowledged(ctx, appended, request)


async def _acknowledged(ctx: RequestContext, appended: _Appended, request: _Request) -> Any:
    """The answer once every append has met its durability policy or failed."""
    pending = [o for _, outcomes in appended for o in outcomes if o.durable is not None]
    if pending:
        await asyncio.gather(*(_acknowledge(outcome) for outcome in pending))
    return None if request.acks == 0 else request.respond(ctx, appended)


async def _acknowledge(outcome: _Outcome) -> None:
    """Wait for the durability policy of an appended partition; record a failed flush."""
    assert outcome.durable is not None
    try:
        await outcome.durable
    except EventyardError as exc:
        outcome.error = exc


def _verbatim(records: bytes) -> bytes:
    return records


@register(API_KEY, 3, 8, pipelined=True)
def produce(ctx: RequestContext, request: Any) -> Any:
    """Append every partition of ``request``; answer offsets or errors (``None`` if acks=0)."""
    return _produce(ctx, _Request(request.topic_data, request.acks, _verbatim, _response))


def _response(ctx: RequestContext, appended: _Appended) -> Any:
    """The kio ProduceResponse of ``ctx.api_version``."""
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
def produce_message_sets(ctx: RequestContext, request: Any) -> Any:
    """Produce v0-2: convert each partition's message set to a batch v2, then as v3+."""
    append_time_ms = time.time_ns() // 1_000_000

    def to_v2(message_set: bytes) -> bytes:
        return to_batch(message_set, append_time_ms=append_time_ms)

    return _produce(ctx, _Request(request.topic_data, request.acks, to_v2, _message_set_response))


def _message_set_response(ctx: RequestContext, appended: _Appended) -> Any:
    """The kafka-python ProduceResponse of v0-2."""
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
