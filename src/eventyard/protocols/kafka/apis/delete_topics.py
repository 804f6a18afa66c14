"""DeleteTopics (API key 20), versions 0-4: delete topics and their data.

Versions 1-4 are kio's, v0 kafka-python's (kio's oldest is 1); v1 only adds ``throttle_time``.

Topics are deleted one by one in request order; each answer carries its own error code
(UNKNOWN_TOPIC_OR_PARTITION for a missing topic, INVALID_TOPIC_EXCEPTION for an illegal
name). Deletion is complete when answered, so ``timeout`` is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kio.schema.errors import ErrorCode

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

__all__ = ["delete_topics", "delete_topics_v0"]

API_KEY = 20


async def _delete(ctx: RequestContext, names: Iterable[str]) -> list[tuple[str, ErrorCode]]:
    """Delete each named topic in order: its name and error code."""
    results = []
    for name in names:
        code = ErrorCode.none
        try:
            await ctx.broker.delete_topic(name)
        except EventyardError as exc:
            code = error_code(exc)
        results.append((name, code))
    return results


@register(API_KEY, 1, 4)
async def delete_topics(ctx: RequestContext, request: Any) -> Any:
    """Delete each named topic, answering per topic."""
    module = response_module(API_KEY, ctx.api_version)
    results = tuple(
        build(module.DeletableTopicResult, name=name, error_code=code)
        for name, code in await _delete(ctx, request.topic_names)
    )
    return build(response_class(API_KEY, ctx.api_version), responses=results)


_V0 = KafkaPython(_kafka_python.DeleteTopicsRequest, _kafka_python.DeleteTopicsResponse)


@register(API_KEY, 0, 0, codec=_V0)
async def delete_topics_v0(ctx: RequestContext, request: Any) -> Any:
    """DeleteTopics v0: the same deletion, answered with kafka-python's entities."""
    response = _kafka_python.DeleteTopicsResponse
    return response(
        responses=[
            response.DeletableTopicResult(name=name, error_code=code)
            for name, code in await _delete(ctx, request.topic_names)
        ]
    )
