"""Durable produce: 8 concurrent producers (asyncio tasks, each its own idempotent `Producer`)
sending batches of 500 events to a topic with `always` durability.

Under `always` a batch is acknowledged only after an fsync that started after it was
appended; the partition runs one fsync at a time and each covers every batch appended while
the previous one ran (group commit), so concurrent producers share fsyncs. The topic has one
partition, so all eight producers meet in one log and one fsync stream. Each producer sends
its share in turn (awaiting each acknowledgement); the clock runs from the first send to the
last acknowledgement, best of three runs on a fresh broker each.

No peer runs this one: the comparable Redis setting (`appendfsync always`) is server-wide and
the shared Redis server is not reconfigured, so eventyard's figure is judged against the
issue's absolute target.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from bench.events import EventPool
from bench.harness import (
    Comparison,
    Measurement,
    PeerFigure,
    Scenario,
    Settings,
    Target,
    rate,
    run_details,
)
from bench.scenarios.scratch import scratch_broker
from eventyard.broker import LATEST
from eventyard.client import Producer

__all__ = ["SCENARIO"]

BATCH = 500
PRODUCERS = 8
TOPIC = "bench-always"


async def _send_all(producer: Producer, batches: Sequence[Sequence[tuple[bytes, bytes]]]) -> None:
    for batch in batches:
        await producer.send_batch(TOPIC, batch)


async def _once(directory: Path, pool: EventPool, share: int) -> float:
    async with scratch_broker(directory, TOPIC, durability="always") as broker:
        producers = [Producer(broker) for _ in range(PRODUCERS)]
        work = [list(pool.take(share)) for _ in producers]
        try:
            started = time.perf_counter()
            await asyncio.gather(*(_send_all(p, w) for p, w in zip(producers, work, strict=True)))
            elapsed = time.perf_counter() - started
        finally:
            for producer in producers:
                await producer.close()
        durable = await broker.list_offset(TOPIC, 0, LATEST)
    if durable != share * PRODUCERS:
        raise RuntimeError(f"{durable} events are durable, {share * PRODUCERS} were acknowledged")
    return elapsed


async def _measure(settings: Settings, share: int, repeats: int) -> list[float]:
    pool = EventPool(BATCH, seed=settings.seed)
    return [
        await _once(settings.workdir / f"always-{attempt}", pool, share)
        for attempt in range(repeats)
    ]


def run(settings: Settings) -> Measurement:
    share = BATCH * settings.scale(100, 2)
    repeats = settings.scale(3, 1)
    runs = asyncio.run(_measure(settings, share, repeats))
    total = share * PRODUCERS
    return Measurement(
        figure=rate(total, runs),
        peer=PeerFigure("Redis appendfsync always", None, "not run (shared server kept as is)"),
        notes=(
            f"{PRODUCERS} producers x {share:,} events in batches of {BATCH}, one partition, "
            f"durability always (group-commit fsync), best of {repeats} runs",
        ),
        details=run_details(eventyard=runs),
    )


SCENARIO = Scenario(
    name="always",
    title=f"Produce, always durability, {PRODUCERS} producers x {BATCH}",
    target=Target(Comparison.AT_LEAST, 300_000, "events/s"),
    run=run,
    method=__doc__ or "",
)
