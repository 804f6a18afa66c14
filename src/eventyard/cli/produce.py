"""``eventyard produce``: write JSON lines from stdin into a topic.

The whole input is read and validated before the first event is written, so a bad line
(invalid JSON, or a missing ``--key-field``) is reported with its line number and leaves the
topic untouched: a half-imported file is worse than an error. Each value is stored as the
line's own bytes (surrounding whitespace removed), not re-encoded, so what consumers read is
exactly what was produced. Blank lines are skipped.

Keys come from ``--key-field``: a string field is used as its UTF-8 bytes, any other JSON
value as its compact JSON text (so ``{"id": 42}`` is keyed ``42``), ``null`` as no key.
Keyed events land on the partition Kafka's Java client would choose (murmur2), so moving to
a Kafka cluster keeps per-key order.

With ``--broker HOST:PORT`` the events go through aiokafka's idempotent producer
(``acks=all``, murmur2 placement too) to that broker; the summary's offsets are the ones the
broker acknowledged.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO, Final

import msgspec
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from eventyard.broker import Broker
from eventyard.cli import remote
from eventyard.cli.output import InputError, JsonFlag, Output, plural
from eventyard.cli.remote import BrokerOption
from eventyard.cli.runner import DEFAULT_DATA_DIR, DataDir, open_broker, run
from eventyard.client import Producer
from eventyard.client.producer import ProducerRecord
from eventyard.errors import ConfigError

__all__ = ["ProduceSummary", "produce", "read_events"]

CHUNK: Final = 1000
"""Events handed to the producer between two progress updates."""
PROGRESS_THRESHOLD: Final = 5000
"""Inputs shorter than this finish too fast for a progress bar to help."""

_decoder: Final = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Event:
    """One validated input line: the value bytes as given and the key drawn from it."""

    key: bytes | None
    value: bytes


def read_events(stream: BinaryIO, key_field: str | None) -> list[Event]:
    """Read and validate every JSON line of ``stream``; raise :class:`InputError` naming the
    first bad line."""
    events = []
    for number, raw in enumerate(stream, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            document = _decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise InputError(f"stdin line {number}: invalid JSON: {exc}") from None
        key = _key_of(document, key_field, number) if key_field is not None else None
        events.append(Event(key, line))
    return events


def _key_of(document: Any, field: str, number: int) -> bytes | None:
    if not isinstance(document, dict):
        raise InputError(
            f"stdin line {number}: --key-field {field} needs a JSON object, "
            f"got {type(document).__name__}"
        )
    if field not in document:
        raise InputError(f"stdin line {number}: no field {field!r} for --key-field")
    key = document[field]
    if key is None:
        return None
    if isinstance(key, str):
        return key.encode("utf-8")
    return msgspec.json.encode(key)


@dataclass(frozen=True, slots=True)
class ProduceSummary:
    """What one ``produce`` run wrote: events per partition and the offsets they took."""

    topic: str
    events: int
    bytes: int
    seconds: float
    partitions: dict[int, tuple[int, int]]
    """partition -> (first offset written, end offset after the run)."""

    def document(self) -> dict[str, Any]:
        """The ``--json`` shape of the summary."""
        return {
            "topic": self.topic,
            "events": self.events,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "partitions": [
                {"partition": p, "events": end - first, "first_offset": first, "end_offset": end}
                for p, (first, end) in sorted(self.partitions.items())
            ],
        }


def _end_offsets(broker: Broker, topic: str) -> dict[int, int]:
    info = broker.describe_topic(topic)
    return {p.partition: p.end_offset for p in info.partitions}


async def produce_events(
    broker: Broker,
    topic: str,
    events: list[Event],
    *,
    partition: int | None = None,
    progress: Progress | None = None,
) -> ProduceSummary:
    """Produce ``events`` in order, ``CHUNK`` at a time, and summarize what was written.

    Each chunk is one ``send_batch`` (one record batch per partition), so the cost per event
    is an append to a batch builder; the summary compares end offsets before and after.
    """
    before = _end_offsets(broker, topic)
    if partition is not None and partition not in before:
        raise ConfigError(
            f"--partition {partition}: topic {topic!r} has partitions 0 to {len(before) - 1}"
        )
    task = progress.add_task(f"producing to {topic}", total=len(events)) if progress else None
    started = time.perf_counter()
    producer = Producer(broker)
    try:
        for chunk in _chunks(events, CHUNK):
            await producer.send_batch(
                topic, [ProducerRecord(e.key, e.value, partition=partition) for e in chunk]
            )
            if progress is not None and task is not None:
                progress.advance(task, len(chunk))
        await producer.flush()
    finally:
        await producer.close()
    seconds = time.perf_counter() - started
    after = _end_offsets(broker, topic)
    written = {p: (before[p], end) for p, end in after.items() if end > before[p]}
    return ProduceSummary(
        topic=topic,
        events=len(events),
        bytes=sum(len(e.value) for e in events),
        seconds=seconds,
        partitions=written,
    )


async def produce_remote(
    address: str, topic: str, events: list[Event], *, partition: int | None = None
) -> ProduceSummary:
    """Produce ``events`` in order through aiokafka to the broker at ``address``."""
    started = time.perf_counter()
    async with remote.producer(address) as client, remote.translated(address):
        partitions = await client.partitions_for(topic)
        if partition is not None and partition not in partitions:
            raise ConfigError(
                f"--partition {partition}: topic {topic!r} has partitions 0 to "
                f"{len(partitions) - 1}"
            )
        deliveries = [
            await client.send(topic, e.value, key=e.key, partition=partition) for e in events
        ]
        acknowledged = await asyncio.gather(*deliveries)
    written: dict[int, tuple[int, int]] = {}
    for metadata in acknowledged:
        first, end = written.get(metadata.partition, (metadata.offset, metadata.offset + 1))
        written[metadata.partition] = (min(first, metadata.offset), max(end, metadata.offset + 1))
    return ProduceSummary(
        topic=topic,
        events=len(events),
        bytes=sum(len(e.value) for e in events),
        seconds=time.perf_counter() - started,
        partitions=written,
    )


def _chunks(events: list[Event], size: int) -> Iterable[list[Event]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def produce(
    topic: Annotated[str, typer.Argument(help="Topic to write to (must exist).")],
    key_field: Annotated[
        str | None,
        typer.Option("--key-field", "-k", help="Use this top-level JSON field as the key."),
    ] = None,
    partition: Annotated[
        int | None,
        typer.Option("--partition", "-p", min=0, help="Write every event to this partition."),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    broker: BrokerOption = None,
    json: JsonFlag = False,
) -> None:
    """Produce JSON lines from stdin into a topic, one event per line.

    The input is validated first: a bad line stops the command before anything is written.

    [bold]Examples[/]

    $ echo '{"id": "L-1", "price": 450000}' | eventyard produce listings -k id

    $ eventyard produce listings --key-field id < listings.jsonl

    $ eventyard produce listings -k id --broker 127.0.0.1:9092 < listings.jsonl
    """
    out = Output(json)

    async def work_remote(address: str) -> ProduceSummary:
        await remote.check_topic(address, topic)
        if sys.stdin.isatty():
            out.note("reading JSON lines from stdin; end with Ctrl-D")
        events = await asyncio.to_thread(read_events, sys.stdin.buffer, key_field)
        return await produce_remote(address, topic, events, partition=partition)

    async def work() -> ProduceSummary:
        async with open_broker(data_dir) as broker:
            broker.describe_topic(topic)
            if sys.stdin.isatty():
                out.note("reading JSON lines from stdin; end with Ctrl-D")
            events = await asyncio.to_thread(read_events, sys.stdin.buffer, key_field)
            if out.interactive and len(events) >= PROGRESS_THRESHOLD:
                with _progress_bar(out) as progress:
                    return await produce_events(
                        broker, topic, events, partition=partition, progress=progress
                    )
            return await produce_events(broker, topic, events, partition=partition)

    summary = run(work_remote(broker) if broker is not None else work())
    if out.json_mode:
        out.json(summary.document())
        return
    rate = summary.events / summary.seconds if summary.seconds > 0 else 0.0
    out.line(
        f"produced {plural(summary.events, 'event')} ({summary.bytes:,} bytes) to "
        f"[bold]{topic}[/] in {summary.seconds:.3f} s ({rate:,.0f} events/s)"
    )
    if summary.partitions:
        out.table(
            ["partition", "events", "first offset", "end offset"],
            [
                (p, end - first, first, end)
                for p, (first, end) in sorted(summary.partitions.items())
            ],
            numeric=["partition", "events", "first offset", "end offset"],
        )


def _progress_bar(out: Output) -> Progress:
    return Progress(
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=out.stderr,
        transient=True,
    )
