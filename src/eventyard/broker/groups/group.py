"""A consumer group's state: Kafka's five states, its members, generation and leader.

The transitions themselves (and their timers) live in the coordinator, the group's only
owner; this module holds the state and the pure decisions over it (which protocol the group
speaks, whether a joining member is compatible, whether every member has rejoined)::

    Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
      ▲                  ▲      │                                     │ leader's SyncGroup
      │                  │      └── no members left ──▶ Empty         ▼
      │                  └──── member joins, leaves or expires ──── Stable
    Dead (deleted; the coordinator forgets the group)
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from dataclasses import dataclass, field

from eventyard.broker.groups.member import Member, MemberDescription

__all__ = ["Group", "GroupDescription", "GroupListing", "GroupState"]


class GroupState(enum.Enum):
    """Kafka's group states, valued by the names DescribeGroups and ListGroups report."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class GroupListing:
    """One ListGroups entry."""

    group_id: str
    protocol_type: str
    state: GroupState


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """A DescribeGroups answer; an unknown group is reported ``Dead`` with no members."""

    group_id: str
    state: GroupState
    protocol_type: str
    protocol: str
    generation: int
    leader: str
    members: tuple[MemberDescription, ...]


@dataclass(slots=True, eq=False)
class Group:
    """One group's mutable state, owned by the coordinator's event loop.

    ``static_members`` maps a ``group_instance_id`` to its current member id (KIP-345);
    ``pending_members`` holds ids handed out with ``MemberIdRequiredError`` that have not
    joined yet (KIP-394). ``initial_join_until``/``initial_join_cap`` are loop times set while
    a group that was empty waits for more members before its first rebalance completes.
    """

    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str = ""
    protocol: str = ""
    leader: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    pending_members: set[str] = field(default_factory=set)
    rebalance_timer: asyncio.TimerHandle | None = None
    initial_join: bool = False
    initial_join_extended: bool = False
    initial_join_cap: float = 0.0

    def supports(self, protocol_type: str, protocol_names: tuple[str, ...]) -> bool:
        """True when a member with these protocols may join (Kafka's ``supportsProtocols``)."""
        if not protocol_type or not protocol_names:
            return False
        if not self.members:
            return True
        return protocol_type == self.protocol_type and bool(
            self.candidate_protocols() & set(protocol_names)
        )

    def supports_except(self, member: Member, protocol_names: tuple[str, ...]) -> bool:
        """Like :meth:`supports` for a member already in the group changing its protocols."""
        others = [m for m in self.members.values() if m is not member]
        if not others:
            return bool(protocol_names)
        common = set(protocol_names)
        for other in others:
            common &= set(other.protocol_names)
        return bool(common)

    def candidate_protocols(self) -> set[str]:
        """The protocols every member supports (none while the group has no members)."""
        members = iter(self.members.values())
        first = next(members, None)
        if first is None:
            return set()
        common = set(first.protocol_names)
        for member in members:
            common &= set(member.protocol_names)
        return common

    def select_protocol(self) -> str:
        """Kafka's vote: each member picks its first candidate; the most votes win.

        Ties go to the protocol earliest in the leader's (first member's) preference order,
        so the choice is deterministic.
        """
        candidates = self.candidate_protocols()
        votes: Counter[str] = Counter()
        for member in self.members.values():
            votes[next(name for name in member.protocol_names if name in candidates)] += 1
        order = {name: i for i, name in enumerate(next(iter(self.members.values())).protocol_names)}
        return max(votes, key=lambda name: (votes[name], -order.get(name, len(order))))

    def all_joined(self) -> bool:
        """True when every member waits in JoinGroup and no handed-out id is outstanding."""
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def rebalance_timeout_s(self) -> float:
        """The longest rebalance timeout among the members, in seconds."""
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0) / 1000

    def describe(self) -> GroupDescription:
        """This group as DescribeGroups reports it (metadata only once a protocol is chosen)."""
        protocol = self.protocol if self.state is not GroupState.PREPARING_REBALANCE else ""
        return GroupDescription(
            self.group_id,
            self.state,
            self.protocol_type,
            protocol,
            self.generation,
            self.leader,
            tuple(m.describe(protocol or None) for m in self.members.values()),
        )

    def stop_rebalance_timer(self) -> None:
        """Cancel the pending rebalance deadline, if any."""
        if self.rebalance_timer is not None:
            self.rebalance_timer.cancel()
            self.rebalance_timer = None
