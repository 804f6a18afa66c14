"""Metadata (API key 3), versions 0-8: the one-broker cluster and its topics.

The cluster is this broker alone: node 0 at the advertised address, controller 0, and every
partition led by node 0 with replicas and ISR ``[0]`` (leader epoch 0). v0's empty topic list
and v1+'s null list mean every topic; v1+'s empty list means none. A requested topic that is
missing is created with the broker's defaults when both the broker
(``auto_create_topics``) and the request (``allow_auto_topic_creation``, v4+, true before)
allow it, as Kafka does; otherwise it is answered UNKNOWN_TOPIC_OR_PARTITION, and a name
that is not a legal topic name INVALID_TOPIC_EXCEPTION. Authorized operations are not
computed (left at kio's "not requested" defaults).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32

from eventyard.broker import TopicInfo
from eventyard.errors import EventyardError, UnknownTopicError
from eventyard.protocols.kafka.apis._entities import (
    build,
    error_code,
    response_class,
    response_module,
)
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["CLUSTER_ID", "metadata"]

API_KEY = 3

CLUSTER_ID = "eventyard"
"""The cluster id reported from v2 on; one broker is one cluster."""


@register(API_KEY, 0, 8)
async def metadata(ctx: RequestContext, request: Any) -> Any:
    """Describe the broker and the requested (or all) topics."""
    module = response_module(API_KEY, ctx.api_version)
    node = i32(ctx.node_id)
    broker = build(
        module.MetadataResponseBroker,
        node_id=node,
        host=ctx.advertised_host,
        port=i32(ctx.advertised_port),
    )
    names = _requested(ctx, request)
    if names is None:
        topics = [_topic(module, node, info) for info in ctx.broker.list_topics()]
    else:
        allow_create = bool(getattr(request, "allow_auto_topic_creation", True))
        topics = [await _lookup(ctx, module, node, name, allow_create) for name in names]
    return build(
        response_class(API_KEY, ctx.api_version),
        brokers=(broker,),
        cluster_id=CLUSTER_ID,
        controller_id=node,
        topics=tuple(topics),
    )


def _requested(ctx: RequestContext, request: Any) -> list[str] | None:
    """The topic names asked for, or ``None`` for every topic."""
    if request.topics is None or (ctx.api_version == 0 and not request.topics):
        return None
    return [topic.name for topic in request.topics]


async def _lookup(ctx: RequestContext, module: Any, node: i32, name: str, create: bool) -> Any:
    """One named topic, auto-created when allowed, or its error entry."""
    try:
        try:
            info = ctx.broker.describe_topic(name)
        except UnknownTopicError:
            if not create:
                raise
            info = await ctx.broker.ensure_topic(name)
    except EventyardError as exc:
        return build(
            module.MetadataResponseTopic,
            error_code=error_code(exc),
            name=name,
            is_internal=False,
            partitions=(),
        )
    return _topic(module, node, info)


def _topic(module: Any, node: i32, info: TopicInfo) -> Any:
    partitions = tuple(
        build(
            module.MetadataResponsePartition,
            error_code=ErrorCode.none,
            partition_index=i32(partition.partition),
            leader_id=node,
            leader_epoch=i32(0),
            replica_nodes=(node,),
            isr_nodes=(node,),
            offline_replicas=(),
        )
        for partition in info.partitions
    )
    return build(
        module.MetadataResponseTopic,
        error_code=ErrorCode.none,
        name=info.name,
        is_internal=False,
        partitions=partitions,
    )
