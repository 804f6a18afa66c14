"""The valuation model: a fair price and a calibrated 80% interval for a listing.

:class:`Valuer` fits scikit-learn's ``HistGradientBoostingRegressor`` on the logarithm of
the price per square foot of living area (``ClosePrice / LivingArea``) of the sales it is
given, and nothing else: the caller passes the sales closed before the event being valued,
so the model never sees the future (no look-ahead). Each :meth:`Valuer.fit` replaces the
model and increments :attr:`Valuer.version`.

Modelling the price per square foot rather than the price lets the trees spend their splits
on what makes a square foot dear (place, age, condition) instead of re-learning size; the
estimate is the predicted rate times the listing's ``LivingArea`` (on Ames's last year this
cuts the median error from 6.5% to 6.1%).

Features are read from plain rows (:class:`ValuationRow`): the RESO numeric fields
(``LivingArea``, ``BedroomsTotal``, ``BathroomsTotalInteger``, ``YearBuilt``,
``LotSizeSquareFeet``, ``Latitude``, ``Longitude``; ``None`` is missing) and every key of
``Features`` seen in training. A feature is categorical when any training row has a string
for it; its categories are ordinal codes learned at fit (the most frequent
:data:`MAX_CATEGORIES`), given to the model as native categoricals; a category unseen in
training, a missing key or a value that is not a number for a numeric feature is "missing",
which the model routes like the missing values it saw. Nothing reads ``ClosePrice`` or
``CloseDate`` at prediction, so an active listing is valued like a sale.

The interval is split-conformal on log-price residuals, calibrated forward in time: the
newest :data:`CALIBRATION_SHARE` of the training sales (by ``CloseDate``) is held out, a
model fitted on the older ones predicts it, and the 10th and 90th percentiles of the
residuals (with the finite-sample rank correction) become the interval's offsets around
the estimate. The final model is then refitted on every sale. Calibrating on the newest
sales rather than a random slice makes the interval honest about predicting *later* sales
(prices drift); on Ames's last year held out this gives 80% intervals covering about 80%.

Both fits run with one OpenMP thread: the pipeline's other stages share the machine's
cores, and OpenMP's spinning threads slow down sharply under contention, while one thread
fits 2,500 sales (both models) in about a second. A few listings are valued in well under
a millisecond by walking the trees with numpy (:class:`~eventyard.demo.forest.Forest`,
checked against scikit-learn at each fit) instead of scikit-learn's 5 ms and more per call;
batches of more than :data:`~eventyard.demo.forest.MAX_ROWS` rows go to scikit-learn.

A fitted :class:`Valuer` pickles (the model, its forest and its schema), so it can be
fitted in another process and sent back (:mod:`eventyard.demo.training`).

The model is deterministic for its data: with no subsampling or early stopping, the
``seed`` (the estimator's ``random_state``) changes nothing today; it is kept so that any
randomised setting added to :class:`ModelParams` stays reproducible.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from eventyard.demo.data import INSTALL_HINT
from eventyard.demo.forest import MAX_ROWS as FOREST_ROWS
from eventyard.demo.forest import Forest
from eventyard.errors import MissingDependencyError

try:
    import numpy as np
    import numpy.typing as npt
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - the demo extra is missing
    raise MissingDependencyError(INSTALL_HINT) from None

__all__ = [
    "CALIBRATION_SHARE",
    "MAX_CATEGORIES",
    "MIN_SALES",
    "ModelNotTrainedError",
    "ModelParams",
    "SaleRow",
    "Valuation",
    "ValuationRow",
    "Valuer",
]

CALIBRATION_SHARE: Final = 0.2
"""The newest share of the training sales held out to calibrate the interval."""

MAX_CATEGORIES: Final = 250
"""Categories kept per categorical feature (the model's bins allow 255); rarer ones are missing."""

MIN_SALES: Final = 20
"""The fewest sales :meth:`Valuer.fit` accepts (a model and a calibration slice need some)."""

_NUMERIC_FIELDS: Final = (
    "LivingArea",
    "BedroomsTotal",
    "BathroomsTotalInteger",
    "YearBuilt",
    "LotSizeSquareFeet",
    "Latitude",
    "Longitude",
)

FloatArray = npt.NDArray[np.float64]


class ValuationRow(Protocol):
    """What the model reads from a listing or a sale (RESO names; see ``events``)."""

    @property
    def LivingArea(self) -> float: ...
    @property
    def BedroomsTotal(self) -> int: ...
    @property
    def BathroomsTotalInteger(self) -> int | None: ...
    @property
    def YearBuilt(self) -> int: ...
    @property
    def LotSizeSquareFeet(self) -> float | None: ...
    @property
    def Latitude(self) -> float: ...
    @property
    def Longitude(self) -> float: ...
    @property
    def Features(self) -> Mapping[str, float | str]: ...


class SaleRow(ValuationRow, Protocol):
    """A closed sale to train on: a row with its price and date (``data.Sale``, or a
    ``ListingChanged`` whose change is Closed)."""

    @property
    def ClosePrice(self) -> int | None: ...
    @property
    def CloseDate(self) -> str | None: ...


class ModelNotTrainedError(RuntimeError):
    """:meth:`Valuer.predict` was called before any :meth:`Valuer.fit`."""


@dataclass(frozen=True, slots=True)
class Valuation:
    """A fair-value estimate in whole dollars and its 80% interval (``low <= estimate <= high``)."""

    estimate: int
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The gradient-boosting settings (tuned on Ames, last year held out; see ``quality``)."""

    learning_rate: float = 0.08
    max_iter: int = 300
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 8
    l2_regularization: float = 1.0
    coverage: float = 0.8


@dataclass(frozen=True, slots=True)
class _Schema:
    """How rows become feature vectors: learned once per fit from the training rows."""

    numeric_keys: tuple[str, ...]
    categorical_keys: tuple[str, ...]
    codes: tuple[Mapping[str, int], ...]

    @classmethod
    def learn(cls, rows: Sequence[ValuationRow]) -> _Schema:
        seen: dict[str, Counter[str]] = {}
        categorical: set[str] = set()
        for row in rows:
            for key, value in row.Features.items():
                seen.setdefault(key, Counter())[_as_category(value)] += 1
                if isinstance(value, str):
                    categorical.add(key)
        numeric_keys = tuple(sorted(k for k in seen if k not in categorical))
        categorical_keys = tuple(sorted(categorical))
        codes = tuple(
            {
                name: code
                for code, (name, _) in enumerate(
                    sorted(seen[key].items(), key=lambda item: (-item[1], item[0]))[:MAX_CATEGORIES]
                )
            }
            for key in categorical_keys
        )
        return cls(numeric_keys, categorical_keys, codes)

    @property
    def width(self) -> int:
        return len(_NUMERIC_FIELDS) + len(self.numeric_keys) + len(self.categorical_keys)

    def categorical_mask(self) -> npt.NDArray[np.bool_]:
        mask = np.zeros(self.width, dtype=bool)
        mask[len(_NUMERIC_FIELDS) + len(self.numeric_keys) :] = True
        return mask

    def matrix(self, rows: Sequence[ValuationRow]) -> FloatArray:
        """One row of floats per listing: the RESO fields, the numeric features, then the
        categorical ones as codes (NaN for missing). Built as Python lists and converted
        once, which is several times faster than filling a numpy array element by element."""
        numeric_keys = self.numeric_keys
        categorical = tuple(zip(self.categorical_keys, self.codes, strict=True))
        nan = math.nan
        data = []
        for row in rows:
            features = row.Features
            values = [_as_number(getattr(row, field)) for field in _NUMERIC_FIELDS]
            values += [_as_number(features.get(key)) for key in numeric_keys]
            for key, codes in categorical:
                value = features.get(key)
                code = None if value is None else codes.get(_as_category(value))
                values.append(nan if code is None else code)
            data.append(values)
        return np.array(data, dtype=np.float64).reshape(len(rows), self.width)


def _as_number(value: object) -> float:
    if type(value) is float:
        return value
    if value is None or isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return math.nan


def _as_category(value: float | str) -> str:
    if type(value) is str:
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _living_area(row: ValuationRow) -> float:
    area = _as_number(row.LivingArea)
    if not area > 0:
        raise ValueError(f"LivingArea must be positive to value a property: {row.LivingArea!r}")
    return area


def _close_key(sale: SaleRow) -> dt.date:
    if sale.CloseDate is None:
        return dt.date.min
    return dt.date.fromisoformat(sale.CloseDate[:10])


def _conformal_offsets(residuals: FloatArray, coverage: float) -> tuple[float, float]:
    """The (low, high) residual quantiles of a split-conformal interval of ``coverage``.

    Ranks ``floor(a (n + 1))`` and ``ceil((1 - a) (n + 1))`` of the sorted residuals with
    ``a = (1 - coverage) / 2`` (clipped to the sample): the finite-sample correction that
    keeps each tail at most ``a`` for exchangeable data.
    """
    ordered = np.sort(residuals)
    n = len(ordered)
    tail = (1.0 - coverage) / 2.0
    low_rank = min(max(math.floor(tail * (n + 1)), 1), n)
    high_rank = min(max(math.ceil((1.0 - tail) * (n + 1)), 1), n)
    return min(float(ordered[low_rank - 1]), 0.0), max(float(ordered[high_rank - 1]), 0.0)


class Valuer:
    """Fits on closed sales, values listings; one instance per valuation stage.

    Not thread-safe: :meth:`fit` replaces the model while :meth:`predict` reads it. The
    valuation stage never shares one: each retrain fits a fresh instance in a training
    process and only the fitted copy it gets back is used to predict.
    """

    def __init__(self, seed: int = 7, params: ModelParams | None = None) -> None:
        self.seed = seed
        self.params = params or ModelParams()
        self._version = 0
        self._schema: _Schema | None = None
        self._model: Any = None
        self._forest: Forest | None = None
        self._offsets = (0.0, 0.0)
        self._trained_on = 0

    def __getstate__(self) -> dict[str, Any]:
        """What a pickle keeps: everything, less scikit-learn's estimator when the numpy
        forest stands in for it. The training process sends every model it fits pickled,
        and the valuation stage unpickles it on its event loop: the estimator's Python
        objects took 3 to 5 ms of that loop (more on a busy machine), once per retrain,
        the forest 0.05 ms. An unpickled valuer then walks the forest for any number of
        rows (slower than scikit-learn from :data:`FOREST_ROWS` rows, as in a catch-up)."""
        state = self.__dict__.copy()
        if self._forest is not None:
            state["_model"] = None
        return state

    @property
    def version(self) -> int:
        """0 before the first fit, then 1, 2, ... one per :meth:`fit`."""
        return self._version

    @property
    def trained_on(self) -> int:
        """How many sales the current model was fitted on (0 before the first fit)."""
        return self._trained_on

    def fit(self, sales: Sequence[SaleRow]) -> int:
        """Fit on exactly ``sales`` (each with a positive ``ClosePrice``); the new version.

        Raises :class:`ValueError` for fewer than :data:`MIN_SALES` sales or a sale without
        a positive ``ClosePrice``; the previous model stays in place then.
        """
        if len(sales) < MIN_SALES:
            raise ValueError(f"need at least {MIN_SALES} closed sales to fit, got {len(sales)}")
        rates = []
        for sale in sales:
            if sale.ClosePrice is None or sale.ClosePrice <= 0:
                raise ValueError(f"a sale to fit on has no positive ClosePrice: {sale!r:.200}")
            rates.append(float(sale.ClosePrice) / _living_area(sale))
        order = sorted(range(len(sales)), key=lambda i: _close_key(sales[i]))
        rows = [sales[i] for i in order]
        target = np.log(np.asarray([rates[i] for i in order], dtype=np.float64))
        schema = _Schema.learn(rows)
        features = schema.matrix(rows)
        held = max(1, round(len(rows) * CALIBRATION_SHARE))
        cut = len(rows) - held
        with _one_thread():
            early = self._new_model(schema).fit(features[:cut], target[:cut])
            residuals = target[cut:] - early.predict(features[cut:])
            model = self._new_model(schema).fit(features, target)
        self._offsets = _conformal_offsets(residuals, self.params.coverage)
        self._forest = Forest.compile(model, features[:256], _one_thread)
        self._schema = schema
        self._model = model
        self._trained_on = len(rows)
        self._version += 1
        return self._version

    def predict(self, row: ValuationRow) -> Valuation:
        """The estimate and 80% interval for one listing or sale (its price is not read)."""
        return self.predict_many([row])[0]

    def predict_many(self, rows: Sequence[ValuationRow]) -> list[Valuation]:
        """:meth:`predict` for many rows in one model call (much faster per row).

        Raises :class:`ModelNotTrainedError` before the first fit and :class:`ValueError`
        for a row without a positive ``LivingArea`` (the estimate is a rate times it).
        """
        if self._schema is None or (self._model is None and self._forest is None):
            raise ModelNotTrainedError(
                "the valuer has no model yet: call fit() with closed sales before predict()"
            )
        if not rows:
            return []
        areas = np.log(np.asarray([_living_area(row) for row in rows], dtype=np.float64))
        features = self._schema.matrix(rows)
        if self._forest is not None and (len(rows) <= FOREST_ROWS or self._model is None):
            logs = self._forest.predict(features) + areas
        else:
            with _one_thread():
                logs = self._model.predict(features) + areas
        low, high = self._offsets
        return [
            Valuation(
                estimate=round(math.exp(value)),
                low=round(math.exp(value + low)),
                high=round(math.exp(value + high)),
            )
            for value in logs.tolist()
        ]

    def _new_model(self, schema: _Schema) -> Any:
        p = self.params
        return HistGradientBoostingRegressor(
            learning_rate=p.learning_rate,
            max_iter=p.max_iter,
            max_leaf_nodes=p.max_leaf_nodes,
            min_samples_leaf=p.min_samples_leaf,
            l2_regularization=p.l2_regularization,
            categorical_features=schema.categorical_mask(),
            early_stopping=False,
            random_state=self.seed,
        )


_controller: list[ThreadpoolController] = []


def _one_thread() -> Any:
    """A context limiting OpenMP to one thread (the controller scans the libraries once)."""
    if not _controller:
        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="openmp")
