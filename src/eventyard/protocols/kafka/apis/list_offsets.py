"""ListOffsets (API key 2), versions 1-5: a partition's offsets by time.

kio serves ListOffsets from v1 (v0's list of old-style offsets is gone), so v0 is not
advertised. Per partition, ``timestamp`` -1 (LATEST) answers the high watermark and -2
(EARLIEST) the log start offset, both with timestamp -1, as Kafka does; any other timestamp
answers the first offset whose record timestamp is at least it, with that record's
timestamp, or offset and timestamp -1 when no record is that recent. There are no
transactions, so ``isolation_level`` read_committed sees the same end (the last stable
offset is the high watermark). Errors are per partition (UNKNOWN_TOPIC_OR_PARTITION,
KAFKA_STORAGE_ERROR).
"""

from __future__ import annotations

from typing import Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from eventyard.broker import EARLIEST, LATEST, Broker
from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register
from eventyard.records import decode_batches

__all__ = ["list_offsets"]

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
    return build(load_response_schema(API_KEY, ctx.api_version), topics=tuple(topics))


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
