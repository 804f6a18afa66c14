"""OffsetCommit (API key 8), versions 0-7, onto ``GroupCoordinator.commit_offsets``.

Versions 2-7 are kio's, 0-1 kafka-python's (kio's oldest is 2); both go through the same
commit. The answer comes once the offsets are fsynced (the offsets log is ``always``
durable). Partitions of unknown topics (or past a topic's partition count) get
UNKNOWN_TOPIC_OR_PARTITION and are not stored; the others all share the coordinator's verdict
(generation -1 with an empty member id is a standalone commit, allowed while the group has no
members). v0 has no generation or member (Kafka kept those commits in ZooKeeper): it is a
standalone commit into the same offsets store, so v0, v1 and later readers see one another's
commits. v1's per-partition ``commit_timestamp`` and ``retention_time`` (v2-4) are ignored, as
Kafka does since 2.1: the broker's offsets retention applies. v6 adds the committed leader
epoch, v7 ``group_instance_id``.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker.groups import OffsetAndMetadata
from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis import _kafka_python
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.codecs import KafkaPython
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["offset_commit", "offset_commit_v0"]

API_KEY = 8
_Codes = dict[tuple[str, int], ErrorCode]


async def _commit(ctx: RequestContext, request: Any) -> _Codes:
    """Store the committed offsets of known partitions; the error code of every partition.

    ``request`` is either library's entity: their field names are Kafka's, and fields a
    version lacks read as their defaults (generation -1, member "", leader epoch -1).
    """
    codes: _Codes = {}
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
            getattr(request, "generation_id_or_member_epoch", -1),
            getattr(request, "member_id", ""),
            offsets,
            group_instance_id=getattr(request, "group_instance_id", None),
        )
    except EventyardError as error:
        verdict = error_code(error)
    for key in offsets:
        codes[key] = verdict
    return codes


def _partition_count(ctx: RequestContext, topic: str) -> int:
    """The topic's partition count, 0 when the topic does not exist (or its name is invalid)."""
    try:
        return ctx.broker.partition_count(topic)
    except EventyardError:
        return 0


@register(API_KEY, 2, 7)
async def offset_commit(ctx: RequestContext, request: Any) -> Any:
    """Store the committed offsets of known partitions; one error code per partition."""
    codes = await _commit(ctx, request)
    entities = response_module(API_KEY, ctx.api_version)
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


_V0 = KafkaPython(_kafka_python.OffsetCommitRequest, _kafka_python.OffsetCommitResponse)


@register(API_KEY, 0, 1, codec=_V0)
async def offset_commit_v0(ctx: RequestContext, request: Any) -> Any:
    """OffsetCommit v0-1: the same commit, answered with kafka-python's entities."""
    codes = await _commit(ctx, request)
    response = _kafka_python.OffsetCommitResponse
    topic_response = response.OffsetCommitResponseTopic
    return response(
        topics=[
            topic_response(
                name=topic.name,
                partitions=[
                    topic_response.OffsetCommitResponsePartition(
                        partition_index=p.partition_index,
                        error_code=codes[(topic.name, p.partition_index)],
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    )
