"""CreateTopics (API key 19), versions 0-4: create topics from clients.

Versions 2-4 are kio's, 0-1 kafka-python's (kio's oldest is 2); both run the same checks and
creation. v1 adds ``validate_only`` and per-topic error messages; v0 answers codes only.

Each topic is created with its ``configs`` read by Kafka name (``TopicConfig.from_kafka``):
unknown names and bad values are INVALID_CONFIG. ``num_partitions`` -1 means the broker's
default. One broker means one replica: a replication factor other than -1 or 1 is
INVALID_REPLICATION_FACTOR, and a manual assignment naming any broker but node 0 is
INVALID_REPLICA_ASSIGNMENT (an assignment otherwise sets the partition count). A name given
twice in one request is INVALID_REQUEST for every occurrence, as Kafka answers. Other
failures map from the broker's errors (TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION,
INVALID_PARTITIONS). ``validate_only`` runs every check, the name and existence included,
without creating anything. ``timeout`` is ignored: creation is complete when answered.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker import TopicConfig
from eventyard.broker.topics import validate_topic_name
from eventyard.errors import EventyardError, TopicExistsError
from eventyard.protocols.kafka.apis import _kafka_python
from eventyard.protocols.kafka.apis._entities import (
    build,
    error_code,
    response_class,
    response_module,
)
from eventyard.protocols.kafka.codecs import KafkaPython
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["create_topics", "create_topics_v0"]

API_KEY = 19


class _Refused(Exception):
    """A topic refused for a reason with no eventyard error class of its own."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


async def _results(ctx: RequestContext, request: Any) -> list[tuple[str, ErrorCode, str | None]]:
    """Create (or only validate) each requested topic: its name, error code and message.

    ``request`` is either library's entity (the field names are Kafka's; v0 has no
    ``validate_only`` and kafka-python reads it as false).
    """
    counts = Counter(topic.name for topic in request.topics)
    results = []
    for topic in request.topics:
        code, message = ErrorCode.none, None
        try:
            if counts[topic.name] > 1:
                raise _Refused(ErrorCode.invalid_request, "topic named more than once")
            await _create(ctx, topic, bool(request.validate_only))
        except _Refused as exc:
            code, message = exc.code, str(exc)
        except EventyardError as exc:
            code, message = error_code(exc), str(exc)
        results.append((topic.name, code, message))
    return results


@register(API_KEY, 2, 4)
async def create_topics(ctx: RequestContext, request: Any) -> Any:
    """Create each requested topic (or only validate), answering per topic."""
    module = response_module(API_KEY, ctx.api_version)
    results = tuple(
        build(module.CreatableTopicResult, name=name, error_code=code, error_message=message)
        for name, code, message in await _results(ctx, request)
    )
    return build(response_class(API_KEY, ctx.api_version), topics=results)


_V0 = KafkaPython(_kafka_python.CreateTopicsRequest, _kafka_python.CreateTopicsResponse)


@register(API_KEY, 0, 1, codec=_V0)
async def create_topics_v0(ctx: RequestContext, request: Any) -> Any:
    """CreateTopics v0-1: the same creation, answered with kafka-python's entities."""
    response = _kafka_python.CreateTopicsResponse
    return response(
        topics=[
            response.CreatableTopicResult(name=name, error_code=code, error_message=message)
            for name, code, message in await _results(ctx, request)
        ]
    )


async def _create(ctx: RequestContext, topic: Any, validate_only: bool) -> None:
    if topic.replication_factor not in (-1, 1):
        raise _Refused(
            ErrorCode.invalid_replication_factor,
            f"replication factor {topic.replication_factor}: this cluster has one broker",
        )
    partitions = int(topic.num_partitions)
    if topic.assignments:
        if any(list(a.broker_ids) != [ctx.node_id] for a in topic.assignments):
            raise _Refused(
                ErrorCode.invalid_replica_assignment,
                f"every partition must be assigned to broker {ctx.node_id} alone",
            )
        partitions = len(topic.assignments)
    elif partitions == -1:
        partitions = ctx.broker.config.default_partitions
    config = TopicConfig.from_kafka(
        {entry.name: entry.value for entry in topic.configs}, partitions=partitions
    )
    if validate_only:
        validate_topic_name(topic.name)
        if topic.name in {info.name for info in ctx.broker.list_topics()}:
            raise TopicExistsError(f"topic {topic.name!r} already exists")
        return
    await ctx.broker.create_topic(topic.name, config)
