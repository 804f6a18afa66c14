"""The valuer: intervals around the estimate, a version per fit, a clear error before the
first fit, the same model for the same seed, listings valued without a close price, and
one-row predictions (the numpy tree walk) equal to scikit-learn's batch predictions."""

from __future__ import annotations

import math
import pickle
import time

import msgspec
import pytest

from eventyard.demo.data import Sale, load_sales
from eventyard.demo.events import ListingChanged
from eventyard.demo.forest import MAX_ROWS as FOREST_ROWS
from eventyard.demo.valuation import MIN_SALES, ModelNotTrainedError, Valuation, Valuer

SALES = sorted(load_sales(7), key=lambda s: s.CloseDate)
SMALL = SALES[:600]


@pytest.fixture(scope="module")
def fitted() -> Valuer:
    valuer = Valuer(seed=7)
    valuer.fit(SMALL)
    return valuer


def as_listing(sale: Sale) -> ListingChanged:
    """The sale as an active listing: no ClosePrice, no CloseDate."""
    return ListingChanged(
        ListingKey=sale.ListingKey,
        ChangeType="New Listing",
        ModificationTimestamp=f"{sale.CloseDate}T12:00:00Z",
        StandardStatus="Active",
        ListPrice=sale.ClosePrice,
        OriginalListPrice=sale.ClosePrice,
        ListingContractDate=sale.CloseDate,
        DaysOnMarket=0,
        LivingArea=sale.LivingArea,
        BedroomsTotal=sale.BedroomsTotal,
        BathroomsTotalInteger=sale.BathroomsTotalInteger,
        YearBuilt=sale.YearBuilt,
        LotSizeSquareFeet=sale.LotSizeSquareFeet,
        Latitude=sale.Latitude,
        Longitude=sale.Longitude,
        Features=dict(sale.Features),
    )


def test_predict_before_fit_raises_a_clear_error() -> None:
    valuer = Valuer()
    assert valuer.version == 0
    with pytest.raises(ModelNotTrainedError, match=r"call fit\(\) with closed sales"):
        valuer.predict(SALES[0])


def test_each_fit_increments_the_version() -> None:
    valuer = Valuer(seed=1)
    assert valuer.fit(SALES[:100]) == 1
    assert (valuer.version, valuer.trained_on) == (1, 100)
    assert valuer.fit(SALES[:150]) == 2
    assert (valuer.version, valuer.trained_on) == (2, 150)


def test_the_interval_contains_the_estimate(fitted: Valuer) -> None:
    valuations = fitted.predict_many(SALES[600:1200])
    assert all(v.low <= v.estimate <= v.high for v in valuations)
    assert all(v.low < v.high for v in valuations)
    assert all(isinstance(v.estimate, int) and v.estimate > 0 for v in valuations)


def test_the_same_seed_gives_the_same_model(fitted: Valuer) -> None:
    again = Valuer(seed=7)
    again.fit(SMALL)
    later = SALES[600:700]
    assert again.predict_many(later) == fitted.predict_many(later)


def test_an_active_listing_is_valued_without_a_close_price(fitted: Valuer) -> None:
    sale = SALES[700]
    assert fitted.predict(as_listing(sale)) == fitted.predict(sale)


def test_one_row_predictions_equal_batch_predictions(fitted: Valuer) -> None:
    rows = SALES[600 : 601 + FOREST_ROWS]  # a batch this size goes to scikit-learn's predict
    one_by_one = [fitted.predict(row) for row in rows]
    assert one_by_one == fitted.predict_many(rows)


def test_a_pickled_valuer_carries_the_forest_not_the_estimator(fitted: Valuer) -> None:
    """The training process sends models pickled; unpickling scikit-learn's estimator took
    milliseconds of the valuation stage's event loop, the forest a fraction of one."""
    data = pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL)
    assert b"HistGradientBoostingRegressor" not in data
    copy = pickle.loads(data)
    assert (copy.version, copy.trained_on) == (fitted.version, fitted.trained_on)
    few, many = SALES[600:608], SALES[600 : 601 + FOREST_ROWS]
    assert copy.predict_many(few) == fitted.predict_many(few)
    assert copy.predict_many(many) == fitted.predict_many(many)  # scikit-learn's, here
    with pytest.raises(ModelNotTrainedError):
        pickle.loads(pickle.dumps(Valuer())).predict(SALES[0])


def test_unknown_categories_and_missing_features_are_handled(fitted: Valuer) -> None:
    sale = SALES[800]
    odd = msgspec.structs.replace(
        sale,
        BathroomsTotalInteger=None,
        Features={**sale.Features, "neighborhood": "Atlantis", "total_bsmt_sf": "lots"},
    )
    bare = msgspec.structs.replace(sale, Features={})
    for row in (odd, bare):
        valuation = fitted.predict(row)
        assert isinstance(valuation, Valuation)
        assert 0 < valuation.low <= valuation.estimate <= valuation.high
        assert math.isfinite(valuation.estimate)


def test_fit_rejects_too_few_sales_or_sales_without_a_price() -> None:
    valuer = Valuer()
    with pytest.raises(ValueError, match=f"at least {MIN_SALES}"):
        valuer.fit(SALES[: MIN_SALES - 1])
    with pytest.raises(ValueError, match="ClosePrice"):
        valuer.fit([*SALES[:50], as_listing(SALES[50])])
    assert valuer.version == 0


def test_a_listing_needs_a_living_area(fitted: Valuer) -> None:
    with pytest.raises(ValueError, match="LivingArea must be positive"):
        fitted.predict(msgspec.structs.replace(SALES[0], LivingArea=0.0))


def test_fitting_2500_sales_takes_well_under_two_seconds() -> None:
    """CPU time (the fit runs on one thread), so a busy machine does not fail the test."""
    valuer = Valuer(seed=7)
    started = time.process_time()
    valuer.fit(SALES[:2500])
    assert time.process_time() - started < 2.0
    started = time.process_time()
    for sale in SALES[2500:2600]:
        valuer.predict(sale)
    assert (time.process_time() - started) / 100 < 0.005  # per listing, one at a time
