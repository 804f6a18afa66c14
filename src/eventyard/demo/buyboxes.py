"""Buy-boxes: what each broker or investor is looking for, read from YAML and checked.

A buy-box file is a mapping with one key, ``buyboxes``, holding a list of boxes::

    buyboxes:
      - name: first-home
        broker: Dana Ruiz
        email: dana@example.com
        max_price: 200000
        min_beds: 3
        min_score: 45

Every key but ``name`` and ``broker`` is optional; a criterion left out does not filter.
The keys (:data:`KEYS` lists them): ``email``, ``webhook`` (an http(s) URL);
``min_price`` / ``max_price`` (USD), ``min_beds``, ``min_baths``, ``min_living_area`` /
``max_living_area`` (square feet), ``min_year_built`` / ``max_year_built``; where:
``cities``, ``postal_codes`` (strings), ``neighborhoods`` (the listing's
``Features["neighborhood"]``, compared ignoring case, spaces and underscores) and ``near``
(``latitude``, ``longitude``, ``radius_km``, optional ``label``), any of which a listing may
satisfy; ``property_types`` and ``statuses`` (default ``[Active]``: only listings on the
market); and the deal: ``min_score`` (0-100), ``min_discount`` (a fraction: 0.05 is 5% below
the estimate), ``min_cap_rate`` (a fraction) and ``max_grm`` (both need a rent),
``min_price_cuts``, ``min_days_on_market`` and ``motivated_seller`` (true: at least one price
cut, more than 60 days on market, or back on market).

:func:`load_buyboxes` refuses a file with any mistake (an unknown key, a wrong type, a minimum
above its maximum, an empty or duplicate name, a bad webhook URL or email, a duplicate YAML
key) with one :class:`~eventyard.errors.ConfigError` line naming the file, the box and the
field, so a broker can fix it without reading code. :func:`matches` says why a scored deal
fits a box, one reason per criterion, or returns ``[]`` when it does not fit.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from eventyard.demo.events import DealScored, ListingChanged
from eventyard.errors import ConfigError

__all__ = [
    "EXAMPLE_PATH",
    "KEYS",
    "BuyBox",
    "Near",
    "load_buyboxes",
    "matches",
    "parse_buyboxes",
]

EXAMPLE_PATH: Final = Path(__file__).with_name("examples") / "buyboxes.yaml"
"""The example buy-boxes shipped with the package (four Ames brokers and investors)."""

KEYS: Final = (
    "name",
    "broker",
    "email",
    "webhook",
    "min_price",
    "max_price",
    "min_beds",
    "min_baths",
    "min_living_area",
    "max_living_area",
    "min_year_built",
    "max_year_built",
    "cities",
    "postal_codes",
    "neighborhoods",
    "near",
    "property_types",
    "statuses",
    "min_score",
    "min_discount",
    "min_cap_rate",
    "max_grm",
    "min_price_cuts",
    "min_days_on_market",
    "motivated_seller",
)
"""Every key a buy-box may have, in the order the module docstring explains them."""

_NEAR_KEYS: Final = ("latitude", "longitude", "radius_km", "label")
_EARTH_RADIUS_KM: Final = 6371.0088
_MOTIVATED_DAYS: Final = 60
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Near:
    """A circle: listings within ``radius_km`` of (``latitude``, ``longitude``)."""

    latitude: float
    longitude: float
    radius_km: float
    label: str | None = None

    def distance_km(self, latitude: float, longitude: float) -> float:
        """The great-circle (haversine) distance from the centre to a point."""
        p1, p2 = math.radians(self.latitude), math.radians(latitude)
        dp, dl = p2 - p1, math.radians(longitude - self.longitude)
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class BuyBox:
    """One broker's or investor's criteria (module docstring: what each field means)."""

    name: str
    broker: str
    email: str | None = None
    webhook: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    min_beds: int | None = None
    min_baths: int | None = None
    min_living_area: float | None = None
    max_living_area: float | None = None
    min_year_built: int | None = None
    max_year_built: int | None = None
    cities: tuple[str, ...] = ()
    postal_codes: tuple[str, ...] = ()
    neighborhoods: tuple[str, ...] = ()
    near: Near | None = None
    property_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ("Active",)
    min_score: float | None = None
    min_discount: float | None = None
    min_cap_rate: float | None = None
    max_grm: float | None = None
    min_price_cuts: int | None = None
    min_days_on_market: int | None = None
    motivated_seller: bool = False


# ---------------------------------------------------------------------------------------------
# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping repeating a key (PyYAML keeps the last)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable: construct_mapping reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"duplicate key {key!r}",
                key_node.start_mark,
            )  # fmt: skip
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_buyboxes(path: str | Path) -> list[BuyBox]:
    """Read and check the buy-boxes in the YAML file ``path`` (module docstring)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the buy-box file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: the buy-box file is not UTF-8 text: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        problem = exc.problem or exc.context or "cannot be parsed"
        raise ConfigError(f"{where}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    return parse_buyboxes(data, str(source))


def parse_buyboxes(data: Any, source: str = "<buy-boxes>") -> list[BuyBox]:
    """Check already-parsed YAML (``{"buyboxes": [...]}``); ``source`` names it in errors."""
    if not isinstance(data, dict) or "buyboxes" not in data:
        raise ConfigError(f"{source}: expected a mapping with the key 'buyboxes' (a list)")
    extra = sorted(str(k) for k in data if k != "buyboxes")
    if extra:
        raise ConfigError(f"{source}: unknown top-level key {extra[0]!r} (only 'buyboxes')")
    items = data["buyboxes"]
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{source}: 'buyboxes' must be a non-empty list of buy-boxes")
    boxes: list[BuyBox] = []
    names: set[str] = set()
    for number, item in enumerate(items, start=1):
        box = _Checker(source, number, item).box()
        if box.name in names:
            raise ConfigError(f"{source}: buy-box #{number}: name: {box.name!r} is used twice")
        names.add(box.name)
        boxes.append(box)
    return boxes


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _Checker:
    """Checks one box's mapping; every error names the file, the box and the field."""

    def __init__(self, source: str, number: int, item: Any) -> None:
        self.source = source
        self.label = f"#{number}"
        if not isinstance(item, dict):
            raise self.error(None, f"expected a mapping of criteria, got {_kind(item)}")
        self.item: dict[Any, Any] = item
        name = item.get("name")
        if isinstance(name, str) and name.strip():
            self.label = repr(name.strip())

    def error(self, key: str | None, problem: str) -> ConfigError:
        field = f" {key}:" if key else ""
        return ConfigError(f"{self.source}: buy-box {self.label}:{field} {problem}")

    def box(self) -> BuyBox:
        unknown = [k for k in self.item if k not in KEYS]
        if unknown:
            key = str(unknown[0])
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(KEYS)}"
            raise self.error(key, f"unknown key ({hint})")
        box = BuyBox(
            name=self.text("name", required=True) or "",
            broker=self.text("broker", required=True) or "",
            email=self.email(),
            webhook=self.webhook(),
            min_price=self.integer("min_price", minimum=0),
            max_price=self.integer("max_price", minimum=0),
            min_beds=self.integer("min_beds", minimum=0),
            min_baths=self.integer("min_baths", minimum=0),
            min_living_area=self.number("min_living_area", minimum=0),
            max_living_area=self.number("max_living_area", minimum=0),
            min_year_built=self.integer("min_year_built", minimum=1600),
            max_year_built=self.integer("max_year_built", minimum=1600),
            cities=self.texts("cities"),
            postal_codes=self.texts("postal_codes"),
            neighborhoods=self.texts("neighborhoods"),
            near=self.near(),
            property_types=self.texts("property_types"),
            statuses=self.texts("statuses") if "statuses" in self.item else ("Active",),
            min_score=self.number("min_score", minimum=0, maximum=100),
            min_discount=self.fraction("min_discount", minimum=-1),
            min_cap_rate=self.fraction("min_cap_rate", minimum=0),
            max_grm=self.number("max_grm", minimum=0, exclusive=True),
            min_price_cuts=self.integer("min_price_cuts", minimum=0),
            min_days_on_market=self.integer("min_days_on_market", minimum=0),
            motivated_seller=self.flag("motivated_seller"),
        )
        self.ordered("price", box.min_price, box.max_price)
        self.ordered("living_area", box.min_living_area, box.max_living_area)
        self.ordered("year_built", box.min_year_built, box.max_year_built)
        if "statuses" in self.item and not box.statuses:
            raise self.error("statuses", "must list at least one status (e.g. [Active])")
        return box

    def ordered(self, what: str, low: float | None, high: float | None) -> None:
        if low is not None and high is not None and low > high:
            raise self.error(f"min_{what}", f"{low:g} is above max_{what} {high:g}")

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.item.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_kind(value)} {value!r}")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value.strip()

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.item.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of strings, got {_kind(value)}")
        out: list[str] = []
        for entry in value:
            if isinstance(entry, int | float) and not isinstance(entry, bool):
                hint = f" (quote it: '{entry}')" if key == "postal_codes" else ""
                raise self.error(key, f"{entry!r} must be a string{hint}")
            if not isinstance(entry, str) or not entry.strip():
                raise self.error(key, f"entries must be non-empty strings, got {entry!r}")
            out.append(entry.strip())
        return tuple(out)

    def _numeric(self, key: str, value: Any, *, integer: bool) -> float:
        kind = "a whole number" if integer else "a number"
        ok = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok):
            raise self.error(key, f"must be {kind}, got {_kind(value)} {value!r}")
        if not math.isfinite(value):
            raise self.error(key, f"must be finite, got {value!r}")
        return float(value)

    def _bounded(
        self,
        key: str,
        value: float,
        minimum: float | None,
        maximum: float | None,
        exclusive: bool = False,
    ) -> None:
        if minimum is not None and (value <= minimum if exclusive else value < minimum):
            relation = "above" if exclusive else "at least"
            raise self.error(key, f"must be {relation} {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum:g}, got {value:g}")

    def integer(self, key: str, *, minimum: int | None = None) -> int | None:
        value = self.item.get(key)
        if value is None:
            return None
        self._bounded(key, self._numeric(key, value, integer=True), minimum, None)
        return int(value)

    def number(
        self,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive: bool = False,
    ) -> float | None:
        value = self.item.get(key)
        if value is None:
            return None
        number = self._numeric(key, value, integer=False)
        self._bounded(key, number, minimum, maximum, exclusive)
        return number

    def fraction(self, key: str, *, minimum: float) -> float | None:
        value = self.number(key)
        if value is not None and not minimum <= value <= 1:
            hint = f" (write {value / 100:g} for {value:g}%)" if 1 < value <= 100 else ""
            raise self.error(key, f"must be a fraction between {minimum:g} and 1{hint}")
        return value

    def flag(self, key: str) -> bool:
        value = self.item.get(key, False)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def email(self) -> str | None:
        value = self.text("email")
        if value is not None and not _EMAIL.match(value):
            raise self.error("email", f"{value!r} is not an email address")
        return value

    def webhook(self) -> str | None:
        value = self.text("webhook")
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise self.error("webhook", f"{value!r} is not an http:// or https:// URL")
        return value

    def near(self) -> Near | None:
        value = self.item.get("near")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error("near", "must be a mapping: {latitude, longitude, radius_km}")
        sub = _Checker.__new__(_Checker)
        sub.source, sub.label, sub.item = self.source, self.label, value
        unknown = [k for k in value if k not in _NEAR_KEYS]
        if unknown:
            raise self.error(f"near.{unknown[0]}", f"unknown key (known: {', '.join(_NEAR_KEYS)})")
        for key in ("latitude", "longitude", "radius_km"):
            if value.get(key) is None:
                raise self.error(f"near.{key}", "is required")
        return Near(
            latitude=sub.number("latitude", minimum=-90, maximum=90) or 0.0,
            longitude=sub.number("longitude", minimum=-180, maximum=180) or 0.0,
            radius_km=sub.number("radius_km", minimum=0, exclusive=True) or 0.0,
            label=sub.text("label"),
        )


# ---------------------------------------------------------------------------------------------
# Matching


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", text).casefold()


def _money(amount: float) -> str:
    return f"${amount:,.0f}"


def _is_motivated(listing: ListingChanged) -> list[str]:
    signs: list[str] = []
    if listing.PriceChangeCount > 0 or listing.ListPrice < listing.OriginalListPrice:
        cuts = max(listing.PriceChangeCount, 1)
        signs.append(f"{cuts} price cut{'s' if cuts > 1 else ''}")
    if listing.DaysOnMarket > _MOTIVATED_DAYS:
        signs.append(f"{listing.DaysOnMarket} days on market")
    if listing.ChangeType == "Back On Market":
        signs.append("back on market")
    return signs


def _location(box: BuyBox, listing: ListingChanged) -> str | None:
    """Why the listing is in one of the box's places, None when it is in none ('' if no place)."""
    places = box.cities or box.postal_codes or box.neighborhoods or box.near
    if not places:
        return ""
    if listing.City and _squash(listing.City) in {_squash(c) for c in box.cities}:
        return f"in {listing.City}"
    if listing.PostalCode and listing.PostalCode.strip() in box.postal_codes:
        return f"in {listing.PostalCode}"
    hood = listing.Features.get("neighborhood", listing.Features.get("Neighborhood"))
    if isinstance(hood, str) and _squash(hood) in {_squash(n) for n in box.neighborhoods}:
        return f"in {hood.replace('_', ' ')}"
    if box.near is not None:
        km = box.near.distance_km(listing.Latitude, listing.Longitude)
        if km <= box.near.radius_km:
            label = box.near.label or f"{box.near.latitude:.4f}, {box.near.longitude:.4f}"
            return f"{km:.1f} km from {label}"
    return None


def _bounds(low: float | None, high: float | None, show: Callable[[float], str]) -> str:
    """`` (min X)``, `` (max Y)`` or `` (X-Y)``: the box's range after a value."""
    if low is not None and high is not None:
        return f" ({show(low)}-{show(high)})"
    if low is not None:
        return f" (min {show(low)})"
    return f" (max {show(high)})" if high is not None else ""


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


class _NoMatch(Exception):
    """A criterion failed: the deal does not fit the box."""


def _require(ok: bool) -> None:
    if not ok:
        raise _NoMatch


def _deal_reasons(box: BuyBox, deal: DealScored) -> list[str]:
    listing = deal.valued.listing
    reasons: list[str] = []
    if box.min_score is not None:
        _require(deal.Score >= box.min_score)
        reasons.append(f"score {deal.Score:.0f} (min {box.min_score:.0f})")
    if box.min_discount is not None:
        _require(deal.Discount >= box.min_discount)
        reasons.append(f"{deal.Discount:.0%} below estimate (min {box.min_discount:.0%})")
    if box.min_cap_rate is not None:
        _require(deal.CapRate is not None and deal.CapRate >= box.min_cap_rate)
        reasons.append(f"cap rate {deal.CapRate:.1%} (min {box.min_cap_rate:.1%})")
    if box.max_grm is not None:
        grm = deal.GrossRentMultiplier
        _require(grm is not None and grm <= box.max_grm)
        reasons.append(f"GRM {grm:.1f} (max {box.max_grm:g})")
    if box.min_price_cuts is not None:
        cuts = listing.PriceChangeCount
        _require(cuts >= box.min_price_cuts)
        reasons.append(f"{cuts} price cut{'' if cuts == 1 else 's'} (min {box.min_price_cuts})")
    if box.min_days_on_market is not None:
        _require(listing.DaysOnMarket >= box.min_days_on_market)
        reasons.append(f"{listing.DaysOnMarket} days on market (min {box.min_days_on_market})")
    if box.motivated_seller:
        signs = _is_motivated(listing)
        _require(bool(signs))
        reasons.append("motivated seller: " + ", ".join(signs))
    return reasons


def _home_reasons(box: BuyBox, listing: ListingChanged) -> list[str]:
    price = listing.ListPrice
    _require(_within(price, box.min_price, box.max_price))
    reasons = [_money(price) + _bounds(box.min_price, box.max_price, _money)]
    if box.min_beds is not None:
        _require(listing.BedroomsTotal >= box.min_beds)
        reasons.append(f"{listing.BedroomsTotal} beds (min {box.min_beds})")
    if box.min_baths is not None:
        baths = listing.BathroomsTotalInteger
        _require(baths is not None and baths >= box.min_baths)
        reasons.append(f"{baths} baths (min {box.min_baths})")
    if box.min_living_area is not None or box.max_living_area is not None:
        low, high = box.min_living_area, box.max_living_area
        _require(_within(listing.LivingArea, low, high))
        reasons.append(f"{listing.LivingArea:,.0f} sq ft" + _bounds(low, high, "{:,.0f}".format))
    if box.min_year_built is not None or box.max_year_built is not None:
        low_year, high_year = box.min_year_built, box.max_year_built
        _require(_within(listing.YearBuilt, low_year, high_year))
        reasons.append(f"built {listing.YearBuilt}" + _bounds(low_year, high_year, "{:.0f}".format))
    place = _location(box, listing)
    _require(place is not None)
    if place:
        reasons.append(place)
    if box.property_types:
        _require(_squash(listing.PropertyType) in {_squash(t) for t in box.property_types})
        reasons.append(listing.PropertyType)
    return reasons


def matches(box: BuyBox, deal: DealScored) -> list[str]:
    """Why ``deal`` fits ``box``, one reason per criterion set (the deal's first); [] if not.

    Every criterion must hold; a listing whose ``StandardStatus`` is not in ``box.statuses``
    never matches. The price always gives a reason, so a match is never an empty list.
    """
    listing = deal.valued.listing
    if listing.StandardStatus not in box.statuses:
        return []
    try:
        return [*_deal_reasons(box, deal), *_home_reasons(box, listing)]
    except _NoMatch:
        return []
