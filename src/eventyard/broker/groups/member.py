"""One member of a consumer group, and what the coordinator answers it.

A :class:`Member` is mutable state owned by the coordinator (never shared with callers);
the ``*Result`` and ``*Description`` classes are the immutable answers callers get, field for
field what Kafka's JoinGroup, SyncGroup and DescribeGroups responses carry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["JoinResult", "JoinedMember", "Member", "MemberDescription", "SyncResult"]


@dataclass(frozen=True, slots=True)
class JoinedMember:
    """A member as the leader sees it: its id and metadata for the chosen protocol."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    """The JoinGroup answer. ``members`` is filled for the leader only (Kafka's contract)."""

    generation: int
    protocol_type: str
    protocol: str
    leader: str
    member_id: str
    members: tuple[JoinedMember, ...] = ()

    @property
    def is_leader(self) -> bool:
        """True when this member must compute the assignments."""
        return self.leader == self.member_id


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The SyncGroup answer: this member's opaque assignment."""

    protocol_type: str
    protocol: str
    assignment: bytes


@dataclass(frozen=True, slots=True)
class MemberDescription:
    """A member as DescribeGroups reports it."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(slots=True, eq=False)
class Member:
    """A member's mutable state inside its group (owned by the coordinator's event loop).

    ``join_future``/``sync_future`` are set while the member waits in JoinGroup or SyncGroup;
    a waiting member's session cannot expire (Kafka's rule: the member is blocked on us).
    ``session_timer`` always runs; it is re-armed by heartbeats, commits and completed waits.
    """

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    join_future: asyncio.Future[JoinResult] | None = None
    sync_future: asyncio.Future[SyncResult] | None = None
    session_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def protocol_names(self) -> tuple[str, ...]:
        """The protocols this member supports, in its order of preference."""
        return tuple(name for name, _ in self.protocols)

    @property
    def awaiting_join(self) -> bool:
        """True while this member waits in JoinGroup."""
        return self.join_future is not None and not self.join_future.done()

    @property
    def awaiting_sync(self) -> bool:
        """True while this member waits in SyncGroup."""
        return self.sync_future is not None and not self.sync_future.done()

    def metadata_for(self, protocol: str) -> bytes:
        """This member's metadata for ``protocol`` (it must support it)."""
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        raise KeyError(protocol)

    def describe(self, protocol: str | None) -> MemberDescription:
        """This member as DescribeGroups reports it."""
        metadata = self.metadata_for(protocol) if protocol in self.protocol_names else b""
        return MemberDescription(
            self.member_id,
            self.group_instance_id,
            self.client_id,
            self.client_host,
            metadata,
            self.assignment,
        )

    def fail(self, error: Exception) -> None:
        """Fail whatever this member waits for with ``error``."""
        for future in (self.join_future, self.sync_future):
            if future is not None and not future.done():
                future.set_exception(error)
        self.join_future = None
        self.sync_future = None

    def stop_timer(self) -> None:
        """Cancel the session timer (the member leaves the group)."""
        if self.session_timer is not None:
            self.session_timer.cancel()
            self.session_timer = None
