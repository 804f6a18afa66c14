"""How far each stage has got: committed offsets, end offsets and lag, per consumer group.

The live view and the "is the pipeline done?" check ask the broker, not the stages: a stage
may run in another process, and what a stage has *committed* is what survives it anyway.
:class:`EmbeddedProgress` reads the in-process broker's group coordinator;
:class:`KafkaProgress` asks any Kafka-protocol broker (``eventyard serve`` here) through
aiokafka's admin client and a consumer's ``end_offsets``.

A stage's position is the sum over its topics' partitions of the committed offsets; its lag
is the sum of end offset minus committed offset (a partition it never committed counts from
0, since every stage reads its topics from the start).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from eventyard.broker import LATEST

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
                for partition in range(broker.partition_count(topic)):
                    end += await broker.list_offset(topic, partition, LATEST) or 0
                    value = offsets.get((topic, partition))
                    committed += value.offset if value is not None else 0
            out.append(GroupProgress(group, committed, end))
        return out

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
        admin, consumer = await self._clients()
        structs = importlib.import_module("aiokafka.structs")
        out = []
        for group, topics in wanted.items():
            committed_map = await admin.list_consumer_group_offsets(group)
            described = await admin.describe_topics(list(topics))
            partitions = [
                structs.TopicPartition(entry["topic"], part["partition"])
                for entry in described
                if entry.get("error_code", 0) == 0
                for part in entry["partitions"]
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            committed = sum(
                max(meta.offset, 0) for tp, meta in committed_map.items() if tp.topic in topics
            )
            out.append(GroupProgress(group, committed, sum(ends.values())))
        return out

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
