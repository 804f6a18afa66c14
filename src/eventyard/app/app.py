"""The :class:`App`: subscriptions, publishing, and the life cycle of their workers.

An app is a transport plus handlers::

    app = App(EmbeddedTransport(".eventyard"), source="valuer")

    @app.subscribe("listings", group="valuer")
    async def value(listing: ListingCreated) -> Publish:
        return Publish("valuations", Valued(listing.key, estimate(listing)))

    async with app:          # start the transport and every subscription
        await app.publish("listings", ListingCreated(...), key=listing_key)
        ...                  # leaving the block drains, commits and leaves the groups

Each subscription gets a worker (:mod:`eventyard.app.worker`) on its own receiver, and one
more per delay tier of its retry policy, on the tier's topic with the group
``<group>.retry.<n>``. The app creates the topics it reads (and the dead-letter and delay
topics) when it starts, and the topics it publishes to on first use, with the transport's
defaults.

Events are CloudEvents (``eventyard.events``): :meth:`App.publish` wraps a typed event in an
envelope (id, time, source, type, version, partition key) and writes it in structured mode
by default (one JSON document: the fastest to read back) or binary mode (``ce_*`` headers).
Readers accept both, and records that are no CloudEvent at all.

Shutdown (:meth:`App.stop`, leaving ``async with``): each worker stops fetching, waits up
to ``shutdown_timeout`` seconds for its running handlers, commits what finished, and leaves
its group so the other instances take its partitions over at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import msgspec

from eventyard.app.breaker import BreakerPolicy
from eventyard.app.context import Publish
from eventyard.app.idempotency import DedupeStore
from eventyard.app.retry import RetryPolicy
from eventyard.app.stats import SubscriptionStats
from eventyard.app.subscription import Subscription, inspect_handler
from eventyard.app.worker import SKIP, Worker, WorkerServices
from eventyard.errors import ConfigError
from eventyard.events import (
    Envelope,
    EventRegistry,
    decode,
    default_registry,
    encode,
    new_envelope,
)
from eventyard.transports import Message, Outgoing, Transport

__all__ = ["App"]

log = logging.getLogger("eventyard.app")

Mode = Literal["structured", "binary"]


class App:
    """Handlers subscribed to topics of one transport, and a publisher for typed events."""

    def __init__(
        self,
        transport: Transport,
        *,
        source: str = "eventyard",
        registry: EventRegistry | None = None,
        mode: Mode = "structured",
        poll_timeout: float = 0.25,
        commit_interval: float = 0.5,
        shutdown_timeout: float = 30.0,
        seed: int | None = None,
    ) -> None:
        if mode not in ("structured", "binary"):
            raise ConfigError(f"App mode must be 'structured' or 'binary', not {mode!r}")
        for name, value in (
            ("poll_timeout", poll_timeout),
            ("commit_interval", commit_interval),
            ("shutdown_timeout", shutdown_timeout),
        ):
            if value < 0:
                raise ConfigError(f"App {name} must not be negative, not {value}")
        if not source:
            raise ConfigError("App source must not be empty")
        self.transport = transport
        self.source = source
        self.registry = registry if registry is not None else default_registry
        self.mode: Mode = mode
        self._services = WorkerServices(
            publish=self._publish_records,
            result_records=self._result_records,
            decode_envelope=self._decode_envelope,
            decoder_for=self._decoder_for,
            poll_timeout=poll_timeout,
            commit_interval=commit_interval,
            shutdown_timeout=shutdown_timeout,
            rng=random.Random(seed),
        )
        self._subscriptions: list[Subscription] = []
        self._stats: dict[str, SubscriptionStats] = {}
        self._workers: list[Worker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._topics: set[str] = set()
        self._on_start: list[Callable[[], Awaitable[None]]] = []
        self._running = False
        self._stopped = asyncio.Event()

    # -- declaring -------------------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        *,
        group: str,
        filter: Mapping[str, Any] | None = None,
        event: Any = None,
        batch: bool | None = None,
        max_in_flight: int = 1024,
        concurrency: int = 32,
        max_batch: int = 500,
        batch_interval: float = 0.0,
        retry: RetryPolicy | None = None,
        dlq: bool = True,
        idempotency: DedupeStore | None = None,
        breaker: BreakerPolicy | None = None,
        timeout: float | None = None,
        offset_reset: str = "earliest",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated function as the handler of ``topic`` in ``group``.

        Every group receives every event of the topic; the instances of one group share its
        partitions. The event type is the handler's first parameter's annotation unless
        ``event`` is given; a ``list[T]`` annotation (or ``batch=True``) makes a batch
        handler. See :class:`~eventyard.app.subscription.Subscription` for the rest.
        """

        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            if self._running:
                raise ConfigError("subscribe() must be called before the app starts")
            shape = inspect_handler(handler, event, batch)
            if shape.event_type not in (None, bytes) and shape.event_type not in self.registry:
                name = getattr(shape.event_type, "__qualname__", repr(shape.event_type))
                raise ConfigError(
                    f"handler {handler.__qualname__}: {name} is not a registered event type; "
                    "decorate it with @event('type.name')"
                )
            subscription = Subscription(
                topic=topic,
                group=group,
                handler=handler,
                shape=shape,
                filter=filter,
                max_in_flight=max_in_flight,
                concurrency=concurrency,
                max_batch=max_batch,
                batch_interval=batch_interval,
                retry=retry if retry is not None else RetryPolicy(),
                dlq=dlq,
                idempotency=idempotency,
                breaker=breaker,
                timeout=timeout,
                offset_reset=offset_reset,
            )
            if subscription.name in self._stats:
                raise ConfigError(f"group {group!r} already subscribes to {topic!r} in this app")
            if subscription.filter is not None:
                from eventyard.app.filters import compile_filter

                compile_filter(subscription.filter)
            self._subscriptions.append(subscription)
            self._stats[subscription.name] = SubscriptionStats()
            return handler

        return register

    def on_start(self, hook: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Run ``hook`` at every start, after the transport starts and before any handler.

        For state a handler keeps in memory and rebuilds from a topic's history when the
        process starts (an index of closed sales, say). A hook that raises fails the start.
        """
        if self._running:
            raise ConfigError("on_start() must be called before the app starts")
        self._on_start.append(hook)
        return hook

    @property
    def poll_timeout(self) -> float:
        """How long one fetch waits for records (seconds); stop and idleness wait as long."""
        return self._services.poll_timeout

    @poll_timeout.setter
    def poll_timeout(self, value: float) -> None:
        if value < 0:
            raise ConfigError(f"App poll_timeout must not be negative, not {value}")
        self._services.poll_timeout = value

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions)

    def stats(self, group: str, topic: str | None = None) -> SubscriptionStats:
        """The counters of ``group``'s subscription (to ``topic``, if it has several)."""
        matches = [s for s in self._subscriptions if s.group == group and topic in (None, s.topic)]
        if len(matches) != 1:
            raise ConfigError(
                f"no subscription of group {group!r}"
                + (f" to {topic!r}" if topic else "")
                + ("" if not matches else "; several match, name the topic")
            )
        return self._stats[matches[0].name]

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the transport, create the topics read, and start every subscription."""
        if self._running:
            return
        await self.transport.start()
        self._running = True
        self._stopped.clear()
        for name in self._stats:  # counters are per run ("since the app started")
            self._stats[name] = SubscriptionStats()
        loop = asyncio.get_running_loop()
        try:
            for hook in self._on_start:
                await hook()
            for sub in self._subscriptions:
                for topic in (sub.topic, sub.dlq_topic, *sub.retry_topics()):
                    await self._ensure_topic(topic)
                stats = self._stats[sub.name]
                receivers = [(sub.topic, sub.group, None)] + [
                    (name, f"{sub.group}.retry.{i}", i) for i, name in enumerate(sub.retry_topics())
                ]
                for topic, group, tier in receivers:
                    receiver = self.transport.receiver(
                        [topic],
                        group,
                        offset_reset="earliest" if tier is not None else sub.offset_reset,  # type: ignore[arg-type]
                    )
                    await receiver.start()
                    worker = Worker(sub, receiver, self._services, stats, tier)
                    self._workers.append(worker)
                    self._tasks.append(loop.create_task(self._run(worker)))
        except BaseException:
            await self.stop()
            raise

    async def _run(self, worker: Worker) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: the subscription stopped on an unexpected error", worker.sub.name)
            raise

    async def stop(self) -> None:
        """Drain and stop every subscription, then close the transport (idempotent)."""
        if not self._running:
            return
        for worker in self._workers:
            worker.stop()
        errors = [
            result
            for result in await asyncio.gather(*self._tasks, return_exceptions=True)
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError)
        ]
        self._workers.clear()
        self._tasks.clear()
        self._running = False
        await self.transport.close()
        self._stopped.set()
        if errors:
            raise errors[0]

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

    async def wait_stopped(self) -> None:
        """Return when :meth:`stop` has finished (``eventyard run`` waits on this)."""
        await self._stopped.wait()

    async def wait_idle(self, timeout: float | None = 30.0) -> None:
        """Wait until every subscription has handled and committed all it can read now.

        Raises ``TimeoutError`` after ``timeout`` seconds; the test harness uses this after
        publishing to wait for the handlers.
        """
        workers = list(self._workers)
        for task in self._tasks:
            error = task.exception() if task.done() else None
            if error is not None:
                raise error
        async with asyncio.timeout(timeout):
            while True:
                await asyncio.gather(*(w.wait_idle() for w in workers))
                if all(w.is_idle() for w in workers):
                    return

    # -- publishing ------------------------------------------------------------------------

    def envelope(
        self,
        event: Any,
        *,
        key: str | bytes | None = None,
        type: str | None = None,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        id: str | None = None,
    ) -> Envelope:
        """The envelope :meth:`publish` would write for ``event`` (its time fresh, its id too
        unless ``id`` is given)."""
        text_key = key.decode("utf-8", "surrogateescape") if isinstance(key, bytes) else key
        try:
            envelope = new_envelope(
                event,
                source=self.source,
                type=type,
                subject=subject,
                key=text_key,
                correlationid=correlation_id,
                causationid=causation_id,
                registry=self.registry,
            )
        except ValueError as exc:
            raise ConfigError(f"cannot publish {event.__class__.__qualname__}: {exc}") from exc
        if id is not None:
            if not id:
                raise ConfigError("an event id must not be empty")
            envelope = msgspec.structs.replace(envelope, id=id)
        return envelope

    def record(self, envelope: Envelope, partition: int | None = None) -> Outgoing:
        """The record that carries ``envelope`` in this app's mode."""
        key, value, headers = encode(envelope, self.mode)
        return Outgoing(key, value, tuple(headers), partition)

    async def publish(
        self,
        topic: str,
        event: Any,
        *,
        key: str | bytes | None = None,
        type: str | None = None,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        partition: int | None = None,
    ) -> Envelope:
        """Publish one typed event (or ``bytes`` with ``type=``); return its envelope.

        Returns once the transport acknowledged it (durable per the transport's policy).
        """
        envelope = self.envelope(
            event,
            key=key,
            type=type,
            subject=subject,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        await self._publish_records(topic, [self.record(envelope, partition)])
        return envelope

    async def publish_many(
        self,
        topic: str,
        events: Iterable[Any],
        *,
        key: Callable[[Any], str | bytes | None] | None = None,
    ) -> list[Envelope]:
        """Publish many events in one transport call; ``key(event)`` gives each one's key."""
        envelopes = [self.envelope(e, key=key(e) if key else None) for e in events]
        await self._publish_records(topic, [self.record(e) for e in envelopes])
        return envelopes

    async def _ensure_topic(self, topic: str) -> None:
        if topic not in self._topics:
            await self.transport.ensure_topic(topic)
            self._topics.add(topic)

    async def _publish_records(self, topic: str, records: list[Outgoing]) -> None:
        if not self._running:
            await self.transport.start()
        await self._ensure_topic(topic)
        await self.transport.publish(topic, records)

    def _result_records(self, result: Any, cause: Envelope) -> dict[str, list[Outgoing]]:
        """A handler's returned events as records by topic, with causation and correlation.

        Raises ``ConfigError`` for anything but ``Publish`` values (or a list of them).
        """
        items: Sequence[Any] = result if isinstance(result, list | tuple) else [result]
        by_topic: dict[str, list[Outgoing]] = {}
        correlation = cause.correlationid or cause.id
        for item in items:
            if not isinstance(item, Publish):
                raise ConfigError(
                    f"a handler returned {type(item).__qualname__}; return Publish(topic, "
                    "event), a list of them, or None"
                )
            envelope = self.envelope(
                item.event,
                key=item.key,
                subject=item.subject,
                correlation_id=correlation,
                causation_id=cause.id,
                id=item.id,
            )
            by_topic.setdefault(item.topic, []).append(self.record(envelope))
        return by_topic

    # -- reading ---------------------------------------------------------------------------

    def _decode_envelope(self, message: Message) -> Envelope:
        envelope = decode(message.value, message.headers, message.key)
        if envelope is not None:
            return envelope
        key = message.key
        return Envelope(
            id=f"{message.topic}-{message.partition}-{message.offset}",
            source=f"eventyard://{message.topic}",
            type="",
            partitionkey=None if key is None else key.decode("utf-8", "surrogateescape"),
            data=message.value or b"",
        )

    def _decoder_for(self, event_type: Any) -> Callable[[Envelope], Any] | None:
        if event_type is None or event_type is bytes:
            return None
        decode_data = self.registry.decoder(event_type, check_type=False)
        type_name = self.registry.type_name(event_type)

        def decoder(envelope: Envelope) -> Any:
            if envelope.type and envelope.type != type_name:
                return SKIP
            return decode_data(envelope)

        return decoder
