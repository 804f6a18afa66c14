"""One ``eventyard demo`` run from start to summary.

:func:`run_demo` loads the market (the Ames sales with simulated listing lifecycles, or the
user's ``--listings`` export), starts the pipeline, feeds it while the live view runs, waits
until every stage has caught up, and returns a :class:`DemoSummary`: events per stage,
alerts sent, the top deals from the board, and how accurate the live valuations were
(each closed listing's last valuation before it closed against its real price).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from eventyard.app.dlq import read_available
from eventyard.demo.board import DealBoard
from eventyard.demo.buyboxes import load_buyboxes
from eventyard.demo.data import load_listings, load_sales
from eventyard.demo.events import DEMO_REGISTRY, AlertSent, ListingChanged, ListingValued
from eventyard.demo.market import FIELD_ORIGINS, simulate_market
from eventyard.demo.pipeline import Pipeline, PipelineConfig, feed
from eventyard.demo.quality import coverage, mdape
from eventyard.demo.settings import StageSettings
from eventyard.demo.view import LiveView
from eventyard.events import decode
from eventyard.transports import Transport

__all__ = ["DemoOptions", "DemoSummary", "run_demo"]

EXAMPLE_BUYBOXES = Path(__file__).parent / "examples" / "buyboxes.yaml"
_views = itertools.count()


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path
    single_process: bool = False
    speed: float = 40.0
    seed: int = 7
    listings: Path | None = None
    buyboxes: Path | None = None
    alerts_file: Path | None = None
    webhook: str | None = None
    terminal_alerts: bool = False
    limit: int | None = None
    """Replay only the first ``limit`` sales (or listings) of the market."""


@dataclass
class DemoSummary:
    mode: str
    source: str
    listing_events: int
    rejected_records: int
    stages: dict[str, int]
    alerts: int
    dead_letters: int
    top_deals: list[dict[str, Any]]
    valuation: dict[str, Any]
    seconds: float
    data_dir: str
    fields: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _market(
    options: DemoOptions,
) -> tuple[list[ListingChanged], list[tuple[bytes | None, bytes]], str]:
    if options.listings is not None:
        events, rejects = load_listings(options.listings)
        if options.limit is not None:
            keep = set(list(dict.fromkeys(e.ListingKey for e in events))[: options.limit])
            events = [e for e in events if e.ListingKey in keep]
        raw: list[tuple[bytes | None, bytes]] = [
            (None, r.raw.encode() if isinstance(r.raw, str) else msgspec.json.encode(r.raw))
            for r in rejects
        ]
        return events, raw, str(options.listings)
    sales = load_sales()
    if options.limit is not None:
        sales = tuple(sorted(sales, key=lambda sale: sale.CloseDate)[: options.limit])
    return simulate_market(sales, seed=options.seed), [], "Ames housing sales 2006-2010"


async def run_demo(options: DemoOptions, console: Console) -> DemoSummary:
    """Run the pipeline over the market once (see the module docstring)."""
    started = time.monotonic()
    events, rejects, source = _market(options)
    work = options.data_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    channels = [f"jsonl:{options.alerts_file or work / 'alerts.jsonl'}"]
    if options.webhook:
        channels.append(f"webhook:{options.webhook}")
    if options.terminal_alerts:
        channels.append("terminal")
    settings = StageSettings(
        work_dir=work,
        buyboxes=tuple(load_buyboxes(options.buyboxes or EXAMPLE_BUYBOXES)),
        channels=tuple(channels),
        seed=options.seed,
    )
    pipeline = Pipeline(
        PipelineConfig(
            data_dir=options.data_dir,
            settings=settings,
            single_process=options.single_process,
            speed=options.speed,
        )
    )
    mode = "single process" if options.single_process else "worker processes"
    view = LiveView(console, total_events=len(events) + len(rejects), mode=mode)
    await pipeline.start()
    try:
        assert pipeline.feed_app is not None
        transport = pipeline.feed_app.transport
        tail = asyncio.ensure_future(_tail_alerts(transport, view))
        with view:
            watch = asyncio.ensure_future(_watch(pipeline, view)) if view.enabled else None
            await feed(
                pipeline.feed_app,
                events,
                speed=options.speed,
                rejects=rejects,
                on_published=view.fed,
            )
            if watch is not None:
                watch.cancel()
            await pipeline.wait_done(on_tick=view.stages)
        tail.cancel()
        stages = {s.group: s.committed for s in await pipeline.stage_progress()}
        valuation = await _valuation_accuracy(transport)
        dead = await _count(transport, "listings.comps.dlq")
        alerts = await _count(transport, "alerts")
    finally:
        await pipeline.stop()
    board = DealBoard(settings.board_path)
    try:
        top = [asdict(row) for row in board.top(5)]
    finally:
        board.close()
    return DemoSummary(
        mode=mode,
        source=source,
        listing_events=len(events),
        rejected_records=len(rejects),
        stages=stages,
        alerts=alerts,
        dead_letters=dead,
        top_deals=top,
        valuation=valuation,
        seconds=round(time.monotonic() - started, 1),
        data_dir=str(options.data_dir),
        fields=dict(FIELD_ORIGINS) if options.listings is None else {},
    )


async def _read(transport: Transport, topic: str) -> list[Any]:
    receiver = transport.receiver(
        [topic], f"eventyard-demo-summary-{next(_views)}-{time.time_ns()}"
    )
    async with receiver:
        return list(await read_available(receiver))


async def _count(transport: Transport, topic: str) -> int:
    await transport.ensure_topic(topic)
    return len(await _read(transport, topic))


async def _watch(pipeline: Pipeline, view: LiveView) -> None:
    """Keep the view's stage table current while the feed runs."""
    while True:
        view.stages(await pipeline.stage_progress())
        await asyncio.sleep(0.5)


async def _tail_alerts(transport: Transport, view: LiveView) -> None:
    decoder = DEMO_REGISTRY.decoder(AlertSent)
    receiver = transport.receiver(["alerts"], f"eventyard-demo-view-{time.time_ns()}")
    async with receiver:
        while True:
            for message in await receiver.fetch(0.25, 1000):
                envelope = decode(message.value, message.headers, message.key)
                if envelope is not None:
                    view.alerted(decoder(envelope))


async def _valuation_accuracy(transport: Transport) -> dict[str, Any]:
    """Each closed listing's last valuation before its close, against its close price."""
    value_of = DEMO_REGISTRY.decoder(ListingValued)
    listing_of = DEMO_REGISTRY.decoder(ListingChanged)
    last: dict[str, ListingValued] = {}
    for message in await _read(transport, "valued"):
        envelope = decode(message.value, message.headers, message.key)
        if envelope is not None:
            valued = value_of(envelope)
            last[valued.listing.ListingKey] = valued
    actual, estimates, lows, highs = [], [], [], []
    for message in await _read(transport, "listings"):
        envelope = decode(message.value, message.headers, message.key)
        if envelope is None or envelope.type != "reso.listing.changed":
            continue
        try:
            listing = listing_of(envelope)
        except Exception:
            continue
        before = last.get(listing.ListingKey)
        if listing.ChangeType == "Closed" and listing.ClosePrice and before and before.ModelVersion:
            actual.append(float(listing.ClosePrice))
            estimates.append(float(before.Estimate))
            lows.append(float(before.Low))
            highs.append(float(before.High))
    if not actual:
        return {"sales": 0}
    return {
        "sales": len(actual),
        "mdape": round(mdape(actual, estimates), 4),
        "coverage_80": round(coverage(actual, lows, highs), 4),
    }
