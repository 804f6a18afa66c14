"""Adding an alert channel to a running (or finished) pipeline, with history from a time.

A broker who joins later, or a new webhook, wants the alerts it would have had since some
moment, and then the live ones. Because the matches are a log, that is a replay:
:func:`add_alert_channel` starts a new consumer group ``alerts-<name>`` on ``matches``,
positioned at the first offset of each partition whose record timestamp is at or after
``since_ms`` (the end of the partition when none is), and runs an alerts stage app for the
one channel in that group. The channel has its own alert policy file
(``alerts-<name>.db``, :attr:`StageSettings.alerts_path`), so it decides from the matches it
reads as if it had been there from ``since_ms`` on: each (buy-box, listing, reason) once,
and price moves relative to what *it* last alerted. Its :class:`AlertSent` events go to the
``alerts`` topic under the channel's name, so the deal board lists them beside the others.

Where the channel's stage runs follows the pipeline: added to a pipeline in processes mode
(the demo's default) it is a worker process of its own (``alerts-<name>``, started by
:meth:`~eventyard.demo.pipeline.Pipeline.start_worker` with settings naming its channel and
group suffix), like every other stage; added to a ``--single-process`` pipeline, or to a
bare transport, it is an app in this process.

Positioning is a commit made for the group before it has a member, Kafka's
``--reset-offsets`` rule: on the embedded broker through the group coordinator
(``reset_offsets``, with offsets from ``list_offset``), on ``eventyard serve`` or any Kafka
broker through aiokafka (``offsets_for_times``, then a commit as a member-less consumer of
the group). A group that already has committed offsets on ``matches`` is the same channel
added before: it resumes where it stopped and ``since_ms`` is not applied again.

Record timestamps are the time each match was published (wall clock), not market time.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from eventyard.app import App
from eventyard.broker import LATEST
from eventyard.broker.groups import OffsetAndMetadata
from eventyard.demo.progress import EmbeddedProgress, KafkaProgress, Progress
from eventyard.demo.settings import StageSettings
from eventyard.demo.stages import alerts_stage
from eventyard.errors import ConfigError, EventyardError
from eventyard.transports import EmbeddedTransport, Transport

if TYPE_CHECKING:
    from eventyard.broker import Broker
    from eventyard.demo.pipeline import Pipeline

__all__ = ["AlertChannel", "add_alert_channel"]

TOPIC = "matches"
_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class AlertChannel:
    """A channel added by :func:`add_alert_channel`: its group, where it started, and what
    runs it: ``app`` in this process, or the pipeline's worker process ``worker``."""

    name: str
    group: str
    positions: dict[int, int]
    """Partition -> the offset the group was positioned at (empty when it resumed)."""
    resumed: bool
    app: App | None
    worker: str | None
    _progress: Progress = field(repr=False)
    _pipeline: Pipeline | None = field(default=None, repr=False)

    async def lag(self) -> int:
        """How many ``matches`` records the channel's group has not committed yet."""
        (progress,) = await self._progress.groups({self.group: (TOPIC,)})
        return progress.lag

    async def wait_caught_up(self, timeout: float = 60.0, poll: float = 0.2) -> None:
        """Wait until the group has committed to the end of ``matches``, twice in a row."""
        deadline = time.monotonic() + timeout
        settled = 0
        while settled < 2:
            if time.monotonic() > deadline:
                raise EventyardError(f"alert channel {self.name!r} did not catch up in time")
            settled = settled + 1 if await self.lag() == 0 else 0
            await asyncio.sleep(poll)

    async def stop(self) -> None:
        """Stop the channel's app or worker (it drains and commits) and its progress client."""
        try:
            if self.app is not None:
                await self.app.stop()
            elif self._pipeline is not None and self.worker is not None:
                await self._pipeline.stop_worker(self.worker)
        finally:
            await self._progress.close()


async def add_alert_channel(
    pipeline_or_transport: Pipeline | Transport,
    name: str,
    channel_setting: str,
    since_ms: int,
    *,
    settings: StageSettings | None = None,
) -> AlertChannel:
    """Start alert channel ``name`` (``jsonl:PATH``, ``webhook:URL`` or ``terminal``) on the
    matches published at or after ``since_ms`` (epoch milliseconds), then on the live ones.

    ``pipeline_or_transport`` is a started :class:`~eventyard.demo.pipeline.Pipeline` (its
    settings are used) or a started transport of the pipeline's broker
    (:class:`~eventyard.transports.EmbeddedTransport` or a ``KafkaTransport``), with
    ``settings`` then required. The channel runs (in a worker process of a processes-mode
    pipeline, else in this process) until :meth:`AlertChannel.stop`.
    """
    if not _NAME.fullmatch(name):
        raise ConfigError(f"alert channel name {name!r}: use letters, digits, '-' and '_'")
    transport, settings = _resolve(pipeline_or_transport, settings)
    group = f"alerts-{name}"
    stage_settings = replace(
        settings, channels=(f"{name}={channel_setting}",), group_suffix=f"-{name}"
    )
    progress: Progress
    if isinstance(transport, EmbeddedTransport):
        broker = transport.broker
        positions = await _position_embedded(broker, group, since_ms)
        app_transport: Transport = EmbeddedTransport(broker)
        progress = EmbeddedProgress(broker)
    else:
        bootstrap = getattr(transport, "bootstrap_servers", None)
        if not isinstance(bootstrap, str):
            raise ConfigError(
                f"add_alert_channel needs an embedded or Kafka transport, not {transport!r}"
            )
        positions = await _position_kafka(bootstrap, group, since_ms)
        progress = KafkaProgress(bootstrap)
        pipeline = _processes_pipeline(pipeline_or_transport)
        if pipeline is not None:
            pipeline.start_worker(group, "alerts", stage_settings)
            return AlertChannel(
                name=name,
                group=group,
                positions=positions or {},
                resumed=positions is None,
                app=None,
                worker=group,
                _progress=progress,
                _pipeline=pipeline,
            )
        kafka = importlib.import_module("eventyard.transports.kafka")
        app_transport = kafka.KafkaTransport(bootstrap)
    app = alerts_stage(app_transport, stage_settings)
    try:
        await app.start()
    except BaseException:
        await progress.close()
        raise
    return AlertChannel(
        name=name,
        group=group,
        positions=positions or {},
        resumed=positions is None,
        app=app,
        worker=None,
        _progress=progress,
    )


def _processes_pipeline(target: Pipeline | Transport) -> Pipeline | None:
    """``target`` if it is a pipeline running its stages as worker processes."""
    if isinstance(target, Transport) or target.config.single_process:
        return None
    return target


def _resolve(
    target: Pipeline | Transport, settings: StageSettings | None
) -> tuple[Transport, StageSettings]:
    if isinstance(target, Transport):
        if settings is None:
            raise ConfigError("add_alert_channel on a transport needs the pipeline's settings")
        return target, settings
    if target.feed_app is None:
        raise ConfigError("start the pipeline before adding an alert channel")
    return target.feed_app.transport, settings or target.config.settings


async def _position_embedded(broker: Broker, group: str, since_ms: int) -> dict[int, int] | None:
    """Commit the group's start on every partition; None if it had offsets already."""
    partitions = range(broker.partition_count(TOPIC))
    committed = await broker.groups.fetch_offsets(group, [(TOPIC, p) for p in partitions])
    if committed:
        return None
    positions = {}
    for partition in partitions:
        found = await broker.list_offset(TOPIC, partition, since_ms)
        positions[partition] = (
            found if found is not None else await broker.list_offset(TOPIC, partition, LATEST)
        ) or 0
    await broker.groups.reset_offsets(
        group, {(TOPIC, p): OffsetAndMetadata(offset) for p, offset in positions.items()}
    )
    return positions


async def _position_kafka(bootstrap: str, group: str, since_ms: int) -> dict[int, int] | None:
    """:func:`_position_embedded` through aiokafka, committing as a member-less consumer."""
    aiokafka = importlib.import_module("aiokafka")
    admin: Any = importlib.import_module("aiokafka.admin").AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="eventyard-demo-channels"
    )
    await admin.start()
    try:
        described = await admin.describe_topics([TOPIC])
    finally:
        await admin.close()
    numbers = sorted(
        part["partition"]
        for entry in described
        if entry.get("error_code", 0) == 0
        for part in entry["partitions"]
    )
    if not numbers:
        raise ConfigError(f"topic {TOPIC!r} does not exist; start the pipeline first")
    tps = [aiokafka.TopicPartition(TOPIC, p) for p in numbers]
    consumer: Any = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        client_id="eventyard-demo-channels",
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        for tp in tps:
            if await consumer.committed(tp) is not None:
                return None
        times = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        ends = await consumer.end_offsets(tps)
        positions = {
            tp.partition: ends[tp] if times.get(tp) is None else times[tp].offset for tp in tps
        }
        await consumer.commit(
            {tp: aiokafka.structs.OffsetAndMetadata(positions[tp.partition], "") for tp in tps}
        )
        return positions
    finally:
        await consumer.stop()
