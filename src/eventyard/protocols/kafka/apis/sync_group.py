"""SyncGroup (API key 14), versions 0-3, onto ``GroupCoordinator.sync_group``.

The leader hands in every member's assignment; each member (leader included) gets its own.
Followers wait until the leader's SyncGroup arrives. v3 adds ``group_instance_id``. Errors
answer an empty assignment with the coordinator's code (REBALANCE_IN_PROGRESS: rejoin).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["sync_group"]

API_KEY = 14


@register(API_KEY, 0, 3)
async def sync_group(ctx: RequestContext, request: Any) -> Any:
    """Hand in (leader) or wait for (followers) the assignments; answer this member's."""
    entities = response_module(API_KEY, ctx.api_version)
    try:
        result = await ctx.broker.groups.sync_group(
            request.group_id,
            request.generation_id,
            request.member_id,
            assignments={a.member_id: a.assignment for a in request.assignments},
            group_instance_id=getattr(request, "group_instance_id", None),
        )
    except EventyardError as error:
        return build(entities.SyncGroupResponse, error_code=error_code(error), assignment=b"")
    return build(
        entities.SyncGroupResponse, error_code=ErrorCode.none, assignment=result.assignment
    )
