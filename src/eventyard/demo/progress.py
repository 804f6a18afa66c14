"""How far each stage has got: committed offsets, end offsets and lag, per consumer group.

The live view and the "is the pipeline done?" check ask the broker, not the stages: a stage
may run in another process, and what a stage has *committed* is what survives it anyway.
:class:`EmbeddedProgress` reads the in-process broker's group coordinator;
:class:`KafkaProgress` asks any Kafka-protocol broker (``eventyard serve`` here) through
aiokafka's admin client and a consumer's ``end_offsets``.

Both also say whether stages are *ready*: each group stable with a member, so what is
published from then on is read at once rather than after the workers have started.

A stage's position is the sum over its topics' partitions of the committed offsets; its lag
is the sum of end offset minus committed offset (a partition it never committed counts from
0, since every stage reads its topics from the start). A topic that does not exist yet (a
delay tier's, before its stage started) has nothing to read.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from eventyard.broker import LATEST
from eventyard.broker.groups import GroupState
from eventyard.errors import UnknownTopicError

if TYPE_CHECKING:
    from eventyard.broker import Broker

__all__ = ["EmbeddedProgress", "GroupProgress", "KafkaProgress", "Progress"]


@dataclass(frozen=True, slots=True)
class GroupProgress:
    """One stage's committed position and lag over the topics it reads."""

    group: str
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - self.committed, 0)


class Progress(Protocol):
    async def groups(self, wanted: Mapping[str, Sequence[str]]) -> list[GroupProgress]:
        """Progress of each group in ``wanted`` (group -> the topics it reads)."""
        ...

    async def ready(self, groups: Iterable[str]) -> bool:
        """Whether every group is stable with at least one member (its stage is reading)."""
        ...

    async def close(self) -> None: ...


class EmbeddedProgress:
    """Progress read from an in-process :class:`~eventyard.broker.Broker`."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def groups(self, wanted: Mapping[str, Sequence[str]]) -> list[GroupProgress]:
        broker = self._broker
        out = []
        for group, topics in wanted.items():
            committed = end = 0
            offsets = await broker.groups.fetch_offsets(group)
            for topic in topics:
                try:
                    partitions = broker.partition_count(topic)
                except UnknownTopicError:  # not created yet: nothing to read there
                    partitions = 0
                for partition in range(partitions):
                    end += await broker.list_offset(topic, partition, LATEST) or 0
                    value = offsets.get((topic, partition))
                    committed += value.offset if value is not None else 0
            out.append(GroupProgress(group, committed, end))
        return out

    async def ready(self, groups: Iterable[str]) -> bool:
        for group in groups:
            described = await self._broker.groups.describe_group(group)
            if described.state is not GroupState.STABLE or not described.members:
                return False
        return True

    async def close(self) -> None:
        return None


class KafkaProgress:
    """Progress asked of a Kafka-protocol broker at ``bootstrap`` (needs aiokafka)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._admin: Any = None
        self._consumer: Any = None

    async def _clients(self) -> tuple[Any, Any]:
        if self._admin is None:
            aiokafka = importlib.import_module("aiokafka")
            admin_module = importlib.import_module("aiokafka.admin")
            self._admin = admin_module.AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await self._admin.start()
            self._consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=self._bootstrap)
            await self._consumer.start()
        return self._admin, self._consumer

    async def groups(self, wanted: Mapping[str, Sequence[str]]) -> list[GroupProgress]:
        """One Metadata and one ListOffsets request for all the topics, then one OffsetFetch
        per group: a caught-up check polls this several times a second."""
        admin, consumer = await self._clients()
        structs = importlib.import_module("aiokafka.structs")
        topics = sorted({topic for group_topics in wanted.values() for topic in group_topics})
        described = await admin.describe_topics(topics)
        partitions = [
            structs.TopicPartition(entry["topic"], part["partition"])
            for entry in described
            if entry.get("error_code", 0) == 0
            for part in entry["partitions"]
        ]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        out = []
        for group, group_topics in wanted.items():
            committed_map = await admin.list_consumer_group_offsets(group)
            committed = sum(
                max(meta.offset, 0)
                for tp, meta in committed_map.items()
                if tp.topic in group_topics
            )
            end = sum(offset for tp, offset in ends.items() if tp.topic in group_topics)
            out.append(GroupProgress(group, committed, end))
        return out

    async def ready(self, groups: Iterable[str]) -> bool:
        """One DescribeGroups per group: aiokafka decodes a v3 answer with the v2 layout,
        which misreads every group after the first (v3 adds a field per group)."""
        admin, _ = await self._clients()
        for name in groups:
            (response,) = await admin.describe_consumer_groups([name])
            (group,) = response.to_object()["groups"]
            if group["state"] != "Stable" or not group["members"]:
                return False
        return True

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
