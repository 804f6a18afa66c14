"""The Kafka transport: the transport contract on any Kafka-protocol cluster, through aiokafka.

It runs an application unchanged on Apache Kafka, Redpanda or ``eventyard serve``. aiokafka is
an optional extra (``pip install 'eventyard[kafka]'``): this module imports it only when a
:class:`KafkaTransport` is constructed, and says what to install when it is missing.

- **Publishing.** One idempotent ``AIOKafkaProducer`` (``acks="all"`` by default). A
  :meth:`~KafkaTransport.publish` places its messages itself, as the other transports do
  (murmur2 of the key, Kafka's Java placement; unkeyed messages of one call together on one
  sticky partition), builds one record batch per partition (more when a batch fills), submits
  every batch before awaiting any, then awaits every acknowledgement in turn and raises the
  first failure. Batches of one partition are sent in order, so publish order is kept per
  partition. Explicit partitions are checked against the topic's metadata before anything is
  sent.
- **Batch size.** A batch holds up to ``max_batch_size`` bytes, by default 1,000,000
  (librdkafka's ``batch.size``), so a publish that fits is one produce request, and one fetch
  for each consumer downstream. aiokafka's own default, 16 KiB, split a publish of 600 KB
  into 38 batches, and aiokafka keeps one produce request in flight per broker, so they went
  out one round trip after another, and a stage that forwarded a batch of events made its
  consumers fetch and cycle as many times.
  Set it no larger than the cluster's ``max.message.bytes`` (Kafka's default: 1,048,588).
- **Receiving.** Each :class:`KafkaReceiver` is one ``AIOKafkaConsumer`` in its group
  (round-robin assignor, no auto-commit). A rebalance listener tracks the assignment: it is
  empty from the moment a rebalance revokes the partitions until the new ones are assigned,
  and :meth:`~KafkaReceiver.settled` turns true only once the consumer also knows where it
  starts reading every assigned partition (its committed offset, else the ``offset_reset``
  end), so an empty fetch after that really means "nothing to read".
- **Waiting.** :meth:`~KafkaReceiver.fetch` never waits past its timeout (plus a short
  grace), not even while aiokafka holds ``getmany`` until a rebalance completes, and a
  :meth:`~KafkaReceiver.stop` ends a waiting fetch with ``[]``.
- **Stale commits.** Kafka's coordinator refuses a commit of a stale generation; as on the
  embedded transport, the receiver also refuses a commit for a partition it does not hold now
  or lost since its last fetch began. Both raise ``IllegalGenerationError`` (a rebalance still
  running: ``RebalanceInProgressError``).
- **Topics.** :meth:`~KafkaTransport.ensure_topic` creates topics through the admin API
  (``TOPIC_ALREADY_EXISTS`` counts as done). Without a partition count, topics get the
  cluster's default (``num_partitions`` -1, which Kafka 2.4+ and ``eventyard serve`` accept).

What it cannot do: it depends on the cluster's settings (auto-creation, retention,
``min.insync.replicas``), a first assignment and every rebalance take as long as the group
protocol needs (``session_timeout_ms``, the broker's initial rebalance delay), and a receiver
notices another member joining only at its next heartbeat (``heartbeat_interval_ms``).
"""

from __future__ import annotations

import asyncio
import importlib
import math
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

from eventyard.broker.partitioner import DefaultPartitioner
from eventyard.broker.topics import validate_topic_name
from eventyard.client import ConsumerRecord
from eventyard.errors import (
    ConfigError,
    CoordinatorNotAvailableError,
    CorruptRecordError,
    EventyardError,
    GroupError,
    IllegalGenerationError,
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidRequestError,
    InvalidTopicError,
    MessageTooLargeError,
    MissingDependencyError,
    RebalanceInProgressError,
    TransportError,
    UnknownMemberIdError,
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

__all__ = ["INSTALL_HINT", "MAX_BATCH_SIZE", "KafkaReceiver", "KafkaTransport"]

INSTALL_HINT = "the Kafka transport needs aiokafka: pip install 'eventyard[kafka]'"

COMPRESSIONS = (None, "gzip", "snappy", "lz4", "zstd")

MAX_BATCH_SIZE = 1_000_000
"""The default upper bound of a record batch in bytes (librdkafka's ``batch.size``)."""

_TOPIC_EXISTS = 36

_REBALANCE_GRACE = 0.05
"""Seconds a fetch may outlast its timeout while ``getmany`` finishes its own wait."""

_BY_CODE: dict[int, type[EventyardError]] = {
    cls.code: cls
    for cls in (
        CorruptRecordError,
        UnknownTopicError,
        MessageTooLargeError,
        InvalidTopicError,
        InvalidPartitionsError,
        InvalidConfigError,
        InvalidRequestError,
        CoordinatorNotAvailableError,
        IllegalGenerationError,
        UnknownMemberIdError,
        RebalanceInProgressError,
    )
}
"""Kafka error codes with an eventyard error of the same meaning; others are TransportError."""


def _aiokafka() -> ModuleType:
    """aiokafka, or ``MissingDependencyError`` with the install hint."""
    try:
        aiokafka = importlib.import_module("aiokafka")
        for submodule in ("admin", "coordinator.assignors.roundrobin", "errors"):
            importlib.import_module(f"aiokafka.{submodule}")
    except ImportError as exc:
        raise MissingDependencyError(INSTALL_HINT) from exc
    aiokafka.ConsumerRebalanceListener.register(_RebalanceWatch)
    return aiokafka


def _translate(exc: BaseException, doing: str) -> EventyardError:
    """An aiokafka error as the eventyard error of the same Kafka code (``TransportError``
    when there is none: connection failures, timeouts, codes eventyard has no class for)."""
    code = getattr(exc, "errno", None)
    cls = _BY_CODE.get(code, TransportError) if isinstance(code, int) else TransportError
    detail = str(exc) or type(exc).__name__
    return cls(f"{doing}: {detail}")


class KafkaTransport(Transport):
    """The transport over a Kafka-protocol cluster (see the module docstring).

    ``bootstrap_servers`` is ``"host:port[,host:port...]"``. ``partitions`` and
    ``replication_factor`` apply to topics :meth:`ensure_topic` creates (``partitions=None``:
    the cluster's default). ``acks``, ``enable_idempotence`` and ``compression`` (``None``,
    ``"gzip"``, ``"snappy"``, ``"lz4"``, ``"zstd"``) and ``max_batch_size`` (bytes a record
    batch may hold; a bigger message gets a batch of its own) configure the producer;
    ``session_timeout_ms`` and ``heartbeat_interval_ms`` the receivers (the heartbeat interval
    bounds how long a receiver takes to notice a rebalance); ``request_timeout_ms`` every
    request, and how long a publish waits for an unknown topic to appear.

    Raises ``MissingDependencyError`` when aiokafka is not installed and ``ConfigError`` for
    bad settings; nothing connects before :meth:`start`.
    """

    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "eventyard",
        partitions: int | None = None,
        replication_factor: int = 1,
        acks: int | str = "all",
        enable_idempotence: bool = True,
        compression: str | None = None,
        max_batch_size: int = MAX_BATCH_SIZE,
        request_timeout_ms: int = 30_000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1_000,
    ) -> None:
        self._kafka = _aiokafka()
        if not isinstance(bootstrap_servers, str) or not bootstrap_servers.strip():
            raise ConfigError("bootstrap_servers must be 'host:port[,host:port...]'")
        if partitions is not None:
            _check_count("partitions", partitions, InvalidPartitionsError)
        _check_count("replication_factor", replication_factor, ConfigError)
        if acks not in (0, 1, -1, "all"):
            raise ConfigError(f"acks must be 0, 1, -1 or 'all', not {acks!r}")
        if enable_idempotence and acks not in (-1, "all"):
            raise ConfigError("an idempotent producer needs acks='all'")
        if compression not in COMPRESSIONS:
            raise ConfigError(
                f"compression must be one of {', '.join(map(str, COMPRESSIONS))}, "
                f"not {compression!r}"
            )
        for what, value in (
            ("max_batch_size", max_batch_size),
            ("request_timeout_ms", request_timeout_ms),
            ("session_timeout_ms", session_timeout_ms),
            ("heartbeat_interval_ms", heartbeat_interval_ms),
        ):
            _check_count(what, value, ConfigError)
        if heartbeat_interval_ms >= session_timeout_ms:
            raise ConfigError("heartbeat_interval_ms must be less than session_timeout_ms")
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._acks = acks
        self._idempotent = enable_idempotence
        self._compression = compression
        self._max_batch_size = max_batch_size
        self._request_timeout_ms = request_timeout_ms
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._producer: Any = None
        self._admin: Any = None
        self._partitioner = DefaultPartitioner()
        self._receivers: set[KafkaReceiver] = set()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the producer and the admin client. Starting twice is a no-op."""
        if self._closed:
            raise TransportError("the Kafka transport is closed; create a new one")
        if self._producer is not None:
            return
        kafka = self._kafka
        producer = kafka.AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks=self._acks,
            enable_idempotence=self._idempotent,
            compression_type=self._compression,
            max_batch_size=self._max_batch_size,
            request_timeout_ms=self._request_timeout_ms,
        )
        admin = kafka.admin.AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            request_timeout_ms=self._request_timeout_ms,
        )
        try:
            await producer.start()
            await admin.start()
        except kafka.errors.KafkaError as exc:
            await producer.stop()
            await admin.close()
            raise _translate(exc, f"cannot reach Kafka at {self.bootstrap_servers}") from exc
        self._producer, self._admin = producer, admin

    async def close(self) -> None:
        """Stop every receiver, flush and close the producer, close the admin client."""
        if self._closed:
            return
        self._closed = True
        try:
            for receiver in list(self._receivers):
                await receiver.stop()
        finally:
            if self._producer is not None:
                await self._producer.stop()
            if self._admin is not None:
                await self._admin.close()

    def _running_producer(self) -> Any:
        if self._closed:
            raise TransportError("the Kafka transport is closed")
        if self._producer is None:
            raise TransportError("call start() on the Kafka transport first")
        return self._producer

    # -- topics and publishing ---------------------------------------------------------------

    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` unless it exists (an existing topic keeps its partition count)."""
        self._running_producer()
        validate_topic_name(topic)
        count = partitions if partitions is not None else self._partitions
        if count is not None:
            _check_count("partitions", count, InvalidPartitionsError)
        new_topic = self._kafka.admin.NewTopic(topic, count or 1, self._replication_factor)
        if count is None:
            # The protocol's "broker default" (KIP-464); NewTopic's own check predates it.
            new_topic.num_partitions = -1
        try:
            response = await self._admin.create_topics([new_topic])
        except self._kafka.errors.KafkaError as exc:
            raise _translate(exc, f"creating topic {topic!r}") from exc
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            message = entry[2] if len(entry) > 2 and entry[2] else f"error code {code}"
            if code in (0, _TOPIC_EXISTS):
                continue
            cls = _BY_CODE.get(code, TransportError)
            raise cls(f"creating topic {name!r}: {message}")

    async def publish(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Send ``messages`` as one batch per partition and wait for every acknowledgement.

        Nothing is sent when a message names a partition the topic lacks
        (``UnknownTopicError``) or has a key, value or header value that is not bytes
        (``TypeError``).
        """
        producer = self._running_producer()
        if not messages:
            return
        errors = self._kafka.errors
        try:
            known = await producer.partitions_for(topic)
        except errors.KafkaError as exc:
            raise UnknownTopicError(
                f"topic {topic!r} is not on the cluster at {self.bootstrap_servers} ({exc!r})"
            ) from exc
        count = len(known)
        placed, sticky = place(self._partitioner, topic, messages, count)
        by_partition: dict[int, list[Outgoing]] = {}
        for partition, message in placed:
            by_partition.setdefault(partition, []).append(message)
        try:
            acks = [
                ack
                for partition, batch in by_partition.items()
                for ack in await self._send(producer, topic, partition, batch)
            ]
        except errors.KafkaError as exc:
            raise _translate(exc, f"publishing to {topic!r}") from exc
        if sticky is not None:
            self._partitioner.batch_completed(topic, sticky, count)
        failure: BaseException | None = None
        for ack in acks:  # awaited in turn, not gathered: one wake-up fewer per publish
            try:
                await ack
            except Exception as exc:  # every ack is awaited, so none is left unretrieved
                failure = failure or exc
        if failure is not None:
            if isinstance(failure, errors.KafkaError):
                raise _translate(failure, f"publishing to {topic!r}") from failure
            raise failure

    async def _send(
        self, producer: Any, topic: str, partition: int, messages: list[Outgoing]
    ) -> list[asyncio.Future[Any]]:
        """Submit ``messages`` for one partition as closed record batches; their futures."""
        acks: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for key, value, headers, _, timestamp in messages:
            fields = {"timestamp": timestamp, "key": key, "value": value, "headers": list(headers)}
            if batch.append(**fields) is None:
                if batch.record_count() == 0:
                    raise MessageTooLargeError(
                        f"a message of {len(key or b'') + len(value or b'')} bytes does not fit "
                        f"in a record batch for {topic}[{partition}]"
                    )
                batch.close()
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(**fields) is None:
                    raise MessageTooLargeError(
                        f"a message of {len(key or b'') + len(value or b'')} bytes does not fit "
                        f"in a record batch for {topic}[{partition}]"
                    )
        batch.close()
        acks.append(await producer.send_batch(batch, topic, partition=partition))
        return acks

    # -- receivers ---------------------------------------------------------------------------

    def receiver(
        self, topics: Sequence[str], group: str, *, offset_reset: OffsetReset = "earliest"
    ) -> KafkaReceiver:
        """Return a new member of ``group`` reading ``topics``; :meth:`~Receiver.start` it."""
        if self._closed:
            raise TransportError("the Kafka transport is closed")
        names = check_receiver_args(topics, group, offset_reset)
        return KafkaReceiver(self, names, group, offset_reset)

    def _consumer(self, group: str, offset_reset: OffsetReset) -> Any:
        self._running_producer()
        kafka = self._kafka
        return kafka.AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset=offset_reset,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            request_timeout_ms=self._request_timeout_ms,
            partition_assignment_strategy=(
                kafka.coordinator.assignors.roundrobin.RoundRobinPartitionAssignor,
            ),
        )

    def _track(self, receiver: KafkaReceiver, running: bool) -> None:
        if running:
            self._receivers.add(receiver)
        else:
            self._receivers.discard(receiver)


class KafkaReceiver(Receiver):
    """One group member on a :class:`KafkaTransport`; create it with ``receiver()``."""

    def __init__(
        self,
        transport: KafkaTransport,
        topics: tuple[str, ...],
        group: str,
        offset_reset: OffsetReset,
    ) -> None:
        self.topics = topics
        self.group = group
        self.offset_reset: OffsetReset = offset_reset
        self._transport = transport
        self._kafka = transport._kafka
        self._consumer: Any = None
        self._assigned: frozenset[tuple[str, int]] = frozenset()
        self._lost: set[tuple[str, int]] = set()
        self._ready = False
        self._generation = 0
        self._confirming: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the group (the first assignment arrives in the background)."""
        if self._stopped:
            raise TransportError("this receiver was stopped; create a new one")
        if self._consumer is not None:
            return
        consumer = self._consumer = self._transport._consumer(self.group, self.offset_reset)
        consumer.subscribe(list(self.topics), listener=_RebalanceWatch(self))
        try:
            await consumer.start()
        except self._kafka.errors.KafkaError as exc:
            self._consumer = None
            await consumer.stop()
            raise _translate(exc, f"joining group {self.group!r}") from exc
        self._started = True
        self._transport._track(self, True)

    async def stop(self) -> None:
        """Leave the group, so that its other members rebalance at once."""
        if self._stopped:
            return
        self._stopped = True
        self._ready = False
        self._assigned = frozenset()
        self._transport._track(self, False)
        if self._confirming is not None:
            self._confirming.cancel()
        if self._consumer is not None:
            await self._consumer.stop()

    # -- the assignment ----------------------------------------------------------------------

    def settled(self) -> bool:
        """Assigned, not rebalancing, and every assigned partition's start position known."""
        return self._ready and not self._stopped

    def assignment(self) -> frozenset[tuple[str, int]]:
        """The partitions this receiver reads now (empty while its group rebalances)."""
        return self._assigned

    def _revoked(self, revoked: Iterable[Any]) -> None:
        """The rebalance listener: a rebalance began and took ``revoked`` away."""
        self._generation += 1
        self._ready = False
        self._lost.update((tp.topic, tp.partition) for tp in revoked)
        self._assigned = frozenset()
        if self._confirming is not None:
            self._confirming.cancel()
            self._confirming = None

    def _assigned_now(self, assigned: Iterable[Any]) -> None:
        """The rebalance listener: the rebalance ended and gave this receiver ``assigned``."""
        self._generation += 1
        partitions = list(assigned)
        self._assigned = frozenset((tp.topic, tp.partition) for tp in partitions)
        if self._confirming is not None:
            self._confirming.cancel()
        self._confirming = asyncio.get_running_loop().create_task(
            self._confirm(self._generation, partitions)
        )

    async def _confirm(self, generation: int, partitions: list[Any]) -> None:
        """Wait until the consumer knows where each partition starts; then it is settled."""
        consumer = self._consumer
        errors = self._kafka.errors
        for tp in partitions:
            try:
                await consumer.position(tp)
            except (errors.IllegalStateError, errors.KafkaError):
                return  # a newer rebalance took it away; its own confirmation follows
        if generation == self._generation and not self._stopped:
            self._ready = True

    # -- fetch and commit --------------------------------------------------------------------

    async def fetch(self, timeout: float, max_records: int) -> Sequence[Message]:
        """``getmany`` with ``timeout`` and ``max_records``, flattened in partition order.

        ``getmany`` is awaited directly under ``asyncio.timeout`` (no task and no
        ``asyncio.wait`` around it: a fetch is the hottest call of a subscription), and the
        timeout also ends a wait for a running rebalance, which ``getmany`` would otherwise
        sit out whatever its own timeout says. :meth:`stop` ends a waiting fetch with
        ``[]``: stopping the consumer wakes it.
        """
        consumer = self._running()
        check_fetch_args(timeout, max_records)
        self._lost.clear()
        errors = self._kafka.errors
        try:
            async with asyncio.timeout(timeout + _REBALANCE_GRACE):
                batches = await consumer.getmany(
                    timeout_ms=math.ceil(timeout * 1000), max_records=max_records
                )
        except TimeoutError:  # a rebalance outlasted the timeout
            return []
        except errors.ConsumerStoppedError:
            if self._stopped:
                return []
            raise TransportError(f"the consumer of group {self.group!r} stopped") from None
        except errors.KafkaError as exc:
            raise _translate(exc, f"fetching for group {self.group!r}") from exc
        if self._stopped:
            return []
        out: list[ConsumerRecord] = []
        for tp in sorted(batches):
            for r in batches[tp]:
                out.append(
                    ConsumerRecord(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.timestamp,
                        r.key,
                        r.value,
                        tuple(r.headers),
                    )
                )
        return out

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit the next offsets to read; ``GroupError`` if a partition moved."""
        consumer = self._running()
        if not offsets:
            return
        kafka = self._kafka
        values: dict[Any, Any] = {}
        for (topic, partition), offset in offsets.items():
            if (topic, partition) not in self._assigned or (topic, partition) in self._lost:
                raise IllegalGenerationError(
                    f"{topic}[{partition}] is no longer assigned to this receiver of group "
                    f"{self.group!r} (a rebalance moved it); its messages go to its new owner"
                )
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ConfigError(f"a committed offset must be an int >= 0, not {offset!r}")
            values[kafka.TopicPartition(topic, partition)] = kafka.OffsetAndMetadata(offset, "")
        errors = kafka.errors
        try:
            await consumer.commit(values)
        except errors.RebalanceInProgressError as exc:
            raise RebalanceInProgressError(self._stale(exc)) from exc
        except (errors.CommitFailedError, errors.IllegalStateError) as exc:
            raise IllegalGenerationError(self._stale(exc)) from exc
        except errors.KafkaError as exc:
            error = _translate(exc, f"committing for group {self.group!r}")
            if isinstance(error, GroupError):
                raise IllegalGenerationError(self._stale(exc)) from exc
            raise error from exc

    def _stale(self, exc: BaseException) -> str:
        return (
            f"the commit of group {self.group!r} was refused: the group rebalanced and may "
            f"have given the partitions to another member ({exc})"
        )

    def _running(self) -> Any:
        if self._stopped:
            raise TransportError(f"this receiver of group {self.group!r} is stopped")
        if not self._started:
            raise TransportError("call start() on the receiver first")
        return self._consumer


class _RebalanceWatch:
    """aiokafka's ``ConsumerRebalanceListener`` for one receiver (registered as a virtual
    subclass once aiokafka is loaded, so that this module imports without it)."""

    def __init__(self, receiver: KafkaReceiver) -> None:
        self._receiver = receiver

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        self._receiver._revoked(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        self._receiver._assigned_now(assigned)


def _check_count(what: str, value: object, error: type[EventyardError]) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise error(f"{what} must be an integer >= 1, not {value!r}")
