"""The weight-side core in float32: each function keeps the dtype and agrees with its
float64 result to float32 precision; the linear-Gaussian truth holds in float32.

(The per-sample nonlinear factors, activations and likelihoods, always compute in
float64; their math tests are in their own files.)
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sk_tdamp._core._group_prior import gaussian_denoiser, group_posterior, module_b
from sk_tdamp._core._likelihoods import GaussianVStats
from sk_tdamp._core._module_a import augment, backward_message, forward_layer, weight_evidence
from sk_tdamp._core._pasp import PosteriorAverage, pasp_update
from sk_tdamp._core._state import init_state
from sk_tdamp._core._turbo import TurboConfig, minibatch_estep, run_epoch

RTOL = 2e-5  # float32 holds ~7 digits; a few roundings per result


def _both(*arrays):
    return [a.astype(np.float64) for a in arrays], [a.astype(np.float32) for a in arrays]


def _check(got32, ref64, rtol=RTOL, atol=1e-6):
    for a, b in zip(got32, ref64):
        assert a.dtype == np.float32
        assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.fixture
def layer_problem():
    rng = np.random.default_rng(0)
    B, n_in, n_out = 16, 6, 5
    xh, D = rng.normal(size=(B, n_in)), rng.uniform(0.1, 1.0, (B, n_in))
    m, c = rng.normal(size=(n_out, n_in + 1)), rng.uniform(0.01, 0.5, (n_out, n_in + 1))
    g, Gam = rng.normal(size=(B, n_out)), rng.uniform(0.0, 1.0, (B, n_out))
    return xh, D, m, c, g, Gam


def test_module_a_keeps_float32_and_agrees_with_float64(layer_problem):
    xh, D, m, c, g, Gam = layer_problem
    results = {}
    for dtype in (np.float64, np.float32):
        xa, Da = augment(xh, D, dtype=dtype)
        md, cd = m.astype(dtype), c.astype(dtype)
        omega, V = forward_layer(xa, Da, md, cd)
        H, G = weight_evidence(xa, Da, g, Gam, md)
        Hp, Gp = (np.ones_like(md), np.full_like(md, 2.0))
        Ht, Gt = weight_evidence(xa, Da, g, Gam, md, Hp, Gp, 0.5, out=(Hp, Gp))
        Am, Bm = backward_message(xa, g, Gam, md, cd)
        results[dtype] = (omega, V, H, G, Ht, Gt, Am, Bm)
    _check(results[np.float32], results[np.float64])


def test_denoisers_keep_float32_and_agree_with_float64():
    rng = np.random.default_rng(1)
    H, G = rng.normal(scale=2.0, size=(8, 5)), rng.uniform(0.0, 5.0, (8, 5))
    (H64, G64), (H32, G32) = _both(H, G)
    _check(gaussian_denoiser(H32, G32, 0.7, 0.4), gaussian_denoiser(H64, G64, 0.7, 0.4))
    m32, c32, Lam32 = group_posterior(H32, G32, 0.7, 0.2, 0.4)
    m64, c64, Lam64 = group_posterior(H64, G64, 0.7, 0.2, 0.4)
    _check((m32, c32), (m64, c64))
    assert Lam32.dtype == np.float64  # support log-odds are summed in float64
    assert_allclose(Lam32, Lam64, rtol=RTOL, atol=1e-5)
    assert_allclose(module_b(H32, G32, 0.7, 0.2)[0], Lam64, rtol=RTOL, atol=1e-5)


def test_pasp_and_posterior_average_keep_float32():
    state = init_state((4, 3, 1), np.random.default_rng(2), init_evidence=2.0,
                       dtype=np.float32)
    assert all(a.dtype == np.float32 for la in state.layers
               for a in (la.m, la.c, la.Hp, la.Gp, la.H0, la.G0))
    pasp_update(state, 0.9, 0.5)
    avg = PosteriorAverage(1.0)
    for _ in range(3):
        avg.update(state, batch_size=10, n_samples=20)
    assert all(a.dtype == np.float32 for la in state.layers for a in (la.Hp, la.Gp))
    assert all(a.dtype == np.float32 for mom in avg.moments() for a in mom)


def test_linear_gaussian_fixed_point_is_exact_in_float32():
    # the exact Bayesian linear regression mean (ALGORITHM.md 9), to float32 precision
    rng = np.random.default_rng(4)
    n, d, v, sigma2 = 64, 5, 0.3, 0.8
    Q, _ = np.linalg.qr(rng.normal(size=(n, d)))
    X = Q * np.sqrt(n)
    X -= X.mean(0)
    y = X @ rng.normal(size=d) + rng.normal(scale=np.sqrt(v), size=n)
    state = init_state([d, 1], np.random.default_rng(0), prior_scale=sigma2 * d,
                       bias_var=1e6, v=v, input_rho=None, init_evidence=0.0,
                       dtype=np.float32)
    cfg = TurboConfig(activation="identity", likelihood="gaussian", n_sweeps=300,
                      damping=0.5)
    minibatch_estep(X, y[:, None], state, cfg)
    Xa = np.hstack([X, np.ones((n, 1))])
    prec = Xa.T @ Xa / v + np.diag([1 / sigma2] * d + [1e-6])
    exact = np.linalg.solve(prec, Xa.T @ y / v)
    assert state.layers[0].m.dtype == np.float32
    assert_allclose(state.layers[0].m[0], exact, rtol=1e-5, atol=1e-6)


def test_an_epoch_of_a_deep_network_in_float32_tracks_float64():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(96, 4))
    Y = np.sin(X[:, :1]) + 0.1 * rng.normal(size=(96, 1))
    states = {}
    for dtype in (np.float64, np.float32):
        state = init_state([4, 8, 6, 1], np.random.default_rng(0), dtype=dtype)
        for _ in range(3):
            run_epoch(X, Y, state, TurboConfig(), 16, 4.0, None, GaussianVStats())
        states[dtype] = state
    for la32, la64 in zip(states[np.float32].layers, states[np.float64].layers):
        assert la32.m.dtype == np.float32
        assert_allclose(la32.m, la64.m, rtol=1e-3, atol=1e-4)
