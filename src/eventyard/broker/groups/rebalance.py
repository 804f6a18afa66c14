"""Rebalances: the transitions of Kafka's group state machine and their timers.

The coordinator validates each request, then hands the group to a :class:`Rebalancer` to
move it along. Everything here runs on the coordinator's event loop, as plain methods and
loop timers (session expiry, rebalance deadlines, the initial-join delay), so the group has
one owner and no locks. A timer that fires for a group that was deleted meanwhile (state
``Dead``) or a member that already left does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from eventyard.broker.groups.group import Group, GroupState
from eventyard.broker.groups.member import JoinedMember, JoinResult, Member
from eventyard.errors import RebalanceInProgressError, UnknownMemberIdError

__all__ = ["Rebalancer"]

log = logging.getLogger(__name__)

_PREPARING = GroupState.PREPARING_REBALANCE
_COMPLETING = GroupState.COMPLETING_REBALANCE


class Rebalancer:
    """Moves groups through their states; ``initial_delay_ms`` is Kafka's initial-join delay."""

    def __init__(self, initial_delay_ms: int) -> None:
        self._initial_delay = initial_delay_ms / 1000

    async def add_member(self, group: Group, member: Member) -> JoinResult:
        """Add a new member (the first one fixes the protocol type) and wait for its join."""
        if not group.members:
            group.protocol_type = member.protocol_type
        group.members[member.member_id] = member
        if member.group_instance_id is not None:
            group.static_members[member.group_instance_id] = member.member_id
        self.touch(group, member)
        if group.initial_join:
            group.initial_join_extended = True
        log.info("member %r joins group %r", member.member_id, group.group_id)
        return await self.await_join(group, member)

    async def await_join(self, group: Group, member: Member) -> JoinResult:
        """Wait in JoinGroup, starting a rebalance unless one is being prepared."""
        if member.awaiting_join:
            member.fail(RebalanceInProgressError("superseded by a newer JoinGroup"))
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        member.join_future = future
        if group.state is not _PREPARING:
            self.prepare_rebalance(group, f"member {member.member_id!r} joined")
        else:
            self.maybe_complete_join(group)
        return await future

    async def rejoin_static(
        self,
        group: Group,
        instance_id: str,
        client_id: str,
        protocols: tuple[tuple[str, bytes], ...],
    ) -> JoinResult:
        """A static member restarts: it takes over its old member's place (KIP-345)."""
        old_id = group.static_members[instance_id]
        member = group.members.pop(old_id)
        member.fail(UnknownMemberIdError(f"instance {instance_id!r} was fenced by a new member"))
        member.member_id = f"{instance_id}-{uuid.uuid4()}"
        member.client_id = client_id
        group.members[member.member_id] = member
        group.static_members[instance_id] = member.member_id
        if group.leader == old_id:
            group.leader = member.member_id
        self.touch(group, member)
        if group.state is GroupState.STABLE and protocols == member.protocols:
            result = self.join_result(group, member)
            return JoinResult(
                result.generation,
                result.protocol_type,
                result.protocol,
                result.leader,
                result.member_id,
            )
        member.protocols = protocols
        return await self.await_join(group, member)

    def prepare_rebalance(self, group: Group, reason: str) -> None:
        """Move to PreparingRebalance and arm the deadline that completes the join."""
        if group.state is _COMPLETING:
            for member in group.members.values():
                if member.awaiting_sync:
                    member.fail(RebalanceInProgressError(f"group {group.group_id!r} rebalances"))
        loop = asyncio.get_running_loop()
        group.stop_rebalance_timer()
        if group.state is GroupState.EMPTY:
            group.initial_join = True
            group.initial_join_extended = False
            group.initial_join_cap = loop.time() + group.rebalance_timeout_s()
            delay = min(self._initial_delay, group.rebalance_timeout_s())
            group.rebalance_timer = loop.call_later(delay, self._on_initial_delay, group)
        else:
            group.rebalance_timer = loop.call_later(
                group.rebalance_timeout_s(), self._complete_join, group
            )
        group.state = _PREPARING
        log.info("group %r rebalances: %s", group.group_id, reason)
        self.maybe_complete_join(group)

    def _on_initial_delay(self, group: Group) -> None:
        """Extend the initial delay while members keep arriving, up to the rebalance timeout."""
        if group.state is not _PREPARING:
            return
        loop = asyncio.get_running_loop()
        remaining = group.initial_join_cap - loop.time()
        if group.initial_join_extended and remaining > 0:
            group.initial_join_extended = False
            delay = min(self._initial_delay, remaining)
            group.rebalance_timer = loop.call_later(delay, self._on_initial_delay, group)
            return
        group.initial_join = False
        group.rebalance_timer = loop.call_later(max(remaining, 0.0), self._complete_join, group)
        self.maybe_complete_join(group)

    def maybe_complete_join(self, group: Group) -> None:
        """Complete the join once every member rejoined (or none is left)."""
        if group.state is not _PREPARING:
            return
        if not group.members or (not group.initial_join and group.all_joined()):
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        """End PreparingRebalance: expel laggards, start a new generation, answer the joins."""
        if group.state is not _PREPARING:
            return
        group.stop_rebalance_timer()
        group.initial_join = False
        group.pending_members.clear()
        for member in [m for m in group.members.values() if not m.awaiting_join]:
            self._drop(group, member, UnknownMemberIdError("did not rejoin in time"))
        group.generation += 1
        if not group.members:
            group.state = GroupState.EMPTY
            group.protocol = ""
            group.leader = ""
            log.info("group %r is empty at generation %d", group.group_id, group.generation)
            return
        group.protocol = group.select_protocol()
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.state = _COMPLETING
        for member in group.members.values():
            future = member.join_future
            member.join_future = None
            if future is not None and not future.done():
                future.set_result(self.join_result(group, member))
            self.touch(group, member)
        log.info(
            "group %r generation %d: %d members, protocol %r, leader %r",
            group.group_id,
            group.generation,
            len(group.members),
            group.protocol,
            group.leader,
        )

    def join_result(self, group: Group, member: Member) -> JoinResult:
        """This member's JoinGroup answer for the current generation."""
        members: tuple[JoinedMember, ...] = ()
        if member.member_id == group.leader:
            members = tuple(
                JoinedMember(m.member_id, m.group_instance_id, m.metadata_for(group.protocol))
                for m in group.members.values()
            )
        return JoinResult(
            group.generation,
            group.protocol_type,
            group.protocol,
            group.leader,
            member.member_id,
            members,
        )

    def remove_member(self, group: Group, member: Member, reason: str) -> None:
        """Remove a member that left or expired; the others rebalance."""
        self._drop(group, member, UnknownMemberIdError(f"member {reason}"))
        log.info("member %r %s (group %r)", member.member_id, reason, group.group_id)
        if group.state in (GroupState.STABLE, _COMPLETING):
            self.prepare_rebalance(group, f"member {member.member_id!r} {reason}")
        else:
            self.maybe_complete_join(group)

    def _drop(self, group: Group, member: Member, error: Exception) -> None:
        member.stop_timer()
        member.fail(error)
        del group.members[member.member_id]
        if member.group_instance_id is not None:
            group.static_members.pop(member.group_instance_id, None)
        if group.leader == member.member_id:
            group.leader = next(iter(group.members), "")

    # -- timers ------------------------------------------------------------------------------

    def touch(self, group: Group, member: Member) -> None:
        """(Re)arm the member's session timer."""
        member.stop_timer()
        member.session_timer = asyncio.get_running_loop().call_later(
            member.session_timeout_ms / 1000, self._on_session_timeout, group, member
        )

    def _on_session_timeout(self, group: Group, member: Member) -> None:
        if group.state is GroupState.DEAD:
            return
        if group.members.get(member.member_id) is not member:
            return
        if member.awaiting_join or member.awaiting_sync:
            self.touch(group, member)
            return
        self.remove_member(group, member, "session timed out")

    def expire_pending(self, group: Group, member_id: str) -> None:
        """Forget a member id handed out by MemberIdRequired that never joined."""
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self.maybe_complete_join(group)
