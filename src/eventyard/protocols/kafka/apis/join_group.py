"""JoinGroup (API key 11), versions 0-5, onto ``GroupCoordinator.join_group``.

The call blocks until the rebalance completes (every known member rejoined, or the rebalance
timeout expelled the laggards), as in Kafka. v0 has no rebalance timeout: the session timeout
serves as both (Kafka's rule). From v4 a member joining without an id first gets
MEMBER_ID_REQUIRED carrying the id to rejoin with (KIP-394); v5 adds static membership
(``group_instance_id``, KIP-345). Only the leader's answer lists the members.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker.groups import MemberIdRequired
from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import (
    build,
    error_code,
    millis,
    response_module,
)
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["join_group"]

API_KEY = 11
_REQUIRE_KNOWN_MEMBER_ID_FROM = 4


@register(API_KEY, 0, 5)
async def join_group(ctx: RequestContext, request: Any) -> Any:
    """Join (or rejoin) the group and answer this member's view of the new generation."""
    entities = response_module(API_KEY, ctx.api_version)
    session_timeout_ms = millis(request.session_timeout)
    rebalance_timeout = getattr(request, "rebalance_timeout", None)
    try:
        result = await ctx.broker.groups.join_group(
            request.group_id,
            request.member_id,
            client_id=ctx.client_id or "",
            client_host=ctx.client_host,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=(
                session_timeout_ms if rebalance_timeout is None else millis(rebalance_timeout)
            ),
            protocol_type=request.protocol_type,
            protocols=[(p.name, p.metadata) for p in request.protocols],
            group_instance_id=getattr(request, "group_instance_id", None),
            require_known_member_id=ctx.api_version >= _REQUIRE_KNOWN_MEMBER_ID_FROM,
        )
    except MemberIdRequired as required:
        return _failure(entities, error_code(required), required.member_id)
    except EventyardError as error:
        return _failure(entities, error_code(error), request.member_id)
    members = tuple(
        build(
            entities.JoinGroupResponseMember,
            member_id=member.member_id,
            group_instance_id=member.group_instance_id,
            metadata=member.metadata,
        )
        for member in result.members
    )
    return build(
        entities.JoinGroupResponse,
        error_code=ErrorCode.none,
        generation_id=result.generation,
        protocol_name=result.protocol,
        leader=result.leader,
        member_id=result.member_id,
        members=members,
    )


def _failure(entities: Any, code: ErrorCode, member_id: str) -> Any:
    return build(
        entities.JoinGroupResponse,
        error_code=code,
        generation_id=-1,
        protocol_name="",
        leader="",
        member_id=member_id,
        members=(),
    )
