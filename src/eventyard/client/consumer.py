"""The asyncio consumer: aiokafka's API over the embedded broker, in-process.

A :class:`Consumer` either subscribes to topics in a consumer group (``group_id``; Kafka's
group protocol through ``broker.groups``, partitions split among members by the chosen
assignor and rebalanced when members come and go), subscribes without a group (every
partition of its topics), or reads partitions given to :meth:`Consumer.assign`.

Positions: each assigned partition has a *position*, the offset of the next record
:meth:`~Consumer.getmany` returns. A new partition starts at the group's committed offset,
else per ``auto_offset_reset`` (``"earliest"``, ``"latest"``, or ``"none"``, which raises
``OffsetOutOfRangeError``); a position the log no longer holds is reset the same way.
:meth:`~Consumer.commit` stores the positions (what was returned so far), so delivery is
at-least-once when the caller commits after processing.

Fetching, decoding and buffering records is :class:`~eventyard.client.fetcher.Fetcher`'s
job (one ``broker.fetch_many`` for every assigned partition at once, one decode per
partition's bytes, records not yet returned buffered so ``getone`` costs no fetch per
record); this module decides which partitions it reads, where they start, and commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self

from eventyard.broker import EARLIEST, LATEST
from eventyard.broker.groups import (
    GroupMembership,
    MembershipConfig,
    OffsetAndMetadata,
    get_assignor,
)
from eventyard.client.fetcher import ConsumerRecord, Fetcher, TopicPartition
from eventyard.errors import (
    ConfigError,
    GroupError,
    OffsetOutOfRangeError,
    UnknownTopicError,
)

if TYPE_CHECKING:
    from eventyard.broker import Broker

__all__ = ["Consumer", "ConsumerRecord", "TopicPartition"]

log = logging.getLogger(__name__)

_RESETS = ("earliest", "latest", "none")


CommitOffsets = Mapping[TopicPartition, int | tuple[int, str] | OffsetAndMetadata]


class Consumer:
    """Reads records from an embedded :class:`~eventyard.broker.Broker`.

    ``await consumer.start()`` joins the group (without waiting for the first assignment);
    ``getmany``/``getone``/``async for`` wait for it. ``enable_auto_commit`` commits the
    positions every ``auto_commit_interval_ms``, before a rebalance revokes partitions and
    on :meth:`stop`; it needs a ``group_id`` and is ignored without one (as in aiokafka).
    """

    def __init__(
        self,
        broker: Broker,
        *topics: str,
        group_id: str | None = None,
        auto_offset_reset: str = "latest",
        assignor: str = "range",
        enable_auto_commit: bool = False,
        auto_commit_interval_ms: int = 5_000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        rebalance_timeout_ms: int = 30_000,
        max_poll_records: int | None = None,
        fetch_max_bytes: int = 50 * 1024 * 1024,
        max_partition_fetch_bytes: int = 1024 * 1024,
        fetch_max_wait_ms: int = 500,
        client_id: str = "eventyard-consumer",
        group_instance_id: str | None = None,
    ) -> None:
        if auto_offset_reset not in _RESETS:
            raise ConfigError(
                f"auto_offset_reset must be one of {', '.join(_RESETS)}, not {auto_offset_reset!r}"
            )
        get_assignor(assignor)
        if max_poll_records is not None and max_poll_records < 1:
            raise ConfigError(f"max_poll_records must be at least 1, not {max_poll_records}")
        if group_id == "":
            raise ConfigError("group_id must not be empty (use None for no group)")
        self._broker = broker
        self._topics = tuple(dict.fromkeys(topics))
        self._group_id = group_id
        self._reset = auto_offset_reset
        self._auto_commit = enable_auto_commit and group_id is not None
        self._auto_commit_interval = auto_commit_interval_ms / 1000
        self._max_poll_records = max_poll_records
        self._fetcher = Fetcher(
            broker, partition_bytes=max_partition_fetch_bytes, max_bytes=fetch_max_bytes
        )
        self._fetch_max_wait = fetch_max_wait_ms / 1000
        self._membership_config = MembershipConfig(
            assignor=assignor,
            client_id=client_id,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            group_instance_id=group_instance_id,
        )
        self._membership: GroupMembership | None = None
        self._committed: dict[TopicPartition, int] = {}
        self._auto_commit_task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe (joining the group when there is one) and start auto-commit."""
        if self._started:
            return
        self._started = True
        for topic in self._topics:
            await self._broker.ensure_topic(topic)
        if self._topics and self._group_id is not None:
            self._membership = GroupMembership(
                self._broker.groups,
                self._group_id,
                self._topics,
                partition_count=self._partition_count,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_change=self._fetcher.wake,
                config=self._membership_config,
            )
            self._membership.start()
        elif self._topics:
            self._set_assignment(
                TopicPartition(topic, p)
                for topic in self._topics
                for p in range(self._broker.partition_count(topic))
            )
        if self._auto_commit:
            self._auto_commit_task = asyncio.get_running_loop().create_task(self._auto_commits())

    async def stop(self) -> None:
        """Commit (with auto-commit), leave the group so the others rebalance, and stop."""
        if self._closed:
            return
        if self._auto_commit_task is not None:
            self._auto_commit_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._auto_commit_task
        if self._auto_commit and self._started:
            await self._commit_quietly()
        self._closed = True
        if self._membership is not None:
            await self._membership.stop()
        self._fetcher.wake()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- assignment --------------------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly ``partitions`` (no group membership; commits are standalone)."""
        if self._topics:
            raise ConfigError("assign() cannot be combined with subscribed topics")
        self._set_assignment(TopicPartition(*tp) for tp in partitions)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now."""
        return set(self._fetcher.positions)

    @property
    def assignment_settled(self) -> bool:
        """Whether :meth:`assignment` is current: no group, or the group is not rebalancing.

        An empty assignment that is settled means the group has more members than
        partitions; one that is not settled means the first assignment has not arrived.
        """
        return self._membership is None or self._membership.stable

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's high watermark as of the last fetch (``None`` before one)."""
        return self._fetcher.highwater(tp)

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record to return from ``tp``."""
        self._check_assigned(tp)
        await self._reset_positions()
        position = self._fetcher.positions[tp]
        assert position is not None
        return position

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp`` (``None`` if none)."""
        if self._group_id is None:
            raise ConfigError("committed() needs a group_id")
        offsets = await self._broker.groups.fetch_offsets(self._group_id, [tp])
        value = offsets.get((tp.topic, tp.partition))
        return None if value is None else value.offset

    def _set_assignment(self, partitions: Iterable[TopicPartition]) -> None:
        self._fetcher.assign(partitions)

    def _partition_count(self, topic: str) -> int | None:
        try:
            return self._broker.partition_count(topic)
        except UnknownTopicError:
            return None

    async def _on_assign(self, partitions: tuple[tuple[str, int], ...]) -> None:
        self._set_assignment(TopicPartition(*tp) for tp in partitions)

    async def _on_revoke(self, partitions: tuple[tuple[str, int], ...]) -> None:
        if self._auto_commit:
            await self._commit_quietly()
        self._fetcher.revoke()

    # -- seeking -----------------------------------------------------------------------------

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next offset returned from ``tp``."""
        self._check_assigned(tp)
        if offset < 0:
            raise ConfigError(f"cannot seek {tp} to negative offset {offset}")
        self._move(tp, offset)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Move to the log start of ``partitions`` (default: every assigned one)."""
        for tp in self._targets(partitions):
            self._move(tp, await self._list_offset(tp, EARLIEST))

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Move past the last record of ``partitions`` (default: every assigned one)."""
        for tp in self._targets(partitions):
            self._move(tp, await self._list_offset(tp, LATEST))

    async def seek_to_time(
        self, timestamp_ms: int, *partitions: TopicPartition
    ) -> dict[TopicPartition, int]:
        """Move to the first record at or after ``timestamp_ms`` (the end if none).

        Returns the new position of each partition moved.
        """
        moved = {}
        for tp in self._targets(partitions):
            offset = await self._broker.list_offset(tp.topic, tp.partition, timestamp_ms)
            if offset is None:
                offset = await self._list_offset(tp, LATEST)
            self._move(tp, offset)
            moved[tp] = offset
        return moved

    def _targets(self, partitions: tuple[TopicPartition, ...]) -> list[TopicPartition]:
        for tp in partitions:
            self._check_assigned(tp)
        return list(partitions) if partitions else list(self._fetcher.positions)

    def _move(self, tp: TopicPartition, offset: int) -> None:
        self._fetcher.move(tp, offset)

    async def _list_offset(self, tp: TopicPartition, which: int) -> int:
        offset = await self._broker.list_offset(tp.topic, tp.partition, which)
        assert offset is not None, "LATEST and EARLIEST always have an answer"
        return offset

    # -- commits -----------------------------------------------------------------------------

    async def commit(self, offsets: CommitOffsets | None = None) -> None:
        """Commit ``offsets`` (default: the current positions), durably.

        Values are an offset, ``(offset, metadata)`` or an ``OffsetAndMetadata``; the offset
        is the *next* one to consume. Raises the coordinator's ``GroupError`` when the
        member's generation is stale (a rebalance moved the partitions: their records will be
        delivered again to their new owner).
        """
        if self._group_id is None:
            raise ConfigError("commit() needs a group_id")
        if offsets is None:
            await self._reset_positions()
            offsets = {tp: pos for tp, pos in self._fetcher.positions.items() if pos is not None}
        values = {(tp.topic, tp.partition): _offset_value(value) for tp, value in offsets.items()}
        if not values:
            return
        membership = self._membership
        generation, member_id = -1, ""
        if membership is not None:
            generation, member_id = membership.generation, membership.member_id
        await self._broker.groups.commit_offsets(self._group_id, generation, member_id, values)
        for (topic, partition), value in values.items():
            self._committed[TopicPartition(topic, partition)] = value.offset

    async def _commit_quietly(self) -> None:
        changed = {
            tp: pos
            for tp, pos in self._fetcher.positions.items()
            if pos is not None and self._committed.get(tp) != pos
        }
        if changed:
            try:
                await self.commit(changed)
            except GroupError as exc:
                log.warning("auto-commit of group %r failed: %s", self._group_id, exc)

    async def _auto_commits(self) -> None:
        while True:
            await asyncio.sleep(self._auto_commit_interval)
            await self._commit_quietly()

    # -- reading -----------------------------------------------------------------------------

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Return buffered or newly fetched records, waiting up to ``timeout_ms`` for some.

        At most ``max_records`` (default ``max_poll_records``, else no limit) records over
        all partitions, optionally only from ``partitions``; ``{}`` when none arrived in time.
        """
        self._check_running()
        only = frozenset(partitions)
        if not self._fetcher.buffered(only):
            await self._fill(timeout_ms / 1000, only)
        return self._fetcher.drain(max_records or self._max_poll_records, only)

    async def getone(self, *partitions: TopicPartition) -> ConsumerRecord:
        """Return the next record, waiting as long as it takes."""
        only = frozenset(partitions)
        while True:
            self._check_running()
            record = self._fetcher.take_one(only)
            if record is not None:
                return record
            await self._fill(self._fetch_max_wait, only)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ConsumerRecord:
        """The next record; iteration ends when the consumer is stopped."""
        if self._closed:
            raise StopAsyncIteration
        record = self._fetcher.take_one()
        if record is not None:
            return record
        try:
            return await self.getone()
        except _Stopped:
            raise StopAsyncIteration from None

    async def _fill(self, timeout: float, only: frozenset[TopicPartition]) -> None:
        """Fetch into the buffer until something arrives or ``timeout`` seconds pass.

        Waits for a group's assignment first (a rebalance in progress), and gives partitions
        without a position their starting offset before each fetch.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._check_running()
            membership = self._membership
            if membership is not None:
                if membership.error is not None:
                    raise membership.error
                if not membership.stable:
                    remaining = deadline - loop.time()
                    if not await membership.wait_assigned(max(remaining, 0.0)):
                        return
                    continue
            await self._reset_positions()
            if await self._fetcher.fetch(deadline, only):
                return

    async def _reset_positions(self) -> None:
        """Give each partition without a position its committed offset, else the policy's."""
        fetcher = self._fetcher
        pending = [tp for tp, position in fetcher.positions.items() if position is None]
        if not pending:
            return
        committed = {}
        if self._group_id is not None:
            asked = [tp for tp in pending if tp not in fetcher.out_of_range]
            if asked:
                committed = await self._broker.groups.fetch_offsets(self._group_id, asked)
        for tp in pending:
            value = committed.get((tp.topic, tp.partition))
            if value is not None:
                offset = value.offset
            elif self._reset == "earliest":
                offset = await self._list_offset(tp, EARLIEST)
            elif self._reset == "latest":
                offset = await self._list_offset(tp, LATEST)
            else:
                raise OffsetOutOfRangeError(
                    f"{tp.topic}[{tp.partition}] has no committed offset and "
                    "auto_offset_reset is 'none'"
                )
            fetcher.reset(tp, offset)

    # -- checks ------------------------------------------------------------------------------

    def _check_running(self) -> None:
        if self._closed:
            raise _Stopped("the consumer is stopped")
        if not self._started:
            raise ConfigError("call start() before reading")

    def _check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._fetcher.positions:
            raise ConfigError(f"{tp.topic}[{tp.partition}] is not assigned to this consumer")


class _Stopped(RuntimeError):
    """Reading from a stopped consumer (``async for`` ends quietly on it)."""


def _offset_value(value: int | tuple[int, str] | OffsetAndMetadata) -> OffsetAndMetadata:
    if isinstance(value, OffsetAndMetadata):
        return value
    if isinstance(value, tuple):
        return OffsetAndMetadata(value[0], value[1])
    return OffsetAndMetadata(value)
