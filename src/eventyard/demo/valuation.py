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
fits 2,500 sales (both models) in about a second. One listing is valued in about 0.4 ms by
walking the trees with numpy (:class:`_Forest`, checked against scikit-learn at each fit)
instead of scikit-learn's ~6 ms per call; batches of rows go to scikit-learn.

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

_FOREST_ROWS: Final = 64
"""Up to this many rows at once the numpy tree walk (:class:`_Forest`) beats scikit-learn."""


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
        out = np.full((len(rows), self.width), np.nan, dtype=np.float64)
        base = len(_NUMERIC_FIELDS)
        split = base + len(self.numeric_keys)
        for i, row in enumerate(rows):
            vector = out[i]
            for j, field in enumerate(_NUMERIC_FIELDS):
                vector[j] = _as_number(getattr(row, field))
            features = row.Features
            for j, key in enumerate(self.numeric_keys, start=base):
                vector[j] = _as_number(features.get(key))
            for j, (key, codes) in enumerate(
                zip(self.categorical_keys, self.codes, strict=True), start=split
            ):
                value = features.get(key)
                if value is not None:
                    code = codes.get(_as_category(value))
                    if code is not None:
                        vector[j] = code
        return out


def _as_number(value: object) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return math.nan


def _as_category(value: float | str) -> str:
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

    Not thread-safe: the stage fits in a worker thread and swaps nothing in place; callers
    must not :meth:`predict` on the same instance while :meth:`fit` runs (the stage awaits
    the fit before it values the next listing).
    """

    def __init__(self, seed: int = 7, params: ModelParams | None = None) -> None:
        self.seed = seed
        self.params = params or ModelParams()
        self._version = 0
        self._schema: _Schema | None = None
        self._model: Any = None
        self._forest: _Forest | None = None
        self._offsets = (0.0, 0.0)
        self._trained_on = 0

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
        self._forest = _Forest.compile(model, features[:256])
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
        if self._model is None or self._schema is None:
            raise ModelNotTrainedError(
                "the valuer has no model yet: call fit() with closed sales before predict()"
            )
        if not rows:
            return []
        areas = np.log(np.asarray([_living_area(row) for row in rows], dtype=np.float64))
        features = self._schema.matrix(rows)
        if self._forest is not None and len(rows) <= _FOREST_ROWS:
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


class _Forest:
    """The fitted trees flattened into arrays and walked all at once with numpy.

    scikit-learn predicts tree by tree, one compiled call and one OpenMP region each, after
    re-encoding the input through a ``ColumnTransformer``: about 6 ms for one listing
    through 300 trees, nearly all of it per-call overhead. The stage values one listing per
    event, so this walks every tree in lock-step instead, one numpy pass per level: about
    0.4 ms a listing (scikit-learn wins again from about a hundred rows at once). It follows
    ``_predictor.pyx`` exactly: the estimator's own re-encoding first (categorical columns
    moved first, their values replaced by their rank among the values seen in training);
    then at each node missing values go the node's missing side, categories in the node's
    bitset go left and the other known ones right (every code the schema produces was seen
    in training), numbers at or below the threshold go left.

    It reads the estimator's private state (``_predictors`` and their ``nodes`` and
    ``raw_left_cat_bitsets``, ``_baseline_prediction``, ``_preprocessor``), so
    :meth:`compile` checks it against ``model.predict`` on training rows and returns
    ``None`` (the caller falls back to ``model.predict``) if any of it ever changes shape or
    meaning in a scikit-learn release.
    """

    def __init__(self, model: Any) -> None:
        trees = [predictors[0] for predictors in model._predictors]
        sizes = [len(tree.nodes) for tree in trees]
        nodes = np.concatenate([tree.nodes for tree in trees])
        starts = np.cumsum([0, *sizes[:-1]]).astype(np.intp)
        shift = np.repeat(starts, sizes)
        bitsets = [np.asarray(tree.raw_left_cat_bitsets, dtype=np.uint32) for tree in trees]
        bit_starts = np.cumsum([0, *[len(b) for b in bitsets[:-1]]]).astype(np.intp)
        bit_shift = np.repeat(bit_starts, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        own = np.arange(len(nodes), dtype=np.intp)
        self.roots = starts
        self.left = np.where(leaf, own, nodes["left"].astype(np.intp) + shift)
        self.right = np.where(leaf, own, nodes["right"].astype(np.intp) + shift)
        self.feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.categorical = nodes["is_categorical"].astype(bool) & ~leaf
        self.bitset_row = np.where(
            self.categorical, nodes["bitset_idx"].astype(np.intp) + bit_shift, 0
        )
        codes = np.arange(256)
        table = np.concatenate([*bitsets, np.zeros((1, 8), dtype=np.uint32)])
        self.goes_left = ((table[:, codes // 32] >> (codes % 32)) & 1).astype(bool)
        self.value = nodes["value"].astype(np.float64)
        self.depth = int(nodes["depth"].max())
        self.baseline = float(np.ravel(model._baseline_prediction)[0])
        # the estimator re-encodes categorical columns (its OrdinalEncoder, sorted codes)
        # and moves them first: replay both on the schema's matrix
        mask = np.asarray(model.is_categorical_, dtype=bool)
        self.categorical_columns = np.flatnonzero(mask)
        self.numeric_columns = np.flatnonzero(~mask)
        encoder = model._preprocessor.named_transformers_["encoder"]
        self.recode = np.full((len(self.categorical_columns), 257), np.nan)
        for i, known in enumerate(encoder.categories_):
            known = np.asarray(known, dtype=np.float64)
            known = known[~np.isnan(known)].astype(np.intp)
            self.recode[i, known] = np.arange(len(known), dtype=np.float64)

    @classmethod
    def compile(cls, model: Any, sample: FloatArray) -> _Forest | None:
        try:
            forest = cls(model)
            with _one_thread():
                expected = model.predict(sample)
            matches = bool(np.allclose(forest.predict(sample), expected, rtol=0, atol=1e-9))
        except Exception:  # private arrays changed: fall back to model.predict
            return None
        return forest if matches else None

    def _encode(self, features: FloatArray) -> FloatArray:
        categories = features[:, self.categorical_columns]
        index = np.where(np.isnan(categories), 256, np.clip(categories, 0, 255)).astype(np.intp)
        recoded = np.take_along_axis(self.recode, index.T, axis=1).T
        return np.hstack([recoded, features[:, self.numeric_columns]])

    def predict(self, features: FloatArray) -> FloatArray:
        features = self._encode(features)
        rows = np.arange(len(features))[:, None]
        node = np.broadcast_to(self.roots, (len(features), len(self.roots))).copy()
        for _ in range(self.depth):
            x = features[rows, self.feature[node]]
            categorical = self.categorical[node]
            missing = np.isnan(x) | (categorical & (x < 0))
            code = np.clip(np.nan_to_num(x, nan=0.0), 0, 255).astype(np.intp)
            left = np.where(
                missing,
                self.missing_left[node],
                np.where(
                    categorical,
                    self.goes_left[self.bitset_row[node], code],
                    x <= self.threshold[node],
                ),
            )
            node = np.where(left, self.left[node], self.right[node])
        result: FloatArray = self.value[node].sum(axis=1) + self.baseline
        return result
