"""Bad inputs raise a clear ValueError naming the problem; inputs are never modified."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sk_tdamp import EMTDAMPClassifier, EMTDAMPRegressor

SMALL = dict(hidden_layer_sizes=(6,), max_iter=3, batch_size=16, random_state=0)
ESTIMATORS = [EMTDAMPRegressor, EMTDAMPClassifier]


def _data(Est, n=40, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    if Est is EMTDAMPClassifier:
        return X, np.arange(n) % 3
    return X, X[:, 0] - X[:, 1] + 0.1 * rng.randn(n)


def _fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kwargs)


def _partial_fit(est, X, y):
    kwargs = {"classes": [0, 1, 2]} if isinstance(est, EMTDAMPClassifier) else {}
    return est.partial_fit(X, y, **kwargs)


def _predictions(est, X):
    """Every prediction method of a fitted estimator, in a fixed order."""
    if isinstance(est, EMTDAMPClassifier):
        return [est.predict(X), est.predict_proba(X), est.predict_log_proba(X),
                est.decision_function(X)]
    return [est.predict(X), *est.predict(X, return_std=True)]


# ------------------------------------------------------------------ non-finite data
@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_X_is_rejected(Est, value, word):
    X, y = _data(Est)
    X[3, 1] = value
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        Est(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        _partial_fit(Est(**SMALL), X, y)
    fitted = _fit(Est(**SMALL), *_data(Est))
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        fitted.predict(X)


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity"),
                                         (-np.inf, "infinity")])
def test_non_finite_y_is_rejected(value, word):
    X, y = _data(EMTDAMPRegressor)
    y[5] = value
    with pytest.raises(ValueError, match=f"Input y contains {word}"):
        EMTDAMPRegressor(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match=f"Input y contains {word}"):
        EMTDAMPRegressor(**SMALL).partial_fit(X, y)


def test_nan_label_is_rejected():
    X, _ = _data(EMTDAMPClassifier)
    y = np.arange(40) % 2 * 1.0
    y[0] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        EMTDAMPClassifier(**SMALL).fit(X, y)


# --------------------------------------------------------------------- bad shapes
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_empty_data_is_rejected(Est):
    with pytest.raises(ValueError, match="0 sample"):
        Est(**SMALL).fit(np.empty((0, 3)), np.empty(0))
    with pytest.raises(ValueError, match="0 feature"):
        Est(**SMALL).fit(np.empty((5, 0)), np.arange(5) % 2)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_wrong_number_of_features_at_predict(Est):
    X, y = _data(Est)
    est = _fit(Est(**SMALL), X, y)
    with pytest.raises(ValueError, match=r"X has 2 features, but .* is expecting 3"):
        est.predict(X[:, :2])
    with pytest.raises(ValueError, match=r"X has 4 features, but .* is expecting 3"):
        est.partial_fit(np.column_stack([X, X[:, 0]]), y)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_inconsistent_lengths_are_rejected(Est):
    X, y = _data(Est)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Est(**SMALL).fit(X, y[:-1])


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_three_dimensional_X_is_rejected(Est):
    X, y = _data(Est)
    with pytest.raises(ValueError, match="Found array with dim 3"):
        Est(**SMALL).fit(X.reshape(40, 3, 1), y)
    est = _fit(Est(**SMALL), X, y)
    with pytest.raises(ValueError, match="Found array with dim 3"):
        est.predict(X.reshape(40, 3, 1))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_string_X_is_rejected(Est):
    X, y = _data(Est)
    X_str = np.array([["a", "b", "c"]] * 40)
    with pytest.raises(ValueError, match="could not convert string to float"):
        Est(**SMALL).fit(X_str, y)


def test_regressor_output_count_must_not_change():
    X, y = _data(EMTDAMPRegressor)
    reg = EMTDAMPRegressor(**SMALL).partial_fit(X, y)
    with pytest.raises(ValueError, match="y has 2 outputs"):
        reg.partial_fit(X, np.column_stack([y, y]))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_unfitted_estimator_raises_not_fitted(Est):
    X, _ = _data(Est)
    methods = (["predict", "predict_proba", "predict_log_proba", "decision_function"]
               if Est is EMTDAMPClassifier else ["predict"])
    for method in methods:
        with pytest.raises(NotFittedError):
            getattr(Est(**SMALL), method)(X)


# ------------------------------------------------------------------ bad parameters
@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("params, name", [
    ({"max_iter": -1}, "max_iter"),
    ({"max_iter": 0}, "max_iter"),
    ({"damping": 1}, "damping"),
    ({"damping": -0.1}, "damping"),
    ({"target_density": 0}, "target_density"),
    ({"target_density": 1.5}, "target_density"),
    ({"input_target_density": 0.0}, "input_target_density"),
    ({"rho_init": 0}, "rho_init"),
    ({"batch_size": 0}, "batch_size"),
    ({"prior_variance": 0.0}, "prior_variance"),
    ({"noise_variance_init": -1.0}, "noise_variance_init"),
    ({"pasp_memory": 0}, "pasp_memory"),
    ({"tol": -1e-3}, "tol"),
    ({"activation": "tanh"}, "activation"),
    ({"hidden_layer_sizes": "abc"}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": -3}, "hidden_layer_sizes"),
])
def test_invalid_parameter_is_named(Est, params, name):
    X, y = _data(Est)
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of {Est.__name__}"):
        Est(**{**SMALL, **params}).fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("sizes", [(0,), (-3,), ("a",), (2.5,), (4, True), ((2, 3),),
                                   (8, None)])
def test_invalid_hidden_layer_sizes_entries(Est, sizes):
    X, y = _data(Est)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a sequence of positive"):
        Est(**{**SMALL, "hidden_layer_sizes": sizes}).fit(X, y)


# ------------------------------------------------------------------------ classes
def test_single_class_is_rejected():
    X, _ = _data(EMTDAMPClassifier)
    with pytest.raises(ValueError, match=r"at least 2 classes.*only one class"):
        EMTDAMPClassifier(**SMALL).fit(X, np.full(40, "spam"))
    with pytest.raises(ValueError, match="at least 2 classes"):
        EMTDAMPClassifier(**SMALL).partial_fit(X, np.zeros(40, int), classes=[0])


def test_continuous_labels_are_rejected():
    X, y = _data(EMTDAMPRegressor)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        EMTDAMPClassifier(**SMALL).fit(X, y)


def test_partial_fit_requires_classes_on_first_call():
    X, y = _data(EMTDAMPClassifier)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        EMTDAMPClassifier(**SMALL).partial_fit(X, y)


def test_partial_fit_labels_outside_classes_are_rejected():
    X, y = _data(EMTDAMPClassifier)
    with pytest.raises(ValueError, match="labels not in classes_"):
        EMTDAMPClassifier(**SMALL).partial_fit(X, y + 5, classes=[0, 1, 2])
    clf = EMTDAMPClassifier(**SMALL).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.partial_fit(X, np.where(y == 0, 9, y))
    assert clf.n_iter_ == 1  # the failed calls left the model untouched


def test_partial_fit_classes_must_not_change():
    X, y = _data(EMTDAMPClassifier)
    clf = EMTDAMPClassifier(**SMALL).partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y, classes=[2, 1, 0])  # the same set is fine
    with pytest.raises(ValueError, match="is not the same as classes_"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])


# ------------------------------------------------------------- inputs not modified
@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("layout", ["C-float64", "F-float64", "float32", "list"])
def test_inputs_are_never_modified(Est, layout):
    X, y = _data(Est)
    if layout == "F-float64":
        X = np.asfortranarray(X)
    elif layout == "float32":
        X = X.astype(np.float32)
    if layout == "list":
        X_in, y_in = X.tolist(), y.tolist()
        X_ref, y_ref = [row[:] for row in X_in], list(y_in)
    else:
        X_in, y_in = X, y
        X_ref, y_ref = X.copy(), y.copy()

    est = _fit(Est(**SMALL), X_in, y_in)
    _predictions(est, X_in)
    _partial_fit(est, X_in, y_in)
    _partial_fit(Est(**SMALL), X_in, y_in)
    _predictions(est, X_in)
    if layout == "list":
        assert X_in == X_ref and y_in == y_ref
    else:
        assert_array_equal(X_in, X_ref)
        assert_array_equal(y_in, y_ref)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_fitted_attributes_are_not_views_of_the_inputs(Est):
    # A float64 C-contiguous X passes through validation without a copy: nothing the
    # model keeps or returns may alias it.
    X, y = _data(Est)
    est = _fit(Est(**SMALL), X, y)
    for out in _predictions(est, X):
        assert not np.shares_memory(out, X)
    for attr in (est.coefs_ + est.intercepts_ + est.pruned_coefs_):
        assert not np.shares_memory(attr, X)


# ------------------------------------------------------------------- failed fits
def test_failed_first_fit_leaves_the_estimator_unfitted():
    X, y = _data(EMTDAMPClassifier)
    clf = EMTDAMPClassifier(**SMALL)
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.partial_fit(X, y + 5, classes=[0, 1, 2])
    with pytest.raises(NotFittedError):
        clf.predict(X)
    reg = EMTDAMPRegressor(**{**SMALL, "hidden_layer_sizes": (0,)})
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        reg.fit(*_data(EMTDAMPRegressor))
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_failed_refit_keeps_the_previous_model():
    X, y = _data(EMTDAMPClassifier)
    clf = _fit(EMTDAMPClassifier(**SMALL), X, y)
    before = clf.predict_proba(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X, np.zeros(40, int))
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert_array_equal(clf.predict_proba(X), before)

    X, y = _data(EMTDAMPRegressor)
    reg = _fit(EMTDAMPRegressor(**SMALL), X, y)
    before = reg.predict(X)
    reg.set_params(hidden_layer_sizes=(0,))
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        reg.fit(X, 1000.0 * y)
    assert_array_equal(reg.predict(X), before)
