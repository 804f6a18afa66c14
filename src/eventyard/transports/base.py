"""The transport interface: what the application layer needs from a log-based broker.

A :class:`Transport` publishes records to partitioned topics and creates :class:`Receiver`
objects, each one member of a consumer group. The application layer (``eventyard.app``) and
``eventyard.testing`` speak only this interface, so an application runs unchanged on the
in-memory transport in its unit tests, on the embedded broker in one process, and on Kafka.

The delivery contract every transport keeps, and its shared test suite
(``tests/transports/contract.py``) checks:

- **Placement.** A message with a key and no explicit partition lands on the partition
  Kafka's Java client would choose (murmur2, ``eventyard.broker.partitioner``); an explicit
  ``partition`` wins. Unkeyed messages may go to any partition.
- **Order.** Within one partition, messages are delivered in offset order, which is publish
  order for one publisher. Nothing is promised across partitions.
- **At-least-once.** :meth:`Transport.publish` returns once every message is acknowledged by
  the transport (durable as far as that transport is durable). A group's position moves only
  when a receiver commits: :meth:`Receiver.commit` takes, per partition, the *next* offset to
  read (the offset of the last processed message plus one, Kafka's convention). Messages
  fetched but not committed are delivered again after a restart or a rebalance, possibly to
  another receiver of the group; consumers must tolerate duplicates.
- **Groups.** Receivers of one group share the partitions of their topics: each partition is
  read by at most one live receiver at a time, and the partitions are reassigned when a
  receiver starts or stops. Different groups read independently, each getting everything.
- **Stale commits.** A commit for a partition the receiver no longer owns, or lost since its
  last :meth:`Receiver.fetch` (a rebalance moved it), raises a
  :class:`~eventyard.errors.GroupError` (``IllegalGenerationError`` or
  ``RebalanceInProgressError``): those messages go to the partition's new owner instead.
- **Where to start.** A group without a committed offset for a partition starts per the
  receiver's ``offset_reset``: ``"earliest"`` (the first message kept) or ``"latest"`` (only
  messages published after the partition was assigned to the group).

Usage errors (fetching from a receiver not started or already stopped, publishing on a closed
transport) raise :class:`~eventyard.errors.TransportError`; bad arguments raise
:class:`~eventyard.errors.ConfigError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import ClassVar, Literal, NamedTuple, Protocol, Self

from eventyard.broker.partitioner import Partitioner
from eventyard.errors import ConfigError, UnknownTopicError

__all__ = ["Headers", "Message", "OffsetReset", "Outgoing", "Receiver", "Transport"]

Headers = tuple[tuple[str, bytes | None], ...]
"""Record headers in order; names may repeat, as in Kafka."""

OffsetReset = Literal["earliest", "latest"]
"""Where a group without a committed offset starts reading a partition."""

OFFSET_RESETS: tuple[OffsetReset, ...] = ("earliest", "latest")


class Message(Protocol):
    """One received record (read-only). ``eventyard.client.ConsumerRecord`` satisfies it.

    ``timestamp`` is milliseconds since the epoch (the producer's create time); ``offset``
    is the record's position in its partition.
    """

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


class Outgoing(NamedTuple):
    """One record to publish.

    ``partition`` overrides placement (``None``: murmur2 of the key, or any partition when
    unkeyed); ``timestamp_ms`` defaults to the time of publishing. The field order is
    ``eventyard.client.ProducerRecord``'s, so the embedded transport passes these tuples to
    the producer as they are.
    """

    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int | None = None
    timestamp_ms: int | None = None


class Receiver(ABC):
    """One member of a consumer group reading some topics (see the module docstring).

    Not safe for concurrent use: one task calls :meth:`fetch` and :meth:`commit`. Use as an
    async context manager, or call :meth:`start` and :meth:`stop`.
    """

    @abstractmethod
    async def start(self) -> None:
        """Join the group. The first assignment may arrive later; :meth:`fetch` waits for it.

        Starting twice is a no-op; starting a stopped receiver raises ``TransportError``.
        """

    @abstractmethod
    async def stop(self) -> None:
        """Leave the group, so its other receivers take over the partitions. Idempotent.

        Uncommitted messages are delivered again to whoever reads the partitions next. A
        :meth:`fetch` waiting meanwhile returns ``[]``.
        """

    @abstractmethod
    async def fetch(self, timeout: float, max_records: int) -> Sequence[Message]:
        """Return up to ``max_records`` messages, waiting up to ``timeout`` seconds for some.

        Messages are grouped by partition (partitions in order), each partition's in offset
        order, continuing after the previous fetch. Returns ``[]`` when none arrived in time.
        Raises ``TransportError`` when the receiver is not started or already stopped.
        """

    @abstractmethod
    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Store, for each ``(topic, partition)``, the next offset the group should read.

        Returns once the commit is durable as far as the transport is. Raises ``GroupError``
        when a partition is no longer this receiver's (see the module docstring).
        """

    @abstractmethod
    def assignment(self) -> frozenset[tuple[str, int]]:
        """The ``(topic, partition)`` pairs this receiver reads now (empty while rebalancing)."""

    def settled(self) -> bool:
        """Whether :meth:`assignment` is current (the group is not rebalancing).

        An empty settled assignment means there is nothing for this receiver to read (its
        group has more members than partitions), not that the assignment is on its way. This
        default, for transports that cannot tell, counts only a non-empty assignment.
        """
        return bool(self.assignment())

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class Transport(ABC):
    """Publishes to topics and creates receivers (see the module docstring).

    Use as an async context manager, or call :meth:`start` and :meth:`close`.
    """

    name: ClassVar[str]
    """A short name for logs and configuration: ``"memory"``, ``"embedded"``, ``"kafka"``."""

    @abstractmethod
    async def start(self) -> None:
        """Connect (or open the broker). Starting twice is a no-op."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every receiver this transport created and release its resources. Idempotent."""

    @abstractmethod
    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` with ``partitions`` (default: the transport's) unless it exists.

        An existing topic is left as it is, whatever its partition count.
        """

    @abstractmethod
    async def publish(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Publish ``messages`` to ``topic`` and return once every one is acknowledged.

        Messages of one partition keep their order. Raises ``TransportError`` on a closed
        transport, ``UnknownTopicError`` for a partition the topic does not have.
        """

    @abstractmethod
    def receiver(
        self, topics: Sequence[str], group: str, *, offset_reset: OffsetReset = "earliest"
    ) -> Receiver:
        """Return a new, not yet started, member of ``group`` reading ``topics``."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def check_receiver_args(topics: Sequence[str], group: str, offset_reset: str) -> tuple[str, ...]:
    """Validate :meth:`Transport.receiver`'s arguments; return the topics, deduplicated."""
    if isinstance(topics, str):
        raise ConfigError(f"topics must be a sequence of names, not the string {topics!r}")
    names = tuple(dict.fromkeys(topics))
    if not names:
        raise ConfigError("a receiver needs at least one topic")
    if not group:
        raise ConfigError("a receiver needs a non-empty group name")
    if offset_reset not in OFFSET_RESETS:
        raise ConfigError(f"offset_reset must be 'earliest' or 'latest', not {offset_reset!r}")
    return names


def check_fetch_args(timeout: float, max_records: int) -> None:
    """Validate :meth:`Receiver.fetch`'s arguments."""
    if timeout < 0:
        raise ConfigError(f"fetch timeout must be >= 0 seconds, not {timeout}")
    if max_records < 1:
        raise ConfigError(f"max_records must be at least 1, not {max_records}")


def check_outgoing(key: object, value: object, headers: Sequence[tuple[object, object]]) -> None:
    """Refuse what no Kafka producer accepts: keys, values and header values not ``bytes``."""
    for what, field in (("key", key), ("value", value)):
        if field is not None and not isinstance(field, bytes):
            raise TypeError(f"a message {what} must be bytes or None, not {type(field).__name__}")
    for header in headers:
        name, data = header
        if not isinstance(name, str) or (data is not None and not isinstance(data, bytes)):
            raise TypeError(f"a header must be (str, bytes | None), not {header!r}")


def place(
    partitioner: Partitioner, topic: str, messages: Sequence[Outgoing], count: int
) -> tuple[list[tuple[int, Outgoing]], int | None]:
    """Check ``messages`` and choose each one's partition of ``topic`` (``count`` of them).

    Keyed messages go where Kafka's Java client would put them (murmur2), unkeyed ones to the
    sticky partition, explicit ones where they say; a partition the topic lacks raises
    ``UnknownTopicError`` before anything is placed for good. Returns the placements and the
    sticky partition used (``None`` if none), which the caller reports to
    ``partitioner.batch_completed`` once the messages are written.
    """
    choose = partitioner.partition
    sticky: int | None = None
    placed: list[tuple[int, Outgoing]] = []
    for message in messages:
        key, value, headers, partition, _ = message
        check_outgoing(key, value, headers)
        if partition is None:
            partition = choose(topic, key, count)
            if key is None:
                sticky = partition
        elif not 0 <= partition < count:
            raise UnknownTopicError(
                f"topic {topic!r} has no partition {partition} (it has {count})"
            )
        placed.append((partition, message))
    return placed, sticky
