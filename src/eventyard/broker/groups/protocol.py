"""Kafka's consumer-protocol encodings: the opaque bytes inside JoinGroup and SyncGroup.

A consumer group's members agree on a *protocol type* (``"consumer"``) and send the
coordinator opaque metadata; the coordinator never looks inside. Consumers encode it as Kafka's
Java client does, so eventyard's consumers and any Kafka client can share one group::

    ConsumerProtocolSubscription
        version          int16   0..3 (we write 0 or 1)
        topics           [string]
        user_data        nullable bytes
        owned_partitions [(topic string, [partition int32])]     v1+
        generation_id    int32                                   v2+ (read and ignored)
        rack_id          nullable string                         v3+ (read and ignored)

    ConsumerProtocolAssignment
        version              int16  0..3 (we write 0 or 1)
        assigned_partitions  [(topic string, [partition int32])]
        user_data            nullable bytes

Arrays carry an int32 count, strings an int16 length, bytes an int32 length (-1 is null). Kafka
requires a newer version to extend an older one by appending fields, so a reader decodes the
fields it knows and ignores the rest. Sans-io: plain functions from values to bytes and back;
malformed input raises :class:`~eventyard.errors.InvalidRequestError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from eventyard.errors import InvalidRequestError

__all__ = [
    "CONSUMER_PROTOCOL_TYPE",
    "Assignment",
    "Subscription",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
]

CONSUMER_PROTOCOL_TYPE = "consumer"
"""The JoinGroup ``protocol_type`` every Kafka consumer uses."""

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")

TopicPartitions = tuple[tuple[str, tuple[int, ...]], ...]
"""``((topic, (partition, ...)), ...)`` in wire order."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a member asks for: its topics, plus the partitions it owns (v1, cooperative)."""

    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: TopicPartitions = ()
    version: int = 0


@dataclass(frozen=True, slots=True)
class Assignment:
    """What the leader gives a member: partitions per topic."""

    partitions: TopicPartitions = field(default=())
    user_data: bytes | None = None
    version: int = 0


def encode_subscription(subscription: Subscription) -> bytes:
    """Encode ``subscription`` (version 0 or 1; owned partitions need version 1)."""
    version = subscription.version
    if version not in (0, 1):
        raise ValueError(f"can only write subscription versions 0 and 1, not {version}")
    parts = [_INT16.pack(version), _INT32.pack(len(subscription.topics))]
    parts.extend(_string(topic) for topic in subscription.topics)
    parts.append(_bytes(subscription.user_data))
    if version >= 1:
        parts.append(_topic_partitions(subscription.owned_partitions))
    return b"".join(parts)


def decode_subscription(data: bytes) -> Subscription:
    """Decode a subscription of any version, keeping the v0/v1 fields."""
    reader = _Reader(data, "subscription")
    version = reader.int16()
    if version < 0:
        raise InvalidRequestError(f"subscription has negative version {version}")
    topics = tuple(reader.string() for _ in range(reader.count()))
    user_data = reader.nullable_bytes()
    owned: TopicPartitions = reader.topic_partitions() if version >= 1 else ()
    return Subscription(topics, user_data, owned, version)


def encode_assignment(assignment: Assignment) -> bytes:
    """Encode ``assignment`` (version 0 or 1 share one layout)."""
    version = assignment.version
    if version not in (0, 1):
        raise ValueError(f"can only write assignment versions 0 and 1, not {version}")
    return b"".join(
        (
            _INT16.pack(version),
            _topic_partitions(assignment.partitions),
            _bytes(assignment.user_data),
        )
    )


def decode_assignment(data: bytes) -> Assignment:
    """Decode an assignment of any version; empty bytes (no assignment) decode as empty."""
    if not data:
        return Assignment()
    reader = _Reader(data, "assignment")
    version = reader.int16()
    if version < 0:
        raise InvalidRequestError(f"assignment has negative version {version}")
    partitions = reader.topic_partitions()
    return Assignment(partitions, reader.nullable_bytes(), version)


def _string(value: str) -> bytes:
    raw = value.encode()
    return _INT16.pack(len(raw)) + raw


def _bytes(value: bytes | None) -> bytes:
    if value is None:
        return _INT32.pack(-1)
    return _INT32.pack(len(value)) + value


def _topic_partitions(value: TopicPartitions) -> bytes:
    parts = [_INT32.pack(len(value))]
    for topic, partitions in value:
        parts.append(_string(topic))
        parts.append(struct.pack(f">i{len(partitions)}i", len(partitions), *partitions))
    return b"".join(parts)


class _Reader:
    """A bounds-checked cursor over one encoded value."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def _take(self, size: int) -> int:
        start = self._pos
        if size < 0 or start + size > len(self._data):
            raise InvalidRequestError(
                f"{self._what} truncated: needs {size} bytes at {start}, has {len(self._data)}"
            )
        self._pos = start + size
        return start

    def int16(self) -> int:
        value: int = _INT16.unpack_from(self._data, self._take(2))[0]
        return value

    def int32(self) -> int:
        value: int = _INT32.unpack_from(self._data, self._take(4))[0]
        return value

    def count(self) -> int:
        count = self.int32()
        if count < 0:
            raise InvalidRequestError(f"{self._what} has negative array length {count}")
        return count

    def string(self) -> str:
        size = self.int16()
        if size < 0:
            raise InvalidRequestError(f"{self._what} has a null string where one is required")
        start = self._take(size)
        try:
            return self._data[start : start + size].decode()
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(f"{self._what} has a string that is not UTF-8") from exc

    def nullable_bytes(self) -> bytes | None:
        size = self.int32()
        if size == -1:
            return None
        start = self._take(size)
        return bytes(self._data[start : start + size])

    def topic_partitions(self) -> TopicPartitions:
        result = []
        for _ in range(self.count()):
            topic = self.string()
            count = self.count()
            start = self._take(4 * count)
            result.append((topic, struct.unpack_from(f">{count}i", self._data, start)))
        return tuple(result)
