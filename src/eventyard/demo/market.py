"""A simulated listing market around the real Ames sales.

Ames records what sold, for how much and in which month, but not how each house was
marketed. :func:`simulate_market` makes up a plausible listing lifecycle for every sale,
ending exactly at the real close:

1. **New Listing** on the list date: close date, minus an escrow of 21-45 days to Pending,
   minus the days on market (a lognormal draw, median 45 days, 3 to 365), minus the time a
   withdrawn listing spent off the market;
2. the **original list price** is the real sale price times a Grinnell sale's
   original-list-to-sale ratio (drawn whole from :func:`~eventyard.demo.data.
   load_price_patterns`, so the list and the cut ratios keep their real correlation),
   rounded to $500;
3. when that Grinnell sale was cut (its final list below its original, about 37% of them),
   1 to 3 **Price Change** events step the price down geometrically to the same final ratio
   (deeper cuts take more steps), on distinct days spread over the active period; a price
   only ever goes down;
4. about 6% of listings are **Withdrawn** for 14-60 days and come **Back On Market**;
5. **Pending** at the last list price, escrow days before the close;
6. **Closed** on the real ``CloseDate`` at the real ``ClosePrice``.

About 30% of listings carry a monthly ``TotalActualRent``: the sale price times a gross
monthly rent ratio of 0.85% at $180,000 (higher for cheaper houses, as rents are stickier
than prices), times lognormal noise of 12%, rounded to $25.

Each event's time of day is drawn too (14:00-23:59 UTC, Iowa's business day). The result is
sorted by ``ModificationTimestamp`` (ties by ListingKey, then lifecycle order). Each sale
draws from its own ``random.Random`` seeded with the seed and its ListingKey, so a seed
gives the same market on any machine and a sale's lifecycle does not depend on which other
sales are simulated with it. :data:`FIELD_ORIGINS` says which fields are the data's and
which the simulation's.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable, Sequence
from typing import Any, Final

from eventyard.demo.data import PricePattern, Sale, load_price_patterns
from eventyard.demo.events import ListingChanged

__all__ = [
    "FIELD_ORIGINS",
    "MEDIAN_DAYS_ON_MARKET",
    "RENT_SHARE",
    "WITHDRAWN_SHARE",
    "simulate_market",
]

MEDIAN_DAYS_ON_MARKET: Final = 45
RENT_SHARE: Final = 0.3
WITHDRAWN_SHARE: Final = 0.06

_DOM_SIGMA: Final = 0.75
_ESCROW_DAYS: Final = (21, 45)
_OFF_MARKET_DAYS: Final = (14, 60)
_RENT_RATIO: Final = 0.0085
_RENT_PIVOT: Final = 180_000
_RENT_ELASTICITY: Final = -0.3
_RENT_NOISE: Final = 0.12

FIELD_ORIGINS: Final[dict[str, str]] = {
    "ListingKey": "real",  # one per real Ames sale (its row), AMES-0001...
    "ChangeType": "simulated",
    "ModificationTimestamp": "simulated",
    "StandardStatus": "simulated",
    "ListPrice": "simulated",
    "OriginalListPrice": "simulated",
    "ListingContractDate": "simulated",
    "DaysOnMarket": "simulated",
    "LivingArea": "real",
    "BedroomsTotal": "real",
    "BathroomsTotalInteger": "real",
    "YearBuilt": "real",
    "LotSizeSquareFeet": "real",
    "Latitude": "real",
    "Longitude": "real",
    "City": "real",
    "PostalCode": "real",  # not in the Ames data: always None, never made up
    "PropertyType": "real",
    "ClosePrice": "real",
    "CloseDate": "simulated",  # the month is real; the day is drawn
    "TotalActualRent": "simulated",
    "PriceChangeCount": "simulated",
    "Features": "real",
}
"""Each :class:`~eventyard.demo.events.ListingChanged` field: "real" (from the Ames data) or
"simulated" (drawn by :func:`simulate_market` or :func:`~eventyard.demo.data.load_sales`)."""


def _price(value: float) -> int:
    return max(500, round(value / 500) * 500)


def _cut_steps(ratio: float) -> int:
    if ratio >= 1.0:
        return 0
    if ratio >= 0.95:
        return 1
    return 2 if ratio >= 0.88 else 3


def _static(sale: Sale) -> dict[str, Any]:
    """The fields every event of the sale's listing shares, straight from the data."""
    return {
        "ListingKey": sale.ListingKey,
        "LivingArea": sale.LivingArea,
        "BedroomsTotal": sale.BedroomsTotal,
        "BathroomsTotalInteger": sale.BathroomsTotalInteger,
        "YearBuilt": sale.YearBuilt,
        "LotSizeSquareFeet": sale.LotSizeSquareFeet,
        "Latitude": sale.Latitude,
        "Longitude": sale.Longitude,
        "City": sale.City,
        "PostalCode": sale.PostalCode,
        "PropertyType": sale.PropertyType,
        "Features": sale.Features,
    }


def _rent(rng: random.Random, price: int) -> float | None:
    if rng.random() >= RENT_SHARE:
        return None
    ratio = _RENT_RATIO * (price / _RENT_PIVOT) ** _RENT_ELASTICITY
    return float(round(price * ratio * rng.lognormvariate(0.0, _RENT_NOISE) / 25) * 25)


def _lifecycle(sale: Sale, seed: int, patterns: Sequence[PricePattern]) -> list[ListingChanged]:
    rng = random.Random(f"{seed}:{sale.ListingKey}:market")
    pattern = rng.choice(patterns)
    close = dt.date.fromisoformat(sale.CloseDate)
    pending = close - dt.timedelta(days=rng.randint(*_ESCROW_DAYS))
    dom = round(rng.lognormvariate(math.log(MEDIAN_DAYS_ON_MARKET), _DOM_SIGMA))
    dom = min(365, max(3, dom))
    withdrawn_at: int | None = None
    off_market = 0
    if rng.random() < WITHDRAWN_SHARE and dom >= 20:
        withdrawn_at = rng.randint(dom // 3, dom - 1)
        off_market = rng.randint(*_OFF_MARKET_DAYS)
    listed = pending - dt.timedelta(days=dom + off_market)
    rent = _rent(rng, sale.ClosePrice)

    original = _price(sale.ClosePrice * pattern.original_to_sale)
    candidates = [d for d in range(max(1, dom // 5), dom) if d != withdrawn_at]
    steps = min(_cut_steps(pattern.list_to_original), len(candidates))
    cut_days = sorted(rng.sample(candidates, steps))
    prices: list[int] = []
    for step in range(1, steps + 1):
        price = _price(original * pattern.list_to_original ** (step / steps))
        if price < (prices[-1] if prices else original):
            prices.append(price)
    cuts = dict(zip(cut_days, prices, strict=False))  # rounding may merge a step or two

    # (active day, change type) in lifecycle order; active days skip the off-market gap.
    changes: list[tuple[int, str]] = [(0, "New Listing")]
    changes += [(day, "Price Change") for day in cuts]
    if withdrawn_at is not None:
        changes += [(withdrawn_at, "Withdrawn"), (withdrawn_at, "Back On Market")]
    changes.sort(key=lambda change: (change[0], change[1] == "Back On Market"))
    changes += [(dom, "Pending"), (dom, "Closed")]

    static = _static(sale)
    events = []
    price = original
    count = 0
    for day, change in changes:
        if change == "Closed":
            when = close
        elif change == "Pending":
            when = pending
        else:
            shifted = withdrawn_at is not None and (
                day > withdrawn_at or change == "Back On Market"
            )
            when = listed + dt.timedelta(days=day + (off_market if shifted else 0))
        if change == "Price Change":
            price = cuts[day]
            count += 1
        status = {"Pending": "Pending", "Closed": "Closed", "Withdrawn": "Withdrawn"}.get(
            change, "Active"
        )
        stamp = dt.datetime.combine(
            when, dt.time(rng.randint(14, 23), rng.randint(0, 59)), tzinfo=dt.UTC
        )
        events.append(
            ListingChanged(
                **static,
                ChangeType=change,
                ModificationTimestamp=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                StandardStatus=status,
                ListPrice=price,
                OriginalListPrice=original,
                ListingContractDate=listed.isoformat(),
                DaysOnMarket=day,
                ClosePrice=sale.ClosePrice if change == "Closed" else None,
                CloseDate=sale.CloseDate if change == "Closed" else None,
                TotalActualRent=rent,
                PriceChangeCount=count,
            )
        )
    return events


def simulate_market(
    sales: Iterable[Sale], *, seed: int, cut_patterns: Sequence[PricePattern] | None = None
) -> list[ListingChanged]:
    """Every sale's simulated listing lifecycle, all in ``ModificationTimestamp`` order.

    ``cut_patterns`` defaults to :func:`~eventyard.demo.data.load_price_patterns` (Grinnell);
    tests pass their own. Deterministic for a seed (see the module docstring for the model).
    Raises :class:`ValueError` for an empty ``cut_patterns``.
    """
    patterns = load_price_patterns() if cut_patterns is None else tuple(cut_patterns)
    if not patterns:
        raise ValueError("simulate_market needs at least one price pattern")
    keyed = []
    for sale in sales:
        for order, listing in enumerate(_lifecycle(sale, seed, patterns)):
            keyed.append((listing.ModificationTimestamp, listing.ListingKey, order, listing))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]
