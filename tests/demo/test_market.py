"""The simulated market: deterministic per seed, every lifecycle ending at its real close,
prices only ever cut, events in event-time order, and FIELD_ORIGINS covering every field."""

from __future__ import annotations

import collections
import datetime as dt
import statistics

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from eventyard.demo.data import PricePattern, Sale, load_sales
from eventyard.demo.events import ListingChanged
from eventyard.demo.market import FIELD_ORIGINS, simulate_market

SALES = load_sales()
MARKET = simulate_market(SALES, seed=7)


def by_listing(events: list[ListingChanged]) -> dict[str, list[ListingChanged]]:
    grouped: dict[str, list[ListingChanged]] = collections.defaultdict(list)
    for listing in events:
        grouped[listing.ListingKey].append(listing)
    return grouped


def check_lifecycle(sale: Sale, lifecycle: list[ListingChanged]) -> None:
    """Every invariant one listing's events keep."""
    changes = [e.ChangeType for e in lifecycle]
    assert changes[0] == "New Listing"
    assert changes[-2:] == ["Pending", "Closed"]
    assert set(changes[1:-2]) <= {"Price Change", "Withdrawn", "Back On Market"}
    assert changes.count("Withdrawn") == changes.count("Back On Market") <= 1
    closed = lifecycle[-1]
    assert closed.StandardStatus == "Closed"
    assert (closed.ClosePrice, closed.CloseDate) == (sale.ClosePrice, sale.CloseDate)
    assert closed.ModificationTimestamp.startswith(sale.CloseDate)
    assert all(e.ClosePrice is None for e in lifecycle[:-1])
    stamps = [e.ModificationTimestamp for e in lifecycle]
    assert stamps == sorted(stamps) and len({s[:10] for s in stamps}) == len(stamps)
    original = lifecycle[0].ListPrice
    assert all(e.OriginalListPrice == original for e in lifecycle)
    assert len({e.ListingContractDate for e in lifecycle}) == 1
    assert lifecycle[0].ListingContractDate == stamps[0][:10]
    assert len({e.TotalActualRent for e in lifecycle}) == 1
    price, count = original, 0
    for e in lifecycle[1:]:
        if e.ChangeType == "Price Change":
            assert e.ListPrice < price
            count += 1
        else:
            assert e.ListPrice == price
        assert e.PriceChangeCount == count
        price = e.ListPrice
    days = [e.DaysOnMarket for e in lifecycle]
    assert days == sorted(days) and days[0] == 0 and days[-1] >= 3
    for e in lifecycle:
        assert e.LivingArea == sale.LivingArea and e.Features == sale.Features
        status = {"Pending": "Pending", "Closed": "Closed", "Withdrawn": "Withdrawn"}
        assert e.StandardStatus == status.get(e.ChangeType, "Active")


def test_the_same_seed_gives_the_same_market_and_another_seed_another() -> None:
    assert simulate_market(SALES, seed=7) == MARKET
    assert simulate_market(SALES, seed=8) != MARKET


def test_a_sales_lifecycle_does_not_depend_on_the_other_sales() -> None:
    some = SALES[100:130]
    alone = simulate_market(some, seed=7)
    keys = {s.ListingKey for s in some}
    assert alone == [e for e in MARKET if e.ListingKey in keys]


def test_every_sale_closes_at_its_real_price_and_cuts_only_lower_the_price() -> None:
    grouped = by_listing(MARKET)
    assert len(grouped) == len(SALES)
    for sale in SALES:
        check_lifecycle(sale, grouped[sale.ListingKey])


def test_events_come_in_event_time_order() -> None:
    stamps = [e.ModificationTimestamp for e in MARKET]
    assert stamps == sorted(stamps)
    for stamp in stamps[:: len(stamps) // 50]:
        assert dt.datetime.fromisoformat(stamp).tzinfo == dt.UTC


def test_the_market_has_the_intended_shape() -> None:
    per_sale = len(MARKET) / len(SALES)
    assert 3.4 <= per_sale <= 4.2
    changes = collections.Counter(e.ChangeType for e in MARKET)
    assert changes["Closed"] == changes["New Listing"] == len(SALES)
    assert 0.03 <= changes["Withdrawn"] / len(SALES) <= 0.09
    closed = [e for e in MARKET if e.ChangeType == "Closed"]
    cut = sum(e.PriceChangeCount > 0 for e in closed) / len(closed)
    assert 0.25 <= cut <= 0.5
    assert 35 <= statistics.median(e.DaysOnMarket for e in closed) <= 55
    rented = [e for e in closed if e.TotalActualRent is not None]
    assert 0.25 <= len(rented) / len(closed) <= 0.35
    yearly = statistics.median(12 * e.TotalActualRent / e.ClosePrice for e in rented)  # type: ignore[operator]
    assert 0.08 <= yearly <= 0.13
    ratio = statistics.median(e.ClosePrice / e.ListPrice for e in closed)  # type: ignore[operator]
    assert 0.9 <= ratio <= 1.0


def test_field_origins_cover_every_field() -> None:
    fields = {field.name for field in msgspec.structs.fields(ListingChanged)}
    assert FIELD_ORIGINS.keys() == fields
    assert set(FIELD_ORIGINS.values()) == {"real", "simulated"}
    assert FIELD_ORIGINS["ClosePrice"] == "real" and FIELD_ORIGINS["ListPrice"] == "simulated"


patterns = st.builds(
    PricePattern,
    original_to_sale=st.floats(0.9, 1.6),
    list_to_original=st.one_of(st.just(1.0), st.floats(0.6, 1.0)),
)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    index=st.integers(0, len(SALES) - 1),
    price=st.integers(1_000, 2_000_000),
    cut_patterns=st.lists(patterns, min_size=1, max_size=5),
)
def test_any_sale_and_patterns_give_a_valid_lifecycle(
    seed: int, index: int, price: int, cut_patterns: list[PricePattern]
) -> None:
    sale = msgspec.structs.replace(SALES[index], ClosePrice=price)
    lifecycle = simulate_market([sale], seed=seed, cut_patterns=cut_patterns)
    check_lifecycle(sale, lifecycle)
    assert lifecycle == simulate_market([sale], seed=seed, cut_patterns=cut_patterns)
