"""``eventyard consume``: print a topic's events as JSON lines, alone or in a consumer group.

Where reading starts follows Kafka's console consumer: a group's committed offset when there
is one, else the log start with ``--from-beginning``, else the log end; ``--partition P
--offset N`` reads one partition from an exact offset, outside any group.

When it stops: after ``--max N`` events, or once every assigned partition has been read to
its end and no event arrived for ``--timeout`` seconds (by default it stops as soon as it is
caught up, because while the command holds the data directory's lock nothing else can
append). In a group, the consumer's positions are committed after each chunk is written to stdout
and once more at the end: a position only moves past records actually returned, so the next
run continues after the last event printed (at-least-once: a crash between print and commit
prints those events again), and a partition nothing was read from is committed at its
starting point, so ``--from-beginning --max 5`` anchors every partition of the group, not
only the one the five events came from. If the reader of stdout goes away (``| head``), the
command stops quietly without committing what it could not print.

With ``--broker HOST:PORT`` the same loop reads through an ``AIOKafkaConsumer`` (whose
``getmany``, ``commit``, ``assignment``, ``highwater`` and ``position`` behave as the embedded
consumer's), so the start, stop and commit rules are the ones above. Without ``--timeout`` it
still stops once caught up, though another client may be producing meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Protocol

import typer

from eventyard.broker import Broker
from eventyard.cli import remote
from eventyard.cli.output import JsonFlag, Output, plural, render_bytes, render_value
from eventyard.cli.remote import BrokerOption
from eventyard.cli.runner import DEFAULT_DATA_DIR, DataDir, open_broker, run
from eventyard.client import Consumer, ConsumerRecord, TopicPartition
from eventyard.errors import ConfigError, EventyardError

__all__ = ["caught_up", "consume", "record_document"]

POLL_MS: Final = 100
"""How long one poll waits for events before the stop conditions are checked again."""
JOIN_TIMEOUT_S: Final = 30.0
"""Give up if the group has not assigned any partition to this member by then."""


class Reader(Protocol):
    """What the reading loop needs of a consumer: eventyard's ``Consumer`` and aiokafka's
    ``AIOKafkaConsumer`` both have it."""

    async def getmany(
        self, *partitions: Any, timeout_ms: int = ..., max_records: int | None = ...
    ) -> Mapping[Any, Sequence[Any]]: ...

    async def commit(self) -> None: ...

    def assignment(self) -> Any: ...

    def highwater(self, tp: Any) -> int | None: ...

    async def position(self, tp: Any) -> int: ...


def record_document(record: ConsumerRecord) -> dict[str, Any]:
    """One consumed event as printed: bytes rendered by :func:`render_value`/``render_bytes``."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": render_bytes(record.key),
        "value": render_value(record.value),
        "headers": [[name, render_bytes(value)] for name, value in record.headers],
        "timestamp": record.timestamp,
    }


def _check_options(group: str | None, partition: int | None, offset: int | None) -> None:
    if offset is not None and partition is None:
        raise ConfigError("--offset needs --partition (offsets are per partition)")
    if partition is not None and group is not None:
        raise ConfigError("--partition reads one partition outside any group; drop --group")
    if group is not None and not group.strip():
        raise ConfigError("--group must not be empty")


def _assigned_consumer(
    broker: Broker, topic: str, partition: int, offset: int | None, reset: str
) -> Consumer:
    """A group-less consumer of one partition, positioned at ``offset`` when given."""
    info = broker.describe_topic(topic)
    if partition >= len(info.partitions):
        raise ConfigError(
            f"--partition {partition}: topic {topic!r} has partitions 0 to "
            f"{len(info.partitions) - 1}"
        )
    consumer = Consumer(broker, auto_offset_reset=reset)
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    if offset is not None:
        held = info.partitions[partition]
        if not held.start_offset <= offset <= held.end_offset:
            raise ConfigError(
                f"--offset {offset}: partition {partition} of {topic!r} holds offsets "
                f"{held.start_offset} to {held.end_offset}"
            )
        consumer.seek(tp, offset)
    return consumer


async def _checked_remote(
    address: str, topic: str, partition: int | None, offset: int | None
) -> None:
    """Check that ``topic`` exists and, when given, that ``partition`` and ``offset`` do."""
    if partition is None:
        await remote.check_topic(address, topic)
        return
    held = await remote.describe_topic(address, topic)
    if partition >= len(held.partitions):
        raise ConfigError(
            f"--partition {partition}: topic {topic!r} has partitions 0 to "
            f"{len(held.partitions) - 1}"
        )
    span = held.partitions[partition]
    if offset is not None and not span.start_offset <= offset <= span.end_offset:
        raise ConfigError(
            f"--offset {offset}: partition {partition} of {topic!r} holds offsets "
            f"{span.start_offset} to {span.end_offset}"
        )


def _assign_remote(reader: Any, topic: str, partition: int, offset: int | None) -> None:
    """Assign one partition of ``topic`` to an aiokafka consumer, at ``offset`` if given."""
    tp = remote.aiokafka_module().TopicPartition(topic, partition)
    reader.assign([tp])
    if offset is not None:
        reader.seek(tp, offset)


async def caught_up(consumer: Reader) -> bool:
    """Whether every assigned partition has been returned up to its high watermark."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


async def _consume(
    consumer: Reader, out: Output, *, limit: int | None, timeout: float | None, commit: bool
) -> int:
    """Print records until a stop condition holds; return how many were printed.

    Ctrl-C cancels the work while it waits for events; the positions then cover exactly
    what was printed, so they are committed before the command exits.
    """
    try:
        return await _print_records(consumer, out, limit=limit, timeout=timeout, commit=commit)
    except asyncio.CancelledError:
        if commit:
            await consumer.commit()
        raise


async def _print_records(
    consumer: Reader, out: Output, *, limit: int | None, timeout: float | None, commit: bool
) -> int:
    loop = asyncio.get_running_loop()
    started = last_event = loop.time()
    printed = 0
    while limit is None or printed < limit:
        batch = await consumer.getmany(
            timeout_ms=POLL_MS, max_records=None if limit is None else limit - printed
        )
        now = loop.time()
        if batch:
            records = [r for rs in batch.values() for r in rs]
            if not out.json_lines(record_document(r) for r in records):
                return printed
            printed += len(records)
            last_event = now
            if commit:
                await consumer.commit()
            continue
        if await caught_up(consumer):
            if timeout is None or now - last_event >= timeout:
                break
        elif not consumer.assignment() and now - started > JOIN_TIMEOUT_S:
            raise EventyardError(f"no partition was assigned within {JOIN_TIMEOUT_S:.0f} s")
    if commit:
        await consumer.commit()
    return printed


def consume(
    topic: Annotated[str, typer.Argument(help="Topic to read.")],
    group: Annotated[
        str | None,
        typer.Option("--group", "-g", help="Consume in this group and commit what is printed."),
    ] = None,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning", help="Start at the log start when there is no committed offset."
        ),
    ] = False,
    max_events: Annotated[
        int | None, typer.Option("--max", "-n", min=1, help="Stop after this many events.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.0,
            help="Once caught up, wait this many seconds for new events (default: stop).",
        ),
    ] = None,
    partition: Annotated[
        int | None,
        typer.Option("--partition", "-p", min=0, help="Read only this partition (no group)."),
    ] = None,
    offset: Annotated[
        int | None,
        typer.Option("--offset", min=0, help="With --partition: start at this offset."),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    broker: BrokerOption = None,
    json: JsonFlag = False,
) -> None:
    """Print a topic's events as JSON lines, alone or in a consumer group.

    Each line holds topic, partition, offset, key, value, headers and timestamp; a JSON
    value is printed as JSON, other values as text or {"$base64": ...}.

    [bold]Examples[/]

    $ eventyard consume listings --from-beginning --max 10

    $ eventyard consume listings --group valuation

    $ eventyard consume listings --partition 2 --offset 100 --max 1

    $ eventyard consume listings --from-beginning --broker 127.0.0.1:9092
    """
    _check_options(group, partition, offset)
    out = Output(json)
    reset = "earliest" if from_beginning else "latest"

    async def work_remote(address: str) -> int:
        await _checked_remote(address, topic, partition, offset)
        topics = () if partition is not None else (topic,)
        options = {"group_id": group, "auto_offset_reset": reset}
        async with (
            remote.consumer(address, *topics, **options) as reader,
            remote.translated(address),
        ):
            if partition is not None:
                _assign_remote(reader, topic, partition, offset)
            return await _consume(
                reader, out, limit=max_events, timeout=timeout, commit=group is not None
            )

    async def work() -> int:
        async with open_broker(data_dir) as broker:
            if partition is not None:
                consumer = _assigned_consumer(broker, topic, partition, offset, reset)
            else:
                consumer = Consumer(broker, topic, group_id=group, auto_offset_reset=reset)
            await consumer.start()
            try:
                return await _consume(
                    consumer, out, limit=max_events, timeout=timeout, commit=group is not None
                )
            finally:
                await consumer.stop()

    printed = run(work_remote(broker) if broker is not None else work())
    if printed == 0 and group is None and not from_beginning and offset is None:
        out.note(
            "no events: reading started at the end of the log "
            "(add --from-beginning to read what the topic holds)"
        )
    elif out.interactive:
        committed = f", committed for group {group}" if group is not None else ""
        out.note(f"consumed {plural(printed, 'event')} from {topic}{committed}")
