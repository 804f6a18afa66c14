"""Heartbeat (API key 12), versions 0-3, onto ``GroupCoordinator.heartbeat``.

Keeps the member's session alive. REBALANCE_IN_PROGRESS tells the member to rejoin;
UNKNOWN_MEMBER_ID and ILLEGAL_GENERATION that it was expelled or is behind. v3 adds
``group_instance_id``.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["heartbeat"]

API_KEY = 12


@register(API_KEY, 0, 3)
async def heartbeat(ctx: RequestContext, request: Any) -> Any:
    """Touch the member's session; answer the coordinator's verdict as an error code."""
    entities = response_module(API_KEY, ctx.api_version)
    code = ErrorCode.none
    try:
        await ctx.broker.groups.heartbeat(
            request.group_id,
            request.generation_id,
            request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
        )
    except EventyardError as error:
        code = error_code(error)
    return build(entities.HeartbeatResponse, error_code=code)
