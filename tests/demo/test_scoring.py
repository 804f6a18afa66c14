"""Scoring: the discount weighed by the interval, the seller's motivation, the rent's yield."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from eventyard.demo.events import DealScored, ListingChanged, ListingValued
from eventyard.demo.scoring import (
    cap_rate,
    confidence,
    discount,
    gross_rent_multiplier,
    income_points,
    motivation_points,
    score,
    uncertainty,
    value_points,
)

BASE = ListingChanged(
    ListingKey="AMES-0042",
    ChangeType="New Listing",
    ModificationTimestamp="2009-05-04T15:30:00Z",
    StandardStatus="Active",
    ListPrice=176_000,
    OriginalListPrice=176_000,
    ListingContractDate="2009-05-04",
    DaysOnMarket=0,
    LivingArea=1_450.0,
    BedroomsTotal=3,
    BathroomsTotalInteger=2,
    YearBuilt=1962,
    Latitude=42.03,
    Longitude=-93.63,
    City="Ames",
)


def valued(*, estimate: int = 200_000, width: float = 0.2, **listing: Any) -> ListingValued:
    """A valuation of BASE (changed by ``listing``) with an 80% interval ``width`` wide."""
    half = round(estimate * width / 2)
    return ListingValued(
        listing=msgspec.structs.replace(BASE, **listing),
        comps=[],
        Estimate=estimate,
        Low=estimate - half,
        High=estimate + half,
        ModelVersion=3,
    )


def test_discount_and_uncertainty_are_fractions_of_the_estimate() -> None:
    deal = valued()
    assert discount(deal) == pytest.approx(0.12)
    assert uncertainty(deal) == pytest.approx(0.2)
    scored = score(deal)
    assert (scored.Discount, scored.Uncertainty) == (0.12, 0.2)
    assert scored.Signals[0] == "12% below estimate"


def test_value_points_follow_the_documented_formula() -> None:
    deal = valued()
    stderr = 0.2 / (2 * 1.2816)
    phi = 0.5 * (1 + math.erf(0.12 / stderr / math.sqrt(2)))
    assert confidence(deal) == pytest.approx(phi)
    assert value_points(deal) == pytest.approx(60 * (0.12 / 0.20) * phi)
    # No rent: the score is out of the 85 points available.
    assert score(deal).Score == round(100 * 60 * 0.6 * phi / 85, 1)


def test_a_wider_interval_weighs_the_same_discount_down() -> None:
    tight, wide = score(valued(width=0.1)), score(valued(width=0.6))
    assert tight.Discount == wide.Discount
    assert tight.Score > wide.Score
    assert "uncertain estimate (±30%)" in wide.Signals
    assert not any(s.startswith("uncertain") for s in tight.Signals)


def test_a_listing_at_or_above_its_estimate_earns_no_value_points() -> None:
    above = valued(ListPrice=220_000)
    assert value_points(above) == 0
    assert score(above).Score == 0
    assert score(above).Signals == ["10% above estimate"]
    assert score(valued(ListPrice=200_000)).Signals == ["at estimate"]


def test_price_cuts_days_on_market_and_back_on_market_are_motivation() -> None:
    cut = valued(
        ChangeType="Back On Market",
        OriginalListPrice=191_500,
        PriceChangeCount=2,
        DaysOnMarket=94,
    )
    deal = score(cut)
    assert deal.Signals[1:] == ["2 price cuts (-8%)", "94 days on market", "back on market"]
    # 2 per cut, 0.6 per percent cut, 8 over 90 days, 5 back on market.
    depth = (191_500 - 176_000) / 191_500
    assert motivation_points(cut.listing) == pytest.approx(2 * 2 + 60 * depth + 8 + 5)
    assert deal.Score > score(valued()).Score
    sixty = msgspec.structs.replace(BASE, DaysOnMarket=61)
    assert motivation_points(sixty) == 5
    assert motivation_points(msgspec.structs.replace(BASE, DaysOnMarket=60)) == 0


def test_motivation_is_capped_at_25() -> None:
    listing = msgspec.structs.replace(
        BASE,
        ChangeType="Back On Market",
        OriginalListPrice=300_000,
        PriceChangeCount=9,
        DaysOnMarket=300,
    )
    assert motivation_points(listing) == 25


def test_a_cut_without_a_count_is_still_shown() -> None:
    assert "8% below original price" in score(valued(OriginalListPrice=191_500)).Signals


def test_rent_gives_cap_rate_and_gross_rent_multiplier() -> None:
    rented = valued(ListPrice=150_000, OriginalListPrice=150_000, TotalActualRent=1_250.0)
    listing = rented.listing
    # 12 * 1,250 = 15,000 a year; 60% of it is 9,000; over 150,000: 6%.
    assert cap_rate(listing) == pytest.approx(0.06)
    assert gross_rent_multiplier(listing) == pytest.approx(10.0)
    assert income_points(listing) == pytest.approx(15 * (0.06 - 0.04) / 0.06)
    deal = score(rented)
    assert (deal.CapRate, deal.GrossRentMultiplier) == (0.06, 10.0)
    assert deal.Signals[-2:] == ["cap rate 6.0%", "GRM 10.0"]
    expected = value_points(rented) + income_points(listing)  # type: ignore[operator]
    assert deal.Score == round(expected, 1)  # out of 100 with a rent


def test_no_rent_means_no_income_figures() -> None:
    listing = valued().listing
    assert cap_rate(listing) is None
    assert gross_rent_multiplier(listing) is None
    assert income_points(listing) is None
    deal = score(valued())
    assert (deal.CapRate, deal.GrossRentMultiplier) == (None, None)
    assert score(valued(TotalActualRent=0.0)).CapRate is None


def test_score_stays_within_0_and_100() -> None:
    best = valued(
        ListPrice=100_000,
        ChangeType="Back On Market",
        OriginalListPrice=150_000,
        PriceChangeCount=3,
        DaysOnMarket=120,
        TotalActualRent=2_000.0,
        width=0.01,
    )
    assert score(best).Score == 100.0
    worst = valued(ListPrice=400_000, width=2.0)
    assert score(worst).Score == 0.0


def test_degenerate_valuations_do_not_divide_by_zero() -> None:
    zero_width = valued(width=0.0)
    assert confidence(zero_width) == pytest.approx(1.0)
    broken = msgspec.structs.replace(valued(), Estimate=0, Low=0, High=0)
    deal = score(broken)
    assert deal.Discount == 0.0
    assert 0 <= deal.Score <= 100


def test_scoring_is_pure_and_round_trips_as_an_event() -> None:
    first = score(valued(PriceChangeCount=1, OriginalListPrice=185_000))
    again = score(valued(PriceChangeCount=1, OriginalListPrice=185_000))
    assert first == again
    data = msgspec.json.encode(first)
    assert msgspec.json.decode(data, type=DealScored) == first
