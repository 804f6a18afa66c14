"""One subscription at work: fetch, decode, filter, dispatch in key order, commit.

A :class:`Worker` owns one receiver and everything about the events it fetched, so nothing
here is shared or locked (the one-owner rule). Its loop:

1. **Backpressure.** It fetches only while fewer than ``max_in_flight`` events are
   unfinished, asking for at most the free room; a full buffer stops the fetching until
   handlers finish. An open circuit breaker stops it too.
2. **Decode at the edge.** Each record becomes an envelope (a record that is no CloudEvent,
   say one written by kcat, gets an envelope made from its topic, partition and offset) and
   then the typed event. A record that fails either step is dead-lettered with the reason and
   never reaches the handler; it never stops the subscription.
3. **Filter and dedupe.** Events of another type than the handler's, events the content
   filter rejects and (with an idempotency store) events whose id the group already handled
   are committed without a handler call.
4. **Dispatch in key order** through :mod:`eventyard.app.lanes`; each event is taken to its
   outcome by :mod:`eventyard.app.handling` (retries, delay tiers, dead letters, breaker).
5. **Commit.** Every ``commit_interval`` seconds (in the background, while fetching goes
   on), when idle (a whole poll found nothing, or :meth:`Worker.wait_idle` is waiting) and
   at shutdown, the worker commits per partition the lowest offset still
   unfinished (:mod:`eventyard.app.tracking`), after writing the idempotency marks, so a
   crash redelivers, and never skips, an event.

A delay-tier worker (``tier`` set) reads that tier's topic and holds each record until its
due time before dispatching it; records of one tier fall due in the order they were written.
A batch handler's worker calls the handler once per fetched chunk of at most ``max_batch``
events, in the loop itself, and retries the chunk in place; a batch handler's context
parameter receives one :class:`~eventyard.app.context.Context` per event, in event order.
With ``batch_interval`` the worker waits out the interval after each call and then fetches
until the backlog is drained, so the call takes everything that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from eventyard.app.breaker import BreakerState, CircuitBreaker
from eventyard.app.context import Context
from eventyard.app.deadletter import Failure, parse_dead_letter
from eventyard.app.filters import compile_filter
from eventyard.app.handling import Delivery, Handling
from eventyard.app.lanes import Lanes
from eventyard.app.outbox import Outbox
from eventyard.app.stats import SubscriptionStats
from eventyard.app.tracking import OffsetTracker
from eventyard.errors import EventDecodeError, EventValidationError, GroupError
from eventyard.transports import Message, Outgoing, Receiver

if TYPE_CHECKING:
    from eventyard.app.subscription import Subscription
    from eventyard.events import Envelope

__all__ = ["SKIP", "Worker", "WorkerServices"]

log = logging.getLogger("eventyard.app")

_DRAINED_POLL = 0.01
"""Seconds the fetch after one that returned records waits (see :meth:`Worker._step`), and
the longest a paced subscription drains its backlog for (:meth:`Worker._fetch_backlog`)."""

SKIP: Any = object()
"""What a decoder returns for an event of another type than the handler's: not handled."""


class WorkerServices:
    """What a worker needs from its app: publishing, decoding and the timing settings."""

    def __init__(
        self,
        publish: Callable[[str, list[Outgoing]], Awaitable[None]],
        result_records: Callable[[Any, Envelope], dict[str, list[Outgoing]]],
        decode_envelope: Callable[[Message], Envelope],
        decoder_for: Callable[[Any], Callable[[Envelope], Any] | None],
        poll_timeout: float,
        commit_interval: float,
        shutdown_timeout: float,
        rng: random.Random,
    ) -> None:
        self.publish = publish
        self.result_records = result_records
        self.decode_envelope = decode_envelope
        self.decoder_for = decoder_for
        self.poll_timeout = poll_timeout
        self.commit_interval = commit_interval
        self.shutdown_timeout = shutdown_timeout
        self.rng = rng


class Worker:
    """The loop of one subscription (or of one of its delay tiers)."""

    def __init__(
        self,
        subscription: Subscription,
        receiver: Receiver,
        services: WorkerServices,
        stats: SubscriptionStats,
        tier: int | None = None,
    ) -> None:
        self.sub = subscription
        self.receiver = receiver
        self.tier = tier
        self.stats = stats
        self._s = services
        self._decoder = services.decoder_for(subscription.shape.event_type)
        self._raw = subscription.shape.event_type is bytes
        self._filter = compile_filter(subscription.filter) if subscription.filter else None
        breaker = CircuitBreaker(subscription.breaker) if subscription.breaker else None
        self._breaker = breaker
        self._outbox: Outbox[Delivery] = Outbox(
            services.publish, self._published, self._sleep, subscription.name
        )
        self._handling = Handling(
            subscription,
            stats,
            services.publish,
            services.result_records,
            self._outbox,
            self._sleep,
            services.rng,
            breaker,
        )
        self._lanes: Lanes[Delivery] = Lanes(
            subscription.concurrency, self._handling.run, self._finished
        )
        self._tracker = OffsetTracker()
        self._outstanding = 0
        self._room = asyncio.Event()
        self._stop = asyncio.Event()
        self._marks: list[str] = []
        self._claimed: set[str] = set()
        """Ids taken for handling and not yet marked in the idempotency store: a copy of one
        of them fetched meanwhile (a producer retry, a duplicate publish) is a duplicate."""
        self._last_commit = time.monotonic()
        self._committing: asyncio.Task[None] | None = None
        self._fetch_seq = 0
        self._quiet = True
        self._idle_seq = -1
        self._idle = asyncio.Event()
        self._idle_waiters = 0
        """Callers of :meth:`wait_idle` waiting now: a drained fetch commits at once for them."""
        self._paced = subscription.batch_interval > 0 and tier is None
        """A paced subscription (``batch_interval``; its delay tiers are not)."""
        self._batch_due = 0.0
        """When a paced subscription may next fetch (monotonic time)."""

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch and dispatch until :meth:`stop`; then drain, commit and leave the group."""
        try:
            while not self._stop.is_set():
                await self._step()
        finally:
            await self._drain()

    def stop(self) -> None:
        self._stop.set()
        self._room.set()

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; ``False`` (at once) when the worker is stopping."""
        if self._stop.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return not self._stop.is_set()

    async def _step(self) -> None:
        sub = self.sub
        breaker = self._breaker
        if breaker is not None and breaker.state is BreakerState.OPEN:
            await self._commit(force=True)
            await self._sleep(min(max(breaker.retry_after(), 0.001), self._s.poll_timeout))
            return
        room = sub.max_in_flight - self._outstanding
        if room <= 0:
            self._room.clear()
            await self._commit()
            await self._room.wait()
            return
        seq = self._fetch_seq = self._fetch_seq + 1
        # Right after a fetch with records, wait only briefly: an empty answer then means the
        # backlog is drained, which lets the commit and idleness follow at once instead of
        # after a whole poll. Records arriving end either wait as soon as they come.
        was_quiet = self._quiet
        wait = self._s.poll_timeout if was_quiet else min(_DRAINED_POLL, self._s.poll_timeout)
        paced = self._paced
        if paced:
            rest = self._batch_due - time.monotonic()
            if rest > 0 and not await self._sleep(rest):
                return
        messages = await self.receiver.fetch(wait, room)
        if messages and paced:
            messages = await self._fetch_backlog(messages, room)
            self._batch_due = time.monotonic() + sub.batch_interval
        self._quiet = not messages
        if messages:
            self.stats.fetched += len(messages)
            if self.tier is not None:
                await self._accept_due(messages)
            elif sub.shape.batch:
                await self._accept_batch(messages)
            else:
                await self._accept(messages)
            await self._commit()
        elif self._outstanding == 0:
            # Drained. Commit at once when idle for a whole poll, or when someone waits for
            # idleness; right after a busy fetch the interval's commit is enough (a busy
            # subscription drains its backlog every few milliseconds, and would otherwise
            # commit, and have the offsets fsynced, each time).
            await self._commit(force=was_quiet or self._idle_waiters > 0)
            if self.is_idle() and self.receiver.settled():
                self._idle_seq = seq  # before the assignment settles, empty means nothing
                self._idle.set()

    async def _fetch_backlog(self, messages: Sequence[Message], room: int) -> list[Message]:
        """A paced subscription's fetch (``batch_interval``): go on fetching for at most
        ``_DRAINED_POLL`` in all, until the backlog is drained or ``room`` is full, so
        everything that arrived during the interval makes one call. (A client that
        prefetches, like aiokafka, holds only what its last fetch returned, often a few
        records, when the interval ends; the rest is still on the broker, a fetch or two
        away.) The bound is on the whole drain, not on each fetch: on a busy stream records
        keep coming closer together than any wait, and draining until a pause would hold
        the call until ``room`` filled, a second or more behind instead of an interval."""
        taken = list(messages)
        deadline = time.monotonic() + _DRAINED_POLL
        while len(taken) < room:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = await self.receiver.fetch(left, room - len(taken))
            if not more:
                break
            taken.extend(more)
        return taken

    async def wait_idle(self) -> None:
        """Return once a fetch begun after this call found nothing and all is committed."""
        target = self._fetch_seq + 1
        self._idle_waiters += 1
        try:
            while self._idle_seq < target and not self._stop.is_set():
                self._idle.clear()
                await self._idle.wait()
        finally:
            self._idle_waiters -= 1

    @property
    def breaker_state(self) -> BreakerState | None:
        """The circuit breaker's state, or ``None`` without a breaker."""
        return None if self._breaker is None else self._breaker.state

    def is_idle(self) -> bool:
        """Nothing unfinished and everything fetched committed."""
        return self._outstanding == 0 and self._tracker.caught_up()

    async def _drain(self) -> None:
        tasks = self._lanes.tasks()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._s.shutdown_timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "%s: handlers still running after %.1f s were cancelled; "
                    "their events will be delivered again",
                    self.sub.name,
                    self._s.shutdown_timeout,
                )
                await asyncio.wait(pending)
        self._lanes.clear()
        await self._outbox.flushed()
        try:
            await self._commit(force=True)
        finally:
            self._idle.set()
            await self.receiver.stop()

    # -- accepting fetched records -------------------------------------------------------

    def _prepare(self, message: Message, failed: list[tuple[Message, Failure]]) -> Delivery | None:
        """Decode and filter one record; ``None`` when there is nothing to handle."""
        try:
            envelope = self._s.decode_envelope(message)
            if self._raw:
                event: Any = message.value
            elif self._decoder is not None:
                event = self._decoder(envelope)
            else:
                event = envelope
        except EventDecodeError as exc:
            reason = "validation" if isinstance(exc, EventValidationError) else "decode"
            origin = (message.topic, message.partition, message.offset)
            failed.append((message, Failure.of(reason, exc, 0, origin)))
            return None
        if event is SKIP or (self._filter is not None and not self._filter(event, envelope)):
            self.stats.filtered += 1
            return None
        return Delivery(message, envelope, event)

    async def _prepare_all(self, messages: Any) -> list[Delivery] | None:
        """Decode a fetch; begin every event to handle, dead-letter the undecodable ones.

        The events to handle are begun (so never committed past) before any dead letter is
        published: if the subscription stops while a dead-letter publish is failing, those
        events are left unfinished and delivered again, not skipped. ``None`` means stopped.
        """
        self._tracker.fetched_all(messages)
        failed: list[tuple[Message, Failure]] = []
        items = [item for m in messages if (item := self._prepare(m, failed)) is not None]
        if self.sub.idempotency is not None and items:
            items = await self._unseen(items)
        self._tracker.begin_all([item.message for item in items])
        self._outstanding += len(items)
        for message, failure in failed:
            tp = (message.topic, message.partition)
            self._tracker.begin(tp, message.offset)
            if not await self._handling.dead_letter(message, failure):
                return None
            self._tracker.finish(tp, message.offset)
        return items

    async def _accept(self, messages: Any) -> None:
        items = await self._prepare_all(messages)
        if not items:
            return
        push = self._lanes.push
        for item in items:
            push(item, item.message.key)

    def _finished(self, item: Delivery) -> None:
        self._outstanding -= 1
        message = item.message
        self._tracker.finish((message.topic, message.partition), message.offset)
        if self.sub.idempotency is not None:
            if item.handled:
                self._marks.append(item.envelope.id)  # the id stays claimed until marked
            else:
                self._claimed.discard(item.envelope.id)  # dead-lettered or delayed: not done
        self._room.set()

    def _published(self, items: list[Delivery]) -> None:
        for item in items:
            self._finished(item)

    async def _accept_due(self, messages: Any) -> None:
        for message in messages:
            due = parse_dead_letter(message)
            wait = (due.due_ms or 0) / 1000 - time.time()
            if wait > 0 and not await self._sleep(wait):
                return
            items = await self._prepare_all([message])
            if items is None:
                return
            if not items:
                continue
            (item,) = items
            item.attempt = due.next_attempt or 2
            item.first_failure_ms = due.first_failure_ms
            item.first_read = (due.original_topic, due.original_partition, due.original_offset)
            self._lanes.push(item, message.key)

    async def _unseen(self, items: list[Delivery]) -> list[Delivery]:
        store = self.sub.idempotency
        assert store is not None
        claimed = self._claimed
        seen = await store.seen_many(self.sub.group, [item.envelope.id for item in items])
        fresh = []
        for item in items:
            event_id = item.envelope.id
            if event_id in seen or event_id in claimed:
                self.stats.duplicates += 1
                continue
            claimed.add(event_id)
            fresh.append(item)
        return fresh

    # -- batch handlers ------------------------------------------------------------------

    async def _accept_batch(self, messages: Any) -> None:
        items = await self._prepare_all(messages)  # every chunk begun before the first runs
        if not items:
            return
        size = self.sub.max_batch
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            if not await self._run_batch(chunk):
                return
            for item in chunk:
                self._finished(item)

    async def _run_batch(self, items: list[Delivery]) -> bool:
        sub = self.sub
        events = [item.event for item in items]
        while True:
            try:
                if sub.shape.wants_context:
                    contexts = [
                        Context(item.envelope, item.message, item.attempt, sub.group)
                        for item in items
                    ]
                    result = sub.handler(events, contexts)
                else:
                    result = sub.handler(events)
                if sub.shape.is_async:
                    call = asyncio.ensure_future(_bounded(result, sub.timeout))
                    if not await self._finish_or_abandon(call):
                        return False
                    result = call.result()
                cause = items[-1].envelope
                records = None if result is None else self._s.result_records(result, cause)
            except Exception as exc:
                self.stats.failed += len(items)
                attempt = items[0].attempt
                if sub.retry.should_retry(exc, attempt):
                    self.stats.retried += len(items)
                    for item in items:
                        item.attempt += 1
                    if not await self._sleep(sub.retry.delay(attempt, self._s.rng)):
                        return False
                    continue
                reason = "timeout" if isinstance(exc, TimeoutError) else "handler"
                for item in items:
                    failure = Failure.of(reason, exc, attempt, item.origin)
                    if not await self._handling.dead_letter(item.message, failure):
                        return False
                return True
            if records and not await self._outbox.send(records):
                return False
            self.stats.handled += len(items)
            for item in items:
                item.handled = True
            return True

    async def _finish_or_abandon(self, call: asyncio.Future[Any]) -> bool:
        """Wait for a batch handler call; once stopping, for ``shutdown_timeout`` at most.

        A batch call runs inside the loop, not in a lane, so :meth:`_drain` cannot bound it:
        this does, cancelling the call (its events stay uncommitted) when time is up.
        """
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({call, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not call.done():
            await asyncio.wait({call}, timeout=self._s.shutdown_timeout)
        if not call.done():
            call.cancel()
            log.warning(
                "%s: a batch handler still running after %.1f s was cancelled; "
                "its events will be delivered again",
                self.sub.name,
                self._s.shutdown_timeout,
            )
            with contextlib.suppress(asyncio.CancelledError):
                await call
            return False
        return True

    # -- commits -------------------------------------------------------------------------

    async def _commit(self, force: bool = False) -> None:
        """Commit what is safe to commit: every ``commit_interval`` in the background, at
        once (after any background commit) when ``force``d.

        A commit waits for the offsets to be durable, a millisecond or more of fsync; in the
        background the loop goes on fetching and dispatching meanwhile, so a commit never
        holds events up. One commit runs at a time; a background commit's error is raised
        here on the next call, as if it had been awaited.
        """
        running = self._committing
        if running is not None and running.done():
            self._committing = None
            running.result()
            running = None
        now = time.monotonic()
        if not force:
            if running is not None or now - self._last_commit < self._s.commit_interval:
                return
            self._last_commit = now
            self._committing = asyncio.get_running_loop().create_task(self._commit_now())
            return
        if running is not None:
            self._committing = None
            await running
        self._last_commit = now
        await self._commit_now()

    async def _commit_now(self) -> None:
        store = self.sub.idempotency
        if store is not None and self._marks:
            marks, self._marks = self._marks, []
            await store.mark(self.sub.group, marks)
            self._claimed.difference_update(marks)
        positions = self._tracker.positions()
        if not positions:
            return
        try:
            await self.receiver.commit(positions)
        except GroupError as exc:
            log.warning("%s: commit refused after a rebalance: %s", self.sub.name, exc)
            self._tracker.forget(self.receiver.assignment())
            return
        self._tracker.committed(positions)


async def _bounded(call: Awaitable[Any], timeout: float | None) -> Any:
    if timeout is None:
        return await call
    async with asyncio.timeout(timeout):
        return await call
