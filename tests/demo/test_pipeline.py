"""The pipeline's event-driven behaviour, for real: worker processes on ``eventyard serve``.

Each test runs the stages of :mod:`eventyard.demo.stages` on a slice of the real Ames market
(the first few hundred sales with their simulated lifecycles) and then checks the topics
themselves, read from the start by a throwaway group, against what the stages must have done:

- a stage killed with SIGKILL mid-stream and restarted loses nothing and repeats nothing: the
  alerts are exactly a fresh :class:`AlertPolicy` replayed over the ``matches`` topic, and
  every listing change still flows from ``listings`` to the board;
- malformed records of a ``--listings`` file end on ``listings.comps.dlq`` with their reason,
  and the good ones reach the board;
- a fresh :class:`DealBoard` fed the ``deals``, ``matches`` and ``alerts`` topics is the
  pipeline's board, row for row.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console

from eventyard.app import parse_dead_letter
from eventyard.app.dlq import read_available
from eventyard.demo.alerts import AlertPolicy, alert_id
from eventyard.demo.board import DealBoard
from eventyard.demo.buyboxes import BuyBox, load_buyboxes, matches
from eventyard.demo.data import load_sales
from eventyard.demo.events import (
    DEMO_REGISTRY,
    AlertSent,
    DealMatched,
    DealScored,
    ListingChanged,
    ListingComped,
    ListingValued,
    ModelTrained,
)
from eventyard.demo.market import simulate_market
from eventyard.demo.pipeline import Pipeline, PipelineConfig, feed
from eventyard.demo.session import EXAMPLE_BUYBOXES, DemoOptions, run_demo
from eventyard.demo.settings import StageSettings
from eventyard.demo.valuing import comped_estimate
from eventyard.events import decode
from eventyard.transports import EmbeddedTransport, Message, Transport

pytestmark = pytest.mark.slow

SALES = 500
SPEED = 30.0
"""Market days per second: the slice's ~470 days after the warm-up take ~16 s to feed."""
WARM_UP = 50


@functools.cache
def market(sales: int = SALES) -> tuple[ListingChanged, ...]:
    """The first ``sales`` Ames sales (by close date) with their simulated lifecycles."""
    first = tuple(sorted(load_sales(), key=lambda sale: sale.CloseDate)[:sales])
    return tuple(simulate_market(first, seed=7))


def buyboxes() -> tuple[BuyBox, ...]:
    return tuple(load_buyboxes(EXAMPLE_BUYBOXES))


def make_pipeline(root: Path, *, single_process: bool = False, speed: float = SPEED) -> Pipeline:
    """A pipeline as :func:`eventyard.demo.session.run_demo` builds it, alerting to a file."""
    work = root / "work"
    work.mkdir(parents=True)
    settings = StageSettings(
        work_dir=work, buyboxes=buyboxes(), channels=(f"jsonl:{work / 'alerts.jsonl'}",)
    )
    return Pipeline(
        PipelineConfig(
            data_dir=root,
            settings=settings,
            single_process=single_process,
            speed=speed,
        )
    )


def transport_of(pipeline: Pipeline) -> Transport:
    assert pipeline.feed_app is not None
    return pipeline.feed_app.transport


# -- reading the topics back ---------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One decoded event with where it was: what the checks compare."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    event_id: str
    event: Any


TYPES: dict[str, type[Any]] = {
    "listings": ListingChanged,
    "comped": ListingComped,
    "valued": ListingValued,
    "deals": DealScored,
    "matches": DealMatched,
    "alerts": AlertSent,
    "models": ModelTrained,
}


async def read_topics(transport: Transport, topics: Sequence[str]) -> dict[str, list[Record]]:
    """Every event of ``topics`` from the start, per topic in (partition, offset) order."""
    receiver = transport.receiver(list(topics), f"test-read-{uuid.uuid4().hex[:12]}")
    async with receiver:
        messages = await read_available(receiver)
    out: dict[str, list[Record]] = {topic: [] for topic in topics}
    for message in sorted(messages, key=lambda m: (m.topic, m.partition, m.offset)):
        out[message.topic].append(record_of(message))
    return out


def record_of(message: Message) -> Record:
    envelope = decode(message.value, message.headers, message.key)
    assert envelope is not None
    event_type = TYPES[message.topic]
    assert envelope.type == DEMO_REGISTRY.type_name(event_type)
    event = DEMO_REGISTRY.decoder(event_type)(envelope)
    return Record(
        message.topic, message.partition, message.offset, message.timestamp, envelope.id, event
    )


def change(listing: ListingChanged) -> tuple[str, str, str]:
    return listing.ListingKey, listing.ModificationTimestamp, listing.ChangeType


def alert_row(alert: AlertSent) -> tuple[str, str, str, str, int, str]:
    """An alert as the board's ``board_alerts`` row holds it."""
    return alert.Channel, alert.BuyBox, alert.ListingKey, alert.Reason, alert.ListPrice, alert.At


def replay_alerts(path: Path, matched: Iterable[Record], channel: str) -> set[tuple[Any, ...]]:
    """The alerts a fresh policy in ``path`` decides over ``matched``, in the order given."""
    expected = set()
    with AlertPolicy(path) as policy:
        for record in matched:
            match: DealMatched = record.event
            reason = policy.claim(match, record.event_id)
            if reason is not None:
                expected.add(
                    (channel, match.BuyBox, match.ListingKey, reason, match.ListPrice, match.At)
                )
    return expected


def published_alerts(records: Iterable[Record], channel: str) -> list[tuple[Any, ...]]:
    """The channel's alerts on the ``alerts`` topic, once per event id."""
    by_id = {r.event_id: alert_row(r.event) for r in records if r.event.Channel == channel}
    return sorted(by_id.values())


def jsonl_ids(path: Path) -> list[str]:
    return [json.loads(line)["AlertId"] for line in path.read_text().splitlines()]


def board_snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with DealBoard(path) as board:
        return board.snapshot()


def assert_alerts_exact(
    root: Path, topics: dict[str, list[Record]], board: dict[str, list[tuple[Any, ...]]]
) -> set[tuple[Any, ...]]:
    """The alerts stage's output is the policy replayed over ``matches``: nothing lost, nothing
    repeated, on the topic, in the JSON-lines file and on the board. Returns the alerts."""
    expected = replay_alerts(root / "replay-alerts.db", topics["matches"], "file")
    sent = published_alerts(topics["alerts"], "file")
    assert len(sent) == len(set(sent)), "an alert was published under two event ids"
    assert set(sent) == expected
    once = {(channel, box, key, reason) for channel, box, key, reason, _, _ in sent}
    assert len(once) == len(sent), "two alerts for one channel, buy-box, listing and reason"
    assert set(board["board_alerts"]) == expected
    ids = jsonl_ids(root / "work" / "alerts.jsonl")
    assert len(ids) == len(set(ids)), "the alerts file holds an alert twice"
    assert set(ids) == {alert_id(box, key, reason) for _, box, key, reason, _, _ in expected}
    return expected


def assert_flow(topics: dict[str, list[Record]], board: dict[str, list[tuple[Any, ...]]]) -> None:
    """Every listing change went through every stage (duplicates allowed, losses not)."""
    listed = {change(r.event) for r in topics["listings"]}
    assert listed == {change(e) for e in market()}
    comped = {change(r.event.listing): r.event for r in topics["comped"]}
    assert set(comped) == listed
    valued = {change(r.event.listing) for r in topics["valued"]}
    open_changes = {c for c in comped if c[2] not in ("Closed", "Pending", "Withdrawn")}
    assert valued <= open_changes
    for missing in open_changes - valued:  # before the first model, with no comps either
        assert comped_estimate(comped[missing]) is None, missing
    assert len(valued) > len(open_changes) / 2
    assert {change(r.event.valued.listing) for r in topics["deals"]} == valued
    boxes = buyboxes()
    should_match = {
        (box.name, deal.valued.listing.ListingKey, deal.valued.listing.ModificationTimestamp,
         deal.Score)
        for deal in (r.event for r in topics["deals"])
        for box in boxes
        if matches(box, deal)
    }  # fmt: skip
    matched = {
        (m.BuyBox, m.ListingKey, m.At, m.Score) for m in (r.event for r in topics["matches"])
    }
    assert matched == should_match
    assert {(row[0], row[1]) for row in board["board_matches"]} == {
        (box, key) for box, key, _, _ in matched
    }
    assert {row[0] for row in board["board_deals"]} == {key for key, _, _ in valued}


async def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def start_feeding(pipeline: Pipeline) -> asyncio.Future[int]:
    """Feed the first listings and wait until every stage has them (the workers have started
    and joined their groups), then feed the rest at :data:`SPEED` in a task."""
    assert pipeline.feed_app is not None
    events = market()
    await feed(pipeline.feed_app, events[:WARM_UP], speed=0)
    await pipeline.wait_done()
    return asyncio.ensure_future(feed(pipeline.feed_app, events[WARM_UP:], speed=SPEED))


# -- a stage killed and restarted ----------------------------------------------------------


async def test_alerts_stage_killed_and_restarted_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    pipeline = make_pipeline(tmp_path)
    await pipeline.start()
    try:
        feeding = await start_feeding(pipeline)
        alerts_file = tmp_path / "work" / "alerts.jsonl"

        async def some_alerts() -> bool:
            return lines(alerts_file) >= 5

        await wait_for(some_alerts)
        pipeline.kill("alerts")
        at_kill = lines(alerts_file)
        assert not feeding.done(), "killed after the feed ended"
        await asyncio.sleep(1.0)  # matches pile up meanwhile
        pipeline.restart("alerts")
        await feeding
        await pipeline.wait_done()
        assert all(s.committed == s.end for s in await pipeline.stage_progress())
        topics = await read_topics(transport_of(pipeline), ["matches", "alerts"])
    finally:
        await pipeline.stop()
    board = board_snapshot(tmp_path / "work" / "board.db")
    expected = assert_alerts_exact(tmp_path, topics, board)
    assert len(expected) > at_kill, "no alert was decided after the restart"


STAGE_INPUT = {"valuation": "comped", "comps": "listings"}


async def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets, asked of ``eventyard serve`` by an admin client."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


def closed_before(records: Iterable[Record], committed: dict[tuple[str, int], int]) -> set[str]:
    """The sales whose ``Closed`` change sits below the committed offsets: the ones a
    restarted stage is never given again and can only know from its input's history."""
    out = set()
    for r in records:
        listing = r.event if isinstance(r.event, ListingChanged) else r.event.listing
        if listing.ChangeType == "Closed" and r.offset < committed.get((r.topic, r.partition), 0):
            out.add(listing.ListingKey)
    return out


@pytest.mark.parametrize("stage", ["valuation", "comps"])
async def test_stateful_stage_killed_and_restarted_rebuilds_its_state(
    tmp_path: Path, stage: str
) -> None:
    pipeline = make_pipeline(tmp_path)
    await pipeline.start()
    try:
        assert pipeline.bootstrap is not None
        feeding = await start_feeding(pipeline)

        async def busy() -> bool:  # killed while it has closed sales to rebuild
            progress = {s.group: s for s in await pipeline.stage_progress()}
            return progress[stage].committed >= len(market()) // 3

        await wait_for(busy)
        committed = await committed_offsets(pipeline.bootstrap, stage)
        pipeline.kill(stage)
        assert not feeding.done(), "killed after the feed ended"
        await asyncio.sleep(1.0)
        restarted_ms = time.time() * 1000
        pipeline.restart(stage)
        await feeding
        await pipeline.wait_done()
        assert all(s.committed == s.end for s in await pipeline.stage_progress())
        topics = await read_topics(transport_of(pipeline), list(TYPES))
    finally:
        await pipeline.stop()
    board = board_snapshot(tmp_path / "work" / "board.db")
    assert_flow(topics, board)
    assert_alerts_exact(tmp_path, topics, board)

    # The restarted stage knew the sales closed before the kill, which only its on_start
    # rebuild from the input topic's history could have told it.
    known_before = closed_before(topics[STAGE_INPUT[stage]], committed)
    assert known_before
    if stage == "comps":
        used = {
            comp.ListingKey
            for r in topics["comped"]
            if r.timestamp > restarted_ms
            for comp in r.event.comps
        }
        assert used & known_before
    else:
        later = [r.event for r in topics["models"] if r.timestamp > restarted_ms]
        assert later, "the restarted valuation stage trained no model"
        first: ModelTrained = later[0]
        # Every sale closed before the kill's commit point and before the model's time was
        # in the training set the moment the restarted stage trained (restored on start),
        # whatever the interleaving of the redelivered partitions; without the restore
        # only the redelivered sales it had received by then would count.
        restored = {
            r.event.listing.ListingKey
            for r in topics["comped"]
            if r.event.listing.ChangeType == "Closed"
            and r.event.listing.ModificationTimestamp < first.TrainedAsOf
            and r.event.listing.ListingKey in known_before
        }
        assert restored
        assert first.Sales >= len(restored)
    for r in topics["models"]:  # and never trained on a sale closed after the model's time
        model: ModelTrained = r.event
        closed = {
            c.event.listing.ListingKey
            for c in topics["comped"]
            if c.event.listing.ChangeType == "Closed"
            and c.event.listing.ModificationTimestamp < model.TrainedAsOf
        }
        assert model.Sales <= len(closed)


# -- malformed records ---------------------------------------------------------------------


def bad_rows(template: dict[str, Any]) -> list[tuple[str, str]]:
    """``(line, what the dead letter's error must say)`` for rows the loader rejects."""

    def row(**changes: Any) -> str:
        return json.dumps({**template, **changes})

    without_area = {k: v for k, v in template.items() if k != "LivingArea"}
    return [
        (row(ListingKey="BAD-STR", ListPrice="cheap"), "ListPrice"),
        (json.dumps({**without_area, "ListingKey": "BAD-MISSING"}), "LivingArea"),
        (row(ListingKey="BAD-NEG", ListPrice=-5), "ListPrice: must be positive"),
        (row(ListingKey="BAD-TIME", ModificationTimestamp="yesterday"), "ModificationTimestamp"),
        (
            row(ListingKey="BAD-CLOSE", ChangeType="Closed", StandardStatus="Closed"),
            "required on a Closed change",
        ),
        ("this is not JSON", "not JSON"),
        ("[1, 2, 3]", "object"),
    ]


async def test_malformed_listings_are_dead_lettered_and_the_rest_flow(tmp_path: Path) -> None:
    events = market(250)
    rows = [json.dumps(msgspec.to_builtins(event)) for event in events]
    bad = bad_rows(msgspec.to_builtins(events[0]))
    for i, (line, _) in enumerate(bad):
        rows.insert(40 + i * 90, line)
    listings = tmp_path / "listings.jsonl"
    listings.write_text("\n".join(rows) + "\n")
    options = DemoOptions(data_dir=tmp_path / "run", speed=0, listings=listings)
    with (tmp_path / "console.txt").open("w") as out:
        summary = await run_demo(options, Console(file=out))

    assert summary.rejected_records == len(bad)
    assert summary.dead_letters == len(bad)
    assert summary.listing_events == len(events)
    assert summary.stages["comps"] == len(events) + len(bad)
    assert summary.alerts > 0

    transport = EmbeddedTransport(tmp_path / "run" / "broker")  # the run's log, read again
    await transport.start()
    try:
        receiver = transport.receiver(["listings.comps.dlq"], "test-read-dlq")
        async with receiver:
            dead = [parse_dead_letter(m) for m in await read_available(receiver)]
        topics = await read_topics(transport, ["comped"])
    finally:
        await transport.close()
    errors = sorted(entry.error for entry in dead)
    assert len(errors) == len(bad)
    for _, says in bad:
        assert any(says in error for error in errors), (says, errors)
    assert {entry.reason for entry in dead} <= {"decode", "validation", "handler"}
    assert {entry.group for entry in dead} == {"comps"}
    assert not any(r.event.listing.ListingKey.startswith("BAD-") for r in topics["comped"])
    assert {change(r.event.listing) for r in topics["comped"]} == {change(e) for e in events}
    with DealBoard(tmp_path / "run" / "work" / "board.db") as board:
        keys = {row[0] for row in board.snapshot()["board_deals"]}
    assert keys and not any(key.startswith("BAD-") for key in keys)


# -- the board rebuilt by a replay ---------------------------------------------------------


async def test_replaying_the_topics_rebuilds_the_deal_board(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path, speed=0)
    await pipeline.start()
    try:
        assert pipeline.feed_app is not None
        await feed(pipeline.feed_app, market(), speed=0)
        await pipeline.wait_done()
        topics = await read_topics(transport_of(pipeline), ["deals", "matches", "alerts"])
    finally:
        await pipeline.stop()
    with DealBoard(tmp_path / "rebuilt.db") as rebuilt:
        for topic in ("deals", "matches", "alerts"):
            rebuilt.apply_many((r.event, r.event_id) for r in topics[topic])
        again = rebuilt.apply_many((r.event, r.event_id) for r in topics["deals"])
        assert again == 0  # applying twice changes nothing
        snapshot = rebuilt.snapshot()
        with DealBoard(tmp_path / "work" / "board.db") as live:
            assert snapshot == live.snapshot()
            assert rebuilt.top(10) == live.top(10)
            for name, _ in live.buyboxes():
                assert rebuilt.for_buybox(name) == live.for_buybox(name)
            for row in live.top(5):
                assert rebuilt.history(row.listing_key) == live.history(row.listing_key)
    assert snapshot["board_deals"] and snapshot["board_matches"] and snapshot["board_alerts"]
