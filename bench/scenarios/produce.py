"""In-process produce: `Producer.send_batch` of 500 events at a time into a `Broker` with the
default `interval` durability, against Redis Streams fed by pipelined `XADD` in batches of 500.

eventyard: a `Broker` in a fresh temporary data directory, one topic of one partition with
the broker's default durability (`interval:1000`: acknowledged at once, flushed within a
second), one idempotent `Producer` awaiting `send_batch` of each batch of 500 keyed events in
turn. The clock stops once every batch is acknowledged.

Redis Streams: the same events, each as `XADD stream * k KEY v VALUE`, 500 commands per
redis-py pipeline (no transaction), one round trip per batch, waiting for each reply as the
eventyard producer waits for each acknowledgement. Redis keeps the stream in memory with its
shipped persistence settings (the shared server's are not changed).

Each side runs three times, alternating, on a fresh topic or stream each time; the figure is
the best run's events per second.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.events import EventPool
from bench.harness import (
    Comparison,
    Measurement,
    Scenario,
    Settings,
    Target,
)
from bench.peers.redis_streams import RedisStreams, connect, versus_redis
from bench.scenarios.scratch import scratch_broker
from eventyard.broker import LATEST
from eventyard.client import Producer

__all__ = ["SCENARIO"]

BATCH = 500
TOPIC = "bench-produce"


async def _eventyard(directory: Path, pool: EventPool, total: int) -> float:
    async with scratch_broker(directory, TOPIC) as broker, Producer(broker) as producer:
        started = time.perf_counter()
        for batch in pool.take(total):
            await producer.send_batch(TOPIC, batch)
        elapsed = time.perf_counter() - started
        stored = await broker.list_offset(TOPIC, 0, LATEST)
    if stored != total:
        raise RuntimeError(f"eventyard stored {stored} events, {total} were sent")
    return elapsed


async def _measure(
    settings: Settings, redis: RedisStreams | None, total: int, repeats: int
) -> tuple[list[float], list[float]]:
    """Run each side ``repeats`` times, alternating; return both sides' seconds."""
    pool = EventPool(BATCH, seed=settings.seed)
    eventyard_runs: list[float] = []
    redis_runs: list[float] = []
    for attempt in range(repeats):
        if redis is not None:
            stream = redis.key(f"produce-{attempt}")
            redis_runs.append(redis.produce(stream, pool.take(total)))
            if (stored := redis.length(stream)) != total:
                raise RuntimeError(f"Redis stored {stored} entries, {total} were sent")
            redis.delete(stream)
        directory = settings.workdir / f"produce-{attempt}"
        eventyard_runs.append(await _eventyard(directory, pool, total))
    return eventyard_runs, redis_runs


def run(settings: Settings) -> Measurement:
    total = settings.scale(500_000, 5_000)
    repeats = settings.scale(3, 1)
    peer = "Redis Streams XADD"
    redis, unavailable = connect(settings.redis_url, settings.key_prefix)
    try:
        eventyard_runs, redis_runs = asyncio.run(_measure(settings, redis, total, repeats))
    finally:
        if redis is not None:
            redis.close()
    note = f"{total:,} events of ~200 B in batches of {BATCH}, best of {repeats} runs per side"
    return versus_redis(peer, total, note, redis, unavailable, eventyard_runs, redis_runs)


SCENARIO = Scenario(
    name="produce",
    title="Produce, interval durability, batches of 500",
    target=Target(Comparison.RATIO_AT_LEAST, 3.0),
    run=run,
    method=__doc__ or "",
)
