"""The demo's typed events, on a registry of its own (:data:`DEMO_REGISTRY`).

Field names follow the RESO Data Dictionary (https://ddwiki.reso.org) where RESO has a name,
in RESO's own PascalCase, so a broker's MLS export maps onto :class:`ListingChanged` column
for column; what RESO has no name for (the Ames quality grades, the neighbourhood) travels in
``Features``. The downstream events (valued, scored, matched, alerted) keep the same casing
for their own fields so one topic dump reads uniformly.

Every event is a frozen, keyword-only ``msgspec.Struct``: handlers share instances between
stages in one process, so nothing may mutate them, and keyword construction keeps the many
fields of a listing readable. Times are RFC 3339 strings in UTC (``2008-05-14T15:30:00Z``),
the *market* time of the change, never the wall clock: replaying the market re-creates the
same times. Dates are ISO ``YYYY-MM-DD``.

Topics and keys: ``listings`` (ListingKey), ``valued``, ``models``, ``deals``, ``matches``
(BuyBox + ListingKey), ``alerts``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from eventyard.events import EventRegistry

__all__ = [
    "CHANGE_TYPES",
    "DEMO_REGISTRY",
    "PRICED_CHANGES",
    "STANDARD_STATUSES",
    "AlertSent",
    "Comp",
    "DealMatched",
    "DealScored",
    "ListingChanged",
    "ListingComped",
    "ListingValued",
    "ModelTrained",
    "listing_problem",
]

DEMO_REGISTRY: Final = EventRegistry()
"""The registry every demo event is on (kept apart from users' ``default_registry``)."""

CHANGE_TYPES: Final = (
    "New Listing",
    "Price Change",
    "Back On Market",
    "Pending",
    "Closed",
    "Withdrawn",
)
"""RESO ``ChangeType`` values the demo produces and accepts."""

STANDARD_STATUSES: Final = ("Active", "Pending", "Closed", "Withdrawn")
"""RESO ``StandardStatus`` values the demo produces and accepts."""

PRICED_CHANGES: Final = ("New Listing", "Price Change", "Back On Market")
"""The changes that put a listing on the market at a price: the ones the pipeline values,
scores and matches (a Pending, Closed or Withdrawn change offers nothing to buy)."""


@DEMO_REGISTRY.event("reso.listing.changed", version=1)
class ListingChanged(msgspec.Struct, kw_only=True, frozen=True):
    """One change to one listing: RESO's Property resource as of ``ModificationTimestamp``.

    Every change carries the whole listing (not a diff), so a consumer needs no earlier
    event to act on it. RESO fields: ``ListingKey`` (the listing's unique key),
    ``ChangeType`` (what changed, one of :data:`CHANGE_TYPES`), ``ModificationTimestamp``
    (when, RFC 3339: the event time), ``StandardStatus`` (one of :data:`STANDARD_STATUSES`),
    ``ListPrice`` (current asking price, USD), ``OriginalListPrice`` (asking price when
    first listed), ``ListingContractDate`` (the date the listing agreement began),
    ``DaysOnMarket``, ``LivingArea`` (square feet), ``BedroomsTotal``,
    ``BathroomsTotalInteger`` (full plus half baths, each counted as one),
    ``YearBuilt``, ``LotSizeSquareFeet``, ``Latitude``, ``Longitude``, ``City``,
    ``PostalCode``, ``PropertyType`` (RESO's "Residential", "Residential Income", ...),
    ``ClosePrice`` and ``CloseDate`` (set on the Closed change), ``TotalActualRent`` (the
    monthly rent, when known) and ``PriceChangeCount`` (RESO's count of list-price changes).
    ``Features`` is not RESO: valuation features RESO has no field for.

    Valid by construction: creating one that :func:`listing_problem` finds fault with raises
    ``ValueError`` with the problem, and decoding one raises ``msgspec.ValidationError``
    (which the framework dead-letters with the reason, like any event that does not fit its
    type). So no stage ever sees an impossible listing, whether it came through the loader,
    the feed or ``eventyard produce``; the check costs about 2 µs per listing decoded.
    """

    ListingKey: str
    ChangeType: str
    ModificationTimestamp: str
    StandardStatus: str
    ListPrice: int
    OriginalListPrice: int
    ListingContractDate: str
    DaysOnMarket: int
    LivingArea: float
    BedroomsTotal: int
    BathroomsTotalInteger: int | None = None
    YearBuilt: int
    LotSizeSquareFeet: float | None = None
    Latitude: float
    Longitude: float
    City: str | None = None
    PostalCode: str | None = None
    PropertyType: str = "Residential"
    ClosePrice: int | None = None
    CloseDate: str | None = None
    TotalActualRent: float | None = None
    PriceChangeCount: int = 0
    Features: dict[str, float | str] = {}

    def __post_init__(self) -> None:
        problem = listing_problem(self)
        if problem is not None:
            raise ValueError(problem)


def listing_problem(listing: ListingChanged) -> str | None:
    """Why ``listing`` cannot be a real listing change (one line naming the field), or None.

    The one validation of a listing change beyond its types, made by
    :class:`ListingChanged` itself whenever one is created or decoded: so
    :func:`eventyard.demo.data.load_listings` rejects a user's row with this reason, and the
    comps stage's subscription dead-letters a record on ``listings`` with it (such a record
    may come from anywhere: a rejected row the feed passes on, ``eventyard produce``; one
    bad closed sale in the comps index or the training set would fail every later
    valuation). Checked: a RESO change type and status, an RFC 3339 time, positive prices
    and living area, a bedroom count of at least 0, a position on the globe, and a price and
    date on a Closed change.
    """
    if listing.ChangeType not in CHANGE_TYPES:
        return f"ChangeType: not a RESO change type: {listing.ChangeType!r}"
    if listing.StandardStatus not in STANDARD_STATUSES:
        return f"StandardStatus: not a RESO status: {listing.StandardStatus!r}"
    try:
        datetime.fromisoformat(listing.ModificationTimestamp.replace("Z", "+00:00"))
    except ValueError:
        return f"ModificationTimestamp: not an RFC 3339 time: {listing.ModificationTimestamp!r}"
    positive = (
        ("ListPrice", listing.ListPrice),
        ("OriginalListPrice", listing.OriginalListPrice),
        ("LivingArea", listing.LivingArea),
    )
    for name, value in positive:
        if not value > 0:
            return f"{name}: must be positive: {value}"
    if listing.BedroomsTotal < 0:
        return f"BedroomsTotal: must not be negative: {listing.BedroomsTotal}"
    if not -90 <= listing.Latitude <= 90:
        return f"Latitude: must be within -90..90: {listing.Latitude}"
    if not -180 <= listing.Longitude <= 180:
        return f"Longitude: must be within -180..180: {listing.Longitude}"
    if listing.ClosePrice is not None and listing.ClosePrice <= 0:
        return f"ClosePrice: must be positive: {listing.ClosePrice}"
    if listing.ChangeType == "Closed" and (listing.ClosePrice is None or not listing.CloseDate):
        return "ClosePrice, CloseDate: required on a Closed change"
    return None


class Comp(msgspec.Struct, kw_only=True, frozen=True):
    """A comparable closed sale attached to a listing (not an event of its own).

    RESO fields of the closed listing: ``ListingKey``, ``ClosePrice``, ``CloseDate``,
    ``LivingArea``; ``DistanceKm`` (great-circle distance to the subject) is the demo's.
    """

    ListingKey: str
    ClosePrice: int
    CloseDate: str
    DistanceKm: float
    LivingArea: float


@DEMO_REGISTRY.event("deal.listing.comped", version=1)
class ListingComped(msgspec.Struct, kw_only=True, frozen=True):
    """A listing change with the comparable sales closed before it (the comps stage's output).

    ``listing`` is the RESO change as it arrived; ``comps`` the closed sales within 20% of
    its living area, nearest and most recent first, for a change of :data:`PRICED_CHANGES`
    (the ones valued); the other changes pass through with none, since nothing values them,
    and Closed ones so the valuation stage learns from them in the order the market saw them.
    """

    listing: ListingChanged
    comps: list[Comp]


@DEMO_REGISTRY.event("deal.listing.valued", version=1)
class ListingValued(msgspec.Struct, kw_only=True, frozen=True):
    """A listing with its comparable sales and the model's fair-value estimate.

    No RESO field of its own (RESO has no automated valuation resource): ``Estimate`` is the
    fair value in USD, ``Low`` / ``High`` its calibrated 80% interval, ``ModelVersion`` the
    :class:`ModelTrained` version that produced it.
    """

    listing: ListingChanged
    comps: list[Comp]
    Estimate: int
    Low: int
    High: int
    ModelVersion: int


@DEMO_REGISTRY.event("deal.model.trained", version=1)
class ModelTrained(msgspec.Struct, kw_only=True, frozen=True):
    """A valuation model was (re)trained. Not RESO.

    ``TrainedAsOf`` is the market time (RFC 3339) of the newest closed sale it may use
    (only sales closed before it), ``Sales`` how many closed sales it was fitted on,
    ``Mdape`` its median absolute percentage error on held-out sales, when measured.
    """

    ModelVersion: int
    TrainedAsOf: str
    Sales: int
    Mdape: float | None = None


@DEMO_REGISTRY.event("deal.scored", version=1)
class DealScored(msgspec.Struct, kw_only=True, frozen=True):
    """A valued listing scored as a deal (0-100). Not RESO.

    ``Discount`` is ``(Estimate - ListPrice) / Estimate``, ``Uncertainty`` the interval's
    relative width, ``Signals`` the reasons in words (price cuts, days on market, back on
    market...), ``CapRate`` and ``GrossRentMultiplier`` set when the listing has a rent
    (RESO ``TotalActualRent``, monthly).
    """

    valued: ListingValued
    Score: float
    Discount: float
    Uncertainty: float
    Signals: list[str]
    CapRate: float | None = None
    GrossRentMultiplier: float | None = None


@DEMO_REGISTRY.event("deal.matched", version=1)
class DealMatched(msgspec.Struct, kw_only=True, frozen=True):
    """A scored deal matched a broker's buy-box.

    ``ListingKey`` and ``ListPrice`` are RESO's; ``BuyBox`` and ``Broker`` name the box and
    its owner, ``Score`` / ``Estimate`` come from :class:`DealScored`, ``Reasons`` say why it
    matched, ``At`` is the market time (RFC 3339) of the listing change that matched.
    """

    BuyBox: str
    Broker: str
    ListingKey: str
    Score: float
    ListPrice: int
    Estimate: int
    Reasons: list[str]
    At: str


@DEMO_REGISTRY.event("deal.alert.sent", version=1)
class AlertSent(msgspec.Struct, kw_only=True, frozen=True):
    """An alert went out on one notifier channel (terminal, file, webhook).

    ``ListingKey`` and ``ListPrice`` are RESO's; ``Channel`` names the notifier, ``BuyBox``
    the box, ``Reason`` the alert's reason (the dedupe key with box and listing), ``At`` the
    market time (RFC 3339) of the change that caused it.
    """

    Channel: str
    BuyBox: str
    ListingKey: str
    Reason: str
    ListPrice: int
    At: str
