"""The in-memory transport: a small, faithful broker for unit tests and ``eventyard.testing``.

Everything lives in one :class:`MemoryTransport` on one event loop, which owns every piece
of state (topics, partitions, groups, committed offsets); receivers only hold their
positions. It keeps the whole contract of ``eventyard.transports.base`` the way Kafka does,
so a test that passes here means the same on the embedded broker or on Kafka:

- topics have partitions (``partitions=`` on the constructor or :meth:`ensure_topic`) and
  Kafka's name rules (``InvalidTopicError``);
  keyed messages are placed by murmur2, unkeyed ones by Kafka's sticky partitioner (all of
  one :meth:`~MemoryTransport.publish` call on one partition);
- a group's live receivers share the partitions round-robin (Kafka's ``RoundRobinAssignor``:
  partitions sorted, receivers in the order they joined), rebalanced synchronously whenever
  one starts or stops. A receiver keeps the position of a partition it keeps; a partition
  new to it starts at the group's committed offset, else per ``offset_reset``;
- a commit for a partition the receiver lost since its last fetch raises
  ``IllegalGenerationError``, as a stale generation does on Kafka;
- :meth:`MemoryReceiver.fetch` long-polls: it waits on an event that publishing to its topics,
  a rebalance or a stop sets.

Messages are :class:`eventyard.client.ConsumerRecord` values built once on publish and shared
by every fetch. Nothing is copied, nothing expires. Topics and topics' partitions are
created on first use (publish, or a receiver starting), as the embedded broker does by
default. :meth:`MemoryTransport.messages` and :meth:`MemoryTransport.committed` let a test
look inside.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence

from eventyard.broker.partitioner import DefaultPartitioner
from eventyard.broker.topics import validate_topic_name
from eventyard.client import ConsumerRecord
from eventyard.errors import (
    ConfigError,
    IllegalGenerationError,
    InvalidPartitionsError,
    TransportError,
    UnknownTopicError,
)
from eventyard.transports.base import (
    Message,
    OffsetReset,
    Outgoing,
    Receiver,
    Transport,
    check_fetch_args,
    check_receiver_args,
    place,
)

__all__ = ["MemoryReceiver", "MemoryTransport"]

TopicPartition = tuple[str, int]


class _Group:
    """One consumer group: live members in join order and committed offsets."""

    __slots__ = ("committed", "members", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[MemoryReceiver] = []
        self.committed: dict[TopicPartition, int] = {}


class MemoryTransport(Transport):
    """Topics, partitions and consumer groups in memory (see the module docstring).

    ``partitions`` is the partition count of topics created without one.
    """

    name = "memory"

    def __init__(self, *, partitions: int = 1) -> None:
        _check_partitions(partitions)
        self._default_partitions = partitions
        self._logs: dict[str, list[list[ConsumerRecord]]] = {}
        self._listeners: dict[str, set[MemoryReceiver]] = {}
        self._groups: dict[str, _Group] = {}
        self._receivers: set[MemoryReceiver] = set()
        self._partitioner = DefaultPartitioner()
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Make the transport usable. Starting twice is a no-op."""
        if self._closed:
            raise TransportError("the memory transport is closed; create a new one")
        self._started = True

    async def close(self) -> None:
        """Stop every receiver; published messages stay readable via :meth:`messages`."""
        if self._closed:
            return
        self._closed = True
        for receiver in list(self._receivers):
            await receiver.stop()

    def _check_usable(self) -> None:
        if self._closed:
            raise TransportError("the memory transport is closed")
        if not self._started:
            raise TransportError("call start() on the memory transport first")

    # -- topics and publishing ---------------------------------------------------------------

    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` unless it exists (an existing topic keeps its partition count)."""
        self._check_usable()
        self._topic(topic, partitions)

    def _topic(self, topic: str, partitions: int | None = None) -> list[list[ConsumerRecord]]:
        logs = self._logs.get(topic)
        if logs is None:
            validate_topic_name(topic)
            count = self._default_partitions if partitions is None else partitions
            _check_partitions(count)
            logs = self._logs[topic] = [[] for _ in range(count)]
            self._listeners[topic] = set()
        return logs

    async def publish(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Append ``messages`` (all or none: every one is checked first) and wake readers.

        Keys, values and header values must be ``bytes`` or ``None`` (``TypeError``), as the
        real producers require; an explicit partition the topic lacks raises
        ``UnknownTopicError``.
        """
        self._check_usable()
        logs = self._topic(topic)
        count = len(logs)
        now = time.time_ns() // 1_000_000
        placed, sticky = place(self._partitioner, topic, messages, count)
        for partition, (key, value, headers, _, timestamp) in placed:
            log = logs[partition]
            log.append(
                ConsumerRecord(
                    topic,
                    partition,
                    len(log),
                    now if timestamp is None else timestamp,
                    key,
                    value,
                    headers if type(headers) is tuple else tuple(headers),
                )
            )
        if sticky is not None:
            self._partitioner.batch_completed(topic, sticky, count)
        if placed:
            for receiver in self._listeners[topic]:
                receiver._wake()
        # A real publish waits for an acknowledgement; yielding here keeps a publishing loop
        # from starving the receivers it feeds, as it would on a real broker.
        await asyncio.sleep(0)

    # -- receivers and groups ----------------------------------------------------------------

    def receiver(
        self, topics: Sequence[str], group: str, *, offset_reset: OffsetReset = "earliest"
    ) -> MemoryReceiver:
        """Return a new member of ``group`` reading ``topics``; :meth:`~Receiver.start` it."""
        if self._closed:
            raise TransportError("the memory transport is closed")
        names = check_receiver_args(topics, group, offset_reset)
        return MemoryReceiver(self, names, group, offset_reset)

    def _join(self, receiver: MemoryReceiver) -> None:
        self._check_usable()
        for topic in receiver.topics:
            self._topic(topic)
            self._listeners[topic].add(receiver)
        group = self._groups.get(receiver.group)
        if group is None:
            group = self._groups[receiver.group] = _Group(receiver.group)
        group.members.append(receiver)
        self._receivers.add(receiver)
        self._rebalance(group)

    def _leave(self, receiver: MemoryReceiver) -> None:
        for topic in receiver.topics:
            self._listeners[topic].discard(receiver)
        self._receivers.discard(receiver)
        group = self._groups[receiver.group]
        group.members.remove(receiver)
        receiver._assign({}, group.committed)
        self._rebalance(group)

    def _rebalance(self, group: _Group) -> None:
        """Kafka's round-robin assignment of every subscribed partition among the members."""
        members = group.members
        plans: dict[MemoryReceiver, list[TopicPartition]] = {m: [] for m in members}
        topics = sorted({t for m in members for t in m.topics})
        turn = itertools.cycle(members)
        for topic in topics:
            for partition in range(len(self._logs[topic])):
                member = next(turn)
                while topic not in member.topics:
                    member = next(turn)
                plans[member].append((topic, partition))
        for member, partitions in plans.items():
            starts = {tp: self._start_offset(tp, member.offset_reset) for tp in partitions}
            member._assign(starts, group.committed)

    def _start_offset(self, tp: TopicPartition, offset_reset: OffsetReset) -> int:
        """Where a partition new to a receiver starts when its group committed nothing."""
        topic, partition = tp
        return 0 if offset_reset == "earliest" else len(self._logs[topic][partition])

    def _read(self, tp: TopicPartition, offset: int, limit: int) -> list[ConsumerRecord]:
        topic, partition = tp
        log = self._logs[topic][partition]
        if offset >= len(log):
            return []
        return log[offset : offset + limit]

    def _commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        self._groups[group].committed.update(offsets)

    # -- looking inside (for tests) ----------------------------------------------------------

    def messages(self, topic: str, partition: int | None = None) -> list[Message]:
        """Every message published to ``topic`` (or one partition), by partition and offset."""
        logs = self._logs.get(topic)
        if logs is None:
            raise UnknownTopicError(f"unknown topic {topic!r}")
        if partition is not None:
            return list(logs[partition])
        return [record for log in logs for record in log]

    def committed(self, group: str) -> dict[TopicPartition, int]:
        """The committed offsets of ``group`` (empty for a group never seen)."""
        found = self._groups.get(group)
        return {} if found is None else dict(sorted(found.committed.items()))

    def partition_count(self, topic: str) -> int:
        """The number of partitions of ``topic`` (``UnknownTopicError`` if absent)."""
        logs = self._logs.get(topic)
        if logs is None:
            raise UnknownTopicError(f"unknown topic {topic!r}")
        return len(logs)


class MemoryReceiver(Receiver):
    """One member of a group on a :class:`MemoryTransport`; create it with ``receiver()``."""

    def __init__(
        self,
        transport: MemoryTransport,
        topics: tuple[str, ...],
        group: str,
        offset_reset: OffsetReset,
    ) -> None:
        self.topics = topics
        self.group = group
        self.offset_reset: OffsetReset = offset_reset
        self._transport = transport
        self._positions: dict[TopicPartition, int] = {}
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._revoked: set[TopicPartition] = set()
        self._signal = asyncio.Event()
        self._started = False
        self._stopped = False

    async def start(self) -> None:
        """Join the group; the transport rebalances it at once."""
        if self._stopped:
            raise TransportError("this receiver was stopped; create a new one")
        if self._started:
            return
        self._transport._join(self)
        self._started = True

    async def stop(self) -> None:
        """Leave the group (its other members take the partitions over at once)."""
        if self._stopped:
            return
        self._stopped = True
        if self._started:
            self._transport._leave(self)
        self._wake()

    def settled(self) -> bool:
        """Started and not stopped: a memory group rebalances at once, within the call."""
        return self._started and not self._stopped

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this receiver reads now."""
        return self._assigned

    def _assign(
        self, starts: dict[TopicPartition, int], committed: dict[TopicPartition, int]
    ) -> None:
        """Take a new assignment: kept partitions keep their position, new ones start at
        the committed offset, else at ``starts``' reset offset; lost ones are remembered
        until the next fetch so that a stale commit is refused."""
        old = self._positions
        positions: dict[TopicPartition, int] = {}
        for tp in sorted(starts):
            position = old.get(tp)
            if position is None:
                position = committed.get(tp, starts[tp])
            positions[tp] = position
        self._revoked.update(tp for tp in old if tp not in positions)
        self._positions = positions
        self._assigned = frozenset(positions)
        self._wake()

    def _wake(self) -> None:
        self._signal.set()

    async def fetch(self, timeout: float, max_records: int) -> Sequence[Message]:
        """Return up to ``max_records`` messages, waiting up to ``timeout`` seconds."""
        self._check_running()
        check_fetch_args(timeout, max_records)
        self._revoked.clear()
        records = self._take(max_records)
        if records or timeout == 0:
            return records
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._stopped:
            self._signal.clear()
            records = self._take(max_records)
            if records:
                return records
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    await self._signal.wait()
            except TimeoutError:
                break
        return []

    def _take(self, limit: int) -> list[ConsumerRecord]:
        taken: list[ConsumerRecord] = []
        read = self._transport._read
        positions = self._positions
        for tp, position in positions.items():
            records = read(tp, position, limit - len(taken))
            if records:
                positions[tp] = records[-1].offset + 1
                if taken:
                    taken.extend(records)
                else:
                    taken = records
                if len(taken) >= limit:
                    break
        return taken

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit the next offsets to read; all or none (``IllegalGenerationError``)."""
        self._check_running()
        for tp, offset in offsets.items():
            if tp not in self._assigned or tp in self._revoked:
                topic, partition = tp
                raise IllegalGenerationError(
                    f"{topic}[{partition}] is no longer assigned to this receiver of group "
                    f"{self.group!r} (a rebalance moved it); its messages go to its new owner"
                )
            if not isinstance(offset, int) or offset < 0:
                raise ConfigError(f"a committed offset must be an int >= 0, not {offset!r}")
        self._transport._commit(self.group, offsets)

    def _check_running(self) -> None:
        if self._stopped:
            raise TransportError(f"this receiver of group {self.group!r} is stopped")
        if not self._started:
            raise TransportError("call start() on the receiver first")


def _check_partitions(partitions: int) -> None:
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise InvalidPartitionsError(f"partitions must be an integer >= 1, not {partitions!r}")
