"""ListGroups (API key 16), versions 0-4, onto ``GroupCoordinator.list_groups``.

Lists every live group and every group with committed offsets (those without members are
Empty with protocol type ""). v4 adds each group's state and filters by states, matched
case-insensitively against Kafka's state names as Kafka does (an unknown name matches nothing).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker.groups import GroupState
from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["list_groups"]

API_KEY = 16
_STATES = {state.value.lower(): state for state in GroupState}


@register(API_KEY, 0, 4)
async def list_groups(ctx: RequestContext, request: Any) -> Any:
    """List the groups (in the requested states, v4), sorted by id."""
    entities = response_module(API_KEY, ctx.api_version)
    names = getattr(request, "states_filter", ())
    states = None
    if names:
        states = [_STATES[n.lower()] for n in names if n.lower() in _STATES]
    try:
        listings = await ctx.broker.groups.list_groups(states)
    except EventyardError as error:
        return build(entities.ListGroupsResponse, error_code=error_code(error), groups=())
    groups = tuple(
        build(
            entities.ListedGroup,
            group_id=listing.group_id,
            protocol_type=listing.protocol_type,
            group_state=listing.state.value,
        )
        for listing in listings
    )
    return build(entities.ListGroupsResponse, error_code=ErrorCode.none, groups=groups)
