"""InitProducerId (API key 22), versions 0-1: producer ids for idempotent producers.

Only non-transactional producers are served: ``broker.init_producer_id()`` hands out a new,
durable ``(producer_id, epoch)`` on every call, and the partitions check each producer's
sequences from then on. A request naming a ``transactional_id`` gets INVALID_REQUEST (and no
id), since eventyard has no transaction coordinator (FindCoordinator already refuses
transaction keys); clients then fail fast instead of retrying.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_class
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["init_producer_id"]

API_KEY = 22


@register(API_KEY, 0, 1)
async def init_producer_id(ctx: RequestContext, request: Any) -> Any:
    """Allocate a producer id, or refuse a transactional one."""
    response = response_class(API_KEY, ctx.api_version)
    if request.transactional_id is not None:
        return build(
            response, error_code=ErrorCode.invalid_request, producer_id=-1, producer_epoch=-1
        )
    try:
        producer_id, epoch = await ctx.broker.init_producer_id()
    except EventyardError as exc:
        return build(response, error_code=error_code(exc), producer_id=-1, producer_epoch=-1)
    return build(response, error_code=ErrorCode.none, producer_id=producer_id, producer_epoch=epoch)
