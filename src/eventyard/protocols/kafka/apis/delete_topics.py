"""DeleteTopics (API key 20), versions 1-4 (kio's oldest is 1): delete topics and their data.

Topics are deleted one by one in request order; each answer carries its own error code
(UNKNOWN_TOPIC_OR_PARTITION for a missing topic, INVALID_TOPIC_EXCEPTION for an illegal
name). Deletion is complete when answered, so ``timeout`` is ignored.
"""

from __future__ import annotations

from typing import Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["delete_topics"]

API_KEY = 20


@register(API_KEY, 1, 4)
async def delete_topics(ctx: RequestContext, request: Any) -> Any:
    """Delete each named topic, answering per topic."""
    module = response_module(API_KEY, ctx.api_version)
    results = []
    for name in request.topic_names:
        code = ErrorCode.none
        try:
            await ctx.broker.delete_topic(name)
        except EventyardError as exc:
            code = error_code(exc)
        results.append(build(module.DeletableTopicResult, name=name, error_code=code))
    return build(load_response_schema(API_KEY, ctx.api_version), responses=tuple(results))
