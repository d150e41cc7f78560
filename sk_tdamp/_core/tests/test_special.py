"""Gaussian helpers against direct formulas, quadrature and tail asymptotics."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import quad
from scipy.special import log_ndtr, ndtr
from scipy.stats import norm

from sk_tdamp._core._special import normal_tail, trunc_moments
from sk_tdamp._core.tests._reference import inv_mills, log_gauss, log_Phi, log_phi

EXTREMES = np.array([-1e300, -1e150, -1e8, -1e3, -50.0, -5.0, -1e-300, 0.0, 1e-300, 5.0,
                     50.0, 1e3, 1e8, 1e150, 1e300])


def _tail_series(u):
    """Leading terms of r, w, h at x = -u for large u (from the Mills-ratio expansion)."""
    y = 1.0 / (u * u)
    h = u * (1.0 + y - 2.0 * y**2 + 10.0 * y**3)
    r = (1.0 - 2.0 * y + 10.0 * y**2 - 74.0 * y**3) / u
    w = y * (1.0 - 6.0 * y + 50.0 * y**2)
    return h, r, w


def _trunc_quad(x):
    """Mean and variance of N(x, 1) on (0, inf) by quadrature, exponent shifted to max 0."""
    if x <= 0:  # exp(-(t - x)^2 / 2 + x^2 / 2) = exp(x t - t^2 / 2), decays on 1 / (|x| + 1)
        f, hi, pts = (lambda t: np.exp(x * t - 0.5 * t * t)), 60.0 / (1.0 - x), None
    else:
        f, hi, pts = (lambda t: np.exp(-0.5 * (t - x) ** 2)), x + 40.0, [x]
    kw = dict(points=pts, epsabs=0.0, epsrel=1e-13, limit=200)
    I0 = quad(f, 0.0, hi, **kw)[0]
    mean = quad(lambda t: t * f(t), 0.0, hi, **kw)[0] / I0
    var = quad(lambda t: (t - mean) ** 2 * f(t), 0.0, hi, **kw)[0] / I0
    return mean, var


def test_log_phi_matches_scipy_logpdf():
    x = np.linspace(-60.0, 60.0, 241)
    assert_allclose(log_phi(x), norm.logpdf(x), rtol=1e-14)


def test_log_gauss_matches_scipy_logpdf_with_broadcasting():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(5, 1)) * 3.0, rng.normal(size=(1, 4))
    var = np.exp(rng.normal(size=(1, 4)) * 2.0)
    out = log_gauss(x, mean, var)
    assert out.shape == (5, 4)
    assert_allclose(out, norm.logpdf(x, mean, np.sqrt(var)), rtol=1e-13)


def test_log_Phi_matches_log_cdf_and_tail_asymptote():
    x = np.linspace(-30.0, 3.0, 67)
    assert_allclose(log_Phi(x), np.log(ndtr(x)), rtol=1e-13)
    x = np.linspace(3.0, 30.0, 28)  # log(1 - Phi(-x)) loses the digits of Phi(-x)
    assert_allclose(log_Phi(x), np.log1p(-ndtr(-x)), rtol=1e-13)
    u = np.array([1e3, 1e5, 1e7])
    y = 1.0 / u**2  # log Phi(-u) = log phi(u) - log u + log(1 - y + 3 y^2 - ...)
    assert_allclose(log_Phi(-u), log_phi(u) - np.log(u) + np.log1p(-y + 3.0 * y**2),
                    rtol=1e-15)


def test_normal_tail_matches_direct_cdf():
    x = np.linspace(-20.0, 20.0, 81)
    Q, Phis, h = normal_tail(x)
    assert_allclose(Q, ndtr(-np.abs(x)), rtol=1e-13)
    assert_allclose(Phis, ndtr(x) * np.exp(0.5 * np.minimum(x, 0.0) ** 2), rtol=1e-13)
    # log(Phis) is meant for differences of log weights: accurate in absolute terms
    assert_allclose(np.log(Phis) - 0.5 * np.minimum(x, 0.0) ** 2, log_ndtr(x),
                    rtol=1e-13, atol=1e-15)


def test_normal_tail_scaled_log_cdf_follows_tail_asymptote():
    u = np.array([1e3, 1e6, 1e100])
    y = 1.0 / u**2  # Phi(-u) exp(u^2/2) = (1 - y + 3 y^2) / (u sqrt(2 pi))
    expected = -np.log(u) - 0.5 * np.log(2.0 * np.pi) + np.log1p(-y + 3.0 * y**2)
    assert_allclose(np.log(normal_tail(-u)[1]), expected, rtol=1e-15)


def test_inv_mills_matches_direct_ratio():
    x = np.linspace(-30.0, 30.0, 121)
    assert_allclose(inv_mills(x), norm.pdf(x) / ndtr(x), rtol=1e-12)


def test_inv_mills_is_derivative_of_log_Phi():
    x = np.linspace(-20.0, 6.0, 27)
    step = 1e-4
    fd = (log_ndtr(x + step) - log_ndtr(x - step)) / (2.0 * step)
    assert_allclose(inv_mills(x), fd, rtol=1e-7)


def test_inv_mills_tail_limits():
    u = np.array([3e2, 1e3, 1e6, 1e150])
    assert_allclose(inv_mills(-u), _tail_series(u)[0], rtol=1e-15)
    assert_allclose(inv_mills(np.array([6.0, 10.0])), norm.pdf([6.0, 10.0]), rtol=1e-8)
    assert_allclose(inv_mills(np.array([40.0, 1e3, 1e300])), 0.0, atol=0.0)


@pytest.mark.parametrize(
    "x", [-40.0, -12.0, -6.0, -5.0 - 1e-9, -5.0 + 1e-9, -3.0, -1.0, 0.0, 0.5, 2.0, 6.0, 15.0])
def test_trunc_moments_match_quadrature(x):
    r, w = trunc_moments(x)
    mean, var = _trunc_quad(x)
    assert_allclose([r, w], [mean, var], rtol=1e-11)


def test_trunc_moments_follow_tail_asymptotes():
    u = np.array([3e2, 1e3, 1e6, 1e150])
    _, r_ref, w_ref = _tail_series(u)
    r, w = trunc_moments(-u)
    assert_allclose(r, r_ref, rtol=1e-13)
    assert_allclose(w, w_ref, rtol=1e-12)
    x = np.array([40.0, 1e3, 1e100])  # truncation invisible: plain N(x, 1)
    r, w = trunc_moments(x)
    assert_allclose(r, x, rtol=1e-15)
    assert_allclose(w, 1.0, rtol=1e-15)


def test_trunc_moments_accept_precomputed_inv_mills():
    x = np.linspace(-9.0, 4.0, 14)
    assert_allclose(trunc_moments(x, inv_mills(x)), trunc_moments(x), rtol=0.0)


def test_helpers_finite_and_silent_at_extremes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Q, Phis, h = normal_tail(EXTREMES)
        r, w = trunc_moments(EXTREMES)
        inner = EXTREMES[1:-1]  # x^2 of +-1e300 overflows in log_phi / log_Phi by definition
        outs = [log_phi(inner), log_Phi(inner), inv_mills(EXTREMES), Q, Phis, r, w]
    for out in outs:
        assert np.all(np.isfinite(out))
    assert np.all((Q >= 0) & (Q <= 0.5)) and np.all((Phis > 0) & (Phis <= 1))
    assert np.all(h >= 0) and np.all(r > 0)
    assert np.all((w >= 0) & (w <= 1))


def test_scalar_in_scalar_out_and_shapes_kept():
    assert np.shape(inv_mills(-3.0)) == () and np.shape(trunc_moments(-7.0)[1]) == ()
    x = np.linspace(-8.0, 8.0, 12).reshape(3, 4)
    assert all(np.shape(t) == (3, 4) for t in (*normal_tail(x), *trunc_moments(x)))


def test_normal_tail_scaled_cdf_agrees_with_erfcx_on_both_sides_of_the_switch():
    # Phis(x) = Phi(x) exp(x^2/2) = erfcx(-x / sqrt 2) / 2 for x <= 0; below |x| = 25 it is
    # computed from erfc and exp, beyond from erfcx.
    from scipy.special import erfcx

    x = -np.r_[np.linspace(0.0, 40.0, 4001), 24.999999, 25.0, 25.000001]
    _, Phis, h = normal_tail(x)
    ref = 0.5 * erfcx(-x / np.sqrt(2.0))
    assert_allclose(Phis, ref, rtol=2e-13)
    assert_allclose(h, np.sqrt(2.0 / np.pi) / (2.0 * ref), rtol=2e-13)
