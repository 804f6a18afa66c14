"""The numpy forest predicts exactly what scikit-learn's model predicts: numeric splits,
categorical splits, missing values and categories never seen in training alike (the
valuer's own batches, through either, are checked in ``test_valuation``)."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from eventyard.demo.forest import Forest


def rows(rng: np.random.Generator, n: int, categories: int) -> np.ndarray:
    """Two numeric and two categorical columns (codes), about 10% missing in each."""
    out = np.column_stack(
        [
            rng.normal(size=n),
            rng.integers(0, categories, n).astype(float),
            rng.normal(size=n),
            rng.integers(0, 5, n).astype(float),
        ]
    )
    out[rng.random((n, 4)) < 0.1] = np.nan
    return out


def test_the_forest_matches_the_model_on_every_kind_of_row() -> None:
    rng = np.random.default_rng(7)
    train = rows(rng, 800, 12)
    target = (
        np.nan_to_num(train[:, 0])
        + np.where(np.isnan(train[:, 1]), 0.5, train[:, 1] % 3)
        + 0.3 * np.nan_to_num(train[:, 2]) * np.nan_to_num(train[:, 3])
    )
    model = HistGradientBoostingRegressor(
        max_iter=60,
        max_leaf_nodes=8,
        categorical_features=[False, True, False, True],
        random_state=0,
    ).fit(train, target)
    forest = Forest(model)
    test = rows(rng, 300, 20)  # codes 12-19 were never seen in training
    for batch in (test, test[:1], test[:7]):
        assert np.allclose(forest.predict(batch), model.predict(batch), rtol=0, atol=1e-9)
