"""Behaviour of EMTDAMPRegressor: meta-estimators, determinism, equivariance, shapes,
incremental fitting and the fitted attributes."""

import pickle
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_tdamp import EMTDAMPClassifier, EMTDAMPRegressor
from sk_tdamp import _engine as engine
from sk_tdamp._estimators import template_settings
from sk_tdamp.datasets import make_teacher_student

SMALL = dict(hidden_layer_sizes=(8,), max_iter=5, batch_size=16, random_state=0)


def _data(n=60, d=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.randn(n)
    return X, y


def _fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return EMTDAMPRegressor(**{**SMALL, **params}).fit(X, y)


def test_pipeline_with_scaler_fits_and_predicts():
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), EMTDAMPRegressor(**{**SMALL, "max_iter": 20}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X * 100.0 + 7.0, y)
    mean, std = pipe.predict(X * 100.0 + 7.0, return_std=True)
    assert mean.shape == std.shape == (60,)
    assert np.all(std > 0)
    # Learns something: better than the constant predictor on the training data.
    assert pipe.score(X * 100.0 + 7.0, y) > 0.5


def test_grid_search_over_prior_settings_in_pipeline():
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), EMTDAMPRegressor(**SMALL))
    grid = {
        "emtdampregressor__prior_variance": [0.5, 2.0],
        "emtdampregressor__rho_init": [0.5, 0.9],
        "emtdampregressor__target_density": [None, 0.5],
    }
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_[-1]
    assert best.prior_variance == search.best_params_["emtdampregressor__prior_variance"]


def test_cross_validate_returns_finite_scores():
    X, y = _data()
    res = cross_validate(EMTDAMPRegressor(**SMALL), X, y, cv=3,
                         scoring=["r2", "neg_mean_squared_error"])
    assert res["test_r2"].shape == (3,)
    assert np.all(np.isfinite(res["test_neg_mean_squared_error"]))


def test_clone_is_unfitted_with_same_params():
    X, y = _data()
    reg = _fit(X, y)
    twin = clone(reg)
    assert twin.get_params() == reg.get_params()
    assert not hasattr(twin, "coefs_")
    assert_allclose(twin.fit(X, y).predict(X), reg.predict(X), rtol=1e-12)


def test_pickle_round_trip_predicts_identically():
    X, y = _data()
    reg = _fit(X, y)
    loaded = pickle.loads(pickle.dumps(reg))
    mean, std = reg.predict(X, return_std=True)
    mean2, std2 = loaded.predict(X, return_std=True)
    assert_array_equal(mean2, mean)
    assert_array_equal(std2, std)


def test_random_state_controls_the_result():
    X, y = _data()
    a = _fit(X, y, random_state=3).predict(X)
    b = _fit(X, y, random_state=3).predict(X)
    c = _fit(X, y, random_state=4).predict(X)
    assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-3


def test_target_scale_equivariance():
    X, y = _data()
    mean, std = _fit(X, y).predict(X, return_std=True)
    mean_k, std_k = _fit(X, 1000.0 * y).predict(X, return_std=True)
    assert_allclose(mean_k, 1000.0 * mean, rtol=1e-9, atol=1e-9)
    assert_allclose(std_k, 1000.0 * std, rtol=1e-9)


def test_target_shift_moves_the_mean_only():
    X, y = _data()
    mean, std = _fit(X, y).predict(X, return_std=True)
    mean_s, std_s = _fit(X, y + 500.0).predict(X, return_std=True)
    assert_allclose(mean_s, mean + 500.0, rtol=0, atol=1e-9)
    assert_allclose(std_s, std, rtol=1e-9)


def test_multi_output_shapes():
    X, y = _data()
    Y = np.column_stack([y, -2.0 * y + 1.0, X[:, 2]])
    reg = _fit(X, Y)
    mean, std = reg.predict(X[:7], return_std=True)
    assert mean.shape == std.shape == (7, 3)
    assert reg.n_outputs_ == 3
    assert reg.coefs_[-1].shape == (8, 3)
    assert reg.y_mean_.shape == reg.y_scale_.shape == (3,)


def test_multi_output_is_equivariant_per_output():
    X, y = _data()
    Y = np.column_stack([y, X[:, 2]])
    mean, std = _fit(X, Y).predict(X, return_std=True)
    scale = np.array([10.0, 0.1])
    mean_k, std_k = _fit(X, Y * scale).predict(X, return_std=True)
    assert_allclose(mean_k, mean * scale, rtol=1e-9, atol=1e-12)
    assert_allclose(std_k, std * scale, rtol=1e-9)


def test_one_dimensional_target_gives_one_dimensional_predictions():
    X, y = _data()
    reg = _fit(X, y)
    assert reg.predict(X).shape == (60,)
    mean, std = reg.predict(X, return_std=True)
    assert mean.shape == std.shape == (60,)
    col = _fit(X, y[:, None])
    assert col.predict(X).shape == (60, 1)
    assert_allclose(col.predict(X).ravel(), reg.predict(X), rtol=1e-12)


def test_partial_fit_initializes_then_continues():
    X, y = _data()
    reg = EMTDAMPRegressor(**SMALL)
    reg.partial_fit(X, y)
    assert reg.n_iter_ == 1
    assert reg.t_ == 60
    first = [w.copy() for w in reg.coefs_]
    reg.partial_fit(X, y)
    assert reg.n_iter_ == 2
    assert reg.t_ == 120
    assert max(np.max(np.abs(a - b)) for a, b in zip(first, reg.coefs_)) > 1e-6


def test_partial_fit_passes_equal_fit_epochs():
    # One partial_fit call is one epoch of fit with the same random stream.
    X, y = _data()
    reg = EMTDAMPRegressor(**SMALL)
    for _ in range(3):
        reg.partial_fit(X, y)
    full = _fit(X, y, max_iter=3)
    assert_allclose(reg.predict(X), full.predict(X), rtol=1e-10, atol=1e-12)


def test_partial_fit_after_fit_continues_from_fit():
    X, y = _data()
    reg = _fit(X, y, max_iter=3)
    before = reg.predict(X)
    reg.partial_fit(X, y)
    assert reg.n_iter_ == 4
    assert np.max(np.abs(reg.predict(X) - before)) > 1e-6
    # It continued: not the same as a fresh single pass.
    fresh = EMTDAMPRegressor(**SMALL).partial_fit(X, y)
    assert np.max(np.abs(reg.predict(X) - fresh.predict(X))) > 1e-6


def test_warm_start_continues_training():
    X, y = _data()
    reg = _fit(X, y, max_iter=3, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    assert reg.n_iter_ == 6
    assert len(reg.loss_curve_) == 6
    longer = _fit(X, y, max_iter=6)
    assert_allclose(reg.predict(X), longer.predict(X), rtol=1e-10, atol=1e-12)


def test_refit_without_warm_start_restarts():
    X, y = _data()
    reg = _fit(X, y, max_iter=3)
    first = reg.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    assert reg.n_iter_ == 3
    assert_allclose(reg.predict(X), first, rtol=1e-12)


def _fake_losses(monkeypatch, losses):
    """Make fit() see ``losses`` as its training objective; the fit itself is unchanged."""
    real, it = engine.run_epoch, iter(losses)

    def run_epoch(*args, **kwargs):
        real(*args, **kwargs)
        return next(it)

    monkeypatch.setattr(engine, "run_epoch", run_epoch)


def test_fit_keeps_its_best_epoch_when_the_objective_breaks_down(monkeypatch):
    X, y = _data()
    ref = _fit(X, y, max_iter=3)
    _fake_losses(monkeypatch, [-1.0, -2.0, -3.0, -2.0, 5.0, 9.0])
    with pytest.warns(ConvergenceWarning, match=r"rose from -3\.0000 \(epoch 3\) to 9\.0000"):
        reg = EMTDAMPRegressor(**{**SMALL, "max_iter": 6}).fit(X, y)
    assert reg.n_iter_ == 6
    assert reg.loss_curve_ == [-1.0, -2.0, -3.0, -2.0, 5.0, 9.0]  # the history stays
    mean, std = reg.predict(X, return_std=True)
    mean_ref, std_ref = ref.predict(X, return_std=True)
    assert_array_equal(mean, mean_ref)
    assert_array_equal(std, std_ref)
    assert_array_equal(reg.coefs_[0], ref.coefs_[0])


def test_fit_keeps_its_last_epoch_within_the_breakdown_margin(monkeypatch):
    X, y = _data()
    ref = _fit(X, y, max_iter=6)
    # 0.09 above the minimum: noise of a plateau, not a breakdown (margin 0.1)
    _fake_losses(monkeypatch, [-1.0, -2.0, -3.0, -2.95, -2.93, -2.91])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="maximum iterations"):
            EMTDAMPRegressor(**{**SMALL, "max_iter": 6}).fit(X, y)
    monkeypatch.undo()
    _fake_losses(monkeypatch, [-1.0, -2.0, -3.0, -2.95, -2.93, -2.91])
    reg = _fit(X, y, max_iter=6)
    assert_array_equal(reg.predict(X), ref.predict(X))


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = _data()
    reg = _fit(X, y, max_iter=4, verbose=True)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == reg.n_iter_ == 4
    assert all(re.match(rf"Epoch {i + 1}, loss = ", ln) for i, ln in enumerate(lines))


def test_silent_by_default(capsys):
    X, y = _data()
    _fit(X, y, max_iter=2)
    assert capsys.readouterr().out == ""


def test_max_iter_without_convergence_warns():
    X, y = _data()
    # The first epoch always improves on +inf, so 3 epochs cannot reach 3 epochs
    # without improvement: max_iter is hit before convergence.
    reg = EMTDAMPRegressor(**{**SMALL, "max_iter": 3, "n_iter_no_change": 3, "tol": 0.0})
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        reg.fit(X, y)
    assert reg.n_iter_ == 3


def test_convergence_stops_early_without_warning():
    X, y = _data()
    # A huge tol makes every epoch after the first (which improves on +inf) count as
    # "no improvement": fit stops after 1 + n_iter_no_change epochs.
    reg = EMTDAMPRegressor(**{**SMALL, "max_iter": 50, "n_iter_no_change": 2, "tol": 1e6})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg.fit(X, y)
    assert reg.n_iter_ == 3


def test_n_init_keeps_the_initialization_with_the_lowest_objective():
    # Two-hidden-layer teacher whose target has no linear trend: from the first
    # initialization the posterior collapses to a constant predictor (every input pruned)
    X, y, teacher = make_teacher_student(
        n_samples=1500, n_features=8, hidden_layer_sizes=(8, 6), density=0.5,
        input_density=0.5, noise_std=0.1, random_state=4, return_teacher=True)
    params = dict(hidden_layer_sizes=(8, 6), input_rho_init=0.5, max_iter=20,
                  batch_size=64, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = EMTDAMPRegressor(n_init=1, **params).fit(X[:1000], y[:1000])
        three = EMTDAMPRegressor(n_init=3, **params).fit(X[:1000], y[:1000])
        auto = EMTDAMPRegressor(**params).fit(X[:1000], y[:1000])  # n_init="auto"

    def relative_mse(reg):
        return np.mean((reg.predict(X[1000:]) - y[1000:]) ** 2) / teacher.noise_variance

    assert one.n_features_kept_ == 0 and relative_mse(one) > 2.5
    assert three.n_features_kept_ > 0 and relative_mse(three) < 1.2
    assert three.loss_curve_[-1] < one.loss_curve_[-1] - 0.3
    assert len(three.loss_curve_) == three.n_iter_
    # "auto" restarts because the first fit predicts a constant (collapsed)
    assert auto.n_features_kept_ > 0 and relative_mse(auto) < 1.2


def _spy_initializations(monkeypatch, collapsed_fits):
    """Record each initialization's noise variance and objective; the first
    ``collapsed_fits`` fits count as collapsed."""
    seen = {"v0": [], "objective": [], "curve": []}
    real_new, real_run = engine.new_chain, engine.run

    def new_chain(settings, n_features, n_outputs, seed, v_scale, noise_variance=None):
        seen["v0"].append(noise_variance)
        return real_new(settings, n_features, n_outputs, seed, v_scale, noise_variance)

    def run(*args, **kwargs):
        result = real_run(*args, **kwargs)
        seen["objective"].append(result.objective)
        seen["curve"].append(list(result.chain.loss_curve))
        return result

    monkeypatch.setattr(engine, "new_chain", new_chain)
    monkeypatch.setattr(engine, "run", run)
    monkeypatch.setattr(engine, "collapsed",
                        lambda state, settings: len(seen["v0"]) <= collapsed_fits)
    return seen


@pytest.mark.parametrize("collapsed_fits, n_fits", [(0, 1), (1, 2), (2, 3), (5, 3)])
def test_n_init_auto_restarts_while_collapsed_from_a_smaller_noise_variance(
        monkeypatch, collapsed_fits, n_fits):
    # "auto": another initialization (at most 3 in all) only while the fit ends
    # collapsed, each restart from noise_variance_init / 10; the lowest objective is kept
    X, y = _data()
    seen = _spy_initializations(monkeypatch, collapsed_fits)
    reg = _fit(X, y, noise_variance_init=2.0, max_iter=2)
    assert seen["v0"] == [2.0] + [0.2] * (n_fits - 1)
    assert len(seen["objective"]) == n_fits
    # the kept model is the fit of the initialization with the lowest objective
    kept = int(np.argmin(seen["objective"]))
    assert reg.loss_curve_ == seen["curve"][kept]
    assert all(curve != seen["curve"][kept] for k, curve in enumerate(seen["curve"])
               if k != kept)  # the fits differ, so the check can tell them apart


def test_integer_n_init_runs_every_initialization_from_the_same_noise_variance(monkeypatch):
    X, y = _data()
    seen = _spy_initializations(monkeypatch, collapsed_fits=0)
    reg = _fit(X, y, n_init=3, max_iter=2)
    assert seen["v0"] == [1.0, 1.0, 1.0]
    assert reg.loss_curve_[-1] == min(seen["objective"])


def test_collapse_test_counts_empty_and_narrow_layers():
    from sk_tdamp._core._state import init_state
    from sk_tdamp._settings import resolve_settings

    settings = resolve_settings(EMTDAMPRegressor(hidden_layer_sizes=(8, 3)).get_params(),
                                "gaussian")
    state = init_state([4, 8, 3, 1], np.random.default_rng(0), input_rho=0.5)

    def kept(n_inputs, n_first, n_second, density=False):
        for la, n in zip(state.layers, (n_inputs, n_first, n_second)):
            la.Lam = np.where(np.arange(la.n_in) < n, 1.0, -1.0)
            la.keep = (la.Lam > 0) if density else None
        return engine.collapsed(state, settings)

    assert not kept(4, 8, 3)
    assert kept(0, 8, 3)  # no input kept: a constant predictor
    assert kept(4, 8, 0)  # a hidden layer with no neuron: constant too
    assert kept(4, 2, 3)  # 2 of 8 neurons: partly collapsed (4 or more keeping <= 2)
    assert not kept(4, 3, 3)
    assert not kept(4, 8, 1)  # a layer of 3 neurons keeping 1: narrow, not collapsed
    assert not kept(4, 2, 3, density=True)  # a target density chose the count


def test_n_init_auto_restarts_only_collapsed_fits(capsys):
    X, y = _data()
    params = {**SMALL, "max_iter": 3, "input_rho_init": 0.5}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = EMTDAMPRegressor(verbose=True, **params).fit(X, y)
        one = EMTDAMPRegressor(n_init=1, **params).fit(X, y)
    assert min(auto.n_neurons_kept_) > 0 and auto.n_features_kept_ > 0
    assert_array_equal(auto.predict(X), one.predict(X))
    assert "Initialization" not in capsys.readouterr().out
    # two of 8 neurons under a target density is the user's choice, not a collapse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = EMTDAMPRegressor(verbose=True, target_density=0.25, **params).fit(X, y)
        one = EMTDAMPRegressor(n_init=1, target_density=0.25, **params).fit(X, y)
    assert auto.n_neurons_kept_ == [2]
    assert_array_equal(auto.predict(X), one.predict(X))
    assert "Initialization" not in capsys.readouterr().out
    # Pure noise: every fit ends constant, so all three initializations run and the
    # lowest objective among them (the first one included) is kept
    X, noise = np.random.RandomState(0).standard_normal((2, 300, 4))
    noise = noise[:, 0]
    params = {**params, "max_iter": 30}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = EMTDAMPRegressor(verbose=True, **params).fit(X, noise)
        first = EMTDAMPRegressor(n_init=1, **params).fit(X, noise)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("Initialization")]
    assert lines == [f"Initialization {k} of at most 3: the previous fit collapsed"
                     for k in (2, 3)]
    assert auto.n_features_kept_ == 0 and np.ptp(auto.predict(X)) == 0.0
    assert auto.loss_curve_[-1] <= first.loss_curve_[-1]  # the best of the three kept


def test_n_init_reports_the_kept_fit_only_and_partial_fit_ignores_it(capsys):
    X, y = _data()
    params = {**SMALL, "max_iter": 2, "n_init": 3}
    with pytest.warns(ConvergenceWarning) as record:
        EMTDAMPRegressor(verbose=True, **params).fit(X, y)
    assert sum("maximum iterations" in str(w.message) for w in record) == 1
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("Initialization")] == [
        "Initialization 1 of 3", "Initialization 2 of 3", "Initialization 3 of 3"]
    a = EMTDAMPRegressor(**params).partial_fit(X, y)
    b = EMTDAMPRegressor(**{**params, "n_init": 1}).partial_fit(X, y)
    assert_array_equal(a.predict(X), b.predict(X))


def test_noise_variance_is_learned_from_the_first_pass_on():
    X, y = _data()
    reg = EMTDAMPRegressor(**SMALL).partial_fit(X, y)
    initial = reg.noise_variance_init * np.mean(reg.y_scale_ ** 2)  # in units of y
    assert not np.isclose(reg.noise_variance_, initial)


def test_score_is_r2():
    X, y = _data()
    reg = _fit(X, y, max_iter=20)
    pred = reg.predict(X)
    r2 = 1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    assert_allclose(reg.score(X, y), r2, rtol=1e-12)
    assert r2 > 0.5


def test_feature_names_in_with_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    names = ["a", "b", "c", "d"]
    df = pd.DataFrame(X, columns=names)
    reg = _fit(df, y)
    assert_array_equal(reg.feature_names_in_, names)
    with pytest.warns(UserWarning, match="valid feature names"):
        from_array = reg.predict(X)
    assert_allclose(reg.predict(df), from_array, rtol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(df[["b", "a", "c", "d"]])
    assert not hasattr(_fit(X, y), "feature_names_in_")


@pytest.mark.parametrize("hidden", [(), (8,), (8, 6), (8, 6, 4)])
def test_depths_fit_and_predict_with_the_right_shapes(hidden):
    X, y = _data()
    reg = _fit(X, y, hidden_layer_sizes=hidden)
    mean, std = reg.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5,)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    widths = [4, *hidden, 1]
    assert [w.shape for w in reg.coefs_] == list(zip(widths[:-1], widths[1:]))
    assert [b.shape for b in reg.intercepts_] == [(w,) for w in widths[1:]]
    assert reg.n_layers_ == len(hidden) + 2
    assert len(reg.n_neurons_kept_) == len(hidden)


def test_hidden_layer_sizes_accepts_an_int():
    X, y = _data()
    reg = _fit(X, y, hidden_layer_sizes=5)
    assert [w.shape for w in reg.coefs_] == [(4, 5), (5, 1)]


@pytest.mark.parametrize("hidden", [(10,), (10, 7)])
def test_target_density_keeps_exact_neuron_counts(hidden):
    X, y = _data()
    reg = _fit(X, y, hidden_layer_sizes=hidden, target_density=0.5)
    assert reg.n_neurons_kept_ == [int(np.ceil(0.5 * w)) for w in hidden]
    assert [int(m.sum()) for m in reg.neuron_masks_[1:]] == reg.n_neurons_kept_


@pytest.mark.parametrize("density, expected", [(0.5, 3), (0.2, 2), (1.0, 6)])
def test_input_target_density_keeps_exact_feature_count(density, expected):
    X, y = _data(d=6)
    reg = _fit(X, y, input_target_density=density)
    assert reg.n_features_kept_ == expected
    assert reg.kept_features_.shape == (expected,)
    assert reg.pruned_coefs_[0].shape[0] == expected
    # Dropped features have no effect on the prediction.
    dropped = np.setdiff1d(np.arange(6), reg.kept_features_)
    X_noise = X.copy()
    X_noise[:, dropped] = 123.0
    assert_allclose(reg.predict(X_noise), reg.predict(X), rtol=1e-12)


def test_constant_target_predicts_the_constant():
    X, _ = _data()
    reg = _fit(X, np.full(60, 3.5), max_iter=20)
    mean, std = reg.predict(X, return_std=True)
    assert_array_equal(reg.y_scale_, [1.0])
    # the predictive mean of a ReLU network averages over the weight posterior (with the
    # one-pass variances), so it sits within a few 1e-3 of the constant, not exactly on it
    assert_allclose(mean, 3.5, atol=0.02)
    assert np.all(np.isfinite(std)) and np.all(std < 0.1)


def test_single_sample_fit_and_partial_fit():
    X, y = _data()
    for reg in (_fit(X[:1], y[:1]), EMTDAMPRegressor(**SMALL).partial_fit(X[:1], y[:1])):
        mean, std = reg.predict(X, return_std=True)
        assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)
        assert_allclose(reg.y_mean_, y[:1])
        assert_array_equal(reg.y_scale_, [1.0])
        # Sensible: the training target lies within one predictive std of the mean.
        assert abs(mean[0] - y[0]) < std[0]


def test_divergence_raises_clear_error_and_keeps_previous_model(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    reg = EMTDAMPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    reg.fit(X, y)
    before = reg.predict(X)
    n_iter = reg.n_iter_

    def poisoned(X, Y, state, *args, **kwargs):
        state.layers[0].m[0, 0] = np.nan
        return float("nan")

    monkeypatch.setattr(engine, "run_epoch", poisoned)
    with pytest.raises(ValueError, match="diverged"):
        reg.partial_fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), before)
    assert reg.n_iter_ == n_iter
    with pytest.raises(ValueError, match="diverged"):
        EMTDAMPRegressor(max_iter=2).fit(X, y)


@pytest.mark.parametrize("Est", [EMTDAMPRegressor, EMTDAMPClassifier])
def test_posterior_average_is_a_read_out_of_the_same_chain(Est):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=80)
    if Est is EMTDAMPClassifier:
        y = (y > 0).astype(int)
    params = dict(hidden_layer_sizes=(6,), max_iter=6, batch_size=16, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        last = Est(posterior_average=0.0, **params).fit(X, y)
        avg = Est(posterior_average=1.0, **params).fit(X, y)
    # training is the same chain: same objective, M-step and pruning
    assert last.loss_curve_ == avg.loss_curve_
    assert last.noise_variance_ == avg.noise_variance_
    for a, b in zip(last.neuron_masks_, avg.neuron_masks_):
        assert_array_equal(a, b)
    # posterior_average=0 reads the chain's last posterior; the average differs from it
    state = last._chain.state.layers[0]
    assert_allclose(last.coefs_[0], (state.m[:, :-1] * last.neuron_masks_[0]).T)
    assert not np.allclose(last.coefs_[0], avg.coefs_[0])


def _auto_explicit_other(Est, X, y, explicit, other):
    """Fits with the "auto" defaults, with ``explicit`` values, and with ``other`` ones.

    Asserts that "auto" is what ``explicit`` sets (same objective and weights) and that
    ``other`` changes the fit; returns the three estimators.
    """
    params = dict(hidden_layer_sizes=(5,), max_iter=3, batch_size=16, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = Est(**params).fit(X, y)
        fixed = Est(**explicit, **params).fit(X, y)
        changed = Est(**other, **params).fit(X, y)
    assert all(auto.get_params()[name] == "auto" for name in explicit)
    assert auto.loss_curve_ == fixed.loss_curve_
    assert_array_equal(auto.coefs_[0], fixed.coefs_[0])
    assert auto.loss_curve_ != changed.loss_curve_
    return auto, fixed, changed


def _auto_data(Est, shift):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3)) + shift
    y = X[:, 0] + 0.1 * rng.normal(size=60)
    if Est is EMTDAMPClassifier:
        y = (y > shift).astype(int)
    return X, y


@pytest.mark.parametrize("Est, first, later", [(EMTDAMPRegressor, (2, 0.8), (2, 0.8)),
                                                (EMTDAMPClassifier, (2, 0.8), (1, 0.5))])
def test_auto_turbo_settings_are_the_documented_values(Est, first, later):
    # "auto": `first` (n_turbo_iter, damping) in the first pass over the data, `later`
    # afterwards; the same as switching explicit values between partial_fit calls
    X, y = _auto_data(Est, 0.0)
    params = dict(hidden_layer_sizes=(5,), batch_size=16, random_state=0)
    kw = dict(classes=np.unique(y)) if Est is EMTDAMPClassifier else {}
    auto = Est(**params)
    manual = Est(n_turbo_iter=first[0], damping=first[1], **params)
    constant = Est(n_turbo_iter=later[0], damping=later[1], **params)
    for _ in range(3):
        for est in (auto, manual, constant):
            est.partial_fit(X, y, **kw)
        manual.set_params(n_turbo_iter=later[0], damping=later[1])
    assert auto.loss_curve_ == manual.loss_curve_
    assert_array_equal(auto.coefs_[0], manual.coefs_[0])
    assert (auto.loss_curve_ == constant.loss_curve_) == (first == later)
    assert (auto.settings_.n_turbo_iter, auto.settings_.damping) == tuple(zip(first, later))
    # damping="auto" follows the number of turbo iterations
    one, three = Est(n_turbo_iter=1), Est(n_turbo_iter=3)
    assert (template_settings(one).damping, template_settings(three).damping) == (
        (0.5, 0.5), (0.8, 0.8))


@pytest.mark.parametrize("Est, prior_variance, centering", [(EMTDAMPRegressor, 1.0, False),
                                                             (EMTDAMPClassifier, 16.0, True)])
def test_auto_prior_and_centering_are_the_documented_values(Est, prior_variance, centering):
    X, y = _auto_data(Est, 2.0)
    auto, _, _ = _auto_explicit_other(
        Est, X, y, dict(prior_variance=prior_variance, centering=centering),
        dict(centering=not centering))
    assert_allclose(auto.prior_variances_, prior_variance / np.array([3, 5]))
    assert np.any(auto.input_shifts_[0] != 0) == centering


def test_input_shifts_are_set_by_the_first_fit_and_kept_by_later_ones():
    X, y = _data()
    X = X + 5.0
    reg = EMTDAMPRegressor(centering=True, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.partial_fit(X, y)
        shifts = [mu.copy() for mu in reg.input_shifts_]
        assert_allclose(shifts[0], X.mean(axis=0), rtol=1e-12)
        assert np.all(shifts[1] > 0)  # mean ReLU activations of the initial network
        reg.partial_fit(X[:20] + 1.0, y[:20])  # other data: same shifts
        for a, b in zip(shifts, reg.input_shifts_):
            assert_array_equal(a, b)
        reg.set_params(warm_start=True).fit(X[20:], y[20:])
        for a, b in zip(shifts, reg.input_shifts_):
            assert_array_equal(a, b)
        # a new fit starts over: shifts of its own data
        reg.set_params(warm_start=False).fit(X[20:], y[20:])
    assert_allclose(reg.input_shifts_[0], X[20:].mean(axis=0), rtol=1e-12)


@pytest.mark.parametrize("hidden, expected", [((), 16.0), ((4,), 16.0), ((4, 3), 16.0),
                                              ((4, 3, 3), 1.0), ((4, 3, 3, 2), 1.0)])
def test_classifier_auto_prior_variance_narrows_for_deep_networks(hidden, expected):
    # 16 trains 784-300-100-10 faster; with three hidden layers 3 and more diverged
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    params = dict(hidden_layer_sizes=hidden, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = EMTDAMPClassifier(**params).fit(X, y)
        reg = EMTDAMPRegressor(**params).fit(X, X[:, 0])
        fixed = EMTDAMPClassifier(prior_variance=2.5, **params).fit(X, y)
    fan_in = np.array([3, *hidden])
    assert_allclose(clf.prior_variances_ * fan_in, expected)
    assert_allclose(reg.prior_variances_ * fan_in, 1.0)
    assert_allclose(fixed.prior_variances_ * fan_in, 2.5)


def test_return_std_of_the_linear_gaussian_model_is_its_closed_form():
    # No hidden layer, identity output, ungrouped inputs, fixed v, full batch: Bayesian
    # linear regression. On a +-1 orthogonal (Hadamard) design every input has x^2 = 1, so
    # the forward variance V = d c_w + c_b is the same for every sample and the PasP
    # chain's fixed point has a closed form: with memory E it holds E passes of the AMP
    # evidence n / (V + v) on every weight, c = 1 / (1/s2 + E n / (V + v)); the read-out
    # counts the evidence once, c1 = 1 / (1/s2 + n / (V + v)), and the predictive
    # standard deviation of a +-1 test row is sqrt(d c1_w + c1_b + v) in units of y.
    from scipy.linalg import hadamard

    n, d, v, E, scale = 64, 5, 0.3, 4.0, 2.5
    H = hadamard(n).astype(float)
    X, X_test = H[:, 1:d + 1], H[:8, d + 1:2 * d + 1]  # zero-mean orthogonal columns
    rng = np.random.default_rng(0)
    y = scale * (X @ rng.normal(size=d) / np.sqrt(d) + rng.normal(scale=np.sqrt(v), size=n))
    reg = EMTDAMPRegressor(hidden_layer_sizes=(), activation="identity", batch_size=n,
                           shuffle=False, learn_noise_variance=False, noise_variance_init=v,
                           pasp_memory=E, init_evidence=0.0, bias_variance=1.0,
                           prior_variance=1.0, random_state=0)
    for _ in range(100):  # passes until the chain is stationary (partial_fit: the epochs
        reg.partial_fit(X, y)  # themselves, without fit's stopping and best-epoch rules)
    s2, s2_b = 1.0 / d, 1.0  # slab variance prior_variance / n_in, bias prior
    V = 0.0
    for _ in range(200):  # the scalar fixed point of V
        V = d / (1 / s2 + E * n / (V + v)) + 1 / (1 / s2_b + E * n / (V + v))
    c1_w, c1_b = 1 / (1 / s2 + n / (V + v)), 1 / (1 / s2_b + n / (V + v))
    expected = np.sqrt(d * c1_w + c1_b + v) * reg.y_scale_[0]
    _, std = reg.predict(X_test, return_std=True)
    assert_allclose(std, expected, rtol=1e-9)
    assert_allclose(reg.noise_variance_, v * reg.y_scale_[0] ** 2, rtol=1e-12)
    # against the exact Bayesian predictive: the AMP evidence uses V + v for v, so the
    # variance is larger by a factor of about 1 + V / v (d / n small)
    exact = np.sqrt(d / (1 / s2 + n / v) + 1 / (1 / s2_b + n / v) + v) * reg.y_scale_[0]
    assert np.all(std > exact) and np.all(std < exact * (1 + V / v))


@pytest.mark.parametrize("Est", [EMTDAMPRegressor, EMTDAMPClassifier])
def test_float32_fit_tracks_the_float64_fit(Est):
    X, y = _data(n=120)
    if Est is EMTDAMPClassifier:
        y = (y > np.median(y)).astype(int)
    params = dict(hidden_layer_sizes=(8, 6), max_iter=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = Est(**params).fit(X, y)
        f32 = Est(**params, dtype=np.float32).fit(X.astype(np.float32), y)
        named = Est(**params, dtype="float32").fit(X, y)
    assert f32.settings_.dtype == named.settings_.dtype == "float32"
    assert f32.get_posterior().state.layers[0].m.dtype == np.float32  # the model's arrays
    assert f32.coefs_[0].dtype == np.float64  # read out for prediction in float64
    out = "predict_proba" if Est is EMTDAMPClassifier else "predict"
    assert_allclose(getattr(f32, out)(X), getattr(ref, out)(X), rtol=1e-3, atol=1e-4)
    assert_allclose(getattr(named, out)(X), getattr(f32, out)(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dtype"):
        Est(dtype="float16").fit(X, y)
