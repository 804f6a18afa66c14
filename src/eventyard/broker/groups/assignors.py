"""Partition assignors identical to Kafka's Java ``RangeAssignor`` and ``RoundRobinAssignor``.

The group leader runs an assignor over every member's subscription and the partition counts of
the subscribed topics, then hands the result to SyncGroup. Identical output to the Java client's
assignors matters: a group mixing eventyard consumers and Kafka clients stays deterministic
whoever leads it.

Members are ordered as Java's ``MemberInfo`` orders them: static members (with a
``group_instance_id``) first, sorted by instance id, then dynamic members sorted by member id.
Topics with no known partition count are skipped, as Java skips topics missing from metadata.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from eventyard.broker.groups.protocol import Assignment, Subscription
from eventyard.errors import ConfigError

__all__ = [
    "ASSIGNORS",
    "Assignor",
    "AssignorMember",
    "RangeAssignor",
    "RoundRobinAssignor",
    "get_assignor",
]


@dataclass(frozen=True, slots=True)
class AssignorMember:
    """One member as the leader sees it in the JoinGroup response."""

    member_id: str
    subscription: Subscription
    group_instance_id: str | None = None


class Assignor(Protocol):
    """Turns subscriptions into assignments; ``name`` is the JoinGroup protocol name."""

    @property
    def name(self) -> str: ...

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[AssignorMember]
    ) -> dict[str, Assignment]:
        """Return one assignment per member id (members with nothing get an empty one)."""
        ...


def _ordered(members: Sequence[AssignorMember]) -> list[AssignorMember]:
    """Java's ``MemberInfo`` order: static by instance id first, then dynamic by member id."""
    static = sorted(
        (m for m in members if m.group_instance_id is not None),
        key=lambda m: (m.group_instance_id, m.member_id),
    )
    dynamic = sorted((m for m in members if m.group_instance_id is None), key=lambda m: m.member_id)
    return static + dynamic


def _assignments(
    members: Sequence[AssignorMember], owned: Mapping[str, Mapping[str, list[int]]]
) -> dict[str, Assignment]:
    return {
        m.member_id: Assignment(
            tuple(
                (topic, tuple(partitions))
                for topic, partitions in sorted(owned.get(m.member_id, {}).items())
            )
        )
        for m in members
    }


class RangeAssignor:
    """Per topic, consecutive ranges of partitions; the first members get one extra."""

    name = "range"

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[AssignorMember]
    ) -> dict[str, Assignment]:
        """Split each topic's partitions into ranges over its subscribers in member order."""
        subscribers: dict[str, list[AssignorMember]] = defaultdict(list)
        for member in _ordered(members):
            for topic in dict.fromkeys(member.subscription.topics):
                subscribers[topic].append(member)
        owned: dict[str, dict[str, list[int]]] = defaultdict(dict)
        for topic, consumers in subscribers.items():
            count = partitions_per_topic.get(topic)
            if count is None:
                continue
            per_consumer, extra = divmod(count, len(consumers))
            for i, member in enumerate(consumers):
                start = per_consumer * i + min(i, extra)
                length = per_consumer + (1 if i < extra else 0)
                owned[member.member_id][topic] = list(range(start, start + length))
        return _assignments(members, owned)


class RoundRobinAssignor:
    """All partitions sorted by (topic, partition), dealt to members in a circle.

    A member not subscribed to a partition's topic is skipped for that partition.
    """

    name = "roundrobin"

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[AssignorMember]
    ) -> dict[str, Assignment]:
        """Deal every subscribed topic's partitions round-robin over the ordered members."""
        ordered = _ordered(members)
        topics = {topic for m in ordered for topic in m.subscription.topics}
        everything = sorted(
            (topic, p)
            for topic in topics
            if topic in partitions_per_topic
            for p in range(partitions_per_topic[topic])
        )
        subscribed = {m.member_id: frozenset(m.subscription.topics) for m in ordered}
        owned: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        cursor = 0
        for topic, partition in everything:
            while topic not in subscribed[ordered[cursor].member_id]:
                cursor = (cursor + 1) % len(ordered)
            owned[ordered[cursor].member_id][topic].append(partition)
            cursor = (cursor + 1) % len(ordered)
        return _assignments(members, owned)


ASSIGNORS: Mapping[str, Assignor] = {
    assignor.name: assignor for assignor in (RangeAssignor(), RoundRobinAssignor())
}
"""The built-in assignors by protocol name."""


def get_assignor(name: str) -> Assignor:
    """Return the built-in assignor called ``name`` (``"range"`` or ``"roundrobin"``)."""
    try:
        return ASSIGNORS[name]
    except KeyError:
        raise ConfigError(
            f"unknown assignor {name!r}; choose one of {', '.join(sorted(ASSIGNORS))}"
        ) from None
