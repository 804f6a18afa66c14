"""FindCoordinator (API key 10), versions 0-2: this node coordinates every group.

eventyard is a single broker, so the answer for a group (key type 0) is always this node at
its advertised address. Transaction coordinators (key type 1) are not served: they get
COORDINATOR_NOT_AVAILABLE, which clients treat as "no transactions here".
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.protocols.kafka.apis._entities import build, response_class
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["find_coordinator"]

API_KEY = 10
_GROUP = 0


@register(API_KEY, 0, 2)
async def find_coordinator(ctx: RequestContext, request: Any) -> Any:
    """Answer this node for a group key, COORDINATOR_NOT_AVAILABLE for any other key type."""
    response = response_class(API_KEY, ctx.api_version)
    if getattr(request, "key_type", _GROUP) != _GROUP:
        return build(
            response,
            error_code=ErrorCode.coordinator_not_available,
            error_message="eventyard has no transaction coordinator",
            node_id=-1,
            host="",
            port=-1,
        )
    return build(
        response,
        error_code=ErrorCode.none,
        error_message=None,
        node_id=ctx.node_id,
        host=ctx.advertised_host,
        port=ctx.advertised_port,
    )
