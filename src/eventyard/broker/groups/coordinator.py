"""The group coordinator: Kafka's consumer-group protocol, owned by one event loop.

Each method maps one to one onto a Kafka request (JoinGroup, SyncGroup, Heartbeat,
LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups), so the Kafka
front only translates bytes. The coordinator is the single owner of every group's state: all
state changes happen on its event loop between awaits, so nothing needs a lock; timers
(session expiry, rebalance deadlines) are loop callbacks. Committed offsets live in an
:class:`~eventyard.broker.groups.offsets.OffsetStore` (a compacted, fsynced log).

Rebalance protocol (Kafka's "eager" protocol)::

    member        join_group ──▶ waits until every known member rejoined, or the
                                 rebalance timeout expels the laggards
    coordinator   new generation, protocol chosen by vote, leader = previous leader or first
    leader        receives every member's metadata, computes assignments, sync_group(...)
    followers     sync_group() waits for the leader's assignments
    everyone      heartbeat() every few seconds; RebalanceInProgressError means "rejoin"

A group that was empty waits ``initial_rebalance_delay_ms`` (extended while new members keep
arriving, up to the rebalance timeout) so members starting together share one generation.

The broker opens it inside ``Broker.open``::

    coordinator = await GroupCoordinator.open(data_dir / "__consumer_offsets", GroupConfig())
    ...
    await coordinator.close()
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eventyard.broker.groups.group import Group, GroupDescription, GroupListing, GroupState
from eventyard.broker.groups.member import JoinResult, Member, SyncResult
from eventyard.broker.groups.offsets import OffsetAndMetadata, OffsetStore, OffsetTable
from eventyard.broker.groups.rebalance import Rebalancer
from eventyard.errors import (
    ConfigError,
    CoordinatorNotAvailableError,
    EventyardError,
    GroupIdNotFoundError,
    IllegalGenerationError,
    InconsistentGroupProtocolError,
    InvalidGroupIdError,
    InvalidSessionTimeoutError,
    MemberIdRequiredError,
    NonEmptyGroupError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from eventyard.storage import FileSystem, OSFileSystem

__all__ = ["GroupConfig", "GroupCoordinator", "MemberIdRequired"]

log = logging.getLogger(__name__)

_PREPARING = GroupState.PREPARING_REBALANCE
_COMPLETING = GroupState.COMPLETING_REBALANCE


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Coordinator settings: Kafka's ``group.*`` broker settings, with in-process defaults.

    ``initial_rebalance_delay_ms`` is Kafka's ``group.initial.rebalance.delay.ms`` (3000 in
    Kafka; shorter here because in-process members start within milliseconds of each other).
    ``offsets_retention_ms`` is Kafka's ``offsets.retention.minutes``: a group without members
    loses its committed offsets once its newest commit is this old (``None``: never).
    ``offsets_maintenance_interval_ms`` paces offset expiry and the offsets log's compaction.
    """

    initial_rebalance_delay_ms: int = 300
    min_session_timeout_ms: int = 1000
    max_session_timeout_ms: int = 1_800_000
    offsets_retention_ms: int | None = 7 * 86_400_000
    offsets_segment_bytes: int = 16 * 1024 * 1024
    offsets_maintenance_interval_ms: int = 300_000

    def __post_init__(self) -> None:
        if self.initial_rebalance_delay_ms < 0:
            raise ConfigError(
                f"initial_rebalance_delay_ms must be >= 0, not {self.initial_rebalance_delay_ms}"
            )
        if not 0 < self.min_session_timeout_ms <= self.max_session_timeout_ms:
            raise ConfigError(
                "session timeouts need 0 < min_session_timeout_ms <= max_session_timeout_ms, "
                f"not {self.min_session_timeout_ms} and {self.max_session_timeout_ms}"
            )
        if self.offsets_retention_ms is not None and self.offsets_retention_ms <= 0:
            raise ConfigError(
                f"offsets_retention_ms must be positive or None, not {self.offsets_retention_ms}"
            )
        if self.offsets_maintenance_interval_ms <= 0:
            raise ConfigError(
                "offsets_maintenance_interval_ms must be positive, "
                f"not {self.offsets_maintenance_interval_ms}"
            )


class MemberIdRequired(MemberIdRequiredError):
    """JoinGroup with ``require_known_member_id``: rejoin with :attr:`member_id` (KIP-394)."""

    def __init__(self, member_id: str) -> None:
        super().__init__(f"rejoin with the member id {member_id!r}")
        self.member_id = member_id


class GroupCoordinator:
    """Owns every consumer group's state and the durable committed offsets."""

    def __init__(self, store: OffsetStore, config: GroupConfig) -> None:
        self._store = store
        self._config = config
        self._groups: dict[str, Group] = {}
        self._rebalancer = Rebalancer(config.initial_rebalance_delay_ms)
        self._closed = False
        self._maintenance: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, directory: Path, config: GroupConfig = GroupConfig(), *, fs: FileSystem | None = None
    ) -> GroupCoordinator:
        """Open (creating if needed) the offsets log in ``directory`` and rebuild the offsets.

        ``directory`` is the coordinator's own directory (the broker passes
        ``data_dir / "__consumer_offsets"``); ``fs`` defaults to ``storage.OSFileSystem()``.
        Groups come back ``Empty`` (members live in memory only), with their offsets.
        """
        store = await OffsetStore.open(
            directory, fs or OSFileSystem(), segment_bytes=config.offsets_segment_bytes
        )
        coordinator = cls(store, config)
        coordinator._maintenance = asyncio.get_running_loop().create_task(coordinator._maintain())
        return coordinator

    async def close(self) -> None:
        """Fail pending joins and syncs, wait for pending commits, close the offsets log."""
        if self._closed:
            return
        self._closed = True
        if self._maintenance is not None:
            self._maintenance.cancel()
        for group in self._groups.values():
            group.state = GroupState.DEAD
            group.stop_rebalance_timer()
            for member in group.members.values():
                member.stop_timer()
                member.fail(CoordinatorNotAvailableError("the broker is shutting down"))
        self._groups.clear()
        await self._store.close()

    # -- membership --------------------------------------------------------------------------

    async def join_group(
        self,
        group_id: str,
        member_id: str,
        *,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: Sequence[tuple[str, bytes]],
        group_instance_id: str | None = None,
        require_known_member_id: bool = False,
    ) -> JoinResult:
        """JoinGroup: wait for the rebalance to complete and return this member's view of it.

        An empty ``member_id`` joins as a new member (with ``require_known_member_id`` the
        coordinator first answers :class:`MemberIdRequired` carrying the id to rejoin with).
        Raises ``InvalidGroupIdError``, ``InvalidSessionTimeoutError``,
        ``InconsistentGroupProtocolError``, ``UnknownMemberIdError``, or
        ``CoordinatorNotAvailableError`` once the coordinator closes.
        """
        self._check_open()
        _check_group_id(group_id)
        lo, hi = self._config.min_session_timeout_ms, self._config.max_session_timeout_ms
        if not lo <= session_timeout_ms <= hi:
            raise InvalidSessionTimeoutError(
                f"session timeout {session_timeout_ms} ms is outside [{lo}, {hi}] ms"
            )
        protos = tuple((name, bytes(metadata)) for name, metadata in protocols)
        names = tuple(name for name, _ in protos)
        group = self._groups.get(group_id) or Group(group_id)

        if not member_id:
            if not group.supports(protocol_type, names):
                raise InconsistentGroupProtocolError(
                    f"group {group_id!r} speaks {group.protocol_type!r} with protocols "
                    f"{sorted(group.candidate_protocols())}, not {protocol_type!r} {list(names)}"
                )
            if group_instance_id is not None and group_instance_id in group.static_members:
                return await self._rebalancer.rejoin_static(
                    group, group_instance_id, client_id, protos
                )
            member_id = f"{group_instance_id or client_id}-{uuid.uuid4()}"
            if require_known_member_id and group_instance_id is None:
                self._groups.setdefault(group_id, group)
                group.pending_members.add(member_id)
                asyncio.get_running_loop().call_later(
                    session_timeout_ms / 1000, self._rebalancer.expire_pending, group, member_id
                )
                raise MemberIdRequired(member_id)
        elif member_id not in group.members and member_id not in group.pending_members:
            raise UnknownMemberIdError(f"member {member_id!r} is not in group {group_id!r}")

        member = group.members.get(member_id)
        if member is None:
            group.pending_members.discard(member_id)
            if not group.supports(protocol_type, names):
                raise InconsistentGroupProtocolError(
                    f"group {group_id!r} cannot agree on a protocol with {list(names)}"
                )
            member = Member(
                member_id,
                group_instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocol_type,
                protos,
            )
            self._groups.setdefault(group_id, group)
            return await self._rebalancer.add_member(group, member)

        if protocol_type != group.protocol_type or not group.supports_except(member, names):
            raise InconsistentGroupProtocolError(
                f"member {member_id!r} cannot agree on a protocol with group {group_id!r}"
            )
        if group_instance_id != member.group_instance_id:
            raise UnknownMemberIdError(
                f"member {member_id!r} has instance id {member.group_instance_id!r}, "
                f"not {group_instance_id!r}"
            )
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        unchanged = protos == member.protocols
        if group.state is _COMPLETING and unchanged:
            return self._rebalancer.join_result(group, member)
        if group.state is GroupState.STABLE and unchanged and member_id != group.leader:
            return self._rebalancer.join_result(group, member)
        member.protocols = protos
        return await self._rebalancer.await_join(group, member)

    async def sync_group(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        *,
        assignments: Mapping[str, bytes] | None = None,
        group_instance_id: str | None = None,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> SyncResult:
        """SyncGroup: the leader hands in ``assignments``; every member gets its own.

        Followers wait for the leader. Raises ``UnknownMemberIdError``,
        ``IllegalGenerationError``, ``InconsistentGroupProtocolError`` or
        ``RebalanceInProgressError`` (rejoin) as Kafka does.
        """
        self._check_open()
        group, member = self._member(group_id, member_id, group_instance_id)
        if generation != group.generation:
            raise IllegalGenerationError(
                f"generation {generation} is not group {group_id!r}'s {group.generation}"
            )
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol
        ):
            raise InconsistentGroupProtocolError(
                f"group {group_id!r} speaks {group.protocol_type!r}/{group.protocol!r}"
            )
        if group.state is _PREPARING:
            raise RebalanceInProgressError(f"group {group_id!r} is rebalancing; rejoin")
        self._rebalancer.touch(group, member)
        if group.state is GroupState.STABLE:
            return SyncResult(group.protocol_type, group.protocol, member.assignment)
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        member.sync_future = future
        if member_id == group.leader:
            given = assignments or {}
            for other in group.members.values():
                other.assignment = bytes(given.get(other.member_id, b""))
            group.state = GroupState.STABLE
            for other in group.members.values():
                waiting = other.sync_future
                other.sync_future = None
                if waiting is not None and not waiting.done():
                    waiting.set_result(
                        SyncResult(group.protocol_type, group.protocol, other.assignment)
                    )
                self._rebalancer.touch(group, other)
            log.info("group %r stable at generation %d", group_id, group.generation)
        return await future

    async def heartbeat(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        *,
        group_instance_id: str | None = None,
    ) -> None:
        """Heartbeat: keep the member's session alive.

        Raises ``RebalanceInProgressError`` while the group prepares a rebalance (the member
        must rejoin), ``UnknownMemberIdError`` or ``IllegalGenerationError``.
        """
        self._check_open()
        group, member = self._member(group_id, member_id, group_instance_id)
        if generation != group.generation:
            raise IllegalGenerationError(
                f"generation {generation} is not group {group_id!r}'s {group.generation}"
            )
        self._rebalancer.touch(group, member)
        if group.state is _PREPARING:
            raise RebalanceInProgressError(f"group {group_id!r} is rebalancing; rejoin")

    async def leave_group(
        self, group_id: str, member_id: str, *, group_instance_id: str | None = None
    ) -> None:
        """LeaveGroup: remove the member now (no session timeout), rebalancing the rest.

        A static member may leave by ``group_instance_id`` alone (empty ``member_id``).
        """
        self._check_open()
        group = self._groups.get(group_id)
        if group is not None and not member_id and group_instance_id is not None:
            member_id = group.static_members.get(group_instance_id, "")
        group, member = self._member(group_id, member_id, group_instance_id)
        self._rebalancer.remove_member(group, member, "left the group")

    # -- offsets -----------------------------------------------------------------------------

    async def commit_offsets(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        offsets: Mapping[tuple[str, int], OffsetAndMetadata],
        *,
        group_instance_id: str | None = None,
    ) -> None:
        """OffsetCommit: store ``offsets`` durably; return once fsynced.

        ``generation == -1`` with an empty ``member_id`` is a standalone commit (a consumer
        without group management), allowed only while the group has no members. Otherwise the
        member and generation must be current; commits are refused with
        ``RebalanceInProgressError`` while the group awaits the leader's assignment.
        """
        self._check_open()
        _check_group_id(group_id)
        group = self._groups.get(group_id)
        if generation < 0 and not member_id:
            if group is not None and group.members:
                raise UnknownMemberIdError(
                    f"group {group_id!r} has members; a standalone commit is not allowed"
                )
        else:
            group, member = self._member(group_id, member_id, group_instance_id)
            if generation != group.generation:
                raise IllegalGenerationError(
                    f"generation {generation} is not group {group_id!r}'s {group.generation}"
                )
            if group.state is _COMPLETING:
                raise RebalanceInProgressError(f"group {group_id!r} is rebalancing; rejoin")
            self._rebalancer.touch(group, member)
        await self._store.commit(group_id, offsets)

    async def fetch_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None = None
    ) -> OffsetTable:
        """OffsetFetch: the committed offsets (all, or those of ``partitions`` that exist)."""
        self._check_open()
        _check_group_id(group_id)
        return self._store.fetch(group_id, partitions)

    async def reset_offsets(
        self, group_id: str, offsets: Mapping[tuple[str, int], OffsetAndMetadata]
    ) -> None:
        """Overwrite committed offsets; only while the group has no members.

        Raises ``NonEmptyGroupError`` otherwise, so a running consumer never has its position
        moved under it (Kafka's ``kafka-consumer-groups --reset-offsets`` rule).
        """
        self._check_open()
        _check_group_id(group_id)
        group = self._groups.get(group_id)
        if group is not None and group.state is not GroupState.EMPTY:
            raise NonEmptyGroupError(f"group {group_id!r} is {group.state.value}; stop it first")
        await self._store.commit(group_id, offsets)

    # -- administration ----------------------------------------------------------------------

    async def list_groups(self, states: Iterable[GroupState] | None = None) -> list[GroupListing]:
        """ListGroups: every live group and every group with committed offsets, by id.

        ``states`` keeps only groups in those states (ListGroups v4's filter).
        """
        self._check_open()
        listings = {
            group_id: GroupListing(group_id, group.protocol_type, group.state)
            for group_id, group in self._groups.items()
        }
        for group_id in self._store.groups():
            listings.setdefault(group_id, GroupListing(group_id, "", GroupState.EMPTY))
        wanted = None if states is None else frozenset(states)
        return [
            listings[group_id]
            for group_id in sorted(listings)
            if wanted is None or listings[group_id].state in wanted
        ]

    async def describe_group(self, group_id: str) -> GroupDescription:
        """DescribeGroups: state, protocol, generation and members; unknown groups are Dead."""
        self._check_open()
        group = self._groups.get(group_id)
        if group is not None:
            return group.describe()
        state = GroupState.EMPTY if self._store.fetch(group_id) else GroupState.DEAD
        return GroupDescription(group_id, state, "", "", 0, "", ())

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, EventyardError | None]:
        """DeleteGroups: delete each empty group and its offsets; one outcome per group.

        The outcome is ``None`` on success, else ``InvalidGroupIdError``,
        ``NonEmptyGroupError`` or ``GroupIdNotFoundError``.
        """
        self._check_open()
        outcomes: dict[str, EventyardError | None] = {}
        for group_id in group_ids:
            group = self._groups.get(group_id)
            if not group_id:
                outcomes[group_id] = InvalidGroupIdError("the group id is empty")
            elif group is not None and group.state is not GroupState.EMPTY:
                outcomes[group_id] = NonEmptyGroupError(
                    f"group {group_id!r} is {group.state.value}; stop its members first"
                )
            elif group is None and not self._store.fetch(group_id):
                outcomes[group_id] = GroupIdNotFoundError(f"group {group_id!r} does not exist")
            else:
                if group is not None:
                    group.state = GroupState.DEAD
                    group.stop_rebalance_timer()
                    del self._groups[group_id]
                await self._store.delete_group(group_id)
                outcomes[group_id] = None
        return outcomes

    async def expire_offsets(self, now_ms: int | None = None) -> list[str]:
        """Delete the offsets of groups without members whose newest commit is older than
        ``offsets_retention_ms``, and forget empty groups without offsets (Kafka turns them
        ``Dead``); return the ids whose offsets expired. Runs every
        ``offsets_maintenance_interval_ms``."""
        self._check_open()
        retention = self._config.offsets_retention_ms
        if retention is None:
            return []
        now = int(time.time() * 1000) if now_ms is None else now_ms
        expired = []
        for group_id in self._store.groups():
            group = self._groups.get(group_id)
            if group is not None and group.members:
                continue
            newest = max(o.commit_timestamp_ms for o in self._store.fetch(group_id).values())
            if newest + retention <= now:
                expired.append(group_id)
        for group_id in expired:
            group = self._groups.get(group_id)
            if group is None or not group.members:
                log.info("group %r: committed offsets expired", group_id)
                await self._store.delete_group(group_id)
        for group_id, group in list(self._groups.items()):
            if group.state is GroupState.EMPTY and not self._store.fetch(group_id):
                group.state = GroupState.DEAD
                del self._groups[group_id]
        return expired

    async def compact_offsets(self) -> int:
        """Compact the offsets log now; return the bytes reclaimed. Runs every
        ``offsets_maintenance_interval_ms``."""
        self._check_open()
        return await self._store.compact()

    async def _maintain(self) -> None:
        """Expire old offsets and compact the offsets log now and then."""
        interval = self._config.offsets_maintenance_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_offsets()
                await self.compact_offsets()
            except Exception:
                log.exception("offsets maintenance failed; will retry")

    # -- lookups -----------------------------------------------------------------------------

    def _member(
        self, group_id: str, member_id: str, group_instance_id: str | None
    ) -> tuple[Group, Member]:
        group = self._groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if group is None or member is None:
            raise UnknownMemberIdError(f"member {member_id!r} is not in group {group_id!r}")
        if group_instance_id is not None and group_instance_id != member.group_instance_id:
            raise UnknownMemberIdError(
                f"instance {group_instance_id!r} does not own member {member_id!r}"
            )
        return group, member

    def _check_open(self) -> None:
        if self._closed:
            raise CoordinatorNotAvailableError("the group coordinator is closed")


def _check_group_id(group_id: str) -> None:
    if not group_id:
        raise InvalidGroupIdError("the group id is empty")
