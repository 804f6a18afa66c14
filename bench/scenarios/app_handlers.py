"""The application layer: an `App` on the `EmbeddedTransport` with a one-event no-op async
handler on a typed msgspec event, against FastStream's Redis Streams subscriber with a no-op
handler on a pydantic model (one message per call, and `batch=True`).

Both sides get the same generated events (about 200 bytes of JSON each), pre-loaded before
the clock starts. eventyard: a fresh data directory, `App(EmbeddedTransport(dir))` with one
subscription (`@app.subscribe(topic, group=...)`, default settings: `max_in_flight` 1024, 32
key lanes), its handler `async def handle(event: Listing) -> None` counting calls; the events
are published beforehand with `App.publish_many` in batches of 500, each as a CloudEvent
(structured mode, the listing's key as partition key, its `data` as the typed event) on a
one-partition topic with the broker's default durability. The clock runs from `app.start()`
(the transport, the group join with its initial rebalance delay of 300 ms, the first fetch)
until `app.wait_idle()` returns: every event fetched, decoded into the Struct, handled and
its offset committed.

FastStream: a new stream filled with pipelined `XADD`s (500 per round trip) of exactly the
message `RedisBroker.publish(body, stream=...)` writes (the JSON in FastStream's binary
message format, with a `content-type: application/json` header), a consumer group created at
the start of the stream, then a `RedisBroker` (per-message logging off) with one subscriber,
`StreamSub(stream, group=..., consumer=...)`, whose no-op handler takes a pydantic model of
the event, validated by FastStream through fast-depends. FastStream acknowledges each message
(`XACK`) after its handler returns. The clock runs from `broker.start()` until the handler has
seen every event and `XPENDING` reports none unacknowledged. It runs once one message per
handler call and once with `StreamSub(..., batch=True, max_records=500)` (a `list[Listing]`
handler, one `XACK` per batch); the one-message mode handles a tenth of the events (it is
an order of magnitude slower, and its rate is steady well before that).

Each side runs three times, alternating, on a fresh topic or stream each time; the figure is
the best run's events per second. The first row judges eventyard against the issue's absolute
target (150k events/s, FastStream's one-message mode beside it), the second against three
times FastStream's batch mode.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from bench.events import Event, generate
from bench.harness import (
    Comparison,
    Figure,
    Measurement,
    PeerFigure,
    Scenario,
    Settings,
    Target,
    rate,
    run_details,
)
from bench.peers import faststream_redis
from bench.peers.redis_streams import client_description
from eventyard.app import App
from eventyard.events import EventRegistry
from eventyard.transports import EmbeddedTransport

__all__ = [
    "BATCH_SCENARIO",
    "LATENCY_SCENARIO",
    "SCENARIO",
    "HandlerRun",
    "Listing",
    "Stamped",
    "eventyard_handlers",
    "eventyard_latencies",
    "listings",
    "percentile",
    "redis_latencies",
]

TOPIC = "bench-listings"
GROUP = "bench-noop"
BATCH = 500
"""Events per `publish_many` call (and per FastStream batch) while pre-loading."""

REGISTRY = EventRegistry()
"""The bench's own registry, so its event types never meet an application's."""


@REGISTRY.event("listing.updated", version=1)
class Listing(msgspec.Struct, frozen=True, gc=False):
    """A generated event's ``data``: what eventyard's handler receives, decoded."""

    price: int
    beds: int
    city: str
    street: str


@REGISTRY.event("listing.stamped", version=1)
class Stamped(msgspec.Struct, frozen=True, gc=False):
    """A listing with its sequence number in the latency run, which finds its send time."""

    seq: int
    price: int
    beds: int
    city: str
    street: str


def listings(events: Sequence[Event]) -> list[tuple[bytes, Listing]]:
    """Each generated event as eventyard publishes it: its key and its typed ``data``."""
    return [
        (event.key, msgspec.convert(msgspec.json.decode(event.value)["data"], Listing))
        for event in events
    ]


# -- throughput ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HandlerRun:
    """One eventyard run, in seconds from ``app.start()``: the first event handled, the last
    one handled, and ``wait_idle()`` returning (everything committed)."""

    first: float
    handled: float
    committed: float
    count: int


async def eventyard_handlers(
    directory: Path, events: Sequence[tuple[bytes, Listing]], total: int
) -> HandlerRun:
    """Pre-publish ``total`` events (cycling ``events``), then time an App handling them all.

    ``directory`` is created and removed here; ``total`` must be a multiple of 500.
    """
    if total % BATCH:
        raise ValueError(f"total {total} is not a multiple of {BATCH}")
    app = App(EmbeddedTransport(directory), source="bench", registry=REGISTRY)
    count = 0
    first = last = 0.0

    @app.subscribe(TOPIC, group=GROUP)
    async def handle(event: Listing) -> None:
        nonlocal count, first, last
        count += 1
        if count == 1:
            first = time.perf_counter()
        elif count == total:
            last = time.perf_counter()

    keys = {id(listing): key for key, listing in events}
    try:
        for start in range(0, total, BATCH):
            batch = [events[(start + i) % len(events)][1] for i in range(BATCH)]
            await app.publish_many(TOPIC, batch, key=lambda listing: keys[id(listing)])
        started = time.perf_counter()
        async with app:
            await app.wait_idle(timeout=None)
            committed = time.perf_counter()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if count != total:
        raise RuntimeError(f"eventyard handled {count} events, {total} were published")
    return HandlerRun(first - started, last - started, committed - started, count)


def _throughput(
    settings: Settings,
    batch: bool,
) -> tuple[list[HandlerRun], list[float], int, int, str]:
    """Run both sides ``repeats`` times, alternating; FastStream's side in ``batch`` mode or
    one message per call. Returns eventyard's runs, the peer's seconds (empty without a peer),
    both totals and why there is no peer."""
    total = settings.scale(300_000, 5_000)
    peer_total = total if batch else settings.scale(30_000, 500)
    repeats = settings.scale(3, 1)
    events = generate(2_000, settings.seed)
    typed = listings(events)
    peer, unavailable = faststream_redis.connect(settings.redis_url, settings.key_prefix)
    eventyard_runs: list[HandlerRun] = []
    peer_runs: list[float] = []
    try:
        for attempt in range(repeats):
            if peer is not None:
                name = f"app-{'batch' if batch else 'one'}-{attempt}"
                peer_runs.append(peer.handle(name, events, peer_total, batch=batch))
            directory = settings.workdir / f"app-handlers-{attempt}"
            eventyard_runs.append(asyncio.run(eventyard_handlers(directory, typed, total)))
    finally:
        if peer is not None:
            peer.close()
    return eventyard_runs, peer_runs, total, peer_total, unavailable


def _throughput_runner(batch: bool) -> Callable[[Settings], Measurement]:
    mode = "batch=True, max_records=500" if batch else "one message per call"

    def run(settings: Settings) -> Measurement:
        runs, peer_runs, total, peer_total, unavailable = _throughput(settings, batch)
        best = min(runs, key=lambda r: r.committed)
        steady = (total - 1) / (best.handled - best.first)
        notes = [
            f"{total:,} events, best of {len(runs)} runs, from app.start() to wait_idle() "
            f"(handled and committed); that run's first event was handled at "
            f"{best.first * 1000:.0f} ms (group join), the last at {best.handled:.2f} s, "
            f"steady handling {steady / 1000:,.0f}k events/s",
        ]
        if peer_runs:
            notes.append(
                f"FastStream {mode}: {peer_total:,} events, pydantic model, logger off; "
                f"{faststream_redis.describe()}"
            )
        peer_name = f"FastStream Redis Streams, {mode}"
        return Measurement(
            figure=rate(total, [r.committed for r in runs]),
            peer=PeerFigure(
                peer_name, rate(peer_total, peer_runs) if peer_runs else None, unavailable
            ),
            notes=tuple(notes),
            details={
                **run_details(eventyard=[r.committed for r in runs], faststream=peer_runs),
                "eventyard_steady_events_per_s": steady,
                "eventyard_first_handled_s": best.first,
            },
        )

    return run


# -- latency ------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.99 for p99) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-int(fraction * 1_000_000) * len(ordered) // 1_000_000))
    return ordered[min(rank, len(ordered)) - 1]


def _stamped(typed: Sequence[tuple[bytes, Listing]], seq: int) -> tuple[bytes, Stamped]:
    key, listing = typed[seq % len(typed)]
    return key, Stamped(seq, listing.price, listing.beds, listing.city, listing.street)


async def eventyard_latencies(
    directory: Path, typed: Sequence[tuple[bytes, Listing]], per_second: int, count: int
) -> list[float]:
    """Publish ``count`` events one by one at ``per_second`` through an App to its own
    handler; return each event's seconds from the ``publish`` call to the handler."""
    app = App(EmbeddedTransport(directory), source="bench", registry=REGISTRY)
    sent = [0.0] * count
    latencies = [0.0] * count
    received = 0
    done = asyncio.Event()

    @app.subscribe(TOPIC, group=GROUP)
    async def handle(event: Stamped) -> None:
        nonlocal received
        latencies[event.seq] = time.perf_counter() - sent[event.seq]
        received += 1
        if received == count:
            done.set()

    try:
        async with app:
            await app.publish(TOPIC, _stamped(typed, 0)[1])  # creates the topic
            await _joined(app)
            received = 0
            started = time.perf_counter()
            for seq in range(count):
                delay = started + seq / per_second - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                key, event = _stamped(typed, seq)
                sent[seq] = time.perf_counter()
                await app.publish(TOPIC, event, key=key)
            await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return latencies


async def _joined(app: App, timeout: float = 30.0) -> None:
    """Wait until the warm-up event was handled: the group has joined and fetches."""
    deadline = time.monotonic() + timeout
    while not app.stats(GROUP).handled:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the app handled nothing within {timeout} s")
        await asyncio.sleep(0.005)


def redis_latencies(
    url: str, stream: str, events: Sequence[Event], per_second: int, count: int
) -> list[float]:
    """``XADD`` ``count`` events at ``per_second`` from this process to a consumer process
    blocked in ``XREADGROUP``; return each one's seconds from the ``XADD`` call until the
    consumer has it decoded. The stream is deleted afterwards."""
    import redis

    client: Any = redis.Redis.from_url(url, socket_timeout=30)
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    ready = context.Event()
    try:
        client.execute_command("XGROUP", "CREATE", stream, GROUP, "$", "MKSTREAM")
        consumer = context.Process(
            target=_redis_consumer, args=(url, stream, count, ready, results), daemon=True
        )
        consumer.start()
        try:
            if not ready.wait(30):
                raise RuntimeError("the Redis consumer process did not start")
            time.sleep(0.1)  # let it block in XREADGROUP
            started = time.perf_counter()
            for seq in range(count):
                delay = started + seq / per_second - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                value = events[seq % len(events)].value
                client.execute_command(
                    "XADD", stream, "*", "s", seq, "t", time.perf_counter_ns(), "v", value
                )
            latencies: list[float] = results.get(timeout=60)
        finally:
            consumer.join(timeout=10)
            if consumer.is_alive():
                consumer.kill()
    finally:
        client.delete(stream)
        client.close()
    if len(latencies) != count:
        raise RuntimeError(f"the Redis consumer received {len(latencies)} of {count} events")
    return latencies


def _redis_consumer(url: str, stream: str, count: int, ready: Any, results: Any) -> None:
    """The consumer process: a blocking ``XREADGROUP`` loop acknowledging each batch with
    the next read; each entry's value is decoded into the Struct before its time is taken."""
    import redis

    client: Any = redis.Redis.from_url(url, socket_timeout=30)
    decode = msgspec.json.Decoder().decode
    latencies = [0.0] * count
    received = 0
    pending: list[bytes] = []
    idle_since = time.monotonic()
    ready.set()
    while received < count and time.monotonic() - idle_since < 10:
        pipe = client.pipeline(transaction=False)
        if pending:
            pipe.execute_command("XACK", stream, GROUP, *pending)
        pipe.execute_command(
            "XREADGROUP", "GROUP", GROUP, "c", "COUNT", 100, "BLOCK", 1000, "STREAMS", stream, ">"
        )
        reply = pipe.execute()[-1]
        pending = []
        if not reply:
            continue
        idle_since = time.monotonic()
        for entry_id, fields in reply[0][1]:
            msgspec.convert(decode(fields[b"v"])["data"], Listing)
            now = time.perf_counter_ns()
            latencies[int(fields[b"s"])] = (now - int(fields[b"t"])) / 1e9
            pending.append(entry_id)
            received += 1
    client.close()
    results.put(latencies[:received])


def _latency(settings: Settings) -> Measurement:
    per_second = 5_000
    count = settings.scale(4 * per_second, per_second // 5)
    repeats = settings.scale(3, 1)
    warmup = count // 20
    events = generate(2_000, settings.seed)
    typed = listings(events)
    peer = "Redis Streams XADD to XREADGROUP BLOCK (redis-py)"
    version, unavailable = _redis_server(settings.redis_url)
    eventyard_p: list[tuple[float, float]] = []
    redis_p: list[tuple[float, float]] = []
    for attempt in range(repeats):
        if not unavailable:
            stream = f"{settings.key_prefix}app-latency-{attempt}-{uuid.uuid4().hex[:8]}"
            measured = redis_latencies(settings.redis_url, stream, events, per_second, count)
            redis_p.append(_p50_p99(measured[warmup:]))
        directory = settings.workdir / f"app-latency-{attempt}"
        measured = asyncio.run(eventyard_latencies(directory, typed, per_second, count))
        eventyard_p.append(_p50_p99(measured[warmup:]))
    best = min(eventyard_p, key=lambda p: p[1])
    notes = [
        f"{count:,} events published one by one at {per_second:,}/s, the first {warmup:,} "
        f"dropped as warm-up, best p99 of {repeats} runs per side; eventyard p50 "
        f"{best[0]:.3f} ms, p99 {best[1]:.3f} ms (App.publish to handler, one process)"
    ]
    peer_figure = None
    if redis_p:
        redis_best = min(redis_p, key=lambda p: p[1])
        peer_figure = Figure(redis_best[1], "ms")
        notes.append(
            f"Redis p50 {redis_best[0]:.3f} ms, p99 {redis_best[1]:.3f} ms (XADD from this "
            f"process, XREADGROUP COUNT 100 BLOCK in a consumer process, value decoded); "
            f"Redis {version}, {client_description()}"
        )
    details = {f"eventyard_run_{i}_p50_ms": p50 for i, (p50, _) in enumerate(eventyard_p)}
    details |= {f"eventyard_run_{i}_p99_ms": p99 for i, (_, p99) in enumerate(eventyard_p)}
    details |= {f"redis_run_{i}_p50_ms": p50 for i, (p50, _) in enumerate(redis_p)}
    details |= {f"redis_run_{i}_p99_ms": p99 for i, (_, p99) in enumerate(redis_p)}
    return Measurement(
        figure=Figure(best[1], "ms"),
        peer=PeerFigure(peer, peer_figure, unavailable),
        notes=tuple(notes),
        details=details,
    )


def _p50_p99(latencies: Sequence[float]) -> tuple[float, float]:
    return percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000


def _redis_server(url: str) -> tuple[str, str]:
    """The Redis server's version, and ``""``; or ``""`` and why the peer cannot run."""
    try:
        import redis
    except ImportError:
        return "", "redis-py is not installed (pip install redis)"
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        info = client.info("server")
    except (redis.RedisError, OSError) as exc:
        return "", f"Redis at {url} is unreachable ({exc})"
    finally:
        client.close()
    return str(info.get("redis_version", "?")), ""


_BATCH_METHOD = """The same eventyard measurement as the one-event handler scenario (the App on
the embedded transport, a one-event no-op async handler on a typed msgspec Struct, from
`app.start()` until `wait_idle()` has everything handled and committed), judged against
FastStream's Redis Streams subscriber in its fastest mode: `StreamSub(stream, group=...,
consumer=..., batch=True, max_records=500)`, a handler receiving `list[Listing]` (pydantic),
on the same number of the same events, pre-loaded with pipelined `XADD`, timed from
`broker.start()` until every event is handled and acknowledged. eventyard keeps one-event
handlers; the target is three times FastStream's batch rate. Best of three alternating runs
per side.
"""

_LATENCY_METHOD = """Publish-to-handler latency at a paced 5,000 events/s for four seconds.

eventyard: an `App` on a fresh `EmbeddedTransport` with one subscription whose async handler
takes a typed Struct (a listing plus a sequence number) and records the time; the publisher,
in the same process and event loop, calls `await app.publish(topic, event, key=...)` once per
event on a schedule of 5,000 per second (asyncio's timer resolution is a millisecond, so the
events of each millisecond go out back to back), taking the time just before each call. The
clock difference is the latency: envelope encode, produce and acknowledgement, the
subscription's fetch, envelope and typed decode, lane dispatch. A warm-up event is handled
first, so the group join is not in it.

Redis Streams: the publisher calls `XADD stream * s SEQ t NS v VALUE` with redis-py on the
same schedule (`time.sleep` pacing), stamping the time in the entry; a consumer in its own
process (as a Redis consumer is a service of its own) loops on `XREADGROUP COUNT 100 BLOCK
1000` with the previous batch's `XACK` pipelined in front, decodes each value into the same
Struct, and takes the time (`perf_counter` is the system-wide monotonic clock, so the two
processes' times compare).

The first 5% of each run is dropped as warm-up; each side runs three times, alternating; the
figure is the best run's p99 (the notes give its p50).
"""

SCENARIO = Scenario(
    name="app-handlers",
    title="App: one-event no-op handler, embedded",
    target=Target(Comparison.AT_LEAST, 150_000, "events/s"),
    run=_throughput_runner(batch=False),
    method=__doc__ or "",
)

BATCH_SCENARIO = Scenario(
    name="app-vs-batch",
    title="App one-event handler vs FastStream batch",
    target=Target(Comparison.RATIO_AT_LEAST, 3.0),
    run=_throughput_runner(batch=True),
    method=_BATCH_METHOD,
)

LATENCY_SCENARIO = Scenario(
    name="app-latency",
    title="App publish-to-handler p99 at 5k events/s",
    target=Target(Comparison.BELOW, 1.0, "ms"),
    run=_latency,
    method=_LATENCY_METHOD,
)
