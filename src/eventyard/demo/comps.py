"""Comparable sales: an index of closed sales and the comps of a listing as of a time.

:class:`CompIndex` holds the closed sales the comps stage has seen (:meth:`CompIndex.add`,
as each sale closes). :meth:`CompIndex.comps_for` answers "which sales would an appraiser
compare this listing with, at this moment": sales that

- closed strictly before ``as_of`` (no look-ahead). Sales carry a close *date* only, so a
  sale counts from the day after its ``CloseDate``: one closing on the day of ``as_of`` is
  not used yet, which also keeps a closing listing from being its own comp;
- have a living area within ``living_area_tolerance`` (20%) of the listing's;
- lie within ``max_km`` of it (great-circle distance, haversine on a 6,371 km sphere);
- are not the listing itself (same ``ListingKey``);

ranked nearest first, by distance to :data:`DISTANCE_STEP_KM` (100 m), then newest first,
then in the order added (so the order is total and reproducible), and cut to the best ``k``.

The sales live in column arrays that grow by doubling, so an add is O(1) and a query is a
handful of vectorised numpy passes over all sales: a box around the listing that holds every
sale within ``max_km`` (:func:`_reach`), the date and the area filters, then the exact
distance of the few sales left. About 30 µs per query over Ames's 2,930 sales, which beats a
spatial tree at this size (a tree would need rebuilding as sales arrive).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Final, Protocol

from eventyard.demo.data import INSTALL_HINT
from eventyard.demo.events import Comp
from eventyard.errors import MissingDependencyError

try:
    import numpy as np
    import numpy.typing as npt
except ImportError:  # pragma: no cover - the demo extra (scikit-learn brings numpy) is missing
    raise MissingDependencyError(INSTALL_HINT) from None

__all__ = [
    "DEFAULT_K",
    "DEFAULT_MAX_KM",
    "DISTANCE_STEP_KM",
    "EARTH_RADIUS_KM",
    "LIVING_AREA_TOLERANCE",
    "ClosedSale",
    "CompIndex",
    "CompSubject",
    "haversine_km",
]

DEFAULT_K: Final = 6
"""Comps returned per listing unless asked otherwise."""

DEFAULT_MAX_KM: Final = 2.0
"""The default search radius: about a mile and a quarter, a neighbourhood in Ames."""

LIVING_AREA_TOLERANCE: Final = 0.2
"""A comp's living area is within this share of the listing's (20%)."""

DISTANCE_STEP_KM: Final = 0.1
"""Distances are compared to this step before recency breaks the tie (100 m)."""

EARTH_RADIUS_KM: Final = 6371.0088
"""The mean Earth radius the haversine distance uses."""


class CompSubject(Protocol):
    """What a listing needs for its comps to be found (RESO names)."""

    @property
    def ListingKey(self) -> str: ...
    @property
    def LivingArea(self) -> float: ...
    @property
    def Latitude(self) -> float: ...
    @property
    def Longitude(self) -> float: ...


class ClosedSale(CompSubject, Protocol):
    """A closed sale to index: ``data.Sale`` or a ``ListingChanged`` whose change is Closed."""

    @property
    def ClosePrice(self) -> int | None: ...
    @property
    def CloseDate(self) -> str | None: ...


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points in degrees, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _day(value: str | dt.datetime | dt.date) -> int:
    """The proleptic ordinal of ``value``'s day (UTC for an aware time)."""
    if isinstance(value, str):
        text = value.strip()
        value = dt.datetime.fromisoformat(text) if len(text) > 10 else dt.date.fromisoformat(text)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date().toordinal()
    return value.toordinal()


_BOX_SLACK: Final = 1e-9
"""Radians added to the search box, so rounding never drops a sale at its edge."""


def _reach(lat: float, max_km: float) -> tuple[float, float]:
    """How far in latitude and longitude (radians) a sale within ``max_km`` of a point at
    latitude ``lat`` (radians) can be: a box that holds every such sale.

    With ``d = max_km / R``: the latitude differs by at most ``d``; from the haversine,
    ``cos(lat1) cos(lat2) sin²(dlon / 2) <= sin²(d / 2)``, and both cosines are at least
    ``cos(|lat| + d)``, so ``dlon <= 2 asin(sin(d / 2) / cos(|lat| + d))``. Near a pole
    longitude bounds nothing and ``pi`` is returned.
    """
    reach = max_km / EARTH_RADIUS_KM
    band = abs(lat) + reach
    if band >= math.pi / 2:
        return reach + _BOX_SLACK, math.pi
    ratio = math.sin(reach / 2) / math.cos(band)
    if ratio >= 1.0:
        return reach + _BOX_SLACK, math.pi
    return reach + _BOX_SLACK, 2 * math.asin(ratio) + _BOX_SLACK


class CompIndex:
    """Closed sales by location, size and close date; one instance per comps stage.

    Adding the same ``ListingKey`` twice keeps both (a property can sell twice); the stage
    adds each Closed change once, in event-time order, but any order gives the same
    answers, since every query filters by date.
    """

    def __init__(self) -> None:
        self._size = 0
        self._lat = np.empty(0, dtype=np.float64)  # radians
        self._lon = np.empty(0, dtype=np.float64)  # radians
        self._cos = np.empty(0, dtype=np.float64)  # cos of the latitude
        self._area = np.empty(0, dtype=np.float64)
        self._day = np.empty(0, dtype=np.int64)
        self._keys: list[str] = []
        self._prices: list[int] = []
        self._dates: list[str] = []

    def __len__(self) -> int:
        return self._size

    def add(self, sale: ClosedSale) -> None:
        """Index one closed sale; :class:`ValueError` without a close price or date."""
        if sale.ClosePrice is None or sale.CloseDate is None:
            raise ValueError(f"{sale.ListingKey}: a comp needs a ClosePrice and a CloseDate")
        day = _day(sale.CloseDate)
        if self._size == len(self._lat):
            self._grow()
        i = self._size
        self._lat[i] = math.radians(sale.Latitude)
        self._lon[i] = math.radians(sale.Longitude)
        self._cos[i] = math.cos(self._lat[i])
        self._area[i] = float(sale.LivingArea)
        self._day[i] = day
        self._keys.append(sale.ListingKey)
        self._prices.append(int(sale.ClosePrice))
        self._dates.append(dt.date.fromordinal(day).isoformat())
        self._size += 1

    def comps_for(
        self,
        listing: CompSubject,
        as_of: str | dt.datetime | dt.date,
        k: int = DEFAULT_K,
        max_km: float = DEFAULT_MAX_KM,
        living_area_tolerance: float = LIVING_AREA_TOLERANCE,
    ) -> list[Comp]:
        """The best ``k`` comps of ``listing`` among sales closed before ``as_of``'s day.

        ``as_of`` is an RFC 3339 time (the event's ``ModificationTimestamp``), an ISO date,
        or a ``datetime`` / ``date``. Fewer than ``k`` (or none) come back when fewer sales
        qualify; a listing without a positive living area has none.
        """
        n = self._size
        area = float(listing.LivingArea)
        if n == 0 or k <= 0 or not area > 0:
            return []
        cutoff = _day(as_of)
        lat, lon = math.radians(listing.Latitude), math.radians(listing.Longitude)
        reach_lat, reach_lon = _reach(lat, max_km)
        near_box = np.abs(self._lat[:n] - lat) <= reach_lat
        if abs(lon) + reach_lon < math.pi:  # else the box would wrap the antimeridian
            near_box &= np.abs(self._lon[:n] - lon) <= reach_lon
        candidates = np.flatnonzero(
            near_box
            & (self._day[:n] < cutoff)
            & (np.abs(self._area[:n] - area) <= living_area_tolerance * area)
        )
        if candidates.size == 0:
            return []
        distances = self._distances(lat, lon, candidates)
        near = distances <= max_km
        candidates, distances = candidates[near], distances[near]
        buckets = np.rint(distances / DISTANCE_STEP_KM)
        order = np.lexsort((candidates, -self._day[candidates], buckets))[: k + 1]
        ranked = zip(distances[order].tolist(), candidates[order].tolist(), strict=True)
        comps = []
        for distance, i in ranked:
            if self._keys[i] == listing.ListingKey:
                continue
            comps.append(
                Comp(
                    ListingKey=self._keys[i],
                    ClosePrice=self._prices[i],
                    CloseDate=self._dates[i],
                    DistanceKm=round(distance, 3),
                    LivingArea=float(self._area[i]),
                )
            )
            if len(comps) == k:
                break
        return comps

    def _distances(
        self, lat: float, lon: float, rows: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """Haversine distances in km from (``lat``, ``lon``), in radians, to sales ``rows``."""
        h = (
            np.sin((self._lat[rows] - lat) / 2) ** 2
            + math.cos(lat) * self._cos[rows] * np.sin((self._lon[rows] - lon) / 2) ** 2
        )
        result: npt.NDArray[np.float64] = (
            2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
        )
        return result

    def _grow(self) -> None:
        capacity = max(256, 2 * len(self._lat))
        for name in ("_lat", "_lon", "_cos", "_area", "_day"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[: self._size] = old[: self._size]
            setattr(self, name, new)
