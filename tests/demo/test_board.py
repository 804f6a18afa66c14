"""The deal board: idempotent per event id, keyed by fact, the same rows from any replay."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventyard.demo.board import BoardEvent, DealBoard, DealRow, HistoryRow, MatchRow
from eventyard.demo.events import (
    AlertSent,
    DealMatched,
    DealScored,
    ListingChanged,
    ListingValued,
    ModelTrained,
)

LISTING = ListingChanged(
    ListingKey="AMES-0001",
    ChangeType="New Listing",
    ModificationTimestamp="2009-03-01T15:00:00Z",
    StandardStatus="Active",
    ListPrice=200_000,
    OriginalListPrice=200_000,
    ListingContractDate="2009-03-01",
    DaysOnMarket=0,
    LivingArea=1_500.0,
    BedroomsTotal=3,
    YearBuilt=1975,
    Latitude=42.03,
    Longitude=-93.63,
    City="Ames",
)


def scored(
    key: str = "AMES-0001",
    at: str = "2009-03-01T15:00:00Z",
    price: int = 200_000,
    score: float = 40.0,
    change: str = "New Listing",
    **more: Any,
) -> DealScored:
    listing = msgspec.structs.replace(
        LISTING, ListingKey=key, ModificationTimestamp=at, ListPrice=price, ChangeType=change
    )
    valued = ListingValued(
        listing=listing, comps=[], Estimate=220_000, Low=198_000, High=242_000, ModelVersion=1
    )
    return DealScored(
        valued=valued,
        Score=score,
        Discount=round((220_000 - price) / 220_000, 4),
        Uncertainty=0.2,
        Signals=more.pop("signals", ["9% below estimate"]),
        **more,
    )


def match(
    box: str = "first-home", key: str = "AMES-0001", at: str = "2009-03-01T15:00:00Z", **more: Any
) -> DealMatched:
    fields: dict[str, Any] = {
        "Broker": "Dana",
        "Score": 40.0,
        "ListPrice": 200_000,
        "Estimate": 220_000,
        "Reasons": ["score 40 (min 35)", "$200,000"],
        **more,
    }
    return DealMatched(BuyBox=box, ListingKey=key, At=at, **fields)


def alert(
    box: str = "first-home",
    key: str = "AMES-0001",
    reason: str = "new match",
    channel: str = "file",
    at: str = "2009-03-01T15:00:00Z",
    price: int = 200_000,
) -> AlertSent:
    return AlertSent(
        Channel=channel, BuyBox=box, ListingKey=key, Reason=reason, ListPrice=price, At=at
    )


@pytest.fixture
def board(tmp_path: Path) -> Iterator[DealBoard]:
    with DealBoard(tmp_path / "board.db") as opened:
        yield opened


def test_a_scored_deal_shows_on_top(board: DealBoard) -> None:
    assert board.apply(scored(CapRate=0.061, GrossRentMultiplier=9.8), "d1")
    [row] = board.top()
    assert row == DealRow(
        listing_key="AMES-0001",
        at="2009-03-01T15:00:00Z",
        change_type="New Listing",
        status="Active",
        city="Ames",
        bedrooms=3,
        living_area=1500.0,
        list_price=200_000,
        estimate=220_000,
        low=198_000,
        high=242_000,
        model_version=1,
        score=40.0,
        discount=0.0909,
        uncertainty=0.2,
        signals=("9% below estimate",),
        cap_rate=0.061,
        gross_rent_multiplier=9.8,
        buyboxes=(),
    )
    assert board.deal("AMES-0001") == row
    assert board.deal("AMES-9999") is None


def test_the_same_event_id_twice_changes_nothing(board: DealBoard) -> None:
    assert board.apply(scored(), "d1")
    before = board.snapshot()
    assert not board.apply(scored(price=150_000, score=90), "d1")  # same id, whatever it says
    assert board.snapshot() == before
    assert board.counts() == {"deals": 1, "matches": 0, "alerts": 0, "applied": 1}


def test_the_same_fact_under_two_ids_is_one_row(board: DealBoard) -> None:
    board.apply(match(), "m1")
    board.apply(match(), "m1-republished")
    board.apply(alert(), "a1")
    board.apply(alert(), "a1-republished")
    assert board.counts() == {"deals": 0, "matches": 1, "alerts": 1, "applied": 4}
    assert len(board.history("AMES-0001")) == 2


def test_top_ranks_by_score_and_keeps_each_listings_latest_state(board: DealBoard) -> None:
    board.apply(scored("AMES-0001", score=40), "d1")
    board.apply(scored("AMES-0002", score=70), "d2")
    board.apply(scored("AMES-0003", score=55), "d3")
    board.apply(scored("AMES-0001", "2009-04-01T15:00:00Z", 180_000, 80, "Price Change"), "d4")
    # An older change arriving late does not overwrite the newer one.
    board.apply(scored("AMES-0001", "2009-03-15T15:00:00Z", 190_000, 60, "Price Change"), "d5")
    assert [(r.listing_key, r.score) for r in board.top()] == [
        ("AMES-0001", 80.0),
        ("AMES-0002", 70.0),
        ("AMES-0003", 55.0),
    ]
    assert [r.listing_key for r in board.top(2)] == ["AMES-0001", "AMES-0002"]
    assert board.top(status="Pending") == []
    assert board.deal("AMES-0001") is not None
    assert board.deal("AMES-0001").list_price == 180_000  # type: ignore[union-attr]


def test_for_buybox_lists_matches_with_their_alert_count(board: DealBoard) -> None:
    board.apply(match("first-home", "AMES-0001", Score=40.0), "m1")
    board.apply(match("first-home", "AMES-0002", Score=65.0), "m2")
    board.apply(match("rental-income", "AMES-0001"), "m3")
    board.apply(alert("first-home", "AMES-0001"), "a1")
    board.apply(alert("first-home", "AMES-0001", channel="webhook"), "a2")
    rows = board.for_buybox("first-home")
    assert [(r.listing_key, r.score, r.alerts) for r in rows] == [
        ("AMES-0002", 65.0, 0),
        ("AMES-0001", 40.0, 2),
    ]
    assert rows[1] == MatchRow(
        buybox="first-home",
        broker="Dana",
        listing_key="AMES-0001",
        at="2009-03-01T15:00:00Z",
        score=40.0,
        list_price=200_000,
        estimate=220_000,
        reasons=("score 40 (min 35)", "$200,000"),
        alerts=2,
    )
    assert board.for_buybox("nobody") == []
    assert board.buyboxes() == [("first-home", 2), ("rental-income", 1)]
    board.apply(scored(), "d1")
    assert board.top()[0].buyboxes == ("first-home", "rental-income")


def test_history_is_the_listings_timeline(board: DealBoard) -> None:
    later = "2009-04-01T15:00:00Z"
    board.apply(alert(reason="price cut 10% to $180,000", at=later, price=180_000), "a2")
    board.apply(scored(at=later, price=180_000, score=70, change="Price Change"), "d2")
    board.apply(match(at=later, ListPrice=180_000, Score=70.0), "m2")
    board.apply(alert(), "a1")
    board.apply(match(), "m1")
    board.apply(scored(signals=[]), "d1")
    assert board.history("AMES-0001") == [
        HistoryRow(
            "2009-03-01T15:00:00Z",
            "scored",
            200_000,
            40.0,
            None,
            "New Listing: $200,000, estimate $220,000, score 40",
        ),
        HistoryRow(
            "2009-03-01T15:00:00Z",
            "matched",
            200_000,
            40.0,
            "first-home",
            "matched first-home (Dana): score 40 (min 35); $200,000",
        ),
        HistoryRow(
            "2009-03-01T15:00:00Z",
            "alert",
            200_000,
            None,
            "first-home",
            "alert to first-home via file: new match",
        ),
        HistoryRow(
            later,
            "scored",
            180_000,
            70.0,
            None,
            "Price Change: $180,000, estimate $220,000, score 70 (9% below estimate)",
        ),
        HistoryRow(
            later,
            "matched",
            180_000,
            70.0,
            "first-home",
            "matched first-home (Dana): score 40 (min 35); $200,000",
        ),
        HistoryRow(
            later,
            "alert",
            180_000,
            None,
            "first-home",
            "alert to first-home via file: price cut 10% to $180,000",
        ),
    ]
    assert board.history("AMES-9999") == []


def stream() -> dict[str, list[tuple[BoardEvent, str]]]:
    """Three topics of a small market: deals, matches and alerts, each in its own order."""
    rng = random.Random(5)
    topics: dict[str, list[tuple[BoardEvent, str]]] = {"deals": [], "matches": [], "alerts": []}
    for n in range(30):
        key = f"AMES-{n:04d}"
        price = rng.randrange(100_000, 300_000, 500)
        for step, day in enumerate(sorted(rng.sample(range(1, 28), 3))):
            at = f"2009-05-{day:02d}T15:00:00Z"
            price = round(price * 0.95)
            score = round(rng.uniform(0, 100), 1)
            change = "New Listing" if step == 0 else "Price Change"
            topics["deals"].append((scored(key, at, price, score, change), f"d-{key}-{step}"))
            if score > 50:
                for box in ("first-home", "campus-fixer-upper")[: 1 + n % 2]:
                    event = match(box, key, at, Score=score, ListPrice=price)
                    topics["matches"].append((event, f"m-{box}-{key}-{step}"))
                    reason = "new match" if step == 0 else f"price cut to ${price:,}"
                    for channel in ("terminal", "file"):
                        sent = alert(box, key, reason, channel, at, price)
                        topics["alerts"].append((sent, f"a-{channel}-{box}-{key}-{step}"))
    return topics


def views(board: DealBoard) -> tuple[Any, ...]:
    keys = [row.listing_key for row in board.top(1_000)]
    return (
        board.snapshot(),
        board.top(1_000),
        {name: board.for_buybox(name) for name, _ in board.buyboxes()},
        {key: board.history(key) for key in keys},
        board.counts(),
    )


def test_a_rebuild_from_the_topics_gives_identical_rows(tmp_path: Path) -> None:
    topics = stream()
    with DealBoard(tmp_path / "live.db") as live:
        # Live: the three subscriptions interleave at random, and some events come twice.
        lanes = {name: list(events) for name, events in topics.items()}
        rng = random.Random(11)
        while any(lanes.values()):
            lane = rng.choice([events for events in lanes.values() if events])
            event, event_id = lane.pop(0)
            live.apply(event, event_id)
            if rng.random() < 0.1:
                assert not live.apply(event, event_id)  # redelivered
        expected = views(live)
    assert expected[4]["deals"] == 30
    with DealBoard(tmp_path / "rebuilt.db") as rebuilt:
        # Rebuilt: each topic read from its start, one after another, in one batch each.
        for name in ("alerts", "matches", "deals"):
            assert rebuilt.apply_many(topics[name]) == len(topics[name])
        assert views(rebuilt) == expected
    with DealBoard(tmp_path / "rerun.db") as rerun:
        # A fresh run of the pipeline: the same facts under new event ids.
        for name in ("deals", "matches", "alerts"):
            rerun.apply_many((event, f"new-{event_id}") for event, event_id in topics[name])
        assert views(rerun)[:4] == expected[:4]


def test_the_board_survives_a_reopen_and_is_readable_while_written(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    with DealBoard(path) as first:
        first.apply(scored(), "d1")
        with DealBoard(path) as reader:  # the CLI, while the board stage runs
            assert [r.listing_key for r in reader.top()] == ["AMES-0001"]
        first.apply(match(), "m1")
    with DealBoard(path) as again:
        assert not again.apply(scored(), "d1")
        assert again.counts() == {"deals": 1, "matches": 1, "alerts": 0, "applied": 2}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_a_failed_apply_rolls_back(board: DealBoard) -> None:
    model = ModelTrained(ModelVersion=1, TrainedAsOf="2009-01-01T00:00:00Z", Sales=300)
    with pytest.raises(TypeError, match="does not apply ModelTrained"):
        board.apply(model, "x1")  # type: ignore[arg-type]
    assert board.counts()["applied"] == 0
    with pytest.raises(TypeError):
        board.apply_many([(scored(), "d1"), (model, "x1")])  # type: ignore[list-item]
    assert board.counts() == {"deals": 0, "matches": 0, "alerts": 0, "applied": 0}
