"""What every stage of the pipeline is built on: its app, its retry policy, its topics'
history.

- :class:`StageApp` is an :class:`~eventyard.app.App` on the demo's registry that also
  closes what its handlers opened (SQLite files, alert files, the training process) when it
  stops;
- :data:`RETRY` is every stage's retry policy, and :func:`retry_groups` the delay-tier
  groups and topics it gives a stage (what "caught up" must count);
- :func:`history` reads what a topic held when a stage started, which is how the stateful
  stages (comps, valuation) rebuild their closed sales after a restart.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from eventyard.app import App, RetryPolicy, retry_topic
from eventyard.demo.events import DEMO_REGISTRY
from eventyard.errors import EventDecodeError
from eventyard.events import decode
from eventyard.transports import Transport

__all__ = ["RETRY", "TOPICS", "StageApp", "history", "retry_groups"]

T = TypeVar("T")

TOPICS = ("listings", "comped", "valued", "models", "deals", "matches", "alerts")
"""The pipeline's topics, created before any stage starts."""

RETRY = RetryPolicy(max_attempts=4, initial_delay=0.2, tiers=(2.0,))
"""Every stage's retry policy: short retries in place, then one two-second delay tier (one
retry worker per subscription rather than three)."""


def retry_groups(groups: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """The delay tiers of stage ``groups`` (group -> the topics it reads) under
    :data:`RETRY`: group ``<group>.retry.<n>`` reading ``<topic>.<group>.retry.<n>``, the
    names :class:`~eventyard.app.App` gives them. An event waiting there is not finished."""
    return {
        f"{group}.retry.{tier}": tuple(retry_topic(topic, group, tier) for topic in topics)
        for group, topics in groups.items()
        for tier in range(len(RETRY.tiers))
    }


class StageApp(App):
    """An :class:`App` that also closes what its handlers opened (files, SQLite) on stop.

    In a worker process the exit closes them anyway; in ``--single-process`` mode, or for
    an alert channel added to a running pipeline, the process goes on after the stage stops.
    """

    def __init__(self, transport: Transport, name: str) -> None:
        super().__init__(transport, source=f"eventyard-demo/{name}", registry=DEMO_REGISTRY)
        self._closers: list[Callable[[], Awaitable[None] | None]] = []

    def closing(self, closer: Callable[[], Awaitable[None] | None]) -> None:
        """Call ``closer`` (sync or async, idempotent) after the app stops."""
        self._closers.append(closer)

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            for closer in reversed(self._closers):
                result = closer()
                if result is not None:
                    await result


async def history(transport: Transport, topic: str, event_type: type[T]) -> list[T]:
    """The ``event_type`` events on ``topic`` written before now (to rebuild a stage's state).

    Read by a throwaway group, so the stage's own committed offsets are untouched. Records
    written from now on are left to the stage's subscription: reading until the topic runs
    dry would race a feed that is already writing, and hold the stage back as long as it
    writes. Records of other types and undecodable ones (the stage dead-letters those) are
    skipped.
    """
    await transport.ensure_topic(topic)
    until_ms = int(time.time() * 1000)
    decoder = DEMO_REGISTRY.decoder(event_type)
    receiver = transport.receiver([topic], f"eventyard-demo-restore-{uuid.uuid4().hex[:12]}")
    out: list[T] = []
    done: set[tuple[str, int]] = set()
    async with receiver:
        deadline = time.monotonic() + 30.0
        while not receiver.settled() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        while True:
            batch = await receiver.fetch(0.1, 10_000)
            if not batch:
                break
            for message in batch:
                tp = (message.topic, message.partition)
                if message.timestamp >= until_ms:
                    done.add(tp)
                if tp in done:
                    continue
                try:
                    envelope = decode(message.value, message.headers, message.key)
                    if envelope is not None:
                        out.append(decoder(envelope))
                except EventDecodeError:
                    continue
            assigned = receiver.assignment()
            if assigned and done >= assigned:
                break
    return out
