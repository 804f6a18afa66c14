"""LeaveGroup (API key 13), versions 0-3, onto ``GroupCoordinator.leave_group``.

v0-2 remove one member by id. v3 (KIP-345) removes a batch of members, each by member id or,
for static members, by ``group_instance_id`` alone; each gets its own error code and the
top-level code stays NONE (Kafka's behaviour). The remaining members rebalance at once,
without waiting for the leavers' session timeouts.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["leave_group"]

API_KEY = 13


@register(API_KEY, 0, 3)
async def leave_group(ctx: RequestContext, request: Any) -> Any:
    """Remove the member (v0-2) or each listed member (v3) from the group."""
    entities = response_module(API_KEY, ctx.api_version)
    if not hasattr(request, "members"):
        code = await _leave(ctx, request.group_id, request.member_id, None)
        return build(entities.LeaveGroupResponse, error_code=code)
    answers = []
    for identity in request.members:
        code = await _leave(ctx, request.group_id, identity.member_id, identity.group_instance_id)
        answers.append(
            build(
                entities.MemberResponse,
                member_id=identity.member_id,
                group_instance_id=identity.group_instance_id,
                error_code=code,
            )
        )
    return build(entities.LeaveGroupResponse, error_code=ErrorCode.none, members=tuple(answers))


async def _leave(
    ctx: RequestContext, group_id: str, member_id: str, group_instance_id: str | None
) -> ErrorCode:
    try:
        await ctx.broker.groups.leave_group(
            group_id, member_id, group_instance_id=group_instance_id
        )
    except EventyardError as error:
        return error_code(error)
    return ErrorCode.none
