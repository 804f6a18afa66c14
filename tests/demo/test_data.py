"""Loading the bundled Ames and Grinnell data, and a user's listings file row by row."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from eventyard.demo.data import Reject, load_listings, load_price_patterns, load_sales
from eventyard.errors import ConfigError


def test_ames_has_its_2930_sales_with_sane_fields() -> None:
    sales = load_sales()
    assert len(sales) == 2930
    assert len({sale.ListingKey for sale in sales}) == 2930
    assert sales[0].ListingKey == "AMES-0001"
    assert sales[-1].ListingKey == "AMES-2930"
    for sale in sales:
        assert 10_000 <= sale.ClosePrice <= 800_000
        assert "2006-01-01" <= sale.CloseDate <= "2010-12-31"
        assert 300 <= sale.LivingArea <= 6000
        assert 0 <= sale.BedroomsTotal <= 8
        assert 1872 <= sale.YearBuilt <= 2010
        assert 41.9 < sale.Latitude < 42.1
        assert -93.7 < sale.Longitude < -93.5
        assert sale.City == "Ames"
        assert sale.PropertyType in {"Residential", "Residential Income"}
        assert isinstance(sale.Features["neighborhood"], str)
        assert 1 <= float(sale.Features["overall_cond"]) <= 10
    # the first row of the data, as published
    first = sales[0]
    assert (first.ClosePrice, first.LivingArea, first.BedroomsTotal) == (215_000, 1656.0, 3)
    assert first.CloseDate.startswith("2010-05-")


def test_the_seed_moves_only_the_day_within_the_real_month() -> None:
    one, other = load_sales(0), load_sales(1)
    assert load_sales(0) is one  # cached
    assert [s.CloseDate[:7] for s in one] == [s.CloseDate[:7] for s in other]
    assert [s.CloseDate for s in one] != [s.CloseDate for s in other]
    assert [s.ClosePrice for s in one] == [s.ClosePrice for s in other]
    for sale in one:
        dt.date.fromisoformat(sale.CloseDate)


def test_grinnell_price_patterns() -> None:
    patterns = load_price_patterns()
    assert 850 <= len(patterns) <= 929
    assert all(0.9 <= p.original_to_sale <= 1.6 for p in patterns)
    assert all(0.6 <= p.list_to_original <= 1.0 for p in patterns)
    cut = sum(p.list_to_original < 1 for p in patterns) / len(patterns)
    assert 0.25 < cut < 0.5


HEADER = (
    "ListingKey,ChangeType,ModificationTimestamp,ListPrice,LivingArea,BedroomsTotal,"
    "YearBuilt,Latitude,Longitude,City,TotalActualRent,Features.neighborhood,Features.garage_cars"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_csv_becomes_listing_changes_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "listings.csv",
        "\n".join(
            [
                HEADER,
                "L-1,,2024-03-01T09:00:00-06:00,250000,1500,3,1978,42.03,-93.62,Ames,,Edwards,2",
                "L-1,Price Change,2024-03-15T10:00:00Z,239000,1500,3,1978,42.03,-93.62,Ames,,,",
                "L-2,New Listing,2024-02-01T12:00:00Z,180000,1100.5,2,1950,42.0,-93.6,,1400,,",
            ]
        )
        + "\n",
    )
    events, rejects = load_listings(path)
    assert rejects == []
    assert [e.ListingKey for e in events] == ["L-2", "L-1", "L-1"]  # event-time order
    new, cut = events[1], events[2]
    assert new.ChangeType == "New Listing" and new.StandardStatus == "Active"
    assert new.ModificationTimestamp == "2024-03-01T15:00:00Z"
    assert new.ListingContractDate == "2024-03-01" and new.DaysOnMarket == 0
    assert new.Features == {"neighborhood": "Edwards", "garage_cars": 2.0}
    assert cut.OriginalListPrice == 250_000 and cut.ListPrice == 239_000
    assert cut.ListingContractDate == "2024-03-01" and cut.DaysOnMarket == 14
    assert events[0].TotalActualRent == 1400.0 and events[0].City is None
    assert events[0].LivingArea == 1100.5


def test_bad_csv_rows_are_rejected_one_line_each(tmp_path: Path) -> None:
    good = "L-1,,2024-03-01T09:00:00Z,250000,1500,3,1978,42.03,-93.62,Ames,,,"
    rows = [
        good,
        "L-2,,2024-03-01T09:00:00Z,cheap,1500,3,1978,42.03,-93.62,Ames,,,",
        "L-3,,,250000,1500,3,1978,42.03,-93.62,Ames,,,",
        "L-4,,yesterday,250000,1500,3,1978,42.03,-93.62,Ames,,,",
        "L-5,Sold,2024-03-01T09:00:00Z,250000,1500,3,1978,42.03,-93.62,Ames,,,",
        "L-6,,2024-03-01T09:00:00Z,250000,,3,1978,42.03,-93.62,Ames,,,",
        "L-7,,2024-03-01T09:00:00Z,250000,1500,3,1978,142.03,-93.62,Ames,,,",
        "L-8,Closed,2024-03-01T09:00:00Z,250000,1500,3,1978,42.03,-93.62,Ames,,,",
        "L-9,,2024-03-01T09:00:00Z,-5,1500,3,1978,42.03,-93.62,Ames,,,",
    ]
    path = write(tmp_path, "listings.csv", "\n".join([HEADER, *rows]) + "\n")
    events, rejects = load_listings(path)
    assert [e.ListingKey for e in events] == ["L-1"]
    reasons = {reject.row: reject.reason for reject in rejects}
    assert list(reasons) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert reasons[3].startswith("ListPrice: expected `int`") and "'cheap'" in reasons[3]
    assert reasons[4] == "ModificationTimestamp: missing (required, RFC 3339)"
    assert reasons[5] == "ModificationTimestamp: not an RFC 3339 time: 'yesterday'"
    assert reasons[6].startswith("ChangeType: not one of New Listing, ")
    assert reasons[7] == "LivingArea: missing (required)"
    assert reasons[8].startswith("Latitude: must be within")
    assert reasons[9] == "ClosePrice: missing (required when ChangeType is Closed)"
    assert reasons[10] == "ListPrice: must be positive: -5"
    assert all("\n" not in reason for reason in reasons.values())
    assert rejects[0].raw["ListingKey"] == "L-2"  # type: ignore[index]
    assert str(rejects[0]).startswith("row 3: ListPrice")


def test_json_lines_good_and_bad(tmp_path: Path) -> None:
    listing = {
        "ListingKey": "L-1",
        "ModificationTimestamp": "2024-03-01T09:00:00Z",
        "ListPrice": 250_000,
        "LivingArea": 1500,
        "BedroomsTotal": 3,
        "YearBuilt": 1978,
        "Latitude": 42.03,
        "Longitude": -93.62,
        "Features": {"neighborhood": "Edwards", "garage_cars": 2},
        "PublicRemarks": "ignored: not a field of the event",
    }
    closed = {
        **listing,
        "ChangeType": "Closed",
        "ModificationTimestamp": "2024-04-20T17:00:00Z",
        "ClosePrice": 245_000,
    }
    lines = [
        json.dumps(listing),
        "",
        json.dumps({**listing, "ListingKey": "L-2", "ListPrice": "250000"}),
        "{not json",
        "[1, 2]",
        json.dumps(closed),
        json.dumps({**listing, "ModificationTimestamp": 1709283600}),
        json.dumps({**listing, "ListingKey": 17}),
    ]
    events, rejects = load_listings(write(tmp_path, "feed.jsonl", "\n".join(lines) + "\n"))
    assert [e.ChangeType for e in events] == ["New Listing", "Closed"]
    assert events[1].CloseDate == "2024-04-20" and events[1].StandardStatus == "Closed"
    assert events[1].DaysOnMarket == 50 and events[1].OriginalListPrice == 250_000
    assert events[0].Features == {"neighborhood": "Edwards", "garage_cars": 2.0}
    assert [(r.row, r.reason) for r in rejects] == [
        (3, "ListPrice: expected `int`, got `str`: '250000'"),
        (4, "not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        (5, "not a JSON object but list"),
        (7, "ModificationTimestamp: expected an RFC 3339 string: 1709283600"),
        (8, "ListingKey: expected a string: 17"),
    ]
    assert rejects[1] == Reject(row=4, raw="{not json", reason=rejects[1].reason)


def test_unusable_files_raise_config_error_with_one_line(tmp_path: Path) -> None:
    cases = [
        (write(tmp_path, "listings.txt", "x"), r"unknown listings format '\.txt'"),
        (tmp_path / "missing.csv", r"cannot read the listings file: No such file"),
        (write(tmp_path, "empty.csv", ""), r"empty CSV file"),
        (write(tmp_path, "nokey.csv", "ListPrice\n1\n"), r"no ListingKey column"),
    ]
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"City": "Cr\xe9teil"}\n')
    cases.append((latin, r"cannot read the listings file"))
    for path, message in cases:
        with pytest.raises(ConfigError, match=message) as caught:
            load_listings(path)
        assert "\n" not in str(caught.value)
