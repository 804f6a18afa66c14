"""ListOffsets (API key 2), versions 0-5: a partition's offsets by time.

Per partition, ``timestamp`` -1 (LATEST) answers the high watermark and -2 (EARLIEST) the
log start offset, both with timestamp -1, as Kafka does; any other timestamp answers the
first offset whose record timestamp is at least it, with that record's timestamp, or offset
and timestamp -1 when no record is that recent. There are no transactions, so
``isolation_level`` read_committed sees the same end (the last stable offset is the high
watermark). Errors are per partition (UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR).

Versions 1-5 are kio's; v0 (kafka-python's codec) asks for up to ``max_num_offsets`` offsets
and answers a list of them (``old_style_offsets``). Kafka answers v0 with segment start
offsets; eventyard answers the one offset v1 would (an empty list where v1 answers -1, or
for ``max_num_offsets`` 0), which is what clients ask v0 for: the earliest or the latest
offset, with ``max_num_offsets`` 1.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker import EARLIEST, LATEST, Broker
from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis import _kafka_python
from eventyard.protocols.kafka.apis._entities import (
    build,
    error_code,
    response_class,
    response_module,
)
from eventyard.protocols.kafka.codecs import KafkaPython
from eventyard.protocols.kafka.registry import RequestContext, register
from eventyard.records import decode_batches

__all__ = ["list_offsets", "list_offsets_v0"]

API_KEY = 2


@register(API_KEY, 1, 5)
async def list_offsets(ctx: RequestContext, request: Any) -> Any:
    """Answer every requested partition's offset for its timestamp."""
    module = response_module(API_KEY, ctx.api_version)
    topics = []
    for topic in request.topics:
        partitions = []
        for partition in topic.partitions:
            try:
                offset, timestamp = await _lookup(
                    ctx.broker, topic.name, partition.partition_index, partition.timestamp
                )
            except EventyardError as exc:
                code, offset, timestamp = error_code(exc), -1, -1
            else:
                code = ErrorCode.none
            partitions.append(
                build(
                    module.ListOffsetsPartitionResponse,
                    partition_index=partition.partition_index,
                    error_code=code,
                    timestamp=timestamp,
                    offset=offset,
                    leader_epoch=-1,
                )
            )
        topics.append(
            module.ListOffsetsTopicResponse(name=topic.name, partitions=tuple(partitions))
        )
    return build(response_class(API_KEY, ctx.api_version), topics=tuple(topics))


async def _lookup(broker: Broker, topic: str, partition: int, timestamp: int) -> tuple[int, int]:
    """``(offset, timestamp)`` of the answer: the record's own timestamp for a time lookup."""
    offset = await broker.list_offset(topic, partition, timestamp)
    if timestamp in (LATEST, EARLIEST):
        assert offset is not None, "LATEST and EARLIEST always have an offset"
        return offset, -1
    if offset is None:
        return -1, -1
    fetched = await broker.fetch(topic, partition, offset, max_bytes=1)
    for record in decode_batches(fetched.records):
        if record.offset >= offset:
            return record.offset, record.timestamp
    return offset, timestamp


_V0 = KafkaPython(_kafka_python.ListOffsetsRequest, _kafka_python.ListOffsetsResponse)


@register(API_KEY, 0, 0, codec=_V0)
async def list_offsets_v0(ctx: RequestContext, request: Any) -> Any:
    """ListOffsets v0: each partition's offset for its timestamp, as a list of at most one."""
    response = _kafka_python.ListOffsetsResponse
    topics = []
    for topic in request.topics:
        partitions = []
        for partition in topic.partitions:
            offsets: list[int] = []
            code = ErrorCode.none
            try:
                offset, _ = await _lookup(
                    ctx.broker, topic.name, partition.partition_index, partition.timestamp
                )
            except EventyardError as exc:
                code = error_code(exc)
            else:
                if offset >= 0 and partition.max_num_offsets > 0:
                    offsets.append(offset)
            partitions.append(
                response.ListOffsetsTopicResponse.ListOffsetsPartitionResponse(
                    partition_index=partition.partition_index,
                    error_code=code,
                    old_style_offsets=offsets,
                )
            )
        topics.append(response.ListOffsetsTopicResponse(name=topic.name, partitions=partitions))
    return response(topics=topics)
