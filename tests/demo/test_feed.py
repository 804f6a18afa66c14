"""The feed's pacing: ``rate`` events per wall-clock second replaces the market-time pacing,
publishing each event when it falls due and never early, after lingering for the events due
meanwhile; a rate must be positive and a linger not negative."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest

from eventyard.app import App
from eventyard.demo.events import DEMO_REGISTRY, ListingChanged
from eventyard.demo.pipeline import feed
from eventyard.errors import ConfigError, UnknownTopicError
from eventyard.events import decode
from eventyard.transports import MemoryTransport, Outgoing

START = dt.datetime(2008, 1, 1, 15, 0, tzinfo=dt.UTC)


def listings(count: int, days_apart: int) -> list[ListingChanged]:
    """``count`` new listings, ``days_apart`` market days after one another."""
    return [
        ListingChanged(
            ListingKey=f"AMES-{n:04d}",
            ChangeType="New Listing",
            ModificationTimestamp=(START + dt.timedelta(days=n * days_apart)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            StandardStatus="Active",
            ListPrice=200_000,
            OriginalListPrice=200_000,
            ListingContractDate=(START + dt.timedelta(days=n * days_apart)).date().isoformat(),
            DaysOnMarket=0,
            LivingArea=1500.0,
            BedroomsTotal=3,
            YearBuilt=1990,
            Latitude=42.03,
            Longitude=-93.62,
        )
        for n in range(count)
    ]


def app_on(transport: MemoryTransport) -> App:
    return App(transport, source="test/feed", registry=DEMO_REGISTRY)


def published_at(transport: MemoryTransport) -> dict[str, float]:
    """Each listing's publish time (its envelope's time, epoch seconds), by ListingKey."""
    out = {}
    for message in transport.messages("listings"):
        envelope = decode(message.value, message.headers, message.key)
        assert envelope is not None and envelope.time is not None and message.key is not None
        out[message.key.decode()] = dt.datetime.fromisoformat(envelope.time).timestamp()
    return out


async def test_rate_paces_by_count_whatever_the_market_times() -> None:
    # A year of market time between events: at speed 1 (a day a second) this would take
    # decades, so finishing in about count / rate seconds shows the rate replaced it.
    events, rate = listings(40, days_apart=365), 400.0
    transport = MemoryTransport()
    async with app_on(transport) as app:
        started = time.monotonic()
        published = await feed(app, events, speed=1.0, rate=rate, linger=0)
        elapsed = time.monotonic() - started
    assert published == len(events)
    assert (len(events) - 1) / rate <= elapsed < 2.0
    times = published_at(transport)
    first = times[events[0].ListingKey]
    for index, event in enumerate(events):
        assert times[event.ListingKey] - first >= index / rate - 0.002, "published early"


class Recording(MemoryTransport):
    """Notes when each listing is handed over for publishing (``time.monotonic()``), and
    the listings of each publish call."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: dict[bytes | None, float] = {}
        self.calls: list[list[bytes | None]] = []

    async def publish(self, topic: str, messages: Sequence[Outgoing]) -> None:
        now = time.monotonic()
        self.handed.update((message.key, now) for message in messages)
        self.calls.append([message.key for message in messages])
        await super().publish(topic, messages)


def uvloop_run(main: Coroutine[Any, Any, None]) -> None:
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(main)


@pytest.mark.parametrize("run", [asyncio.run, uvloop_run], ids=["asyncio", "uvloop"])
def test_rate_never_publishes_early_on_either_event_loop(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    """uvloop's timers count whole milliseconds: a shorter sleep returns at once, and a
    timer may fire early by part of one. Before the feed slept again until the time had
    come, about 120 of these 300 events went out up to 0.45 ms early on uvloop."""
    events, rate = listings(300, days_apart=1), 1000.0
    transport = Recording()
    started: list[float] = []

    async def main() -> None:
        async with app_on(transport) as app:
            started.append(time.monotonic())  # the feed's own start is this or later
            await feed(app, events, speed=0, rate=rate, linger=0)

    run(main())
    early = [
        index
        for index, event in enumerate(events)
        if transport.handed[event.ListingKey.encode()] < started[0] + index / rate
    ]
    assert early == [], f"{len(early)} of {len(events)} events went out before they were due"


async def test_an_event_lingers_for_the_events_due_meanwhile() -> None:
    """Each publish waits until its first event has been due for the linger and takes
    every event due by then, so with a 20 ms linger at 1,000 a second each publish but the
    last carries at least 20 events: 300 events make at most 15 publishes, not ~300."""
    events, rate, linger = listings(300, days_apart=1), 1000.0, 0.02
    transport = Recording()
    async with app_on(transport) as app:
        started = time.monotonic()  # the feed's own start is this or later
        await feed(app, events, speed=0, rate=rate, linger=linger)
    keys = [event.ListingKey.encode() for event in events]
    assert [key for call in transport.calls for key in call] == keys, "not in order, or lost"
    assert len(transport.calls) <= 15, f"{len(transport.calls)} publishes"
    for call in transport.calls:
        first = keys.index(call[0])
        assert transport.handed[call[0]] >= started + first / rate + linger, "did not linger"


async def test_rate_reports_progress_and_counts_rejects() -> None:
    transport = MemoryTransport()
    seen: list[int] = []
    async with app_on(transport) as app:
        published = await feed(
            app,
            listings(5, days_apart=1),
            speed=0,
            rate=1000.0,
            rejects=[(None, b"not json")],
            on_published=seen.append,
        )
    assert published == 6
    assert seen == sorted(seen) and seen[-1] == 6
    assert len(transport.messages("listings")) == 6


@pytest.mark.parametrize(
    ("rate", "linger", "error"),
    [
        (0.0, 0.005, "feed rate must be a positive"),
        (-5.0, 0.005, "feed rate must be a positive"),
        (1000.0, -0.001, "feed linger must be zero or more"),
        (1000.0, float("nan"), "feed linger must be zero or more"),
    ],
)
async def test_rate_must_be_positive_and_linger_not_negative(
    rate: float, linger: float, error: str
) -> None:
    transport = MemoryTransport()
    with pytest.raises(ConfigError, match=error):
        await feed(app_on(transport), listings(2, days_apart=1), speed=0, rate=rate, linger=linger)
    with pytest.raises(UnknownTopicError):
        transport.messages("listings")  # nothing was published
