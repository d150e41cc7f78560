"""EM-TDAMP estimators as base estimators of conformal and calibration wrappers.

MAPIE's conformal regressors (a test extra) wrap EMTDAMPRegressor, prefit or refitted by
cross-validation, with the plain absolute residual score and with the residual
standardized by the estimator's own predictive standard deviation
(``predict(X, return_std=True)``); the intervals must cover what split conformal
prediction guarantees. The classifier's counterpart, ``CalibratedClassifierCV``, is in
test_classifier.py.

(The data's noise grows with ``|x|``; the model's likelihood is homoscedastic, so its
predictive std varies only through the weights' uncertainty: measured here, 0.92 near 0
against 1.04 at the edges, for a noise standard deviation from 0.1 to 0.9.)
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sk_tdamp import EMTDAMPRegressor

mapie_regression = pytest.importorskip("mapie.regression")
StdConformityScore = pytest.importorskip("mapie.conformity_scores").StdConformityScore


def _heteroscedastic(n, seed):
    """y = sin(2x) + noise whose standard deviation grows with |x|."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    noise = (0.1 + 0.4 * np.abs(X[:, 0])) * rng.standard_normal(n)
    return X, np.sin(2 * X[:, 0]) + 0.3 * X[:, 1] + noise


def _coverage(intervals, y):
    lo, hi = intervals[:, 0, 0], intervals[:, 1, 0]
    return float(np.mean((y >= lo) & (y <= hi))), float(np.mean(hi - lo))


@pytest.fixture(scope="module")
def data():
    return [_heteroscedastic(n, seed) for n, seed in ((300, 0), (300, 1), (600, 2))]


@pytest.fixture(scope="module")
def prefit(data):
    (X, y), _, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return EMTDAMPRegressor(hidden_layer_sizes=(16,), max_iter=30,
                                random_state=0).fit(X, y)


@pytest.mark.parametrize("score", ["absolute", "std"])
def test_split_conformal_intervals_of_a_prefit_model_cover_at_the_nominal_level(
        data, prefit, score):
    _, (X_conf, y_conf), (X_test, y_test) = data
    conformity = "absolute" if score == "absolute" else StdConformityScore()
    scr = mapie_regression.SplitConformalRegressor(prefit, confidence_level=0.9,
                                                   conformity_score=conformity, prefit=True)
    scr.conformalize(X_conf, y_conf)
    point, intervals = scr.predict_interval(X_test)
    np.testing.assert_allclose(point, prefit.predict(X_test))
    coverage, width = _coverage(intervals, y_test)
    # marginal guarantee >= 0.9 (up to the test set's binomial spread, sd 0.012 here)
    assert 0.87 <= coverage <= 0.96
    half = intervals[:, 1, 0] - point
    if score == "std":  # the half width is a conformal quantile times the model's std
        _, std = prefit.predict(X_test, return_std=True)
        np.testing.assert_allclose(half / std, (half / std)[0], rtol=1e-9)
        assert np.ptp(half) > 0
    else:
        np.testing.assert_allclose(half, half[0], rtol=1e-9)


def test_cross_conformal_refits_clones_of_the_estimator(data):
    (X, y), _, (X_test, y_test) = data
    est = EMTDAMPRegressor(hidden_layer_sizes=(8,), max_iter=15, random_state=0)
    ccr = mapie_regression.CrossConformalRegressor(est, confidence_level=0.8, cv=3,
                                                   method="plus", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ccr.fit_conformalize(X, y)
    _, intervals = ccr.predict_interval(X_test)
    coverage, _ = _coverage(intervals, y_test)
    assert 0.74 <= coverage <= 0.92  # jackknife+ guarantees >= 1 - 2 alpha = 0.6
    assert not hasattr(est, "n_iter_")  # the template itself is left unfitted
