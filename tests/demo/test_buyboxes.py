"""Buy-boxes: the shipped examples load, each mistake is one line naming file, box and field,
and matching gives one reason per criterion or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventyard.demo.buyboxes import (
    EXAMPLE_PATH,
    KEYS,
    BuyBox,
    Near,
    load_buyboxes,
    matches,
    parse_buyboxes,
)
from eventyard.demo.events import DealScored, ListingChanged, ListingValued
from eventyard.errors import ConfigError

LISTING = ListingChanged(
    ListingKey="AMES-0100",
    ChangeType="Price Change",
    ModificationTimestamp="2009-06-01T16:00:00Z",
    StandardStatus="Active",
    ListPrice=165_000,
    OriginalListPrice=175_000,
    ListingContractDate="2009-03-20",
    DaysOnMarket=73,
    LivingArea=1_320.0,
    BedroomsTotal=3,
    BathroomsTotalInteger=2,
    YearBuilt=1958,
    Latitude=42.0300,
    Longitude=-93.6500,
    City="Ames",
    TotalActualRent=1_400.0,
    PriceChangeCount=1,
    Features={"neighborhood": "Old_Town"},
)


def deal(
    *, score: float = 55.0, discount: float = 0.1, cap: float | None = 0.061, **listing: Any
) -> DealScored:
    return DealScored(
        valued=ListingValued(
            listing=msgspec.structs.replace(LISTING, **listing),
            comps=[],
            Estimate=183_000,
            Low=165_000,
            High=201_000,
            ModelVersion=2,
        ),
        Score=score,
        Discount=discount,
        Uncertainty=0.2,
        Signals=["10% below estimate"],
        CapRate=cap,
        GrossRentMultiplier=None if cap is None else 9.8,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boxes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- loading -------------------------------------------------------------------------------------


def test_the_shipped_example_loads() -> None:
    boxes = load_buyboxes(EXAMPLE_PATH)
    assert [b.name for b in boxes] == [
        "first-home",
        "rental-income",
        "premium-homes",
        "campus-fixer-upper",
    ]
    assert all(b.broker and (b.email or b.webhook) for b in boxes)
    rental = boxes[1]
    assert (rental.min_cap_rate, rental.max_grm) == (0.065, 10.0)
    fixer = boxes[3]
    assert fixer.motivated_seller
    assert fixer.near is not None and fixer.near.label == "Iowa State campus"


def test_every_key_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
buyboxes:
  - name: everything
    broker: Ann
    email: ann@example.com
    webhook: https://hooks.example.com/ann?x=1
    min_price: 100000
    max_price: 200000
    min_beds: 2
    min_baths: 1
    min_living_area: 800
    max_living_area: 2000.5
    min_year_built: 1900
    max_year_built: 1990
    cities: Ames
    postal_codes: ["50010", "50014"]
    neighborhoods: [Old Town]
    near: {latitude: 42.03, longitude: -93.65, radius_km: 2}
    property_types: [Residential, Residential Income]
    statuses: [Active, Pending]
    min_score: 40
    min_discount: -0.02
    min_cap_rate: 0.05
    max_grm: 12
    min_price_cuts: 1
    min_days_on_market: 30
    motivated_seller: true
""",
    )
    [box] = load_buyboxes(path)
    assert box == BuyBox(
        name="everything",
        broker="Ann",
        email="ann@example.com",
        webhook="https://hooks.example.com/ann?x=1",
        min_price=100_000,
        max_price=200_000,
        min_beds=2,
        min_baths=1,
        min_living_area=800.0,
        max_living_area=2000.5,
        min_year_built=1900,
        max_year_built=1990,
        cities=("Ames",),
        postal_codes=("50010", "50014"),
        neighborhoods=("Old Town",),
        near=Near(42.03, -93.65, 2.0),
        property_types=("Residential", "Residential Income"),
        statuses=("Active", "Pending"),
        min_score=40.0,
        min_discount=-0.02,
        min_cap_rate=0.05,
        max_grm=12.0,
        min_price_cuts=1,
        min_days_on_market=30,
        motivated_seller=True,
    )
    assert set(KEYS) == {f for f in BuyBox.__dataclass_fields__}


def test_defaults_filter_nothing_but_the_status() -> None:
    [box] = parse_buyboxes({"buyboxes": [{"name": "any", "broker": "B"}]})
    assert box.statuses == ("Active",)
    assert matches(box, deal()) == ["$165,000"]
    assert matches(box, deal(StandardStatus="Pending")) == []


BOX = "  - name: starter\n    broker: Dana\n"

MISTAKES = [
    (
        BOX + "    max_beds: 4\n",
        "buy-box 'starter': max_beds: unknown key (did you mean 'min_beds'?)",
    ),
    (
        BOX + "    colour: red\n",
        "buy-box 'starter': colour: unknown key (known keys: name, broker,",
    ),
    (
        BOX + "    min_price: cheap\n",
        "buy-box 'starter': min_price: must be a whole number, got str",
    ),
    (BOX + "    min_beds: 2.5\n", "buy-box 'starter': min_beds: must be a whole number, got float"),
    (BOX + "    min_score: true\n", "buy-box 'starter': min_score: must be a number, got bool"),
    (BOX + "    min_score: 120\n", "buy-box 'starter': min_score: must be at most 100, got 120"),
    (BOX + "    min_price: -5\n", "buy-box 'starter': min_price: must be at least 0, got -5"),
    (
        BOX + "    min_price: 300000\n    max_price: 200000\n",
        "buy-box 'starter': min_price: 300000 is above max_price 200000",
    ),
    (
        BOX + "    min_living_area: 3000\n    max_living_area: 1000\n",
        "buy-box 'starter': min_living_area: 3000 is above max_living_area 1000",
    ),
    (
        BOX + "    min_year_built: 2000\n    max_year_built: 1950\n",
        "buy-box 'starter': min_year_built: 2000 is above max_year_built 1950",
    ),
    ("  - name: ''\n    broker: Dana\n", "buy-box #1: name: must not be empty"),
    ("  - broker: Dana\n", "buy-box #1: name: is required"),
    ("  - name: starter\n", "buy-box 'starter': broker: is required"),
    ("  - name: 7\n    broker: Dana\n", "buy-box #1: name: must be a string, got int 7"),
    (BOX + BOX, "buy-box #2: name: 'starter' is used twice"),
    (
        BOX + "    webhook: ftp://example.com/x\n",
        "buy-box 'starter': webhook: 'ftp://example.com/x' is not an http:// or https:// URL",
    ),
    (
        BOX + "    webhook: 'https://'\n",
        "buy-box 'starter': webhook: 'https://' is not an http:// or https:// URL",
    ),
    (
        BOX + "    webhook: 'http://host:99999/'\n",
        "buy-box 'starter': webhook: 'http://host:99999/' is not an http:// or https:// URL",
    ),
    (BOX + "    email: dana\n", "buy-box 'starter': email: 'dana' is not an email address"),
    (
        BOX + "    min_discount: 5\n",
        "buy-box 'starter': min_discount: must be a fraction between -1 and 1 (write 0.05 for 5%)",
    ),
    (
        BOX + "    postal_codes: [50010]\n",
        "buy-box 'starter': postal_codes: 50010 must be a string (quote it: '50010')",
    ),
    (BOX + "    cities: {Ames: 1}\n", "buy-box 'starter': cities: must be a list of strings"),
    (BOX + "    statuses: []\n", "buy-box 'starter': statuses: must list at least one status"),
    (BOX + "    motivated_seller: yes please\n", "motivated_seller: must be true or false"),
    (
        BOX + "    near: {latitude: 42, longitude: -93}\n",
        "buy-box 'starter': near.radius_km: is required",
    ),
    (
        BOX + "    near: {latitude: 95, longitude: -93, radius_km: 1}\n",
        "buy-box 'starter': latitude: must be at most 90, got 95",
    ),
    (
        BOX + "    near: {lat: 42, longitude: -93, radius_km: 1}\n",
        "buy-box 'starter': near.lat: unknown key",
    ),
    (BOX + "    max_grm: 0\n", "buy-box 'starter': max_grm: must be above 0, got 0"),
    ("  - just a string\n", "buy-box #1: expected a mapping of criteria, got str"),
    (BOX + "    min_beds: 2\n    min_beds: 3\n", ":5:5: invalid YAML: duplicate key 'min_beds'"),
    (BOX + "    cities: [Ames\n", "invalid YAML:"),
]


@pytest.mark.parametrize(("body", "message"), MISTAKES)
def test_each_mistake_is_one_line_naming_file_box_and_field(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path, "buyboxes:\n" + body)
    with pytest.raises(ConfigError) as raised:
        load_buyboxes(path)
    text = str(raised.value)
    assert "\n" not in text
    assert text.startswith(str(path))
    assert message in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a mapping with the key 'buyboxes'"),
        ("- name: x\n", "expected a mapping with the key 'buyboxes'"),
        ("buyboxes: []\n", "'buyboxes' must be a non-empty list"),
        ("buyboxes:\n  - {name: a, broker: b}\nalerts: 1\n", "unknown top-level key 'alerts'"),
    ],
)
def test_file_level_mistakes(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_buyboxes(write(tmp_path, text))


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read the buy-box file"):
        load_buyboxes(tmp_path / "missing.yaml")


# -- matching ------------------------------------------------------------------------------------


def box(**criteria: Any) -> BuyBox:
    [parsed] = parse_buyboxes({"buyboxes": [{"name": "b", "broker": "Dana", **criteria}]})
    return parsed


def test_a_match_gives_one_reason_per_criterion_deal_first() -> None:
    starter = box(
        max_price=175_000,
        min_beds=3,
        min_living_area=900,
        max_year_built=1965,
        cities=["ames"],
        min_score=50,
        min_discount=0.05,
    )
    assert matches(starter, deal()) == [
        "score 55 (min 50)",
        "10% below estimate (min 5%)",
        "$165,000 (max $175,000)",
        "3 beds (min 3)",
        "1,320 sq ft (min 900)",
        "built 1958 (max 1965)",
        "in Ames",
    ]


@pytest.mark.parametrize(
    ("criteria", "changes"),
    [
        ({"max_price": 150_000}, {}),
        ({"min_price": 170_000}, {}),
        ({"min_beds": 4}, {}),
        ({"min_baths": 3}, {}),
        ({"min_baths": 1}, {"BathroomsTotalInteger": None}),
        ({"min_living_area": 1_500}, {}),
        ({"max_living_area": 1_000}, {}),
        ({"min_year_built": 1990}, {}),
        ({"max_year_built": 1950}, {}),
        ({"cities": ["Nevada"]}, {}),
        ({"postal_codes": ["50010"]}, {}),
        ({"neighborhoods": ["Somerset"]}, {}),
        ({"near": {"latitude": 42.06, "longitude": -93.65, "radius_km": 1}}, {}),
        ({"property_types": ["Residential Income"]}, {}),
        ({"min_score": 60}, {}),
        ({"min_discount": 0.15}, {}),
        ({"min_price_cuts": 2}, {}),
        ({"min_days_on_market": 90}, {}),
        ({"statuses": ["Pending"]}, {}),
        (
            {"motivated_seller": True},
            {"PriceChangeCount": 0, "OriginalListPrice": 165_000, "DaysOnMarket": 10},
        ),
    ],
)
def test_each_failing_criterion_means_no_match(
    criteria: dict[str, Any], changes: dict[str, Any]
) -> None:
    assert matches(box(**criteria), deal(**changes)) == []
    assert matches(box(), deal(**changes)) != []


def test_rent_criteria_need_a_rent() -> None:
    investor = box(min_cap_rate=0.06, max_grm=10)
    assert matches(investor, deal()) == [
        "cap rate 6.1% (min 6.0%)",
        "GRM 9.8 (max 10)",
        "$165,000",
    ]
    assert matches(investor, deal(cap=None)) == []
    assert matches(box(min_cap_rate=0.07), deal()) == []
    assert matches(box(max_grm=9), deal()) == []


def test_any_one_place_is_enough() -> None:
    places = box(
        cities=["Boone"],
        neighborhoods=["old town"],
        near={"latitude": 42.0266, "longitude": -93.6465, "radius_km": 3, "label": "campus"},
    )
    assert matches(places, deal())[-1] == "in Old Town"
    far = deal(Features={"neighborhood": "Somerset"})
    assert matches(places, far)[-1] == "0.5 km from campus"
    assert matches(places, deal(Features={}, Latitude=42.2)) == []
    assert matches(box(postal_codes=["50010"]), deal(PostalCode="50010"))[-1] == "in 50010"


def test_motivated_seller_names_its_signs() -> None:
    reasons = matches(box(motivated_seller=True), deal(ChangeType="Back On Market"))
    assert reasons[0] == "motivated seller: 1 price cut, 73 days on market, back on market"
    assert matches(box(min_price_cuts=1, min_days_on_market=60), deal())[:2] == [
        "1 price cut (min 1)",
        "73 days on market (min 60)",
    ]


def test_near_measures_great_circle_distance() -> None:
    campus = Near(42.0266, -93.6465, 1.0)
    assert campus.distance_km(42.0266, -93.6465) == pytest.approx(0.0)
    # One degree of latitude is about 111.2 km everywhere.
    assert campus.distance_km(43.0266, -93.6465) == pytest.approx(111.2, abs=0.1)
