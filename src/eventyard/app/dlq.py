"""Inspecting and replaying a dead-letter topic: what ``eventyard dlq`` does.

A dead-letter topic is an ordinary topic, so its records are never deleted one by one (a
Kafka log is append-only). Instead each dead-letter topic has a *cursor*: the committed
offsets of the consumer group ``eventyard-dlq.<topic>``. Entries before the cursor have been
dealt with (redriven or purged); :meth:`DeadLetterQueue.pending` lists the ones after it.

- :meth:`~DeadLetterQueue.redrive` republishes pending entries and moves the cursor past
  them. By default an entry goes back into its group's retry lane
  (``<topic>.<group>.retry.0``), due at once as attempt 1, so only the group whose handler
  failed sees it again, under its own retry policy; ``to=TOPIC`` republishes the original
  record there instead. Either way the key, the value and the headers (so the event id) are
  the original ones.
- :meth:`~DeadLetterQueue.purge` moves the cursor to the end without republishing.

Both work on whatever transport the app uses, and the cursor is committed only after the
republished records are acknowledged, so a crash mid-redrive replays entries again (at
least once), never drops one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from eventyard.app.deadletter import DeadLetter, parse_dead_letter, redrive_record
from eventyard.app.subscription import retry_topic
from eventyard.errors import ConfigError
from eventyard.transports import Message, Outgoing, Receiver, Transport

__all__ = ["DeadLetterQueue", "RedriveResult", "is_dlq_topic", "read_available"]

_FETCH_WAIT = 0.1
_ASSIGNMENT_WAIT = 10.0


async def read_available(receiver: Receiver, limit: int | None = None) -> list[Message]:
    """Every record the started ``receiver`` can read now, sorted by partition and offset.

    Waits for the group to assign the partitions first (an empty fetch before that says
    nothing about the topic), then reads until a fetch comes back empty.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _ASSIGNMENT_WAIT
    out: list[Message] = []
    while not receiver.settled() and loop.time() < deadline:
        out.extend(await receiver.fetch(_FETCH_WAIT, limit or 10_000))
    while limit is None or len(out) < limit:
        batch = await receiver.fetch(_FETCH_WAIT, 10_000 if limit is None else limit - len(out))
        if not batch:
            break
        out.extend(batch)
    out.sort(key=lambda m: (m.partition, m.offset))
    return out


def is_dlq_topic(topic: str) -> bool:
    """Whether ``topic`` is named as an app's dead-letter topic (``<topic>.<group>.dlq``)."""
    return topic.endswith(".dlq") and topic.count(".") >= 2


@dataclass(frozen=True, slots=True)
class RedriveResult:
    """What a redrive did: how many entries went where."""

    redriven: int
    targets: dict[str, int]


class DeadLetterQueue:
    """One dead-letter topic of a transport, with its cursor."""

    def __init__(self, transport: Transport, topic: str) -> None:
        if not is_dlq_topic(topic):
            raise ConfigError(
                f"{topic!r} is not a dead-letter topic (they are named <topic>.<group>.dlq)"
            )
        self.transport = transport
        self.topic = topic

    @property
    def cursor_group(self) -> str:
        return f"eventyard-dlq.{self.topic}"

    async def pending(self, limit: int | None = None) -> list[DeadLetter]:
        """The entries after the cursor, oldest first per partition (the cursor stays)."""
        return [parse_dead_letter(m) for m in await self._peek(limit)]

    async def _peek(self, limit: int | None) -> list[Message]:
        await self.transport.ensure_topic(self.topic)
        receiver = self.transport.receiver([self.topic], self.cursor_group)
        async with receiver:
            return await read_available(receiver, limit)

    async def show(self, partition: int, offset: int) -> DeadLetter:
        """The pending entry at ``partition``/``offset``."""
        for entry in await self.pending():
            if entry.message.partition == partition and entry.message.offset == offset:
                return entry
        raise ConfigError(
            f"no pending dead letter at partition {partition} offset {offset} of {self.topic}"
        )

    async def redrive(self, *, to: str | None = None, limit: int | None = None) -> RedriveResult:
        """Republish pending entries (see the module docstring) and move the cursor past them."""
        return await self._consume(limit, redrive_to=to, republish=True)

    async def purge(self, *, limit: int | None = None) -> int:
        """Move the cursor past the pending entries without republishing them."""
        result = await self._consume(limit, redrive_to=None, republish=False)
        return result.redriven

    async def _consume(
        self, limit: int | None, *, redrive_to: str | None, republish: bool
    ) -> RedriveResult:
        await self.transport.ensure_topic(self.topic)
        receiver = self.transport.receiver([self.topic], self.cursor_group)
        targets: dict[str, int] = {}
        async with receiver:
            messages = await read_available(receiver, limit)
            if republish and messages:
                by_topic: dict[str, list[Outgoing]] = {}
                for message in messages:
                    dead = parse_dead_letter(message)
                    topic = redrive_to or _lane(dead, self.topic)
                    by_topic.setdefault(topic, []).append(
                        redrive_record(dead, to_retry_lane=redrive_to is None)
                    )
                for topic, records in by_topic.items():
                    await self.transport.ensure_topic(topic)
                    await self.transport.publish(topic, records)
                    targets[topic] = len(records)
            await receiver.commit(_next_offsets(messages))
        return RedriveResult(redriven=len(messages), targets=targets)


def _lane(dead: DeadLetter, dlq: str) -> str:
    if dead.original_topic and dead.group:
        return retry_topic(dead.original_topic, dead.group, 0)
    raise ConfigError(
        f"the dead letter at {dlq} partition {dead.message.partition} offset "
        f"{dead.message.offset} has no original topic or group; redrive it with --to TOPIC"
    )


def _next_offsets(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for message in messages:
        tp = (message.topic, message.partition)
        out[tp] = max(out.get(tp, 0), message.offset + 1)
    return out
