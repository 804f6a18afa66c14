"""DescribeGroups (API key 15), versions 0-5, onto ``GroupCoordinator.describe_group``.

Each group answers its state (Kafka's names: Empty, PreparingRebalance, CompletingRebalance,
Stable, Dead), protocol type, chosen protocol and members with their metadata and assignment;
an unknown group is Dead with no error, as in Kafka. v4 adds each member's
``group_instance_id``. eventyard has no ACLs, so when asked (v3+
``include_authorized_operations``) every group operation is authorized, as on a Kafka broker
without an authorizer: READ, DELETE and DESCRIBE (bits 3, 6 and 8); otherwise the answer is
Kafka's "not requested" value, INT32_MIN.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["describe_groups"]

API_KEY = 15
_NOT_REQUESTED = -(2**31)
_ALL_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


@register(API_KEY, 0, 5)
async def describe_groups(ctx: RequestContext, request: Any) -> Any:
    """Describe each requested group, in request order."""
    entities = response_module(API_KEY, ctx.api_version)
    operations = (
        _ALL_GROUP_OPERATIONS
        if getattr(request, "include_authorized_operations", False)
        else _NOT_REQUESTED
    )
    groups = [await _describe(ctx, entities, g, operations) for g in request.groups]
    return build(entities.DescribeGroupsResponse, groups=tuple(groups))


async def _describe(ctx: RequestContext, entities: Any, group_id: str, operations: int) -> Any:
    try:
        description = await ctx.broker.groups.describe_group(group_id)
    except EventyardError as error:
        return build(
            entities.DescribedGroup,
            error_code=error_code(error),
            group_id=group_id,
            group_state="",
            protocol_type="",
            protocol_data="",
            members=(),
            authorized_operations=operations,
        )
    members = tuple(
        build(
            entities.DescribedGroupMember,
            member_id=member.member_id,
            group_instance_id=member.group_instance_id,
            client_id=member.client_id,
            client_host=member.client_host,
            member_metadata=member.metadata,
            member_assignment=member.assignment,
        )
        for member in description.members
    )
    return build(
        entities.DescribedGroup,
        error_code=ErrorCode.none,
        group_id=group_id,
        group_state=description.state.value,
        protocol_type=description.protocol_type,
        protocol_data=description.protocol,
        members=members,
        authorized_operations=operations,
    )
