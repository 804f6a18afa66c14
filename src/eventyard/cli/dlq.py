"""``eventyard dlq``: list, show, redrive and purge dead-letter topics.

Dead-letter topics are the ``<topic>.<group>.dlq`` topics an app writes failed events to,
with headers saying why (``eventyard.app.deadletter``). Each has a cursor (the committed
offsets of the group ``eventyard-dlq.<topic>``): ``list`` and ``show`` count and show the
entries after it, ``redrive`` replays them and moves the cursor, ``purge`` moves the cursor
without replaying (``eventyard.app.dlq`` has the contract).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from eventyard.app.deadletter import DeadLetter
from eventyard.app.dlq import DeadLetterQueue, is_dlq_topic
from eventyard.cli.output import JsonFlag, Output, help_without_command, plural, render_value
from eventyard.cli.runner import DEFAULT_DATA_DIR, DataDir, open_broker, run
from eventyard.errors import ConfigError
from eventyard.transports import EmbeddedTransport

__all__ = ["app", "dead_letter_document"]

app = typer.Typer(
    help="Inspect and replay dead-letter topics (<topic>.<group>.dlq).",
    rich_markup_mode="rich",
    add_completion=False,
)

app.callback(invoke_without_command=True)(help_without_command)

DlqTopic = Annotated[str, typer.Argument(help="A dead-letter topic, like listings.valuer.dlq.")]
Limit = Annotated[
    int | None, typer.Option("--limit", "-n", min=1, help="At most this many entries.")
]


def _time(ms: int) -> str | None:
    if ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def dead_letter_document(entry: DeadLetter, *, traceback: bool = True) -> dict[str, Any]:
    """A dead letter as a JSON-ready mapping (the ``--json`` shape of ``show``)."""
    message = entry.message
    document: dict[str, Any] = {
        "partition": message.partition,
        "offset": message.offset,
        "key": None if message.key is None else message.key.decode("utf-8", "replace"),
        "reason": entry.reason,
        "error_type": entry.error_type,
        "error": entry.error,
        "attempts": entry.attempts,
        "group": entry.group,
        "original_topic": entry.original_topic,
        "original_partition": entry.original_partition,
        "original_offset": entry.original_offset,
        "first_failure": _time(entry.first_failure_ms),
        "value": render_value(message.value),
    }
    if traceback:
        document["traceback"] = entry.traceback
    return document


@asynccontextmanager
async def _open_queue(
    data_dir: Path, topic: str, to: str | None = None
) -> AsyncIterator[DeadLetterQueue]:
    """The dead-letter topic ``topic`` of the embedded broker in ``data_dir``.

    ``to``, a redrive target, must exist too: the CLI never creates a topic by accident.
    """
    if not is_dlq_topic(topic):
        raise ConfigError(
            f"{topic!r} is not a dead-letter topic; they are named <topic>.<group>.dlq "
            "(eventyard dlq list shows them)"
        )
    async with open_broker(data_dir) as broker:
        broker.describe_topic(topic)
        if to is not None:
            broker.describe_topic(to)
        async with EmbeddedTransport(broker) as transport:
            yield DeadLetterQueue(transport, topic)


@app.command("list")
def list_(data_dir: DataDir = DEFAULT_DATA_DIR, json: JsonFlag = False) -> None:
    """List dead-letter topics and how many entries wait in each.

    [bold]Examples[/]

    $ eventyard dlq list
    """
    out = Output(json)

    async def work() -> list[tuple[str, int, int]]:
        async with open_broker(data_dir) as broker, EmbeddedTransport(broker) as transport:
            rows = []
            for info in broker.list_topics():
                if is_dlq_topic(info.name):
                    pending = await DeadLetterQueue(transport, info.name).pending()
                    rows.append((info.name, len(pending), info.message_count))
            return rows

    rows = run(work())
    if out.json_mode:
        out.json([{"topic": t, "pending": p, "total": n} for t, p, n in rows])
        return
    if not rows:
        out.note("no dead-letter topics: nothing has failed yet")
        return
    out.table(["topic", "pending", "total"], rows, numeric=["pending", "total"])


@app.command("show")
def show(
    topic: DlqTopic,
    limit: Limit = None,
    traceback: Annotated[
        bool, typer.Option("--traceback/--no-traceback", help="Include each traceback.")
    ] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    json: JsonFlag = False,
) -> None:
    """Show the pending entries of a dead-letter topic: why each event failed.

    [bold]Examples[/]

    $ eventyard dlq show listings.valuer.dlq

    $ eventyard dlq show listings.valuer.dlq --traceback --json
    """
    out = Output(json)

    async def work() -> list[DeadLetter]:
        async with _open_queue(data_dir, topic) as queue:
            return await queue.pending(limit)

    entries = run(work())
    if out.json_mode:
        out.json_lines(dead_letter_document(e, traceback=traceback) for e in entries)
        return
    if not entries:
        out.note(f"{topic}: no pending dead letters")
        return
    out.table(
        ["partition", "offset", "key", "reason", "error", "attempts", "from", "first failure"],
        [
            (
                e.message.partition,
                e.message.offset,
                dead_letter_document(e)["key"],
                e.reason,
                f"{e.error_type.rpartition('.')[2]}: {e.error}",
                e.attempts,
                f"{e.original_topic}/{e.original_partition}@{e.original_offset}",
                _time(e.first_failure_ms),
            )
            for e in entries
        ],
        title=f"{topic}: {plural(len(entries), 'pending dead letter')}",
        numeric=["partition", "offset", "attempts"],
    )
    if traceback:
        for e in entries:
            out.line(f"[bold]{e.message.partition}@{e.message.offset}[/]")
            out.stdout.print(e.traceback, markup=False, highlight=False)


@app.command("redrive")
def redrive(
    topic: DlqTopic,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Republish to this topic instead of the failed group's retry lane.",
        ),
    ] = None,
    limit: Limit = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    json: JsonFlag = False,
) -> None:
    """Replay pending dead letters, keeping each event's key and id.

    By default each goes back to the group that failed it (its retry lane), so other groups
    of the topic do not see it twice; the app must be running (or start later) to handle it.

    [bold]Examples[/]

    $ eventyard dlq redrive listings.valuer.dlq

    $ eventyard dlq redrive listings.valuer.dlq --to listings --limit 10
    """
    out = Output(json)

    async def work() -> tuple[int, dict[str, int]]:
        async with _open_queue(data_dir, topic, to) as queue:
            result = await queue.redrive(to=to, limit=limit)
            return result.redriven, result.targets

    count, targets = run(work())
    if out.json_mode:
        out.json({"topic": topic, "redriven": count, "targets": targets})
    elif count == 0:
        out.note(f"{topic}: no pending dead letters")
    else:
        where = ", ".join(f"{n:,} to {t}" for t, n in targets.items())
        out.line(f"redrove {plural(count, 'event')} from [bold]{topic}[/]: {where}")


@app.command("purge")
def purge(
    topic: DlqTopic,
    limit: Limit = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    json: JsonFlag = False,
) -> None:
    """Mark pending dead letters as dealt with, without replaying them.

    The records stay in the topic (a log is append-only) and retention removes them; only
    the cursor moves, so list and show no longer count them.

    [bold]Examples[/]

    $ eventyard dlq purge listings.valuer.dlq --yes
    """
    out = Output(json)
    if not yes:
        if not out.interactive:
            raise ConfigError("purge needs --yes when it cannot ask (no terminal, or --json)")
        typer.confirm(f"purge the pending dead letters of {topic}?", abort=True, err=True)

    async def work() -> int:
        async with _open_queue(data_dir, topic) as queue:
            return await queue.purge(limit=limit)

    count = run(work())
    if out.json_mode:
        out.json({"topic": topic, "purged": count})
    else:
        out.line(f"purged {plural(count, 'dead letter')} from [bold]{topic}[/]")
