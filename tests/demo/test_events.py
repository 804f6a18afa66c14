"""The demo's events: every one registered on DEMO_REGISTRY and round-tripping through the
CloudEvents record codec in both content modes, frozen and keyword-only."""

from __future__ import annotations

import re

import msgspec
import pytest

from eventyard.demo.events import (
    DEMO_REGISTRY,
    AlertSent,
    Comp,
    DealMatched,
    DealScored,
    ListingChanged,
    ListingValued,
    ModelTrained,
    listing_problem,
)
from eventyard.errors import EventValidationError
from eventyard.events import decode, default_registry, encode, new_envelope

LISTING = ListingChanged(
    ListingKey="AMES-0001",
    ChangeType="Price Change",
    ModificationTimestamp="2010-03-04T15:30:00Z",
    StandardStatus="Active",
    ListPrice=229_500,
    OriginalListPrice=239_000,
    ListingContractDate="2010-02-01",
    DaysOnMarket=31,
    LivingArea=1656.0,
    BedroomsTotal=3,
    BathroomsTotalInteger=2,
    YearBuilt=1960,
    LotSizeSquareFeet=31770.0,
    Latitude=42.054035,
    Longitude=-93.619754,
    City="Ames",
    TotalActualRent=1650.0,
    PriceChangeCount=1,
    Features={"neighborhood": "North_Ames", "overall_cond": 5.0},
)
VALUED = ListingValued(
    listing=LISTING,
    comps=[
        Comp(
            ListingKey="AMES-0002",
            ClosePrice=215_000,
            CloseDate="2009-11-20",
            DistanceKm=0.4,
            LivingArea=1500.0,
        )
    ],
    Estimate=241_000,
    Low=215_000,
    High=262_000,
    ModelVersion=3,
)
SCORED = DealScored(
    valued=VALUED,
    Score=71.5,
    Discount=0.048,
    Uncertainty=0.19,
    Signals=["1 price cut (-4.0%)"],
    CapRate=0.061,
    GrossRentMultiplier=11.6,
)
EVENTS = {
    "reso.listing.changed": LISTING,
    "deal.listing.valued": VALUED,
    "deal.model.trained": ModelTrained(
        ModelVersion=3, TrainedAsOf="2010-03-01T00:00:00Z", Sales=2100, Mdape=0.081
    ),
    "deal.scored": SCORED,
    "deal.matched": DealMatched(
        BuyBox="flips-north",
        Broker="Dana",
        ListingKey="AMES-0001",
        Score=71.5,
        ListPrice=229_500,
        Estimate=241_000,
        Reasons=["score 71.5 >= 60"],
        At="2010-03-04T15:30:00Z",
    ),
    "deal.alert.sent": AlertSent(
        Channel="terminal",
        BuyBox="flips-north",
        ListingKey="AMES-0001",
        Reason="new deal",
        ListPrice=229_500,
        At="2010-03-04T15:30:00Z",
    ),
}


@pytest.mark.parametrize("mode", ["structured", "binary"])
@pytest.mark.parametrize("type_name", sorted(EVENTS))
def test_every_event_round_trips_through_the_codec(type_name: str, mode: str) -> None:
    obj = EVENTS[type_name]
    cls = type(obj)
    assert DEMO_REGISTRY.type_name(cls) == type_name
    assert DEMO_REGISTRY.version(cls) == 1
    assert cls not in default_registry
    envelope = new_envelope(obj, source="/demo", key="AMES-0001", registry=DEMO_REGISTRY)
    key, value, headers = encode(envelope, mode)  # type: ignore[arg-type]
    decoded = decode(value, headers, key)
    assert decoded == envelope
    assert DEMO_REGISTRY.decoder(cls)(decoded) == obj


def test_a_minimal_listing_takes_its_defaults() -> None:
    data = msgspec.json.encode(LISTING)
    minimal = {
        k: v
        for k, v in msgspec.json.decode(data).items()
        if k not in {"BathroomsTotalInteger", "City", "TotalActualRent", "Features"}
    }
    envelope = new_envelope(
        msgspec.json.encode(minimal), source="/demo", type="reso.listing.changed"
    )
    listing = DEMO_REGISTRY.decoder(ListingChanged)(envelope)
    assert listing.Features == {}
    assert listing.PropertyType == "Residential"
    assert listing.ClosePrice is None
    assert listing.PriceChangeCount == 1


def test_bad_data_names_the_field() -> None:
    data = msgspec.json.decode(msgspec.json.encode(LISTING))
    data["ListPrice"] = "cheap"
    envelope = new_envelope(msgspec.json.encode(data), source="/demo", type="reso.listing.changed")
    with pytest.raises(EventValidationError, match=r"ListPrice"):
        DEMO_REGISTRY.decoder(ListingChanged)(envelope)


def test_events_are_frozen_and_keyword_only() -> None:
    with pytest.raises(AttributeError):
        LISTING.ListPrice = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        ModelTrained(1, "2010-01-01T00:00:00Z", 3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"ChangeType": "Sold"}, "ChangeType: not a RESO change type"),
        ({"StandardStatus": "Gone"}, "StandardStatus: not a RESO status"),
        ({"ModificationTimestamp": "yesterday"}, "ModificationTimestamp: not an RFC 3339"),
        ({"ListPrice": 0}, "ListPrice: must be positive: 0"),
        ({"OriginalListPrice": -1}, "OriginalListPrice: must be positive"),
        ({"LivingArea": 0.0}, "LivingArea: must be positive"),
        ({"BedroomsTotal": -1}, "BedroomsTotal: must not be negative"),
        ({"Latitude": 91.0}, "Latitude: must be within -90..90"),
        ({"Longitude": -181.0}, "Longitude: must be within -180..180"),
        ({"ClosePrice": 0}, "ClosePrice: must be positive"),
        ({"ChangeType": "Closed", "StandardStatus": "Closed"}, "ClosePrice, CloseDate: required"),
    ],
)
def test_an_impossible_listing_cannot_be_made_or_decoded(
    changes: dict[str, object], says: str
) -> None:
    """The one validation (:func:`listing_problem`) is the type's own: constructing or
    decoding such a listing fails with the reason, wherever it comes from."""
    assert listing_problem(LISTING) is None
    with pytest.raises(ValueError, match=re.escape(says)):
        msgspec.structs.replace(LISTING, **changes)
    document = {**msgspec.to_builtins(LISTING), **changes}
    with pytest.raises(msgspec.ValidationError, match=re.escape(says)):
        msgspec.json.decode(msgspec.json.encode(document), type=ListingChanged)
