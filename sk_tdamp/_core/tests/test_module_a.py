"""Module A and the turbo loop against closed forms."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sk_tdamp._core._activations import ACTIVATIONS
from sk_tdamp._core._likelihoods import GaussianVStats, gaussian_output
from sk_tdamp._core._module_a import (
    augment,
    backward_message,
    forward_layer,
    hidden_g_gam,
    weight_evidence,
)
from sk_tdamp._core._pasp import pasp_update
from sk_tdamp._core._predict import center_inputs, forward_moments, layer_input_sums
from sk_tdamp._core._state import init_state
from sk_tdamp._core._turbo import TurboConfig, minibatch_estep, run_epoch
from sk_tdamp._core.tests.test_likelihoods import _finite_differences


def test_forward_layer_matches_moments_of_independent_products():
    # z = sum_i w_i u_i + b with independent w ~ (m, c), u ~ (xh, D): exact mean/var.
    rng = np.random.default_rng(0)
    xh, D = rng.normal(size=(1, 3)), rng.uniform(0.1, 1, size=(1, 3))
    m, c = rng.normal(size=(1, 4)), rng.uniform(0.1, 1, size=(1, 4))
    omega, V = forward_layer(*augment(xh, D), m, c)
    mean = xh @ m[0, :3] + m[0, 3]
    e2_w, e2_u = m[0, :3] ** 2 + c[0, :3], xh[0] ** 2 + D[0]
    var = np.sum(e2_w * e2_u - (m[0, :3] * xh[0]) ** 2) + c[0, 3]
    assert_allclose(omega, [mean], rtol=1e-12)
    assert_allclose(V, [[var]], rtol=1e-12)


def test_forward_layer_exact_inputs_equal_zero_variance_inputs():
    rng = np.random.default_rng(1)
    xh = rng.normal(size=(5, 4))
    m, c = rng.normal(size=(3, 5)), rng.uniform(size=(3, 5))
    a = forward_layer(*augment(xh), m, c)
    b = forward_layer(*augment(xh, np.zeros_like(xh)), m, c)
    assert_allclose(a, b, rtol=1e-12)


def test_weight_evidence_single_layer_is_gaussian_likelihood_gradient():
    # One identity layer with a Gaussian output: H - m G is the gradient of the
    # expected log-likelihood and G its curvature, (X^T Gam X diagonal).
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    m = rng.normal(size=(1, 4))
    v = 0.7
    omega = X @ m[0, :3, None] + m[0, 3]
    g, Gam = (y - omega) / v, np.full_like(omega, 1 / v)
    Xa = np.hstack([X, np.ones((6, 1))])
    H, G = weight_evidence(Xa, None, g, Gam, m)
    assert_allclose(G[0], (Xa ** 2).sum(0) / v, rtol=1e-12)
    assert_allclose(H[0] - m[0] * G[0], Xa.T @ (y[:, 0] - omega[:, 0]) / v, rtol=1e-12)


def test_backward_message_clips_am_and_keeps_inward_self_term():
    rng = np.random.default_rng(3)
    xh = rng.normal(size=(4, 3))
    g = rng.normal(size=(4, 2)) * np.array([[0.05], [0.05], [3.0], [3.0]])
    Gam = rng.uniform(0.5, 1, size=(4, 2))
    m, c = rng.normal(size=(2, 4)), rng.uniform(size=(2, 4))
    Am, Bm = backward_message(augment(xh)[0], g, Gam, m, c)
    W, cW = m[:, :3], c[:, :3]
    S = Gam @ W ** 2
    Am_raw = S + (Gam - g ** 2) @ cW
    # all three branches occur: clipped, Am < S (outward), Am > S (inward)
    assert (Am_raw < 0).any() and ((Am_raw > 0) & (Am_raw < S)).any() and (Am_raw > S).any()
    assert_allclose(Am, np.maximum(Am_raw, 0), rtol=1e-12)
    assert_allclose(Bm, g @ W + xh * np.minimum(S, np.maximum(Am_raw, 0)), rtol=1e-12)


@pytest.mark.parametrize("shifted", [False, True])
def test_backward_self_term_follows_the_inward_part_of_the_variance_gradient(shifted):
    # Truth by finite differences of one layer's log Z with a Gaussian output,
    # sum log N(y; omega, V + v), in the input means xh: Bm - xh Am must be the full
    # gradient minus its part through V, plus that part where it pulls xh toward 0
    # (toward the shift mu when the layer computes m [u - mu; 1]).
    # The residuals are mixed, so both branches occur.
    rng = np.random.default_rng(11)
    B, n_in, n_out, v = 6, 3, 2, 0.3
    xh, D = rng.normal(size=(B, n_in)), rng.uniform(0.2, 1.0, size=(B, n_in))
    mu = rng.normal(size=n_in) if shifted else np.zeros(n_in)
    m, c = rng.normal(size=(n_out, n_in + 1)), rng.uniform(0.05, 0.5, size=(n_out, n_in + 1))
    y = rng.normal(size=(B, n_out)) * np.array([[0.1], [3.0]] * 3)
    xa, Da = augment(xh - mu, D)
    omega, V = forward_layer(xa, Da, m, c)
    g, Gam = (y - omega) / (V + v), 1.0 / (V + v)

    def logz(x_, omega_fixed=None):  # per sample: row n depends on xh[n] only
        om, V_ = forward_layer(augment(x_ - mu, D)[0], Da, m, c)
        om = om if omega_fixed is None else omega_fixed
        return -0.5 * np.sum(np.log(2 * np.pi * (V_ + v)) + (y - om) ** 2 / (V_ + v), axis=1)

    full = _finite_differences(logz, xh, 1e-6)[0]
    through_v = _finite_differences(lambda x_: logz(x_, omega), xh, 1e-6)[0]
    toward = through_v * (xh - mu) < 0  # pulls the input toward mu
    assert toward.any() and (through_v * (xh - mu) > 1e-6).any()
    Am, Bm = backward_message(xa, g, Gam, m, c, mu if shifted else None)
    inward = np.where(toward, through_v, 0.0)
    assert_allclose(Bm - xh * Am, full - through_v + inward, atol=1e-6)


def test_weight_evidence_with_uncertain_inputs_matches_expected_curvature():
    # For z = w.u with u ~ (xh, D) and a Gaussian output, E_u[(y - w.u)^2] / v has
    # curvature sum (xh^2 + D) / v in w: with Gam = 1/v and g = 0 that is G exactly.
    rng = np.random.default_rng(7)
    xh, D = rng.normal(size=(5, 3)), rng.uniform(0.1, 1, size=(5, 3))
    v = 0.5
    m = rng.normal(size=(1, 4))
    xa, Da = augment(xh, D)
    g, Gam = np.zeros((5, 1)), np.full((5, 1), 1 / v)
    H, G = weight_evidence(xa, Da, g, Gam, m)
    assert_allclose(G[0], ((xa ** 2 + Da) / v).sum(0), rtol=1e-12)
    assert_allclose(H, m * G, rtol=1e-12)
    # a residual larger than its variance makes G negative: it is clipped and H = m G
    g = np.full((5, 1), 10.0)
    H, G = weight_evidence(xa, Da, g, Gam, m)
    G_raw = ((xa ** 2 + Da) / v - g ** 2 * Da).sum(0)
    assert (G_raw[:3] < 0).all()
    assert_allclose(G[0], np.maximum(G_raw, 0), rtol=1e-12)
    assert_allclose(H[0], (g * xa).sum(0) + m[0] * G[0], rtol=1e-12)


def test_hidden_g_gam_identity_activation_is_gaussian_message():
    # For an identity unit with message exp(Bm u - Am u^2/2), the tilted posterior is
    # Gaussian and g = (Bm - Am omega) / (1 + Am V), Gam = Am / (1 + Am V).
    omega, V, Am, Bm = np.array([0.3]), np.array([2.0]), np.array([0.5]), np.array([-1.2])
    zv = V / (1 + Am * V)
    zh = zv * (omega / V + Bm)
    g, Gam = hidden_g_gam(omega, V, zh, zv)
    assert_allclose(g, (Bm - Am * omega) / (1 + Am * V), rtol=1e-12)
    assert_allclose(Gam, Am / (1 + Am * V), rtol=1e-12)


def _linear_state(n_features, sigma2, v):
    state = init_state([n_features, 1], np.random.default_rng(0), prior_scale=sigma2 *
                       n_features, bias_var=1e6, v=v, input_rho=None, init_evidence=0.0)
    return state


def test_linear_gaussian_case_equals_exact_bayesian_linear_regression():
    # Single identity layer, Gaussian prior, Gaussian likelihood, fixed v, full batch:
    # the TDAMP fixed point must be the exact posterior mean (ALGORITHM.md 9).
    rng = np.random.default_rng(4)
    n, d, v, sigma2 = 64, 5, 0.3, 0.8
    Q, _ = np.linalg.qr(rng.normal(size=(n, d)))
    X = Q * np.sqrt(n)  # whitened (orthogonal) design
    X -= X.mean(0)  # centred so the bias decouples
    y = X @ rng.normal(size=d) + rng.normal(scale=np.sqrt(v), size=n)
    state = _linear_state(d, sigma2, v)
    cfg = TurboConfig(activation="identity", likelihood="gaussian", n_sweeps=300,
                      damping=0.5)
    minibatch_estep(X, y[:, None], state, cfg)
    Xa = np.hstack([X, np.ones((n, 1))])
    prec = Xa.T @ Xa / v + np.diag([1 / sigma2] * d + [1e-6])
    exact = np.linalg.solve(prec, Xa.T @ y / v)
    assert_allclose(state.layers[0].m[0], exact, rtol=1e-7, atol=1e-9)
    # Variances: the AMP fixed point 1 / (sum x^2 / (V + v) + 1/sigma2), which exceeds
    # the exact marginal by the factor ~ (V + v) / v (here about 1.14).
    la = state.layers[0]
    _, V = forward_layer(augment(X)[0], None, la.m, la.c)
    amp_c = 1 / ((X ** 2 / (V + v)).sum(0) + 1 / sigma2)
    assert_allclose(la.c[0, :d], amp_c, rtol=1e-6)
    assert_allclose(la.c[0, :d], np.diag(np.linalg.inv(prec))[:d], rtol=0.2)


def test_linear_gaussian_correlated_design_mean_is_exact_at_fixed_point():
    # With the Onsager terms the fixed-point mean is exact for any design.
    rng = np.random.default_rng(5)
    n, d, v, sigma2 = 80, 4, 0.5, 1.0
    X = rng.normal(size=(n, d)) @ np.array([[1, .6, 0, 0], [0, 1, .5, 0],
                                             [0, 0, 1, 0.3], [0, 0, 0, 1.]])
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    state = _linear_state(d, sigma2, v)
    cfg = TurboConfig(activation="identity", likelihood="gaussian", n_sweeps=600,
                      damping=0.7)
    minibatch_estep(X, y[:, None], state, cfg)
    Xa = np.hstack([X, np.ones((n, 1))])
    prec = Xa.T @ Xa / v + np.diag([1 / sigma2] * d + [1e-6])
    exact = np.linalg.solve(prec, Xa.T @ y / v)
    assert_allclose(state.layers[0].m[0], exact, rtol=1e-5, atol=1e-7)


def test_shifted_inputs_are_an_exact_reparametrization_of_linear_regression():
    # With input shift mu the layer computes m [x - mu; 1]. Under a flat bias prior the
    # posterior over the fitted function does not depend on mu: the fixed-point mean is
    # the exact posterior mean for the design [x - mu, 1], and its predictions equal
    # those of the unshifted exact posterior.
    rng = np.random.default_rng(8)
    n, d, v, sigma2 = 80, 4, 0.5, 1.0
    X = rng.normal(size=(n, d)) @ np.array([[1, .6, 0, 0], [0, 1, .5, 0],
                                             [0, 0, 1, 0.3], [0, 0, 0, 1.]]) + 3.0
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    mu = X.mean(axis=0)
    state = _linear_state(d, sigma2, v)
    state.layers[0].mu = mu
    cfg = TurboConfig(activation="identity", likelihood="gaussian", n_sweeps=600,
                      damping=0.7)
    minibatch_estep(X, y[:, None], state, cfg)

    def exact(design):
        prec = design.T @ design / v + np.diag([1 / sigma2] * d + [1e-6])
        return np.linalg.solve(prec, design.T @ y / v)

    shifted = exact(np.hstack([X - mu, np.ones((n, 1))]))
    assert_allclose(state.layers[0].m[0], shifted, rtol=1e-5, atol=1e-7)
    plain = exact(np.hstack([X, np.ones((n, 1))]))
    assert_allclose(shifted[:d], plain[:d], rtol=1e-5)
    assert_allclose(shifted[d] - mu @ shifted[:d], plain[d], rtol=1e-5)
    omega, _ = forward_moments(X, state.layers, "identity")
    assert_allclose(omega[:, 0], X @ plain[:d] + plain[d], rtol=1e-5)


def test_layer_input_sums_are_the_summed_activation_means_in_any_chunking():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(50, 3)) + 1.0
    state = init_state([3, 4, 2, 1], rng, prior_scale=2.0)
    state.layers[0].mu = X.mean(axis=0)
    # depth 1: the ReLU means of the first layer's (shifted) pre-activations
    omega, V = forward_layer(augment(X - state.layers[0].mu)[0], None, state.layers[0].m,
                             state.layers[0].c)
    expected = ACTIVATIONS["relu"].moments(omega, V, 0.0, 0.0)[0].sum(axis=0)
    for chunk_size in (1, 7, 4096):
        assert_allclose(layer_input_sums(X, state.layers, "relu", 1, chunk_size),
                        expected, rtol=1e-12)
        assert_allclose(layer_input_sums(X, state.layers, "relu", 0, chunk_size),
                        X.sum(axis=0), rtol=1e-12)
    # depth 2 goes through layer 1 with its own shift
    state.layers[1].mu = expected / X.shape[0]
    omega, V = forward_layer(augment(*ACTIVATIONS["relu"].moments(omega, V, 0.0, 0.0)[:2])[0]
                             - np.append(state.layers[1].mu, 0.0),
                             augment(*ACTIVATIONS["relu"].moments(omega, V, 0.0, 0.0)[:2])[1],
                             state.layers[1].m, state.layers[1].c)
    assert_allclose(layer_input_sums(X, state.layers, "relu", 2, 13),
                    ACTIVATIONS["relu"].moments(omega, V, 0.0, 0.0)[0].sum(axis=0), rtol=1e-12)


def test_run_epoch_reduces_loss_on_a_linear_teacher():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]))[:, None] + 0.1 * rng.normal(size=(300, 1))
    y = (y - y.mean()) / y.std()
    state = init_state([4, 8, 1], np.random.default_rng(0), v=1.0)
    cfg = TurboConfig()
    losses = []
    for _ in range(15):
        vstats = GaussianVStats()
        losses.append(run_epoch(X, y, state, cfg, 32, 4.0, rng, vstats))
        state.v = vstats.update(state.v)
    # noise std 0.1 on a target of std ~2.3: the floor is near 0.5 log(2 pi e 0.002) = -1.7
    assert losses[0] > 0.5
    assert losses[-1] < -1.0
    assert state.v < 0.01
    assert state.is_finite()


def test_pasp_update_decays_data_evidence_and_pseudo_evidence_at_their_own_rates():
    # After a minibatch (Hp, Gp) hold the totals: data evidence D, this minibatch's
    # evidence and the pseudo-evidence s (H0, G0). With lam0 != lam the data part is
    # multiplied by lam, the pseudo-evidence by lam0 (its scale s becomes lam0 s).
    rng = np.random.default_rng(3)
    state = init_state((3, 2, 1), rng, init_evidence=2.0)
    data_H = [rng.standard_normal(la.Hp.shape) for la in state.layers]
    data_G = [rng.uniform(0, 1, la.Gp.shape) for la in state.layers]
    for la, dH, dG in zip(state.layers, data_H, data_G):
        la.init_scale = 0.8
        la.Hp = 0.8 * la.H0 + dH
        la.Gp = 0.8 * la.G0 + dG
    H0 = [la.H0.copy() for la in state.layers]
    lam, lam0 = 0.9, 0.5
    pasp_update(state, lam, lam0)
    for l, la in enumerate(state.layers):
        assert la.init_scale == pytest.approx(0.8 * lam0, rel=1e-15)
        assert_array_equal(la.H0, H0[l])  # the arrays themselves never change
        assert_allclose(la.Hp - la.init_scale * la.H0, lam * data_H[l], rtol=1e-12,
                        atol=1e-14)
        assert_allclose(la.Gp - la.init_scale * la.G0, lam * data_G[l], rtol=1e-12,
                        atol=1e-14)


def _single_layer_evidence(X, y, state):
    """The evidence of a one-layer identity network's first sweep, by hand."""
    la = state.layers[0]
    xa = augment(X)[0]
    omega, V = forward_layer(xa, None, la.m, la.c)
    out = gaussian_output(y, omega, V, state.v)
    return weight_evidence(xa, None, out.g, out.Gam, la.m)


@pytest.mark.parametrize("s", [1.0, 2.5])
def test_minibatch_folds_its_evidence_into_the_prior(s):
    # One sweep: (Hp, Gp) after the minibatch are the prior plus s times the
    # minibatch's evidence at the starting posterior (a tempered likelihood p(y|w)^s
    # has s times the evidence), written in place.
    rng = np.random.default_rng(4)
    X = rng.standard_normal((20, 3))
    y = rng.standard_normal((20, 1))
    state = init_state((3, 1), np.random.default_rng(0), init_evidence=2.0)
    H, G = _single_layer_evidence(X, y, state)
    Hp, Gp = state.layers[0].Hp.copy(), state.layers[0].Gp.copy()
    cfg = TurboConfig(activation="identity", n_sweeps=1, evidence_scale=s)
    minibatch_estep(X, y, state, cfg)
    assert_allclose(state.layers[0].Hp, Hp + s * H, rtol=1e-12, atol=1e-14)
    assert_allclose(state.layers[0].Gp, Gp + s * G, rtol=1e-12, atol=1e-14)




def test_center_inputs_equals_each_layers_input_sums_in_turn():
    # one pass layer by layer gives the shifts of propagating from the data for each
    # layer (each layer's inputs under the layers before it, already centered)
    rng = np.random.default_rng(10)
    X = rng.normal(size=(70, 3)) + 2.0
    fast = init_state([3, 5, 4, 2], np.random.default_rng(1), prior_scale=2.0)
    slow = fast.copy()
    center_inputs(X, fast.layers, "relu", chunk_size=32)
    for depth, la in enumerate(slow.layers):
        la.mu = layer_input_sums(X, slow.layers, "relu", depth, chunk_size=32) / 70
    for a, b in zip(fast.layers, slow.layers):
        assert_array_equal(a.mu, b.mu)
    assert np.all(fast.layers[1].mu > 0)  # mean ReLU activations: not trivially zero
