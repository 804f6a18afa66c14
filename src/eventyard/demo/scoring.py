"""Scoring a valued listing as a deal: how cheap it is, how sure we are, and why.

:func:`score` turns a :class:`~eventyard.demo.events.ListingValued` into a
:class:`~eventyard.demo.events.DealScored` with a 0-100 ``Score`` and readable ``Signals``.
Everything here is a pure function of the event, so a replay scores every listing the same
way. With ``P`` the list price, ``E`` the estimate and ``[L, H]`` the model's 80% interval:

- **value** (up to 60 points): the discount to fair value ``d = (E - P) / E``, weighed by the
  model's uncertainty. The 80% interval spans ``±1.2816`` standard errors, so the relative
  standard error is ``s = (H - L) / (2.5631 * E)`` and the chance that the fair value is above
  the list price is ``Φ(d / s)``. Value points are ``60 * clamp(d / 20%, 0, 1) * Φ(d / s)``:
  a 20% discount the model is sure of earns them all, the same discount inside a wide
  interval earns less, and a listing at or above its estimate earns none;
- **motivated seller** (up to 25): ``2`` per price cut (at most 6, from ``PriceChangeCount``)
  plus ``0.6`` per percent cut from ``OriginalListPrice`` to ``ListPrice`` (at most 6); ``5``
  over 60 days on market or ``8`` over 90; ``5`` when the change is ``Back On Market``;
- **income** (up to 15, only when ``TotalActualRent``, a monthly rent, is given): the cap rate
  ``12 * rent * (1 - 40%) / P`` (the rent less a 40% expense ratio, over the price) scores
  ``15 * clamp((cap - 4%) / 6%, 0, 1)``, so 4% earns nothing and 10% earns all; the gross
  rent multiplier ``P / (12 * rent)`` is reported beside it.

``Score = 100 * (value + motivated + income) / available``, where ``available`` is 100 with a
rent and 85 without, so a listing is not marked down for a rent nobody knows; it is rounded
to one decimal. ``Discount`` (``d``) and ``Uncertainty`` (``(H - L) / E``) are fractions.
"""

from __future__ import annotations

import math
from typing import Final

from eventyard.demo.events import DealScored, ListingChanged, ListingValued

__all__ = [
    "EXPENSE_RATIO",
    "cap_rate",
    "confidence",
    "discount",
    "gross_rent_multiplier",
    "income_points",
    "motivation_points",
    "score",
    "uncertainty",
    "value_points",
]

EXPENSE_RATIO: Final = 0.40
"""The share of the rent taken by taxes, insurance, upkeep, vacancy and management."""

_Z80: Final = 1.2816
"""Half the width of a central 80% normal interval, in standard deviations."""
_MIN_STDERR: Final = 0.005
"""A floor on the relative standard error, so a zero-width interval does not divide by zero."""
_FULL_DISCOUNT: Final = 0.20
_VALUE_MAX: Final = 60.0
_MOTIVATION_MAX: Final = 25.0
_INCOME_MAX: Final = 15.0
_CAP_FLOOR: Final = 0.04
_CAP_SPAN: Final = 0.06
_WIDE_INTERVAL: Final = 0.30
"""An 80% interval wider than this share of the estimate is called out as uncertain."""


def _clamp(x: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, x))


def discount(valued: ListingValued) -> float:
    """``(Estimate - ListPrice) / Estimate``: positive when listed below the estimate."""
    if valued.Estimate <= 0:
        return 0.0
    return (valued.Estimate - valued.listing.ListPrice) / valued.Estimate


def uncertainty(valued: ListingValued) -> float:
    """``(High - Low) / Estimate``: the 80% interval's width as a share of the estimate."""
    if valued.Estimate <= 0:
        return 1.0
    return max(valued.High - valued.Low, 0) / valued.Estimate


def confidence(valued: ListingValued) -> float:
    """``Φ(d / s)``: the chance the fair value is above the list price (module docstring)."""
    stderr = max(uncertainty(valued) / (2 * _Z80), _MIN_STDERR)
    return 0.5 * (1.0 + math.erf(discount(valued) / stderr / math.sqrt(2.0)))


def value_points(valued: ListingValued) -> float:
    """``60 * clamp(d / 20%, 0, 1) * Φ(d / s)``: the discount, weighed by its confidence."""
    return _VALUE_MAX * _clamp(discount(valued) / _FULL_DISCOUNT) * confidence(valued)


def _cut_depth(listing: ListingChanged) -> float:
    if listing.OriginalListPrice <= 0:
        return 0.0
    return max(0.0, (listing.OriginalListPrice - listing.ListPrice) / listing.OriginalListPrice)


def motivation_points(listing: ListingChanged) -> float:
    """Price cuts, cut depth, days on market and back on market, at most 25 points."""
    points = min(2.0 * max(listing.PriceChangeCount, 0), 6.0)
    points += min(60.0 * _cut_depth(listing), 6.0)
    if listing.DaysOnMarket > 90:
        points += 8.0
    elif listing.DaysOnMarket > 60:
        points += 5.0
    if listing.ChangeType == "Back On Market":
        points += 5.0
    return min(points, _MOTIVATION_MAX)


def _annual_rent(listing: ListingChanged) -> float | None:
    rent = listing.TotalActualRent
    if rent is None or rent <= 0 or listing.ListPrice <= 0:
        return None
    return 12.0 * rent


def cap_rate(listing: ListingChanged) -> float | None:
    """``12 * rent * (1 - 40%) / ListPrice``, or None without a rent."""
    annual = _annual_rent(listing)
    if annual is None:
        return None
    return annual * (1.0 - EXPENSE_RATIO) / listing.ListPrice


def gross_rent_multiplier(listing: ListingChanged) -> float | None:
    """``ListPrice / (12 * rent)``, or None without a rent."""
    annual = _annual_rent(listing)
    if annual is None:
        return None
    return listing.ListPrice / annual


def income_points(listing: ListingChanged) -> float | None:
    """``15 * clamp((cap - 4%) / 6%, 0, 1)``, or None without a rent."""
    cap = cap_rate(listing)
    if cap is None:
        return None
    return _INCOME_MAX * _clamp((cap - _CAP_FLOOR) / _CAP_SPAN)


def _signals(valued: ListingValued, cap: float | None, grm: float | None) -> list[str]:
    listing = valued.listing
    d = discount(valued)
    signals: list[str] = []
    if d >= 0.005:
        signals.append(f"{d:.0%} below estimate")
    elif d <= -0.005:
        signals.append(f"{-d:.0%} above estimate")
    else:
        signals.append("at estimate")
    width = uncertainty(valued)
    if width > _WIDE_INTERVAL:
        signals.append(f"uncertain estimate (±{width / 2:.0%})")
    cuts = max(listing.PriceChangeCount, 0)
    depth = _cut_depth(listing)
    if cuts:
        plural = "s" if cuts > 1 else ""
        signals.append(f"{cuts} price cut{plural} (-{depth:.0%})")
    elif depth >= 0.005:
        signals.append(f"{depth:.0%} below original price")
    if listing.DaysOnMarket > 60:
        signals.append(f"{listing.DaysOnMarket} days on market")
    if listing.ChangeType == "Back On Market":
        signals.append("back on market")
    if cap is not None and grm is not None:
        signals.append(f"cap rate {cap:.1%}")
        signals.append(f"GRM {grm:.1f}")
    return signals


def score(valued: ListingValued) -> DealScored:
    """The deal ``valued`` is: score, discount, uncertainty, signals, cap rate and GRM."""
    listing = valued.listing
    income = income_points(listing)
    available = _VALUE_MAX + _MOTIVATION_MAX + (_INCOME_MAX if income is not None else 0.0)
    points = value_points(valued) + motivation_points(listing) + (income or 0.0)
    cap = cap_rate(listing)
    grm = gross_rent_multiplier(listing)
    return DealScored(
        valued=valued,
        Score=round(100.0 * points / available, 1),
        Discount=round(discount(valued), 4),
        Uncertainty=round(uncertainty(valued), 4),
        Signals=_signals(valued, cap, grm),
        CapRate=None if cap is None else round(cap, 4),
        GrossRentMultiplier=None if grm is None else round(grm, 2),
    )
