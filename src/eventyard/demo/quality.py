"""The valuation model's quality report: the last year of Ames sales, held out by time.

:func:`quality_report` trains a :class:`~eventyard.demo.valuation.Valuer` on every Ames
sale closed before the last :data:`HOLDOUT_MONTHS` months of the data and values each sale
of those months, as the live pipeline would have (no look-ahead: nothing from the test
months reaches the model, not even through its calibration slice). It measures the median
absolute percentage error of the estimates (:func:`mdape`) and the share of sales whose
price falls inside their 80% interval (:func:`coverage`). The issue's targets:
MdAPE at most 7% and coverage between 75% and 85%.

The ``seed`` sets the model's seed and the day drawn within each sale's real month
(``data.load_sales``), which orders the sales inside a month and so the calibration slice;
the report is identical for the same seed.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from eventyard.demo.data import load_sales
from eventyard.demo.valuation import Valuer

__all__ = [
    "COVERAGE_RANGE",
    "HOLDOUT_MONTHS",
    "MDAPE_TARGET",
    "QualityReport",
    "coverage",
    "mdape",
    "quality_report",
]

HOLDOUT_MONTHS: Final = 12
"""The newest months of sales held out as the test set."""

MDAPE_TARGET: Final = 0.07
"""The issue's target: median absolute percentage error at most 7%."""

COVERAGE_RANGE: Final = (0.75, 0.85)
"""The issue's target: 80% intervals covering between 75% and 85% of the test sales."""


@dataclass(frozen=True, slots=True)
class QualityReport:
    """One held-out evaluation. ``train_until`` is the last training close date (ISO),
    ``test_from`` the first day of the test months; ``mdape`` and ``coverage_80`` are
    fractions (0.057 is 5.7%); ``fit_seconds`` is the wall time of the one fit."""

    seed: int
    n_train: int
    n_test: int
    mdape: float
    coverage_80: float
    train_until: str
    test_from: str
    fit_seconds: float

    @property
    def meets_targets(self) -> bool:
        """Whether both of the issue's targets hold."""
        low, high = COVERAGE_RANGE
        return self.mdape <= MDAPE_TARGET and low <= self.coverage_80 <= high

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (fractions rounded to 4 places)."""
        document = asdict(self)
        for key in ("mdape", "coverage_80"):
            document[key] = round(document[key], 4)
        document["fit_seconds"] = round(self.fit_seconds, 3)
        document["meets_targets"] = self.meets_targets
        return document


def mdape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    """The median of ``|predicted - actual| / actual`` (a fraction; actual prices positive)."""
    _same_length(actual, predicted)
    return statistics.median(abs(p - a) / a for a, p in zip(actual, predicted, strict=True))


def coverage(actual: Sequence[float], low: Sequence[float], high: Sequence[float]) -> float:
    """The share of ``actual`` values inside their ``[low, high]`` interval (bounds included)."""
    _same_length(actual, low, high)
    inside = sum(lo <= a <= hi for a, lo, hi in zip(actual, low, high, strict=True))
    return inside / len(actual)


def _same_length(*columns: Sequence[float]) -> None:
    sizes = {len(column) for column in columns}
    if len(sizes) != 1:
        raise ValueError(f"the sequences differ in length: {sorted(sizes)}")
    if 0 in sizes:
        raise ValueError("no values to measure")


def _months_before(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months - 1`` months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - (months - 1)
    return dt.date(index // 12, index % 12 + 1, 1)


def quality_report(seed: int = 7) -> QualityReport:
    """Train before the last :data:`HOLDOUT_MONTHS` months of Ames, test on them."""
    sales = load_sales(seed)
    last = max(dt.date.fromisoformat(sale.CloseDate) for sale in sales)
    test_from = _months_before(last, HOLDOUT_MONTHS).isoformat()
    train = [sale for sale in sales if sale.CloseDate < test_from]
    test = [sale for sale in sales if sale.CloseDate >= test_from]
    valuer = Valuer(seed=seed)
    started = time.perf_counter()
    valuer.fit(train)
    fit_seconds = time.perf_counter() - started
    valued = valuer.predict_many(test)
    actual = [float(sale.ClosePrice) for sale in test]
    if not all(math.isfinite(a) and a > 0 for a in actual):
        raise ValueError("a test sale has no positive ClosePrice")
    return QualityReport(
        seed=seed,
        n_train=len(train),
        n_test=len(test),
        mdape=mdape(actual, [float(v.estimate) for v in valued]),
        coverage_80=coverage(
            actual, [float(v.low) for v in valued], [float(v.high) for v in valued]
        ),
        train_until=max(sale.CloseDate for sale in train),
        test_from=test_from,
        fit_seconds=fit_seconds,
    )
