"""In-process consume, every stored event read and its value touched, against Redis Streams
read by a consumer group with `XREADGROUP COUNT 500` and pipelined `XACK`.

Before the clock starts, both sides hold the same events: eventyard a one-partition topic
filled by `Producer.send_batch` in batches of 500, Redis a stream filled by pipelined `XADD`.

eventyard: `Broker.fetch_many` from offset 0 to the end with the broker's default partition
fetch size (1 MiB of whole batches), each response decoded with `records.decode_batches` and
every record's value touched (its length summed). This is the read path under every consumer.

Redis Streams: a new consumer group reads the stream from the start, `XREADGROUP COUNT 500`
per round trip with the previous batch's `XACK` pipelined in front of it, every value touched
the same way.

Each side reads everything three times (a new group each time on Redis), the sides
alternating; the figure is the best run's events per second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

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
from eventyard.broker import Broker, FetchRequest
from eventyard.client import Consumer, Producer
from eventyard.records import decode_batches

__all__ = ["CONSUMER_SCENARIO", "SCENARIO"]

BATCH = 500
TOPIC = "bench-consume"

Reader = Callable[[Broker, int, str], Awaitable[tuple[float, int, int]]]
"""Reads ``total`` events as group ``group``; returns seconds, events and value bytes."""


async def _fetch_all(broker: Broker, total: int, group: str) -> tuple[float, int, int]:
    """The fetch path: ``fetch_many`` and ``decode_batches`` (no group: ``group`` unused)."""
    offset = count = value_bytes = 0
    started = time.perf_counter()
    while offset < total:
        (result,) = await broker.fetch_many([FetchRequest(TOPIC, 0, offset)])
        if result.error is not None:
            raise result.error
        records = decode_batches(result.records)
        for record in records:
            value_bytes += len(record.value or b"")
        count += len(records)
        offset = records[-1].offset + 1
    return time.perf_counter() - started, count, value_bytes


async def _consume_all(broker: Broker, total: int, group: str) -> tuple[float, int, int]:
    """The client API: ``Consumer.getmany`` in a group, ``commit`` after each."""
    consumer = Consumer(broker, TOPIC, group_id=group, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await _joined(consumer)
        count = value_bytes = 0
        started = time.perf_counter()
        while count < total:
            fetched = await consumer.getmany(timeout_ms=1000)
            for records in fetched.values():
                for record in records:
                    value_bytes += len(record.value or b"")
                count += len(records)
            await consumer.commit()
        return time.perf_counter() - started, count, value_bytes
    finally:
        await consumer.stop()


async def _joined(consumer: Consumer, timeout: float = 30.0) -> None:
    """Wait until the group assigned the partition (the initial rebalance delay is not read
    throughput, as creating the Redis group is not)."""
    deadline = time.monotonic() + timeout
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no partition assigned within {timeout} s")
        await asyncio.sleep(0.005)


def _checked(side: str, total: int, result: tuple[float, int, int]) -> float:
    seconds, count, value_bytes = result
    if count != total or not value_bytes:
        raise RuntimeError(f"{side} returned {count} events, {total} were stored")
    return seconds


async def _measure(
    settings: Settings, reader: Reader, redis: RedisStreams | None, total: int, repeats: int
) -> tuple[list[float], list[float]]:
    """Fill both sides, then read each ``repeats`` times, alternating; return both runs."""
    pool = EventPool(BATCH, seed=settings.seed)
    eventyard_runs: list[float] = []
    redis_runs: list[float] = []
    stream = redis.key("consume") if redis is not None else ""
    if redis is not None:
        redis.produce(stream, pool.take(total))
    async with scratch_broker(settings.workdir / "consume", TOPIC) as broker:
        async with Producer(broker) as producer:
            for batch in pool.take(total):
                await producer.send_batch(TOPIC, batch)
        for attempt in range(repeats):
            group = f"bench-{attempt}"
            if redis is not None:
                redis_runs.append(_checked("Redis", total, redis.consume(stream, group, BATCH)))
            eventyard_runs.append(_checked("eventyard", total, await reader(broker, total, group)))
    return eventyard_runs, redis_runs


def _runner(reader: Reader, what: str) -> Callable[[Settings], Measurement]:
    def run(settings: Settings) -> Measurement:
        total = settings.scale(300_000, 5_000)
        repeats = settings.scale(3, 1)
        peer = "Redis Streams XREADGROUP + XACK"
        redis, unavailable = connect(settings.redis_url, settings.key_prefix)
        try:
            eventyard_runs, redis_runs = asyncio.run(
                _measure(settings, reader, redis, total, repeats)
            )
        finally:
            if redis is not None:
                redis.close()
        note = f"{what}; {total:,} events, best of {repeats} full reads per side"
        return versus_redis(peer, total, note, redis, unavailable, eventyard_runs, redis_runs)

    return run


_CONSUMER_METHOD = """The same setup and the same Redis side as the fetch-path consume scenario,
with eventyard read through the client API: a `Consumer` in a new consumer group with
`auto_offset_reset="earliest"`, `getmany()` until every event has been returned, every value
touched, and `commit()` after each `getmany()`, as Redis acknowledges each batch with `XACK`.
The clock starts once the group has assigned the partition (its initial rebalance delay is not
read throughput, as creating the Redis group is not). Best of three runs per side, a new group
each time, the sides alternating.
"""

SCENARIO = Scenario(
    name="consume",
    title="Consume: fetch_many + decode_batches",
    target=Target(Comparison.RATIO_AT_LEAST, 2.0),
    run=_runner(_fetch_all, "Broker.fetch_many + records.decode_batches, 1 MiB fetches"),
    method=__doc__ or "",
)

CONSUMER_SCENARIO = Scenario(
    name="consumer",
    title="Consume: Consumer.getmany, commit each",
    target=Target(Comparison.RATIO_AT_LEAST, 2.0),
    run=_runner(_consume_all, "Consumer.getmany + commit() per getmany, consumer group"),
    method=_CONSUMER_METHOD,
)
