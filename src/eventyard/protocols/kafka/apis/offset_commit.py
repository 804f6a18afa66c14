"""OffsetCommit (API key 8), versions 2-7 (kio's minimum is 2), onto
``GroupCoordinator.commit_offsets``.

The answer comes once the offsets are fsynced (the offsets log is ``always`` durable).
Partitions of unknown topics (or past a topic's partition count) get
UNKNOWN_TOPIC_OR_PARTITION and are not stored; the others all share the coordinator's verdict
(generation -1 with an empty member id is a standalone commit, allowed while the group has no
members). ``retention_time`` (v2-4) is ignored, as Kafka does since 2.1: the broker's
offsets retention applies. v6 adds the committed leader epoch, v7 ``group_instance_id``.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker.groups import OffsetAndMetadata
from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["offset_commit"]

API_KEY = 8


@register(API_KEY, 2, 7)
async def offset_commit(ctx: RequestContext, request: Any) -> Any:
    """Store the committed offsets of known partitions; one error code per partition."""
    entities = response_module(API_KEY, ctx.api_version)
    codes: dict[tuple[str, int], ErrorCode] = {}
    offsets: dict[tuple[str, int], OffsetAndMetadata] = {}
    for topic in request.topics:
        count = _partition_count(ctx, topic.name)
        for p in topic.partitions:
            key = (topic.name, p.partition_index)
            if not 0 <= p.partition_index < count:
                codes[key] = ErrorCode.unknown_topic_or_partition
                continue
            offsets[key] = OffsetAndMetadata(
                p.committed_offset,
                p.committed_metadata or "",
                getattr(p, "committed_leader_epoch", -1),
            )
    verdict = ErrorCode.none
    try:
        await ctx.broker.groups.commit_offsets(
            request.group_id,
            request.generation_id_or_member_epoch,
            request.member_id,
            offsets,
            group_instance_id=getattr(request, "group_instance_id", None),
        )
    except EventyardError as error:
        verdict = error_code(error)
    for key in offsets:
        codes[key] = verdict
    topics = tuple(
        build(
            entities.OffsetCommitResponseTopic,
            name=topic.name,
            partitions=tuple(
                build(
                    entities.OffsetCommitResponsePartition,
                    partition_index=p.partition_index,
                    error_code=codes[(topic.name, p.partition_index)],
                )
                for p in topic.partitions
            ),
        )
        for topic in request.topics
    )
    return build(entities.OffsetCommitResponse, topics=topics)


def _partition_count(ctx: RequestContext, topic: str) -> int:
    """The topic's partition count, 0 when the topic does not exist (or its name is invalid)."""
    try:
        return ctx.broker.partition_count(topic)
    except EventyardError:
        return 0
