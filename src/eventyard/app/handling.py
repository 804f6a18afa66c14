"""Taking one event through its handler to an outcome: done, delayed, or dead-lettered.

:meth:`Handling.run` calls the handler until one of these happens:

- **success**: the events the handler returned go to the subscription's
  :class:`~eventyard.app.outbox.Outbox` (with causation and correlation ids), and the event
  is done once they are acknowledged; with nothing returned it is done at once. Returning
  something that is not a ``Publish`` (or a list of them) counts as a failure of the
  handler, retried and dead-lettered like any other;
- **failure with attempts left**: the retry policy gives a delay. A delay shorter than the
  first delay tier, or any delay under ``strict_order``, is waited out here, in the event's
  lane, so later events of its key wait behind it; a longer one republishes the event to
  the delay tier that covers it (``<topic>.<group>.retry.<n>``) and the event is done here:
  its lane moves on and the tier's worker runs it again when it falls due;
- **failure with no attempt left** (or an exception the policy does not retry): the event
  goes to the dead-letter topic with the failure headers (:mod:`eventyard.app.deadletter`);
- **failure while the circuit breaker is open**: the event waits for the breaker to let a
  probe through, and the failure does not use up one of its attempts, so an outage of a
  downstream service pauses the subscription instead of dead-lettering everything.

A publish (results, retry, dead letter) that fails is tried again every second until it
succeeds or the subscription stops; the event stays unfinished, so uncommitted, meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from eventyard.app.breaker import BreakerState, CircuitBreaker
from eventyard.app.context import Context
from eventyard.app.deadletter import Failure, dead_letter, retry_record
from eventyard.app.outbox import Outbox
from eventyard.app.stats import SubscriptionStats
from eventyard.transports import Message, Outgoing

if TYPE_CHECKING:
    from eventyard.app.subscription import Subscription
    from eventyard.events import Envelope

__all__ = ["Delivery", "Handling"]

log = logging.getLogger("eventyard.app")

Publisher = Callable[[str, list[Outgoing]], Awaitable[None]]
Sleeper = Callable[[float], Awaitable[bool]]


class Delivery(msgspec.Struct, gc=False):
    """One fetched event on its way through the handler.

    A ``msgspec.Struct`` without GC tracking: up to ``max_in_flight`` of them are alive at
    once, and as tracked objects they set off a young-generation collection every 700 or so,
    about 5% of a no-op handler's time. Nothing refers back to a delivery (a handler sees
    its event and a ``Context``, never the delivery), so it can close no reference cycle.
    ``origin`` is where the event was first read (``None``: this record's own place).
    ``handled`` is set when the handler succeeded (not when the event was dead-lettered or
    delayed).
    """

    message: Message
    envelope: Envelope
    event: Any
    attempt: int = 1
    first_failure_ms: int = 0
    handled: bool = False
    first_read: tuple[str, int, int] | None = None

    @property
    def origin(self) -> tuple[str, int, int]:
        """Topic, partition and offset where the event was first read (before any tier)."""
        if self.first_read is not None:
            return self.first_read
        message = self.message
        return (message.topic, message.partition, message.offset)


class Handling:
    """Runs deliveries of one subscription through its handler (see the module docstring).

    ``sleep(seconds)`` waits, returning ``False`` early when the subscription stops, which
    abandons the delivery unfinished.
    """

    def __init__(
        self,
        sub: Subscription,
        stats: SubscriptionStats,
        publish: Publisher,
        result_records: Callable[[Any, Envelope], dict[str, list[Outgoing]]],
        outbox: Outbox[Delivery],
        sleep: Sleeper,
        rng: random.Random,
        breaker: CircuitBreaker | None,
    ) -> None:
        self.sub = sub
        self.stats = stats
        self._publish = publish
        self._result_records = result_records
        self._outbox = outbox
        self._sleep = sleep
        self._rng = rng
        self.breaker = breaker
        self._handler = sub.handler
        self._is_async = sub.shape.is_async
        self._context = sub.shape.wants_context
        self._batch = sub.shape.batch
        """A batch handler's events come here only from its delay tiers (a retry, a redrive):
        each is handled alone, as a batch of one."""
        self._timeout = sub.timeout

    async def run(self, item: Delivery) -> bool | None:
        """Handle ``item`` to an outcome: ``True`` when it is finished, ``None`` when it waits
        in the outbox for its results' acknowledgement (which finishes it), ``False`` if the
        subscription stopped first.

        The handler call is written out here rather than in a helper coroutine: this runs
        once per event, and a second coroutine frame per event is measurable.
        """
        breaker = self.breaker
        handler = self._handler
        while True:
            if breaker is not None and not breaker.allow():
                if not await self._sleep(max(breaker.retry_after(), 0.001)):
                    return False
                continue
            try:
                if self._batch:
                    context = Context(item.envelope, item.message, item.attempt, self.sub.group)
                    event: Any = [item.event]
                    result = handler(event, [context]) if self._context else handler(event)
                elif self._context:
                    context = Context(item.envelope, item.message, item.attempt, self.sub.group)
                    result = handler(item.event, context)
                else:
                    result = handler(item.event)
                if self._is_async:
                    if self._timeout is None:
                        result = await result
                    else:
                        async with asyncio.timeout(self._timeout):
                            result = await result
                records = None if result is None else self._result_records(result, item.envelope)
            except Exception as exc:
                verdict = await self._failed(item, exc)
                if verdict is None:
                    continue
                return verdict
            if breaker is not None:
                breaker.record_success()
            self.stats.handled += 1
            item.handled = True
            if records:
                self._outbox.add(records, item)
                return None
            return True

    async def _failed(self, item: Delivery, error: Exception) -> bool | None:
        """Decide after a failure: ``None`` to call the handler again, else as :meth:`run`."""
        self.stats.failed += 1
        if item.first_failure_ms == 0:
            item.first_failure_ms = int(time.time() * 1000)
        breaker = self.breaker
        if breaker is not None:
            breaker.record_failure()
            if breaker.state is not BreakerState.CLOSED:
                self.stats.held += 1
                return None if await self._sleep(max(breaker.retry_after(), 0.001)) else False
        reason = "timeout" if isinstance(error, TimeoutError) else "handler"
        failure = Failure.of(reason, error, item.attempt, item.origin, item.first_failure_ms)
        policy = self.sub.retry
        if not policy.should_retry(error, item.attempt):
            return await self.dead_letter(item.message, failure)
        delay = policy.delay(item.attempt, self._rng)
        self.stats.retried += 1
        if policy.strict_order or delay < policy.tiers[0]:
            item.attempt += 1
            return None if await self._sleep(delay) else False
        tiers = self.sub.retry_topics()
        tier = min(policy.tier_for(delay), len(tiers) - 1)
        due_ms = int((time.time() + policy.tiers[tier]) * 1000)
        record = retry_record(item.message, failure, self.sub.group, due_ms)
        return await self._reliably(lambda: self._publish(tiers[tier], [record]))

    async def dead_letter(self, message: Message, failure: Failure) -> bool:
        """Send ``message`` to the dead-letter topic with ``failure``'s headers."""
        sub = self.sub
        self.stats.dead_lettered += 1
        log.warning(
            "%s: event at %s/%d offset %d dead-lettered after %d attempts (%s): %s",
            sub.name,
            *failure.origin,
            failure.attempts,
            failure.reason,
            failure.message,
        )
        if not sub.dlq:
            return True
        record = dead_letter(message, failure, sub.group)
        return await self._reliably(lambda: self._publish(sub.dlq_topic, [record]))

    async def _reliably(self, publish: Callable[[], Awaitable[None]]) -> bool:
        while True:
            try:
                await publish()
            except Exception as exc:
                log.error("%s: publishing failed, trying again in 1 s: %s", self.sub.name, exc)
                if not await self._sleep(1.0):
                    return False
                continue
            return True
