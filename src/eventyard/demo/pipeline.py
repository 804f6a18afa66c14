"""Running the whole pipeline: the broker, the stages, the feed, and knowing when it is done.

Two shapes, one set of stages (:mod:`eventyard.demo.stages`):

- **processes** (the default): the pipeline starts ``eventyard serve`` on a free loopback
  port over its data directory, then one worker process per stage
  (``python -m eventyard.demo.worker``) on the Kafka transport, and feeds the market from
  this process. Stopping sends SIGTERM to every worker (each drains and commits) and then to
  the server. A stage can be killed and restarted on its own (:meth:`Pipeline.restart`).
- **single process** (``--single-process``): the embedded broker in this process, every
  stage an app on it, the feed beside them.

The feed (:func:`feed`) replays the market in event-time order: ``speed`` market days per
wall-clock second (0: as fast as the pipeline takes them), or ``rate`` events per second
whatever their market times (the load of ``bench/scenarios/demo_latency.py``). The run is
done when the feed has published everything and every stage's group has committed up to the
end of its topics (:mod:`eventyard.demo.progress`), twice in a row.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from eventyard.app import App
from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.broker.groups import GroupConfig
from eventyard.demo.events import DEMO_REGISTRY, ListingChanged
from eventyard.demo.progress import EmbeddedProgress, GroupProgress, KafkaProgress, Progress
from eventyard.demo.stages import STAGES, TOPICS, StageSettings, build_stage
from eventyard.errors import ConfigError, EventyardError
from eventyard.transports import EmbeddedTransport, Outgoing

__all__ = ["STAGE_TOPICS", "Pipeline", "PipelineConfig", "feed"]

log = logging.getLogger("eventyard.demo")

PARTITIONS = 3
STAGE_TOPICS: dict[str, tuple[str, ...]] = {
    "comps": ("listings",),
    "valuation": ("comped",),
    "scoring": ("valued",),
    "matching": ("deals",),
    "alerts": ("matches",),
    "board": ("deals", "matches", "alerts"),
}
"""The topics each stage's group reads (what its lag is measured over)."""

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class PipelineConfig:
    data_dir: Path
    settings: StageSettings
    single_process: bool = False
    speed: float = 40.0
    """Market days per second; 0 replays as fast as the pipeline takes it."""
    settings_file: Path | None = None
    worker_env: dict[str, str] = field(default_factory=dict)


def _timestamp(listing: ListingChanged) -> float:
    return datetime.fromisoformat(listing.ModificationTimestamp.replace("Z", "+00:00")).timestamp()


async def feed(
    app: App,
    events: Sequence[ListingChanged],
    *,
    speed: float,
    rate: float | None = None,
    rejects: Sequence[tuple[bytes | None, bytes]] = (),
    on_published: Callable[[int], None] | None = None,
) -> int:
    """Publish ``events`` to ``listings`` in event-time order at ``speed`` days per second.

    ``rate``, when given, replaces the market-time pacing: ``rate`` events per wall-clock
    second, event *i* due at the start plus *i* / ``rate`` seconds whatever its market
    time, so a benchmark can load the pipeline evenly (``speed`` is then ignored). Each
    event is published when it falls due, never early; events already due when the feed
    catches up go out together in one call. Under ``speed`` the feed publishes the events
    of the next 20 ms in one call, ahead of time, since market-time pacing needs no finer
    grain. ``ConfigError`` if ``rate`` is not positive.

    ``rejects`` are raw records that failed validation at load time: they are published as
    they are, so the comps stage dead-letters them with the reason, as it would any bad
    record arriving from outside. Returns how many records were published.
    """
    if rate is not None and not rate > 0:
        raise ConfigError(f"feed rate must be a positive number of events a second, not {rate}")
    published = 0
    if rejects:
        await app.transport.publish("listings", [Outgoing(k, v) for k, v in rejects])
        published += len(rejects)
    if not events:
        return published
    start_market = _timestamp(events[0])
    ahead = 0.0 if rate is not None else 0.02  # how early an event may go out, batched
    start_wall = time.monotonic()
    batch: list[ListingChanged] = []
    for index, event in enumerate(events):
        if rate is not None:
            due: float | None = index / rate
        elif speed > 0:
            due = (_timestamp(event) - start_market) / DAY_SECONDS / speed
        else:
            due = None
        if due is not None:
            wait = due - (time.monotonic() - start_wall)
            if wait > ahead:
                await _flush(app, batch)
                published += len(batch)
                if on_published is not None and batch:
                    on_published(published)
                batch = []
                await asyncio.sleep(wait)
        batch.append(event)
        if len(batch) >= 500:
            await _flush(app, batch)
            published += len(batch)
            batch = []
            if on_published is not None:
                on_published(published)
    await _flush(app, batch)
    published += len(batch)
    if on_published is not None:
        on_published(published)
    return published


async def _flush(app: App, batch: list[ListingChanged]) -> None:
    if batch:
        await app.publish_many("listings", batch, key=lambda e: e.ListingKey)


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
        self.bootstrap: str | None = None
        self.progress: Progress | None = None
        self.feed_app: App | None = None

    # -- starting ------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        config.settings.work_dir.mkdir(parents=True, exist_ok=True)
        if config.single_process:
            await self._start_in_process()
        else:
            await self._start_processes()

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
            self._spawn(name)
        self.feed_app = App(
            KafkaTransport(self.bootstrap, partitions=PARTITIONS),
            source="eventyard-demo/feed",
            registry=DEMO_REGISTRY,
        )
        await self.feed_app.start()

    def _spawn(self, name: str) -> None:
        assert self.bootstrap is not None and self.config.settings_file is not None
        log_path = self.config.settings.work_dir / f"{name}.log"
        env = {**os.environ, **self.config.worker_env}
        with log_path.open("ab") as log_file:
            self._workers[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventyard.demo.worker",
                    name,
                    "--bootstrap",
                    self.bootstrap,
                    "--settings",
                    str(self.config.settings_file),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                env=env,
            )

    def kill(self, name: str) -> None:
        """SIGKILL the worker process of stage ``name`` (processes mode only)."""
        process = self._workers.pop(name)
        process.kill()
        process.wait()

    def restart(self, name: str) -> None:
        """Start stage ``name``'s worker again (after :meth:`kill`)."""
        self._spawn(name)

    def worker_pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._workers.items()}

    # -- progress ------------------------------------------------------------------------

    async def stage_progress(self) -> list[GroupProgress]:
        assert self.progress is not None
        return await self.progress.groups(STAGE_TOPICS)

    async def wait_done(
        self,
        on_tick: Callable[[list[GroupProgress]], Awaitable[None] | None] | None = None,
        poll: float = 0.25,
        timeout: float = 600.0,
    ) -> None:
        """Wait until every stage has committed to the end of its topics, twice in a row."""
        deadline = time.monotonic() + timeout
        settled = 0
        while settled < 2:
            if time.monotonic() > deadline:
                raise EventyardError("the pipeline did not catch up in time")
            self._check_workers()
            stages = await self.stage_progress()
            if on_tick is not None:
                result = on_tick(stages)
                if result is not None:
                    await result
            settled = settled + 1 if all(s.lag == 0 for s in stages) else 0
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


def encode_settings(settings: StageSettings) -> bytes:
    """The settings a worker process reads back (``--settings FILE``)."""
    return msgspec.json.encode(_settings_document(settings))


def _settings_document(settings: StageSettings) -> dict[str, Any]:
    return {
        "work_dir": str(settings.work_dir),
        "buyboxes": [msgspec.to_builtins(b) for b in settings.buyboxes],
        "retrain_every": settings.retrain_every,
        "min_training_sales": settings.min_training_sales,
        "seed": settings.seed,
        "alert_threshold": settings.alert_threshold,
        "channels": list(settings.channels),
    }
