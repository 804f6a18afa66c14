"""The feed's pacing: ``rate`` events per wall-clock second replaces the market-time pacing,
publishing each event when it falls due and never early; a rate must be positive."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from eventyard.app import App
from eventyard.demo.events import DEMO_REGISTRY, ListingChanged
from eventyard.demo.pipeline import feed
from eventyard.errors import ConfigError, UnknownTopicError
from eventyard.events import decode
from eventyard.transports import MemoryTransport

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
        published = await feed(app, events, speed=1.0, rate=rate)
        elapsed = time.monotonic() - started
    assert published == len(events)
    assert (len(events) - 1) / rate <= elapsed < 2.0
    times = published_at(transport)
    first = times[events[0].ListingKey]
    for index, event in enumerate(events):
        assert times[event.ListingKey] - first >= index / rate - 0.002, "published early"


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


@pytest.mark.parametrize("rate", [0.0, -5.0])
async def test_rate_must_be_positive(rate: float) -> None:
    transport = MemoryTransport()
    with pytest.raises(ConfigError, match="feed rate must be a positive"):
        await feed(app_on(transport), listings(2, days_apart=1), speed=0, rate=rate)
    with pytest.raises(UnknownTopicError):
        transport.messages("listings")  # nothing was published
