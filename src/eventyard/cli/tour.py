"""``eventyard tour``: a short end-to-end walk of the broker itself.

Where ``eventyard demo`` runs the deal-sourcing pipeline, this walk shows the foundation at
work on a day of property-listing events, in a fresh data directory (a temporary one,
removed afterwards, unless ``--data-dir`` names one):

1. create the ``listings`` topic with three partitions;
2. produce 8,000 events keyed by listing id, with a progress bar;
3. consume them with the two-member consumer group ``valuation`` (the table shows how the
   partitions were split) and commit;
4. produce 2,000 more and show the group's lag, then let the members catch up to lag 0;
5. replay everything from the beginning with a second group, ``audit``, checking that each
   listing's events arrive in the order they were produced;
6. replay from a timestamp (the last six hours of the simulated day);
7. close the broker, reopen the data directory and show that the events and the committed
   offsets survived;

and print a summary table with counts and timings (``--json``: one summary document). Each
step checks its own count and the walk fails loudly (exit 1) if one is off, so the summary's
``produced == consumed == replayed`` is a tested fact, not a claim.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.broker.groups import GroupConfig
from eventyard.cli.consume import caught_up
from eventyard.cli.groups import GroupView, describe_group
from eventyard.cli.output import JsonFlag, Output
from eventyard.cli.runner import open_broker, run
from eventyard.client import Consumer, ConsumerRecord, Producer
from eventyard.client.producer import ProducerRecord
from eventyard.errors import ConfigError, EventyardError, GroupError

__all__ = ["DemoSummary", "listing_events", "tour"]

TOPIC: Final = "listings"
PARTITIONS: Final = 3
FIRST_WAVE: Final = 8_000
SECOND_WAVE: Final = 2_000
LISTINGS: Final = 1_500
DAY_MS: Final = 86_400_000
RECENT_MS: Final = 6 * 3_600_000
CHUNK: Final = 500
STEP_TIMEOUT_S: Final = 60.0

DEMO_CONFIG: Final = BrokerConfig(groups=GroupConfig(initial_rebalance_delay_ms=100))
"""The demo's broker: a group's first join waits 100 ms for more members (Kafka waits 3 s),
long enough for the two members started together to share the first generation."""

_CITIES: Final = ("Leeds", "York", "Bath", "Bristol", "Norwich", "Exeter", "Durham", "Oxford")
_UPDATES: Final = ("price_changed", "viewing_booked", "offer_received", "price_changed")


class ListingEvent(msgspec.Struct, frozen=True):
    """One event of a listing's life; ``seq`` numbers a listing's events from 0."""

    listing_id: str
    seq: int
    type: str
    city: str
    price: int
    bedrooms: int


def listing_events(count: int, start_ms: int, *, seed: int = 7) -> list[ProducerRecord]:
    """``count`` keyed listing events spread evenly over one day from ``start_ms``.

    Deterministic for a seed, so every run tells the same story; each listing's first event
    is ``listed`` and its ``seq`` increases by one per event.
    """
    rng = random.Random(seed)
    encoder = msgspec.json.Encoder()
    seqs: dict[int, int] = {}
    prices: dict[int, int] = {}
    records = []
    for index in range(count):
        number = rng.randrange(LISTINGS)
        seq = seqs.get(number, 0)
        seqs[number] = seq + 1
        if seq == 0:
            prices[number] = rng.randrange(120, 950) * 1000
            kind = "listed"
        else:
            kind = rng.choice(_UPDATES)
            if kind == "price_changed":
                prices[number] = prices[number] * rng.randrange(94, 104) // 100
        listing_id = f"L-{number:05d}"
        event = ListingEvent(
            listing_id=listing_id,
            seq=seq,
            type=kind,
            city=_CITIES[number % len(_CITIES)],
            price=prices[number],
            bedrooms=1 + number % 5,
        )
        records.append(
            ProducerRecord(
                key=listing_id.encode(),
                value=encoder.encode(event),
                timestamp_ms=start_ms + index * DAY_MS // count,
            )
        )
    return records


@dataclass(slots=True)
class StepTiming:
    """One row of the summary table."""

    step: str
    events: int
    seconds: float


@dataclass(slots=True)
class DemoSummary:
    """Everything the walk measured; ``document()`` is the ``--json`` output."""

    data_dir: str
    produced: int = 0
    consumed: int = 0
    replayed: int = 0
    replayed_since: int = 0
    expected_since: int = 0
    since_ms: int = 0
    lag_after_burst: int = 0
    lag_final: int = -1
    after_reopen: int = 0
    committed_after_reopen: int = 0
    per_key_order: bool = False
    members: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepTiming] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The machine-readable summary."""
        return {
            "data_dir": self.data_dir,
            "topic": TOPIC,
            "partitions": PARTITIONS,
            "produced": self.produced,
            "consumed": self.consumed,
            "replayed": self.replayed,
            "replayed_since": {
                "since_ms": self.since_ms,
                "events": self.replayed_since,
                "expected": self.expected_since,
            },
            "group": {
                "id": "valuation",
                "members": self.members,
                "lag_after_burst": self.lag_after_burst,
                "lag_final": self.lag_final,
            },
            "after_reopen": {
                "events": self.after_reopen,
                "committed": self.committed_after_reopen,
            },
            "per_key_order": self.per_key_order,
            "steps": [
                {"step": s.step, "events": s.events, "seconds": round(s.seconds, 6)}
                for s in self.steps
            ],
            "seconds": round(sum(s.seconds for s in self.steps), 6),
        }


class Walk:
    """The demo's steps over one data directory, narrating to ``out`` as it goes."""

    def __init__(self, data_dir: Path, out: Output) -> None:
        self.data_dir = data_dir
        self.out = out
        self.summary = DemoSummary(str(data_dir))
        self.start_ms = int(time.time() * 1000) - DAY_MS
        self.events = listing_events(FIRST_WAVE + SECOND_WAVE, self.start_ms)

    @contextmanager
    def step(self, name: str, events: int) -> Iterator[None]:
        """Time one step into the summary."""
        started = time.perf_counter()
        yield
        self.summary.steps.append(StepTiming(name, events, time.perf_counter() - started))

    def say(self, text: str) -> None:
        """Narrate for people (nothing in JSON mode)."""
        if not self.out.json_mode:
            self.out.line(text)

    async def run(self) -> DemoSummary:
        """Walk every step; raise ``EventyardError`` if a count does not add up."""
        self.say("[bold]eventyard tour[/]: a day of property listings on the embedded broker")
        self.say(f"data directory: {self.data_dir}\n")
        async with open_broker(self.data_dir, create=True, config=DEMO_CONFIG) as broker:
            with self.step("create topic", 0):
                await broker.create_topic(TOPIC, TopicConfig(partitions=PARTITIONS))
            self.say(f"1. created topic [bold]{TOPIC}[/] with {PARTITIONS} partitions")
            await self.produce(broker, self.events[:FIRST_WAVE], "produce")
            self.say(f"2. produced {FIRST_WAVE:,} listing events, keyed by listing id")
            await self.consume_in_group(broker)
            await self.replay(broker)
            await self.replay_recent(broker)
        await self.reopen()
        return self.summary

    async def produce(self, broker: Broker, records: list[ProducerRecord], name: str) -> None:
        """Produce ``records`` in chunks, with a progress bar on a terminal."""
        with (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=self.out.stderr,
                transient=True,
                disable=not self.out.interactive,
            ) as progress,
            self.step(name, len(records)),
        ):
            task = progress.add_task(f"producing to {TOPIC}", total=len(records))
            async with Producer(broker) as producer:
                for start in range(0, len(records), CHUNK):
                    chunk = records[start : start + CHUNK]
                    await producer.send_batch(TOPIC, chunk)
                    progress.advance(task, len(chunk))
        self.summary.produced += len(records)

    async def consume_in_group(self, broker: Broker) -> None:
        """Steps 3 and 4: a two-member group reads, falls behind a burst, and catches up."""
        members = [
            Consumer(
                broker,
                TOPIC,
                group_id="valuation",
                auto_offset_reset="earliest",
                client_id=f"valuer-{n}",
            )
            for n in (1, 2)
        ]
        counts = [0, 0]
        seen: set[tuple[int, int]] = set()
        await asyncio.gather(*(member.start() for member in members))
        try:
            with self.step("consume (group of 2)", FIRST_WAVE):
                await _drain_group(members, counts, seen, FIRST_WAVE)
            self.summary.members = [
                {
                    "member": f"valuer-{n + 1}",
                    "partitions": sorted(tp.partition for tp in member.assignment()),
                    "events": counts[n],
                }
                for n, member in enumerate(members)
            ]
            self.say("3. consumer group [bold]valuation[/] (2 members) split the partitions:")
            if not self.out.json_mode:
                self.out.table(
                    ["member", "partitions", "events consumed"],
                    [
                        (m["member"], ", ".join(map(str, m["partitions"])), m["events"])
                        for m in self.summary.members
                    ],
                    numeric=["events consumed"],
                )
            await self.produce(broker, self.events[FIRST_WAVE:], "produce burst")
            lag = await describe_group(broker, "valuation")
            self.summary.lag_after_burst = lag.total_lag
            self.say(f"4. {SECOND_WAVE:,} more events arrived; the group's lag before it reads:")
            self.show_lag(lag)
            with self.step("consume burst", SECOND_WAVE):
                await _drain_group(members, counts, seen, FIRST_WAVE + SECOND_WAVE)
        finally:
            await asyncio.gather(*(member.stop() for member in members))
        lag = await describe_group(broker, "valuation")
        self.summary.lag_final = lag.total_lag
        self.summary.consumed = len(seen)
        _expect("group lag after catching up", lag.total_lag, 0)
        self.say(f"   the members caught up: {len(seen):,} events consumed, lag {lag.total_lag}")

    def show_lag(self, lag: GroupView) -> None:
        """The lag table of step 4."""
        if not self.out.json_mode:
            self.out.table(
                ["partition", "committed", "end offset", "lag"],
                [(p.partition, p.committed, p.log_end_offset, p.lag) for p in lag.partitions],
                numeric=["partition", "committed", "end offset", "lag"],
            )

    async def replay(self, broker: Broker) -> None:
        """Step 5: a new group reads everything again; each listing's order must hold."""
        total = FIRST_WAVE + SECOND_WAVE
        with self.step("replay (new group)", total):
            async with Consumer(
                broker, TOPIC, group_id="audit", auto_offset_reset="earliest"
            ) as consumer:
                records = await _read_all(consumer, total)
                await consumer.commit()
        self.summary.replayed = len(records)
        self.summary.per_key_order = _in_key_order(records)
        _expect("events replayed by group audit", len(records), total)
        if not self.summary.per_key_order:
            raise EventyardError("tour: a listing's events were replayed out of order")
        self.say(f"5. group [bold]audit[/] replayed all {len(records):,} events from the start")
        self.say("   and every listing's events came back in the order they were produced")

    async def replay_recent(self, broker: Broker) -> None:
        """Step 6: seek every partition to a timestamp and read from there."""
        since = self.start_ms + DAY_MS - RECENT_MS
        expected = sum(1 for r in self.events if (r.timestamp_ms or 0) >= since)
        with self.step("replay from timestamp", expected):
            async with Consumer(broker, TOPIC) as consumer:
                await consumer.seek_to_time(since)
                records = await _read_all(consumer, expected)
        self.summary.since_ms = since
        self.summary.replayed_since = len(records)
        self.summary.expected_since = expected
        _expect("events since the timestamp", len(records), expected)
        moment = datetime.fromtimestamp(since / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.say(f"6. replayed the last 6 hours (since {moment}): {len(records):,} events")

    async def reopen(self) -> None:
        """Step 7: the broker was closed; open the directory again and count what is there."""
        with self.step("reopen data dir", 0):
            async with open_broker(self.data_dir) as broker:
                info = broker.describe_topic(TOPIC)
                lag = await describe_group(broker, "valuation")
        self.summary.after_reopen = sum(p.end_offset for p in info.partitions)
        self.summary.committed_after_reopen = sum(p.committed or 0 for p in lag.partitions)
        _expect("events after reopening", self.summary.after_reopen, self.summary.produced)
        _expect("committed offsets after reopening", lag.total_lag, 0)
        self.say("7. closed the broker and reopened the data directory: all")
        self.say(
            f"   {self.summary.after_reopen:,} events and group valuation's committed offsets "
            "are there\n"
        )


async def _drain_group(
    members: list[Consumer], counts: list[int], seen: set[tuple[int, int]], target: int
) -> None:
    """Let every member read and commit until the group has seen ``target`` records."""

    async def member_loop(index: int, consumer: Consumer) -> None:
        while len(seen) < target:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                counts[index] += len(records)
                seen.update((r.partition, r.offset) for r in records)
            if batch:
                try:
                    await consumer.commit()
                except GroupError:
                    continue  # a rebalance moved partitions; their new owner re-reads them

    try:
        await asyncio.wait_for(
            asyncio.gather(*(member_loop(i, c) for i, c in enumerate(members))),
            timeout=STEP_TIMEOUT_S,
        )
    except TimeoutError:
        raise EventyardError(
            f"tour: the group saw {len(seen)} of {target} events in {STEP_TIMEOUT_S:.0f} s"
        ) from None


async def _read_all(consumer: Consumer, expected: int) -> list[ConsumerRecord]:
    """Read until ``expected`` records arrived or the partitions are exhausted."""
    records: list[ConsumerRecord] = []
    deadline = asyncio.get_running_loop().time() + STEP_TIMEOUT_S
    while len(records) < expected and asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(timeout_ms=100)
        if not batch and await caught_up(consumer):
            break
        for chunk in batch.values():
            records.extend(chunk)
    return records


_EVENT: Final = msgspec.json.Decoder(ListingEvent)


def _in_key_order(records: list[ConsumerRecord]) -> bool:
    """Whether every listing's ``seq`` runs 0, 1, 2, ... in the order records were read."""
    last: dict[str, int] = {}
    for record in records:
        event = _EVENT.decode(record.value or b"")
        if event.seq != last.get(event.listing_id, -1) + 1:
            return False
        last[event.listing_id] = event.seq
    return True


def _expect(what: str, got: int, wanted: int) -> None:
    if got != wanted:
        raise EventyardError(f"tour: {what}: got {got}, expected {wanted}")


def _print_summary(out: Output, summary: DemoSummary) -> None:
    out.table(
        ["step", "events", "seconds", "events/s"],
        [
            (
                s.step,
                s.events or None,
                s.seconds,
                round(s.events / s.seconds) if s.events and s.seconds > 0 else None,
            )
            for s in summary.steps
        ],
        title="summary",
        numeric=["events", "seconds", "events/s"],
    )
    out.line(
        f"produced {summary.produced:,} = consumed {summary.consumed:,} = "
        f"replayed {summary.replayed:,} events, nothing lost"
    )


def tour(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Run in this (new or empty) directory and keep it; default: a temporary one.",
        ),
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Walk through the broker end to end in a few seconds.

    Topics, keyed produce, a consumer group and its lag, replay, durability.

    [bold]Examples[/]

    $ eventyard tour

    $ eventyard tour --json

    $ eventyard tour --data-dir ./tour-data
    """
    out = Output(json)
    if data_dir is not None and data_dir.is_dir() and any(data_dir.iterdir()):
        raise ConfigError(f"--data-dir {data_dir} is not empty: the tour needs a fresh directory")
    directory = data_dir or Path(tempfile.mkdtemp(prefix="eventyard-tour-"))
    try:
        summary = run(Walk(directory, out).run())
    finally:
        if data_dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    if out.json_mode:
        out.json(summary.document())
    else:
        _print_summary(out, summary)
