"""The compact pruned network and the pruning-related fitted attributes.

The pruned network (``pruned_coefs_``, ``pruned_intercepts_`` and their variances,
restricted to ``kept_features_`` and the kept neurons) must predict exactly as the full
posterior network: both the deterministic MLP forward of the posterior means and the
moment propagation used by ``predict`` (ALGORITHM.md 6 and 7).
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sk_tdamp import EMTDAMPClassifier, EMTDAMPRegressor
from sk_tdamp._core._predict import LayerMoments, forward_moments

# Target densities guarantee that neurons and features are actually pruned.
PRUNED = dict(hidden_layer_sizes=(10, 6), max_iter=5, batch_size=16, random_state=0,
              target_density=0.5, input_target_density=0.5)


def _data(n=60, d=6, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.randn(n)
    return X, y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _mlp_forward(X, coefs, intercepts, activation):
    """Deterministic MLP forward pass with the posterior means (MLPRegressor layout)."""
    h = X
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        h = h @ W + b
        if i < len(coefs) - 1 and activation == "relu":
            h = np.maximum(h, 0.0)
    return h


def _core_layers(coefs, intercepts, coefs_var, intercepts_var, shifts=None):
    """Public ``(n_in, n_out)`` arrays back to the core's ``(m, c, mu)``, bias last.

    With input shifts ``mu`` the core's bias is that of the centered layer,
    ``b' = b + mu W`` with variance ``c_b - mu^2 c_W`` (the public intercept is
    ``b' - mu W``, whose marginal variance adds ``mu^2 c_W``).
    """
    if shifts is None:
        shifts = [np.zeros(W.shape[0]) for W in coefs]
    return [LayerMoments(np.column_stack([W.T, b + mu @ W]),
                         np.column_stack([cW.T, cb - mu**2 @ cW]), mu)
            for W, b, cW, cb, mu in zip(coefs, intercepts, coefs_var, intercepts_var, shifts)]


def _assert_something_pruned(est):
    n_kept = [int(m.sum()) for m in est.neuron_masks_]
    n_total = [m.size for m in est.neuron_masks_]
    assert sum(n_kept) < sum(n_total), "the test needs at least one pruned group"


@pytest.mark.parametrize("centering", [False, True])
@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_pruned_regressor_predicts_like_the_full_network(activation, centering):
    X, y = _data()
    reg = _fit(EMTDAMPRegressor(**PRUNED, activation=activation, centering=centering), X, y)
    _assert_something_pruned(reg)
    assert reg.n_neurons_kept_ == [5, 3]
    assert reg.n_features_kept_ == 3
    Xk = X[:, reg.kept_features_]

    # Posterior-mean MLP: the compact network equals the full one (pruned weights are 0).
    full = _mlp_forward(X, reg.coefs_, reg.intercepts_, activation)
    compact = _mlp_forward(Xk, reg.pruned_coefs_, reg.pruned_intercepts_, activation)
    assert_allclose(compact, full, rtol=1e-12, atol=1e-12)

    # Moment propagation of the compact (m, c) reproduces predict and return_std.
    assert any(np.any(mu != 0) for mu in reg.input_shifts_) == centering
    layers = _core_layers(reg.pruned_coefs_, reg.pruned_intercepts_,
                          reg.pruned_coefs_var_, reg.pruned_intercepts_var_,
                          reg.pruned_input_shifts_)
    omega, V = forward_moments(Xk, layers, activation)
    mean, std = reg.predict(X, return_std=True)
    assert_allclose(omega.ravel(), mean, rtol=1e-12, atol=1e-12)
    assert_allclose(np.sqrt(V.ravel() + reg.noise_variance_), std, rtol=1e-12)

    if activation == "identity":
        # Linear network: the predictive mean is the posterior-mean network's output.
        assert_allclose(full.ravel(), mean, rtol=1e-10, atol=1e-12)


def test_pruned_classifier_predicts_like_the_full_network():
    rng = np.random.RandomState(1)
    X = rng.randn(90, 6)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    clf = _fit(EMTDAMPClassifier(**PRUNED), X, y)
    _assert_something_pruned(clf)
    Xk = X[:, clf.kept_features_]
    full = _mlp_forward(X, clf.coefs_, clf.intercepts_, "relu")
    compact = _mlp_forward(Xk, clf.pruned_coefs_, clf.pruned_intercepts_, "relu")
    assert_allclose(compact, full, rtol=1e-12, atol=1e-12)
    assert any(np.any(mu != 0) for mu in clf.input_shifts_)  # centered (the default)
    layers = _core_layers(clf.pruned_coefs_, clf.pruned_intercepts_,
                          clf.pruned_coefs_var_, clf.pruned_intercepts_var_,
                          clf.pruned_input_shifts_)
    omega, V = forward_moments(Xk, layers, "relu")
    omega_full, V_full = forward_moments(X, clf._posterior.layers, "relu")
    assert_allclose(omega, omega_full, rtol=1e-12, atol=1e-12)
    assert_allclose(V, V_full, rtol=1e-12, atol=1e-14)


def test_pruned_network_shapes_follow_the_masks():
    X, y = _data()
    reg = _fit(EMTDAMPRegressor(**PRUNED), X, y)
    kept = [int(m.sum()) for m in reg.neuron_masks_] + [1]
    for i, (W, b, cW, cb) in enumerate(zip(reg.pruned_coefs_, reg.pruned_intercepts_,
                                           reg.pruned_coefs_var_,
                                           reg.pruned_intercepts_var_)):
        assert W.shape == cW.shape == (kept[i], kept[i + 1])
        assert b.shape == cb.shape == (kept[i + 1],)
        assert np.all(cW >= 0) and np.all(cb >= 0)
    assert_array_equal(reg.kept_features_, np.flatnonzero(reg.neuron_masks_[0]))


def test_pruned_groups_have_zero_outgoing_weights():
    X, y = _data()
    reg = _fit(EMTDAMPRegressor(**PRUNED), X, y)
    for W, cW, mask in zip(reg.coefs_, reg.coefs_var_, reg.neuron_masks_):
        assert_array_equal(W[~mask], 0.0)
        assert_array_equal(cW[~mask], 0.0)
        assert np.all(np.any(W[mask] != 0.0, axis=1))


def test_learned_sparsity_attributes_are_consistent():
    # Pruning by learned rho (no target density): attributes agree with the masks.
    X, y = _data()
    reg = _fit(EMTDAMPRegressor(hidden_layer_sizes=(12,), max_iter=8, batch_size=16,
                                random_state=0, rho_init=0.5, input_rho_init=0.5), X, y)
    assert len(reg.support_probas_) == len(reg.neuron_masks_) == 2
    for p, mask in zip(reg.support_probas_, reg.neuron_masks_):
        assert p.shape == mask.shape
        assert mask.dtype == bool
        assert np.all((p >= 0) & (p <= 1))
        assert_array_equal(mask, p > 0.5)
    assert reg.n_features_kept_ == int(reg.neuron_masks_[0].sum())
    assert reg.n_neurons_kept_ == [int(reg.neuron_masks_[1].sum())]
    assert_allclose(reg.density_, [reg.neuron_masks_[1].mean()], rtol=1e-15)
    assert reg.rho_.shape == reg.prior_variances_.shape == (2,)
    assert np.all((reg.rho_ > 0) & (reg.rho_ <= 1))
    assert np.all(reg.prior_variances_ > 0)
    assert reg.noise_variance_ > 0


def test_ungrouped_inputs_are_never_pruned():
    X, y = _data()
    reg = _fit(EMTDAMPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, y)
    assert reg.input_rho_init is None
    assert reg.n_features_kept_ == 6
    assert_array_equal(reg.support_probas_[0], 1.0)
    assert reg.rho_[0] == 1.0


def test_coefs_follow_mlp_orientation():
    X, y = _data()
    reg = _fit(EMTDAMPRegressor(hidden_layer_sizes=(7, 5), max_iter=3, random_state=0),
               X, np.column_stack([y, y]))
    assert [W.shape for W in reg.coefs_] == [(6, 7), (7, 5), (5, 2)]
    assert [b.shape for b in reg.intercepts_] == [(7,), (5,), (2,)]
    assert [W.shape for W in reg.coefs_var_] == [(6, 7), (7, 5), (5, 2)]
    assert [b.shape for b in reg.intercepts_var_] == [(7,), (5,), (2,)]
    # Same layout as the core's (m, c): the MLP forward of the means is the moment
    # propagation's mean for a linear network, checked in the identity case above.
    assert all(np.all(c >= 0) for c in reg.coefs_var_ + reg.intercepts_var_)


@pytest.mark.parametrize("Est", [EMTDAMPRegressor, EMTDAMPClassifier])
def test_curves_have_one_entry_per_epoch(Est):
    X, y = _data()
    if Est is EMTDAMPClassifier:
        y = (y > np.median(y)).astype(int)
    est = _fit(Est(hidden_layer_sizes=(8,), max_iter=4, random_state=0), X, y)
    assert est.n_iter_ == 4
    for curve in (est.loss_curve_, est.noise_variance_curve_, est.density_curve_):
        assert len(curve) == est.n_iter_
        assert np.all(np.isfinite(curve))
    assert np.all((np.asarray(est.density_curve_) >= 0)
                  & (np.asarray(est.density_curve_) <= 1))
    assert_allclose(est.density_curve_[-1], np.mean(est.neuron_masks_[1]), rtol=1e-15)
    assert_allclose(est.noise_variance_curve_[-1], est.noise_variance_, rtol=1e-15)
