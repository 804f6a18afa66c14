"""Client side of the group protocol for in-process consumers: join, sync, heartbeat, rejoin.

A :class:`GroupMembership` keeps one member in a group on the coordinator, in a background
task, the way aiokafka's coordinator task does: it joins with the consumer protocol, computes
the assignment when it is elected leader (with the assignor the group agreed on), syncs, then
heartbeats every ``heartbeat_interval_ms``. The leader also watches the partition counts it
assigned from and rejoins when one changes (a topic grew or appeared), as Kafka's leader does
on a metadata change, so the new partitions get an owner. When a heartbeat answers
``RebalanceInProgressError`` (or the member was expelled or its generation is stale) it calls
``on_revoke`` with the partitions it held, rejoins, and calls ``on_assign`` with the new ones.
The consumer owns fetch positions; this class only owns the membership.

It lives next to the coordinator, not in the client, because it speaks only the coordinator's
API and the consumer-protocol encodings; any in-process client may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from eventyard.broker.groups.assignors import AssignorMember, get_assignor
from eventyard.broker.groups.coordinator import GroupCoordinator
from eventyard.broker.groups.member import JoinResult
from eventyard.broker.groups.protocol import (
    CONSUMER_PROTOCOL_TYPE,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from eventyard.errors import (
    CoordinatorNotAvailableError,
    GroupError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)

__all__ = ["GroupMembership", "MembershipConfig"]

log = logging.getLogger(__name__)

Partitions = tuple[tuple[str, int], ...]
"""``((topic, partition), ...)``, sorted."""


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """How a member takes part: Kafka's consumer settings of the same names."""

    assignor: str = "range"
    client_id: str = "eventyard"
    client_host: str = "in-process"
    session_timeout_ms: int = 10_000
    rebalance_timeout_ms: int = 30_000
    heartbeat_interval_ms: int = 3_000
    group_instance_id: str | None = None


class GroupMembership:
    """One member of ``group_id`` subscribed to ``topics``, kept alive in a background task.

    ``partition_count(topic)`` returns a topic's partition count (``None`` if unknown) for the
    assignor when this member leads. ``on_assign``/``on_revoke`` run inside the task, before
    :attr:`assignment` changes become visible through :meth:`wait_assigned`; ``on_change`` is
    called (synchronously) whenever a rebalance starts, the task fails, or the member stops,
    so a consumer blocked in a long poll can wake up.
    """

    def __init__(
        self,
        coordinator: GroupCoordinator,
        group_id: str,
        topics: Sequence[str],
        *,
        partition_count: Callable[[str], int | None],
        on_assign: Callable[[Partitions], Awaitable[None]],
        on_revoke: Callable[[Partitions], Awaitable[None]],
        on_change: Callable[[], None],
        config: MembershipConfig = MembershipConfig(),
    ) -> None:
        get_assignor(config.assignor)
        self.group_id = group_id
        self.topics = tuple(dict.fromkeys(topics))
        self.member_id = ""
        self.generation = -1
        self.assignment: Partitions = ()
        self.error: BaseException | None = None
        self._coordinator = coordinator
        self._partition_count = partition_count
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_change = on_change
        self._config = config
        self._metadata = encode_subscription(Subscription(self.topics))
        self._leading: dict[str, int] | None = None
        self._watched: tuple[str, ...] = ()
        self._stable = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stable(self) -> bool:
        """True while this member holds a current assignment (possibly empty)."""
        return self._stable.is_set()

    def start(self) -> None:
        """Start joining; the first assignment arrives through ``on_assign``."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop heartbeating and leave the group, so the others rebalance at once.

        A static member (``group_instance_id``) does not leave: its session timeout keeps its
        partitions for it while it restarts, which is what static membership is for.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.member_id and self._config.group_instance_id is None:
            with contextlib.suppress(GroupError):
                await self._coordinator.leave_group(self.group_id, self.member_id)
        self.assignment = ()
        self._stable.set()  # releases wait_assigned(); the owner checks that it stopped
        self._on_change()

    async def wait_assigned(self, timeout: float | None) -> bool:
        """Wait until this member holds a current assignment; False on timeout."""
        if not self._stable.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stable.wait(), timeout)
        return self._stable.is_set()

    async def _run(self) -> None:
        interval = self._config.heartbeat_interval_ms / 1000
        rejoin = True
        try:
            while True:
                if rejoin:
                    await self._rebalance()
                    rejoin = False
                await asyncio.sleep(interval)
                try:
                    await self._coordinator.heartbeat(
                        self.group_id,
                        self.generation,
                        self.member_id,
                        group_instance_id=self._config.group_instance_id,
                    )
                except (RebalanceInProgressError, IllegalGenerationError):
                    rejoin = True
                except UnknownMemberIdError:
                    self.member_id = ""
                    rejoin = True
                if self._leading is not None and self._partition_counts() != self._leading:
                    log.info("group %r: partition counts changed; rebalancing", self.group_id)
                    rejoin = True
        except asyncio.CancelledError:
            raise
        except CoordinatorNotAvailableError as exc:
            log.info("group %r: coordinator gone (%s)", self.group_id, exc)
            self.error = exc
        except Exception as exc:
            log.exception("group %r: membership failed", self.group_id)
            self.error = exc
        self._stable.set()
        self._on_change()

    async def _rebalance(self) -> None:
        """Revoke what this member holds, then join and sync until an assignment arrives."""
        self._stable.clear()
        self._on_change()
        if self.assignment:
            revoked, self.assignment = self.assignment, ()
            await self._on_revoke(revoked)
        while True:
            try:
                join = await self._join()
                self._leading = None
                assignments = self._assign(join) if join.is_leader else {}
                sync = await self._coordinator.sync_group(
                    self.group_id,
                    join.generation,
                    join.member_id,
                    assignments=assignments,
                    group_instance_id=self._config.group_instance_id,
                )
            except (RebalanceInProgressError, IllegalGenerationError):
                continue
            except UnknownMemberIdError:
                self.member_id = ""
                continue
            break
        assigned = decode_assignment(sync.assignment)
        self.assignment = tuple(
            sorted((topic, p) for topic, partitions in assigned.partitions for p in partitions)
        )
        log.info(
            "group %r generation %d: member %r assigned %d partitions",
            self.group_id,
            self.generation,
            self.member_id,
            len(self.assignment),
        )
        await self._on_assign(self.assignment)
        self._stable.set()

    async def _join(self) -> JoinResult:
        config = self._config
        join = await self._coordinator.join_group(
            self.group_id,
            self.member_id,
            client_id=config.client_id,
            client_host=config.client_host,
            session_timeout_ms=config.session_timeout_ms,
            rebalance_timeout_ms=config.rebalance_timeout_ms,
            protocol_type=CONSUMER_PROTOCOL_TYPE,
            protocols=[(config.assignor, self._metadata)],
            group_instance_id=config.group_instance_id,
        )
        self.member_id = join.member_id
        self.generation = join.generation
        return join

    def _assign(self, join: JoinResult) -> dict[str, bytes]:
        """As leader: run the agreed assignor over every member's subscription."""
        members = [
            AssignorMember(m.member_id, decode_subscription(m.metadata), m.group_instance_id)
            for m in join.members
        ]
        self._watched = tuple(sorted({t for m in members for t in m.subscription.topics}))
        counts = self._leading = self._partition_counts()
        result = get_assignor(join.protocol).assign(counts, members)
        return {member_id: encode_assignment(a) for member_id, a in result.items()}

    def _partition_counts(self) -> dict[str, int]:
        """The partition count of each topic the members subscribe to that exists."""
        counts = {}
        for topic in self._watched:
            count = self._partition_count(topic)
            if count is not None:
                counts[topic] = count
        return counts
