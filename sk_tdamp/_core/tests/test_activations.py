"""Tilted-Gaussian activation moments against quadrature, closed forms and d log Z / d omega."""

import itertools
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import quad
from scipy.special import logsumexp, ndtr
from scipy.stats import norm

from sk_tdamp._core._activations import (
    ACTIVATIONS,
    _relu_tilted,
    _relu_untilted,
    identity_log_partition,
    identity_moments,
    relu_log_partition,
    relu_moments,
)


def _grid():
    """(omega, V, Am, Bm) over standardized values omega/sqrt V, Am V, Bm sqrt V, plus extremes."""
    rows = []
    combos = itertools.product([-30.0, -4.0, -0.5, 0.0, 1.5, 8.0, 30.0], [0.0, 0.3, 50.0, 1e6],
                               [-20.0, -1.0, 0.0, 2.5, 40.0])
    for i, (w, kappa, beta) in enumerate(combos):
        V = [1e-12, 1.0, 1e4][i % 3]
        rows.append((w * np.sqrt(V), V, kappa / V, beta / np.sqrt(V)))
    rows += [(0.0, 1.0, 0.0, -1e6), (0.0, 1.0, 0.0, 1e6), (-1e3, 1.0, 0.0, 2e3),
             (-1e3, 1.0, 3.0, 2e3), (1e3, 1.0, 1e6, -1e4), (2.0, 1e-12, 1.0, 1.0),
             (-1e-3, 1e-6, 1e9, 5e6)]
    return np.array(rows).T


def _quad_piece(omega, V, Am, Bm, lo, hi, tilted):
    """Log mass, mean and variance of one piece (z in (lo, hi)) of the tilted density.

    The piece's log density is integrated around its mode (clipped to the piece) in units of
    ``scale = 1 / (|slope at mode| + sqrt(curvature))``, shifted so that it is 0 at the mode.
    """
    P, L = 1.0 / V + Am * tilted, omega / V + Bm * tilted
    mode = min(max(L / P, lo), hi)
    slope = (omega - mode) / V + tilted * (Bm - Am * mode)
    scale = 1.0 / (abs(slope) + np.sqrt(P))

    def dlog(t):  # log p(mode + d) - log p(mode), factored to avoid cancellation
        d = scale * t
        return (-d * (d + 2.0 * (mode - omega)) / (2.0 * V)
                + tilted * (Bm * d - 0.5 * Am * d * (d + 2.0 * mode)))

    t_lo, t_hi = max(-60.0, (lo - mode) / scale), min(60.0, (hi - mode) / scale)
    spans = [(a, b) for a, b in ((t_lo, 0.0), (0.0, t_hi)) if a < b]

    def integral(fun):
        return sum(quad(lambda t: fun(t) * np.exp(dlog(t)), a, b,
                        epsabs=0.0, epsrel=1e-12, limit=200)[0] for a, b in spans)

    I0 = integral(lambda t: 1.0)
    mean_t = integral(lambda t: t) / I0
    var_t = integral(lambda t: (t - mean_t) ** 2) / I0
    log_peak = norm.logpdf(mode, omega, np.sqrt(V)) + tilted * (Bm * mode - 0.5 * Am * mode**2)
    return log_peak + np.log(scale * I0), mode + scale * mean_t, scale**2 * var_t


def _quad_pieces(omega, V, Am, Bm, relu=True):
    """The pieces of the tilted density: split at 0 for ReLU, whole line for identity."""
    pieces = [(-np.inf, 0.0, False), (0.0, np.inf, True)] if relu else [(-np.inf, np.inf, True)]
    return [_quad_piece(omega, V, Am, Bm, lo, hi, tilted) for lo, hi, tilted in pieces]


def _quad_moments(omega, V, Am, Bm, relu=True):
    """(xhat, D, zhat, zvar, log Z) of the tilted density via _quad_pieces."""
    pieces = _quad_pieces(omega, V, Am, Bm, relu)
    logm = np.array([p[0] for p in pieces])
    logZ = logsumexp(logm)
    p = np.exp(logm - logZ)
    m, v = np.array([q[1] for q in pieces]), np.array([q[2] for q in pieces])
    zhat = np.sum(p * m)
    zvar = np.sum(p * (v + (m - zhat) ** 2))
    if not relu:
        return zhat, zvar, zhat, zvar, logZ
    xhat = p[1] * m[1]  # u = 0 on the z < 0 piece
    D = p[1] * (v[1] + (m[1] - xhat) ** 2) + p[0] * xhat**2
    return xhat, D, zhat, zvar, logZ


@pytest.fixture(scope="module")
def relu_reference():
    grid = _grid()
    return grid, np.array([_quad_moments(*row) for row in grid.T]).T


def test_relu_moments_match_quadrature(relu_reference):
    (omega, V, Am, Bm), (xhat, D, zhat, zvar, _) = relu_reference
    out = relu_moments(omega, V, Am, Bm)
    assert_allclose(out[0], xhat, rtol=2e-10)
    assert_allclose(out[1], D, rtol=2e-10)
    assert_allclose((out[2] - zhat) / (np.abs(zhat) + np.sqrt(zvar)), 0.0, atol=2e-10)
    assert_allclose(out[3], zvar, rtol=2e-10)


def test_relu_log_partition_matches_quadrature(relu_reference):
    (omega, V, Am, Bm), ref = relu_reference
    assert_allclose(relu_log_partition(omega, V, Am, Bm), ref[4], rtol=1e-12, atol=1e-10)


def test_identity_moments_match_closed_form_and_quadrature():
    omega, V, Am, Bm = _grid()
    xhat, D, zhat, zvar = identity_moments(omega, V, Am, Bm)
    prec = 1.0 / V + Am  # product of N(omega, V) and the tilt, in natural parameters
    assert_allclose(zvar, 1.0 / prec, rtol=1e-14)
    mean = (omega / V + Bm) / prec
    assert_allclose((zhat - mean) / (np.abs(mean) + np.sqrt(zvar)), 0.0, atol=1e-14)
    assert_allclose(xhat, zhat, rtol=0.0) and assert_allclose(D, zvar, rtol=0.0)
    rows = _grid()[:, ::9]
    ref = np.array([_quad_moments(*row, relu=False) for row in rows.T]).T
    out = identity_moments(*rows)
    assert_allclose((out[2] - ref[2]) / (np.abs(ref[2]) + np.sqrt(ref[3])), 0.0, atol=2e-10)
    assert_allclose(out[3], ref[3], rtol=2e-10)
    assert_allclose(identity_log_partition(*rows), ref[4], rtol=1e-12, atol=1e-10)


def test_identity_log_partition_is_gaussian_product_constant():
    rng = np.random.default_rng(1)
    omega, Bm = rng.normal(size=20) * 3.0, rng.normal(size=20) * 2.0
    V, Am = np.exp(rng.normal(size=20)), np.exp(rng.normal(size=20))
    # exp(Bm z - Am z^2 / 2) = exp(Bm^2 / (2 Am)) sqrt(2 pi / Am) N(z; Bm / Am, 1 / Am)
    expected = (Bm**2 / (2.0 * Am) + 0.5 * np.log(2.0 * np.pi / Am)
                + norm.logpdf(omega, Bm / Am, np.sqrt(V + 1.0 / Am)))
    assert_allclose(identity_log_partition(omega, V, Am, Bm), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["relu", "identity"])
def test_moments_are_derivatives_of_log_partition(name):
    """E[z] - omega = V d log Z / d omega and Var[z] = V + V^2 d^2 log Z / d omega^2."""
    rng = np.random.default_rng(2)
    n = 40
    V = np.exp(rng.uniform(-3.0, 3.0, n))
    omega = rng.uniform(-6.0, 6.0, n) * np.sqrt(V)
    Am = np.exp(rng.uniform(-4.0, 3.0, n)) / V * (rng.uniform(size=n) > 0.2)
    Bm = rng.uniform(-4.0, 4.0, n) / np.sqrt(V)
    logZ = ACTIVATIONS[name].log_partition
    h = 1e-2 * np.sqrt(V)
    L = [logZ(omega + j * h, V, Am, Bm) for j in (-2, -1, 0, 1, 2)]
    d1 = (L[0] - 8.0 * L[1] + 8.0 * L[3] - L[4]) / (12.0 * h)
    d2 = (-L[0] + 16.0 * L[1] - 30.0 * L[2] + 16.0 * L[3] - L[4]) / (12.0 * h**2)
    _, _, zhat, zvar = ACTIVATIONS[name].moments(omega, V, Am, Bm)
    # in standardized units (omega / sqrt V) the derivatives are O(1)
    assert_allclose((zhat - omega) / np.sqrt(V), d1 * np.sqrt(V), rtol=1e-7, atol=1e-8)
    assert_allclose((zvar - V) / V, d2 * V, rtol=1e-5, atol=1e-6)


def test_untilted_relu_matches_gaussian_closed_form():
    omega = np.linspace(-6.0, 6.0, 25) * 1.7
    V = np.full_like(omega, 1.7**2)
    s, a = np.sqrt(V), omega / np.sqrt(V)
    xhat, D, zhat, zvar = relu_moments(omega, V, 0.0, 0.0)
    Eu = omega * ndtr(a) + s * norm.pdf(a)
    Eu2 = (omega**2 + V) * ndtr(a) + omega * s * norm.pdf(a)
    assert_allclose(xhat, Eu, rtol=1e-12)
    assert_allclose(D, Eu2 - Eu**2, rtol=1e-10)
    np.testing.assert_array_equal(zhat, omega)
    np.testing.assert_array_equal(zvar, V)


def test_untilted_fast_path_agrees_with_tilted_formulas():
    omega = np.concatenate([np.linspace(-40.0, 40.0, 161), [-1e3, 1e3]])
    V = np.exp(np.linspace(-20.0, 20.0, omega.size))
    omega = omega * np.sqrt(V)
    zero = np.zeros_like(omega)
    fast = _relu_untilted(omega, V)
    slow = _relu_tilted(omega, V, zero, zero)
    for f, s, unit in zip(fast, slow, (np.sqrt(V), V, np.sqrt(V), V)):
        assert_allclose((f - s) / (np.abs(f) + unit), 0.0, atol=1e-12)
    assert_allclose(relu_log_partition(omega, V, zero, zero), 0.0, atol=1e-15)


def test_extreme_inputs_give_finite_consistent_moments():
    sq = [1e-12, 1e-6, 1.0, 1e6]
    rows = np.array(list(itertools.product(
        sq, [-1e3, -50.0, 0.0, 50.0, 1e3], [0.0, 1e-8, 1.0, 1e6], [-1e6, -10.0, 0.0, 10.0, 1e6])))
    V, w, kappa, Bm = rows.T
    omega, Am = w * np.sqrt(V), kappa / V
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xhat, D, zhat, zvar = relu_moments(omega, V, Am, Bm)
        logZ = relu_log_partition(omega, V, Am, Bm)
        ident = identity_moments(omega, V, Am, Bm)
    for out in (xhat, D, zhat, zvar, logZ, *ident):
        assert np.all(np.isfinite(out))
    assert np.all(D >= 0) and np.all(zvar >= 0) and np.all(ident[1] > 0)
    # ReLU is 1-Lipschitz and convex: Var f(z) <= Var z and E f(z) >= f(E z)
    assert np.all(D <= zvar * (1 + 1e-12))
    assert np.all(xhat >= np.maximum(zhat, 0.0) * (1 - 1e-12))
    # a certain tilt-free unit far on either side: u = z, or u = 0
    far = (kappa == 0) & (Bm == 0) & (np.abs(w) == 1e3)
    assert_allclose(xhat[far], np.maximum(omega[far], 0.0), rtol=1e-12)
    assert_allclose(D[far], np.where(w[far] > 0, V[far], 0.0), rtol=2e-10)


def test_zero_variance_is_a_point_mass():
    omega = np.array([-2.0, -1e-3, 0.5, 3.0])
    for Am, Bm in [(0.0, 0.0), (2.0, -1.0), (0.0, 5.0)]:
        xhat, D, zhat, zvar = relu_moments(omega, 0.0, Am, Bm)
        assert_allclose(xhat, np.maximum(omega, 0.0), atol=1e-90)
        assert_allclose(zhat, omega, atol=1e-90)
        assert_allclose(np.concatenate([D, zvar]), 0.0, atol=1e-190)


@pytest.mark.parametrize("name", ["relu", "identity"])
def test_outputs_broadcast_to_common_shape(name):
    omega = np.linspace(-2.0, 2.0, 3)[:, None]
    V = np.linspace(0.5, 2.0, 4)[None, :]
    outs = ACTIVATIONS[name].moments(omega, V, np.full((3, 4), 0.2), 1.0)
    assert all(np.shape(o) == (3, 4) for o in outs)
    assert np.shape(ACTIVATIONS[name].log_partition(omega, V, 0.2, 1.0)) == (3, 4)


def test_negative_Am_is_clipped_to_zero():
    omega, V = np.array([-1.0, 0.3, 2.0]), np.array([0.5, 1.0, 2.0])
    Bm = np.array([1.0, -2.0, 0.5])
    for f in (relu_moments, identity_moments):
        assert_allclose(f(omega, V, -3.0, Bm), f(omega, V, 0.0, Bm), rtol=0.0)
