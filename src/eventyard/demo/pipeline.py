"""Running the whole pipeline: the broker, the stages, the feed, and knowing when it is done.

Two shapes, one set of stages (:mod:`eventyard.demo.stages`):

- **processes** (the default): the pipeline starts ``eventyard serve`` on a free loopback
  port over its data directory, then one worker process per stage
  (``python -m eventyard.demo.worker``) on the Kafka transport, and feeds the market from
  this process. Stopping sends SIGTERM to every worker (each drains and commits) and then to
  the server. A stage can be killed and restarted on its own (:meth:`Pipeline.restart`),
  and more workers started later (:meth:`Pipeline.start_worker`: an alert channel's). The
  workers read the run's :class:`~eventyard.demo.settings.StageSettings` from
  ``<work dir>/settings.json``, which the pipeline writes in both shapes (``eventyard
  deals`` reads the run's buy-boxes there).
- **single process** (``--single-process``): the embedded broker in this process, every
  stage an app on it, the feed beside them.

The feed (:func:`feed`) replays the market in event-time order: ``speed`` market days per
wall-clock second (0: as fast as the pipeline takes them), or ``rate`` events per second
whatever their market times (the load of ``bench/scenarios/demo_latency.py``), batched as a
Kafka producer batches, by lingering (:data:`FEED_LINGER`). The run is done when the feed
has published everything and every stage's group, and the group of each of its delay tiers,
has committed up to the end of its topics (:mod:`eventyard.demo.progress`), twice in a row:
an event waiting in a retry tier is not done.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from eventyard.app import App
from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.broker.groups import GroupConfig
from eventyard.demo.events import DEMO_REGISTRY, ListingChanged
from eventyard.demo.progress import EmbeddedProgress, GroupProgress, KafkaProgress, Progress
from eventyard.demo.settings import StageSettings, write_settings
from eventyard.demo.stageapp import TOPICS, retry_groups
from eventyard.demo.stages import STAGES, build_stage
from eventyard.errors import ConfigError, EventyardError
from eventyard.transports import EmbeddedTransport, Outgoing

__all__ = ["DONE_GROUPS", "FEED_LINGER", "STAGE_TOPICS", "Pipeline", "PipelineConfig", "feed"]

log = logging.getLogger("eventyard.demo")

PARTITIONS = 1
"""Partitions of every demo topic. Each stage group has one consumer, so more partitions
would spread no work; they would only add a record batch per partition to every publish and
fetch, and in processes mode, where the cost of a stage's cycle sets every hop's latency,
three partitions took the listing-to-alert p99 about a quarter higher than one and the p50
about a third (medians of 7 alternating pairs of runs). With one partition every stage also
reads the market in the order the feed sent it (retried events aside)."""
STAGE_TOPICS: dict[str, tuple[str, ...]] = {
    "comps": ("listings",),
    "valuation": ("comped",),
    "scoring": ("valued",),
    "matching": ("deals",),
    "alerts": ("matches",),
    "board": ("deals", "matches", "alerts"),
}
"""The topics each stage's group reads (what its lag is measured over)."""

DONE_GROUPS: dict[str, tuple[str, ...]] = {**STAGE_TOPICS, **retry_groups(STAGE_TOPICS)}
"""What "caught up" is measured over: every stage's group and its delay tiers' groups, so
a run does not end while an event waits in a retry tier."""

DAY_SECONDS = 86_400.0

TIMER_GRAIN = 0.001
"""The shortest sleep the feed asks of the event loop, in seconds. uvloop's timers count
whole milliseconds: a shorter sleep returns at once, and a timer may fire early by part of
a millisecond (its clock is read once per loop turn). So the feed sleeps at least this long
and sleeps again until the time has come (:func:`_sleep_until`)."""


FEED_LINGER = 0.005
"""How long, in seconds, a rate-paced feed lets an event that fell due wait for the events
due after it, so that they share one publish (a Kafka producer's ``linger.ms``; librdkafka's
default is 5 ms too). Every publish starts a cycle of every stage down the pipeline, and a
cycle costs about a millisecond of CPU whatever it carries: at 1,000 events a second,
publishing each event the moment it fell due made about 470 publishes a second and kept
both cores busy. With 5 ms the feed makes about 160, the broker, stages and feed use about
30% less CPU, and the listing-to-alert p99, timed from each event's due time so that the
linger counts, was lower in 17 of 20 alternating pairs of runs (``docs/demo.md``)."""


_MAX_PUBLISH = 500
"""The most events one publish call takes; more due at once go out in several calls."""


_AHEAD = 0.02
"""How early the market-time feed may publish an event, in seconds, with an earlier one."""


@dataclass(frozen=True)
class PipelineConfig:
    data_dir: Path
    settings: StageSettings
    single_process: bool = False
    speed: float = 40.0
    """Market days per second; 0 replays as fast as the pipeline takes it."""
    worker_env: dict[str, str] = field(default_factory=dict)


def _timestamp(listing: ListingChanged) -> float:
    return datetime.fromisoformat(listing.ModificationTimestamp.replace("Z", "+00:00")).timestamp()


async def feed(
    app: App,
    events: Sequence[ListingChanged],
    *,
    speed: float,
    rate: float | None = None,
    linger: float = FEED_LINGER,
    rejects: Sequence[tuple[bytes | None, bytes]] = (),
    on_published: Callable[[int], None] | None = None,
) -> int:
    """Publish ``events`` to ``listings`` in event-time order at ``speed`` days per second.

    ``rate``, when given, replaces the market-time pacing: ``rate`` events per wall-clock
    second, event *i* due at the start plus *i* / ``rate`` seconds whatever its market
    time, so a benchmark can load the pipeline evenly (``speed`` is then ignored). No event
    is published before it falls due. An event then waits up to ``linger`` seconds (as a
    Kafka producer's ``linger.ms``) so that the events falling due meanwhile share its
    publish: every publish takes all the events due by then, and the next one begins with
    the first event due after it. Under ``speed`` the feed publishes the events of the
    next 20 ms in one call, ahead of time, since market-time pacing needs no finer grain.
    ``ConfigError`` if ``rate`` is not positive or ``linger`` is negative.

    ``rejects`` are raw records that failed validation at load time: they are published as
    they are, so the comps stage dead-letters them with the reason, as it would any bad
    record arriving from outside. Returns how many records were published.
    """
    if rate is not None and not rate > 0:
        raise ConfigError(f"feed rate must be a positive number of events a second, not {rate}")
    if not linger >= 0:
        raise ConfigError(f"feed linger must be zero or more seconds, not {linger}")
    published = 0

    async def publish(batch: Sequence[ListingChanged]) -> None:
        nonlocal published
        for start in range(0, len(batch), _MAX_PUBLISH):
            chunk = batch[start : start + _MAX_PUBLISH]
            await app.publish_many("listings", chunk, key=lambda e: e.ListingKey)
            published += len(chunk)
            if on_published is not None:
                on_published(published)

    if rejects:
        await app.transport.publish("listings", [Outgoing(k, v) for k, v in rejects])
        published += len(rejects)
        if on_published is not None:
            on_published(published)
    if rate is not None:
        await _at_rate(events, rate, linger, publish)
    else:
        await _in_market_time(events, speed, publish)
    return published


async def _at_rate(
    events: Sequence[ListingChanged],
    rate: float,
    linger: float,
    publish: Callable[[Sequence[ListingChanged]], Awaitable[None]],
) -> None:
    """``feed`` at ``rate`` events a second: wait until the first unpublished event is due
    and has lingered, then publish it with every event due by then."""
    start = time.monotonic()
    sent = 0
    while sent < len(events):
        await _sleep_until(start + sent / rate + linger)
        elapsed = time.monotonic() - start
        due = min(len(events), max(sent + 1, math.floor(elapsed * rate) + 1))
        await publish(events[sent:due])
        sent = due


async def _in_market_time(
    events: Sequence[ListingChanged],
    speed: float,
    publish: Callable[[Sequence[ListingChanged]], Awaitable[None]],
) -> None:
    """``feed`` at ``speed`` market days a second (0: as fast as publishing goes), each
    publish taking the events due within :data:`_AHEAD` of the first."""
    if not events:
        return
    start_market = _timestamp(events[0])
    start_wall = time.monotonic()
    batch: list[ListingChanged] = []
    for event in events:
        if speed > 0:
            due = (_timestamp(event) - start_market) / DAY_SECONDS / speed
            if due - (time.monotonic() - start_wall) > _AHEAD:
                await publish(batch)
                batch = []
                await _sleep_until(start_wall + due)
        batch.append(event)
    await publish(batch)


async def _sleep_until(deadline: float) -> None:
    """Return at ``deadline`` (a ``time.monotonic()`` time) or later, never before."""
    while (wait := deadline - time.monotonic()) > 0:
        await asyncio.sleep(max(wait, TIMER_GRAIN))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pipeline:
    """The broker, the stage apps or worker processes, and the feed's app."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self._broker: Broker | None = None
        self._apps: dict[str, App] = {}
        self._server: subprocess.Popen[bytes] | None = None
        self._workers: dict[str, subprocess.Popen[bytes]] = {}
        self._worker_args: dict[str, tuple[str, Path]] = {}
        """Worker name -> its stage and settings file (to restart it as it was)."""
        self.bootstrap: str | None = None
        self.progress: Progress | None = None
        self.feed_app: App | None = None

    # -- starting ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the broker, the stages and the feed's app, then freeze the garbage
        collector's view of this process (``gc.freeze``): what exists by then (the market
        to feed, the stages' restored state, the imported libraries) lives as long as the
        run, and a full collection that walks it all stalls every stage of the process by
        a hundred milliseconds or more. Later collections walk only what came after."""
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        config.settings.work_dir.mkdir(parents=True, exist_ok=True)
        write_settings(config.settings, config.settings.settings_path)
        if config.single_process:
            await self._start_in_process()
        else:
            await self._start_processes()
        gc.freeze()

    async def _start_in_process(self) -> None:
        broker_config = BrokerConfig(
            default_durability="interval:200",
            groups=GroupConfig(initial_rebalance_delay_ms=0),
        )
        broker = self._broker = await Broker.open(self.config.data_dir / "broker", broker_config)
        for topic in TOPICS:
            await _ensure(broker, topic)
        self.progress = EmbeddedProgress(broker)
        for name in STAGES:
            app = build_stage(name, EmbeddedTransport(broker), self.config.settings)
            await app.start()
            self._apps[name] = app
        self.feed_app = App(
            EmbeddedTransport(broker), source="eventyard-demo/feed", registry=DEMO_REGISTRY
        )
        await self.feed_app.start()

    async def _start_processes(self) -> None:
        port = _free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        log_path = self.config.settings.work_dir / "serve.log"
        with log_path.open("ab") as log_file:
            self._server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventyard.cli",
                    "serve",
                    "--data-dir",
                    str(self.config.data_dir / "broker"),
                    "--kafka",
                    self.bootstrap,
                    "--fsync",
                    "interval:200",
                ],
                stdout=subprocess.PIPE,
                stderr=log_file,
            )
        assert self._server.stdout is not None
        line = await asyncio.to_thread(self._server.stdout.readline)
        if not line:
            raise EventyardError(f"eventyard serve did not start; see {log_path}")
        from eventyard.transports import KafkaTransport

        self.progress = KafkaProgress(self.bootstrap)
        setup = KafkaTransport(self.bootstrap, partitions=PARTITIONS)
        await setup.start()
        try:
            for topic in TOPICS:
                await setup.ensure_topic(topic, PARTITIONS)
        finally:
            await setup.close()
        for name in STAGES:
            self._spawn(name, name, self.config.settings.settings_path)
        self.feed_app = App(
            KafkaTransport(self.bootstrap, partitions=PARTITIONS),
            source="eventyard-demo/feed",
            registry=DEMO_REGISTRY,
        )
        await self.feed_app.start()

    def _spawn(self, name: str, stage: str, settings_file: Path) -> None:
        assert self.bootstrap is not None
        self._worker_args[name] = (stage, settings_file)
        log_path = self.config.settings.work_dir / f"{name}.log"
        env = {**os.environ, **self.config.worker_env}
        with log_path.open("ab") as log_file:
            self._workers[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventyard.demo.worker",
                    stage,
                    "--bootstrap",
                    self.bootstrap,
                    "--settings",
                    str(settings_file),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                env=env,
            )

    def start_worker(self, name: str, stage: str, settings: StageSettings) -> None:
        """Start one more worker process, ``name``, running ``stage`` with ``settings``
        (processes mode): how an alert channel added later gets a process of its own. Its
        log is ``<work dir>/<name>.log``; :meth:`stop_worker` stops it."""
        if self.bootstrap is None:
            raise ConfigError("worker processes need the pipeline started in processes mode")
        if name in self._workers:
            raise ConfigError(f"a worker named {name!r} is already running")
        path = write_settings(settings, self.config.settings.work_dir / f"settings-{name}.json")
        self._spawn(name, stage, path)

    async def stop_worker(self, name: str) -> None:
        """SIGTERM worker ``name`` and wait for it (it drains, commits and leaves its group);
        nothing if it is not running (the pipeline stopped it already)."""
        process = self._workers.pop(name, None)
        if process is None:
            return
        process.terminate()
        await asyncio.to_thread(process.wait)

    def kill(self, name: str) -> None:
        """SIGKILL the worker process of stage ``name`` (processes mode only)."""
        process = self._workers.pop(name)
        process.kill()
        process.wait()

    def restart(self, name: str) -> None:
        """Start worker ``name`` again (after :meth:`kill`), as it was started."""
        self._spawn(name, *self._worker_args[name])

    def worker_pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._workers.items()}

    # -- progress ------------------------------------------------------------------------

    async def stage_progress(self) -> list[GroupProgress]:
        assert self.progress is not None
        return await self.progress.groups(STAGE_TOPICS)

    async def wait_ready(self, poll: float = 0.1, timeout: float = 120.0) -> None:
        """Wait until every stage and delay tier has joined its group (:data:`DONE_GROUPS`
        stable, each with a member): from then on what the feed publishes is read at once.
        In processes mode this is the workers' start (imports, restoring state, the
        training process); ``EventyardError`` if a worker exits or time runs out."""
        assert self.progress is not None
        deadline = time.monotonic() + timeout
        while not await self.progress.ready(DONE_GROUPS):
            if time.monotonic() > deadline:
                raise EventyardError("the pipeline's stages did not start in time")
            self._check_workers()
            await asyncio.sleep(poll)

    async def wait_done(
        self,
        on_tick: Callable[[list[GroupProgress]], Awaitable[None] | None] | None = None,
        poll: float = 0.25,
        timeout: float = 600.0,
    ) -> None:
        """Wait until every stage has committed to the end of its topics, and every delay
        tier of every stage to the end of its tier's topic (:data:`DONE_GROUPS`), twice in a
        row. ``on_tick`` gets the stages' progress (not the tiers') at each poll."""
        assert self.progress is not None
        deadline = time.monotonic() + timeout
        settled = 0
        while settled < 2:
            if time.monotonic() > deadline:
                raise EventyardError("the pipeline did not catch up in time")
            self._check_workers()
            groups = await self.progress.groups(DONE_GROUPS)
            if on_tick is not None:
                result = on_tick([g for g in groups if g.group in STAGE_TOPICS])
                if result is not None:
                    await result
            settled = settled + 1 if all(g.lag == 0 for g in groups) else 0
            await asyncio.sleep(poll)

    def _check_workers(self) -> None:
        for name, process in self._workers.items():
            code = process.poll()
            if code is not None:
                log_path = self.config.settings.work_dir / f"{name}.log"
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                raise EventyardError(
                    f"the {name} stage exited with code {code}: {tail[0]} (log: {log_path})"
                )

    # -- stopping ------------------------------------------------------------------------

    async def stop(self) -> None:
        if self.feed_app is not None:
            await self.feed_app.stop()
        for app in self._apps.values():
            await app.stop()
        if self.progress is not None:
            await self.progress.close()
        for process in self._workers.values():
            process.terminate()
        for process in self._workers.values():
            await asyncio.to_thread(process.wait)
        if self._server is not None:
            self._server.terminate()
            await asyncio.to_thread(self._server.wait)
            if self._server.stdout is not None:
                self._server.stdout.close()
        if self._broker is not None:
            await self._broker.close()


async def _ensure(broker: Broker, topic: str) -> None:
    if topic not in {t.name for t in broker.list_topics()}:
        await broker.create_topic(topic, TopicConfig(partitions=PARTITIONS))
