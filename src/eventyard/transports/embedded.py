"""The embedded transport: the in-process, durable :class:`~eventyard.broker.Broker`.

Publishing goes through one idempotent :class:`~eventyard.client.Producer`'s ``send_batch``
(one record batch per partition, durability awaited per the topic's policy); each receiver is
a :class:`~eventyard.client.Consumer` in its group (Kafka's group protocol on the broker's
coordinator, round-robin assignment, no auto-commit). Given a path instead of a broker, the
transport opens the broker on :meth:`~EmbeddedTransport.start` and closes it on
:meth:`~EmbeddedTransport.close`; a broker passed in stays the caller's.

This is a hot path, so neither direction copies records: :class:`~eventyard.transports.Outgoing`
has ``ProducerRecord``'s field order and is handed to the producer as it is, and the
consumer's ``ConsumerRecord`` values (which satisfy :class:`~eventyard.transports.Message`)
are returned as they are, the per-partition lists of ``getmany`` joined in partition order
(a single partition's list is returned unchanged).

Stale commits: the coordinator refuses a commit from a stale generation (mid-rebalance), but,
as in Kafka, it does not know which member owns what. The receiver therefore refuses, with
``IllegalGenerationError``, a commit for a partition that is not in its assignment now or
was not at the end of its last fetch (a rebalance moved it in between).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.broker.groups import GroupConfig
from eventyard.client import Consumer, ConsumerRecord, Producer, ProducerRecord, TopicPartition
from eventyard.errors import (
    ConfigError,
    IllegalGenerationError,
    TopicExistsError,
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
)

__all__ = ["OWN_BROKER", "EmbeddedReceiver", "EmbeddedTransport"]

OWN_BROKER = BrokerConfig(groups=GroupConfig(initial_rebalance_delay_ms=0))
"""The broker a transport given a path opens: the data directory's lock keeps every other
process out, so a group's first join has no one else to wait for, and Kafka's initial
rebalance delay (which lets the members of a starting fleet arrive together) would only
hold every subscription of the app back at start."""


class EmbeddedTransport(Transport):
    """The transport over an in-process broker (see the module docstring).

    ``broker`` is an open :class:`Broker`, or a data directory opened (with ``config``) on
    :meth:`start` and closed on :meth:`close`. ``partitions`` is the partition count of
    topics this transport creates (default: the broker's ``default_partitions``).
    ``session_timeout_ms`` and ``heartbeat_interval_ms`` are the receivers' Kafka settings
    of those names; the heartbeat interval bounds how long a receiver takes to notice a
    rebalance, and in-process heartbeats are cheap, so it is short by default.
    """

    name = "embedded"

    def __init__(
        self,
        broker: Broker | str | os.PathLike[str],
        *,
        config: BrokerConfig | None = None,
        partitions: int | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 500,
    ) -> None:
        if isinstance(broker, Broker):
            if config is not None:
                raise ConfigError("config applies to a data directory, not to an open Broker")
            self._broker: Broker | None = broker
            self._data_dir: Path | None = None
        else:
            self._broker = None
            self._data_dir = Path(broker)
        if partitions is not None:
            TopicConfig(partitions=partitions)  # validates the count
        self._config = config
        self._partitions = partitions
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._producer: Producer | None = None
        self._known: set[str] = set()
        self._receivers: set[EmbeddedReceiver] = set()
        self._closed = False

    @property
    def broker(self) -> Broker:
        """The broker (opened by :meth:`start` when the transport was given a path)."""
        if self._broker is None:
            raise TransportError("call start() on the embedded transport first")
        return self._broker

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the broker (when given a path) and the producer. Starting twice is a no-op."""
        if self._closed:
            raise TransportError("the embedded transport is closed; create a new one")
        if self._producer is not None:
            return
        if self._broker is None:
            assert self._data_dir is not None
            self._broker = await Broker.open(self._data_dir, self._config or OWN_BROKER)
        self._producer = Producer(self._broker)

    async def close(self) -> None:
        """Stop the receivers, close the producer and, if this transport opened it, the broker."""
        if self._closed:
            return
        self._closed = True
        try:
            for receiver in list(self._receivers):
                await receiver.stop()
            if self._producer is not None:
                await self._producer.close()
        finally:
            if self._data_dir is not None and self._broker is not None:
                await self._broker.close()

    def _running_producer(self) -> Producer:
        if self._closed:
            raise TransportError("the embedded transport is closed")
        if self._producer is None:
            raise TransportError("call start() on the embedded transport first")
        return self._producer

    # -- topics and publishing ---------------------------------------------------------------

    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` unless it exists (an existing topic keeps its partition count)."""
        self._running_producer()
        broker = self.broker
        count = partitions if partitions is not None else self._partitions
        config = None if count is None else TopicConfig(partitions=count)
        with contextlib.suppress(TopicExistsError):
            await broker.create_topic(topic, config)
        self._known.add(topic)

    async def _known_topic(self, topic: str) -> None:
        """Create a missing topic with this transport's partition count, when the broker
        allows auto-creation (else the producer or consumer raises ``UnknownTopicError``)."""
        broker = self.broker
        try:
            broker.partition_count(topic)
        except UnknownTopicError:
            if not broker.config.auto_create_topics:
                raise
            await self.ensure_topic(topic)
        self._known.add(topic)

    async def publish(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Send ``messages`` in one ``send_batch`` and wait for their acknowledgement.

        Always yields to the event loop once before returning, even when the broker's
        durability policy acknowledges at once: consumers in this process then see each
        publish as it happens, as they would over a network, instead of only after a
        publisher's whole burst (which made the first event of the burst wait for the rest).
        """
        producer = self._running_producer()
        if topic not in self._known:
            await self._known_topic(topic)
        if messages:
            await producer.send_batch(topic, cast(Sequence[ProducerRecord], messages))
        await asyncio.sleep(0)

    # -- receivers ---------------------------------------------------------------------------

    def receiver(
        self, topics: Sequence[str], group: str, *, offset_reset: OffsetReset = "earliest"
    ) -> EmbeddedReceiver:
        """Return a new member of ``group`` reading ``topics``; :meth:`~Receiver.start` it."""
        if self._closed:
            raise TransportError("the embedded transport is closed")
        names = check_receiver_args(topics, group, offset_reset)
        return EmbeddedReceiver(self, names, group, offset_reset)

    async def _consumer(
        self, receiver: EmbeddedReceiver, topics: tuple[str, ...], group: str, reset: str
    ) -> Consumer:
        self._running_producer()
        for topic in topics:
            if topic not in self._known:
                await self._known_topic(topic)
        consumer = Consumer(
            self.broker,
            *topics,
            group_id=group,
            auto_offset_reset=reset,
            assignor="roundrobin",
            enable_auto_commit=False,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
        )
        await consumer.start()
        self._receivers.add(receiver)
        return consumer

    def _forget(self, receiver: EmbeddedReceiver) -> None:
        self._receivers.discard(receiver)


class EmbeddedReceiver(Receiver):
    """One group member on an :class:`EmbeddedTransport`; create it with ``receiver()``."""

    def __init__(
        self,
        transport: EmbeddedTransport,
        topics: tuple[str, ...],
        group: str,
        offset_reset: OffsetReset,
    ) -> None:
        self.topics = topics
        self.group = group
        self.offset_reset: OffsetReset = offset_reset
        self._transport = transport
        self._consumer: Consumer | None = None
        self._held: frozenset[TopicPartition] = frozenset()
        self._stopped = False

    async def start(self) -> None:
        """Join the group (the first assignment arrives in the background)."""
        if self._stopped:
            raise TransportError("this receiver was stopped; create a new one")
        if self._consumer is None:
            self._consumer = await self._transport._consumer(
                self, self.topics, self.group, self.offset_reset
            )

    async def stop(self) -> None:
        """Leave the group, so that its other members rebalance at once."""
        if self._stopped:
            return
        self._stopped = True
        self._transport._forget(self)
        if self._consumer is not None:
            await self._consumer.stop()

    def settled(self) -> bool:
        """Started, not stopped, and the consumer's group is not rebalancing."""
        consumer = self._consumer
        return consumer is not None and not self._stopped and consumer.assignment_settled

    def assignment(self) -> frozenset[tuple[str, int]]:
        """The partitions this receiver reads now (empty while its group rebalances)."""
        if self._consumer is None or self._stopped:
            return frozenset()
        return frozenset(self._consumer.assignment())

    async def fetch(self, timeout: float, max_records: int) -> Sequence[Message]:
        """``getmany`` with ``timeout`` and ``max_records``, flattened in partition order."""
        consumer = self._running()
        check_fetch_args(timeout, max_records)
        try:
            batches = await consumer.getmany(
                timeout_ms=math.ceil(timeout * 1000), max_records=max_records
            )
        except RuntimeError:
            # The consumer's private "stopped" error: stop() ran during this fetch.
            if self._stopped:
                return []
            raise
        self._held = frozenset(consumer.assignment())
        if not batches:
            return []
        if len(batches) == 1:
            for records in batches.values():
                return records
        joined: list[ConsumerRecord] = []
        for tp in sorted(batches):
            joined.extend(batches[tp])
        return joined

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit the next offsets to read, durably; ``GroupError`` if a partition moved."""
        consumer = self._running()
        if not offsets:
            return
        current = consumer.assignment()
        held = self._held
        values: dict[TopicPartition, int] = {}
        for (topic, partition), offset in offsets.items():
            tp = TopicPartition(topic, partition)
            if tp not in current or tp not in held:
                raise IllegalGenerationError(
                    f"{topic}[{partition}] is no longer assigned to this receiver of group "
                    f"{self.group!r} (a rebalance moved it); its messages go to its new owner"
                )
            values[tp] = offset
        await consumer.commit(values)

    def _running(self) -> Consumer:
        if self._stopped:
            raise TransportError(f"this receiver of group {self.group!r} is stopped")
        if self._consumer is None:
            raise TransportError("call start() on the receiver first")
        return self._consumer
