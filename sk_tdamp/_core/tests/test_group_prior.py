"""Module B and the Bernoulli-Gaussian denoiser against quadrature and enumeration."""

import itertools
import math
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.integrate import quad
from scipy.special import expit, logit
from scipy.stats import norm

from sk_tdamp._core._group_prior import (
    gaussian_denoiser,
    group_posterior,
    module_b,
    rho_update,
    slab_variance_update,
    target_density_mask,
    weight_llr,
)
from sk_tdamp._core.tests._reference import bg_denoiser, extrinsic_logit

# ---------------------------------------------------------------------------
# Quadrature references
# ---------------------------------------------------------------------------


def _slab_quad(H, G, sigma2):
    """log Z1, mean and variance of w given s = 1, by quadrature.

    Z1 = int N(w; 0, sigma2) exp(H w - G w^2 / 2) dw. The log integrand is a quadratic
    l(w); it is expanded around a point a (any a works; the approximate mode keeps the
    window small) as l(a + sd u) = l(a) + b sd u - u^2 / 2 with P = 1 / sigma2 + G,
    sd = P^(-1/2), b = H - a P, and the moments of u are integrated numerically.
    """
    P = 1.0 / sigma2 + G
    a = H / P
    sd = 1.0 / math.sqrt(P)
    b = (H - a * P) * sd
    la = -0.5 * a * a * P + H * a - 0.5 * math.log(2 * math.pi * sigma2)
    moments = [
        quad(lambda u, j=j: u**j * math.exp(b * u - 0.5 * u * u), -14.0, 14.0,
             epsabs=1e-13, epsrel=1e-12, limit=200, points=[0.0])[0]
        for j in range(3)
    ]
    I0, I1, I2 = moments
    log_Z1 = la + math.log(sd) + math.log(I0)
    mean = a + sd * I1 / I0
    var = sd * sd * (I2 / I0 - (I1 / I0) ** 2)
    return log_Z1, mean, var


def _slab_quad_plain(H, G, sigma2):
    """Z1, E[w | s=1] and E[w^2 | s=1] by quadrature over the whole line (moderate inputs)."""
    def f(w, j):
        log_prior = -0.5 * w * w / sigma2 - 0.5 * math.log(2 * math.pi * sigma2)
        return w**j * math.exp(log_prior + H * w - G * w * w / 2)

    Z = [quad(f, -np.inf, np.inf, args=(j,), epsabs=0.0, epsrel=1e-12)[0] for j in range(3)]
    return Z[0], Z[1] / Z[0], Z[2] / Z[0]


# ---------------------------------------------------------------------------
# weight_llr
# ---------------------------------------------------------------------------


def test_weight_llr_matches_direct_log_density_difference():
    rng = np.random.default_rng(0)
    H = rng.normal(scale=3.0, size=50)
    G = rng.uniform(0.05, 20.0, size=50)
    sigma2 = rng.uniform(0.01, 5.0, size=50)
    r, tau = H / G, 1.0 / G
    direct = norm.logpdf(r, 0.0, np.sqrt(sigma2 + tau)) - norm.logpdf(r, 0.0, np.sqrt(tau))
    assert_allclose(weight_llr(H, G, sigma2), direct, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "H, G, sigma2",
    [(0.0, 1.0, 1.0), (2.5, 0.3, 2.0), (-40.0, 7.0, 0.1), (1e8, 1e-12, 1.0),
     (-1e8, 1e12, 0.5), (3.0, 1e12, 1.0), (0.5, 1e-12, 1e-3), (1e3, 1e-12, 50.0)],
)
def test_weight_llr_is_log_slab_evidence_by_quadrature(H, G, sigma2):
    log_Z1, _, _ = _slab_quad(H, G, sigma2)
    assert_allclose(weight_llr(H, G, sigma2), log_Z1, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------
# Denoisers
# ---------------------------------------------------------------------------

_H = [-1e8, -3.0, 0.0, 0.7, 25.0, 1e8]
_G = [1e-12, 0.5, 4.0, 1e12]
_S2 = [1e-3, 1.0, 50.0]
_LP = [-30.0, -2.0, 0.0, 3.0]


def test_bg_denoiser_matches_quadrature_on_grid():
    grid = np.array(list(itertools.product(_H, _G, _S2, _LP)))
    H, G, S2, LP = grid.T
    m, c, pp = bg_denoiser(H, G, S2, LP)
    for j, (h, g, s2, lp) in enumerate(grid):
        log_Z1, mean1, var1 = _slab_quad(h, g, s2)
        # posterior mass of the slab against the point mass (whose evidence is 1)
        pp_ref = expit(lp + log_Z1)
        m_ref = pp_ref * mean1
        c_ref = pp_ref * var1 + pp_ref * expit(-(lp + log_Z1)) * mean1**2
        scale = math.sqrt(s2 / (1.0 + s2 * g))
        assert_allclose(pp[j], pp_ref, rtol=1e-9, atol=0.0, err_msg=str(grid[j]))
        assert_allclose(m[j], m_ref, rtol=1e-9, atol=1e-11 * scale * pp_ref, err_msg=str(grid[j]))
        assert_allclose(c[j], c_ref, rtol=1e-8, atol=0.0, err_msg=str(grid[j]))


def test_gaussian_denoiser_matches_r_tau_form_and_quadrature():
    rng = np.random.default_rng(1)
    H = rng.normal(scale=2.0, size=20)
    G = rng.uniform(0.1, 10.0, size=20)
    sigma2 = 0.7
    m, c = gaussian_denoiser(H, G, sigma2)
    r, tau = H / G, 1.0 / G
    assert_allclose(m, r * sigma2 / (sigma2 + tau), rtol=1e-12)
    assert_allclose(c, sigma2 * tau / (sigma2 + tau), rtol=1e-12)
    for j in range(3):
        _, mean1, second1 = _slab_quad_plain(H[j], G[j], sigma2)
        assert_allclose([m[j], c[j]], [mean1, second1 - mean1**2], rtol=1e-8)


def test_gaussian_denoiser_scale_and_out_scale_both_moments():
    # per-column prior variance and scale (the turbo loop's kept-groups layers), written
    # into the caller's arrays
    rng = np.random.default_rng(2)
    H = rng.normal(size=(4, 6))
    G = rng.uniform(0.1, 5.0, size=(4, 6))
    sigma2 = rng.uniform(0.2, 2.0, size=6)
    scale = rng.uniform(0.0, 1.0, size=6)
    m_ref, c_ref = gaussian_denoiser(H, G, sigma2)
    out = (np.full_like(H, np.nan), np.full_like(H, np.nan))
    m, c = gaussian_denoiser(H, G, sigma2, scale, out=out)
    assert m is out[0] and c is out[1]
    assert_allclose(m, scale * m_ref, rtol=1e-14)
    assert_allclose(c, scale * c_ref, rtol=1e-14)
    # a column view as out (the bias column)
    full = np.zeros((4, 3))
    gaussian_denoiser(H[:, 0], G[:, 0], 0.5, 0.25, out=(full[:, 1], full[:, 2]))
    mb, cb = gaussian_denoiser(H[:, 0], G[:, 0], 0.5)
    assert_allclose(full[:, 1:], 0.25 * np.column_stack([mb, cb]), rtol=1e-14)
    assert_array_equal(full[:, 0], 0.0)


def test_bg_denoiser_with_certain_slab_is_gaussian_denoiser():
    H = np.array([-2.0, 0.0, 5.0])
    G = np.array([0.5, 1e12, 3.0])
    m, c, pp = bg_denoiser(H, G, 2.0, np.inf)
    mg, cg = gaussian_denoiser(H, G, 2.0)
    assert_array_equal(pp, 1.0)
    assert_allclose(m, mg, rtol=1e-15)
    assert_allclose(c, cg, rtol=1e-15)
    m0, c0, pp0 = bg_denoiser(H, G, 2.0, -np.inf)
    assert_array_equal(np.concatenate([m0, c0, pp0]), 0.0)


# ---------------------------------------------------------------------------
# Module B against enumeration of the shared support
# ---------------------------------------------------------------------------


def _group_by_enumeration(H, G, sigma2, rho):
    """P(s=1 | evidence) and per-weight marginal moments, enumerating s in {0, 1}.

    Given s = 0 all weights are 0 and the evidence factors are 1. Given s = 1 the
    weights are independent, each with slab evidence Z1_k (by quadrature).
    """
    Z1, mean1, second1 = np.array([_slab_quad_plain(h, g, sigma2) for h, g in zip(H, G)]).T
    joint = np.array([1.0 - rho, rho * np.prod(Z1)])  # p(s, evidence) for s = 0, 1
    p1 = joint[1] / joint.sum()
    m = p1 * mean1
    c = p1 * second1 - m**2
    return p1, m, c, Z1


def test_module_b_and_group_posterior_match_enumeration():
    rng = np.random.default_rng(2)
    N_out, N_in = 4, 3
    H = rng.normal(scale=1.5, size=(N_out, N_in))
    G = rng.uniform(0.2, 5.0, size=(N_out, N_in))
    sigma2 = 0.8
    rho = np.array([0.3, 0.5, 0.9])
    Lam, lam = module_b(H, G, sigma2, logit(rho))
    m, c, Lam2 = group_posterior(H, G, sigma2, logit(rho))
    assert Lam.shape == (N_in,) and lam.shape == (N_out, N_in)
    assert_allclose(Lam2, Lam, rtol=1e-13, atol=1e-13)  # the same sums, other roundings
    for i in range(N_in):
        p1, m_ref, c_ref, _ = _group_by_enumeration(H[:, i], G[:, i], sigma2, rho[i])
        assert_allclose(expit(Lam[i]), p1, rtol=1e-10)
        assert_allclose(m[:, i], m_ref, rtol=1e-9, atol=1e-14)
        assert_allclose(c[:, i], c_ref, rtol=1e-9, atol=1e-14)
    # the enumeration is not trivially 0/1: the test would notice a wrong Lam
    assert np.all((expit(Lam) > 0.05) & (expit(Lam) < 0.999))


def test_extrinsic_message_is_support_posterior_without_own_evidence():
    rng = np.random.default_rng(3)
    N_out = 4
    H = rng.normal(scale=1.5, size=(N_out, 1))
    G = rng.uniform(0.2, 5.0, size=(N_out, 1))
    sigma2, rho = 1.3, 0.4
    Lam, lam = module_b(H, G, sigma2, logit(rho))
    ext = extrinsic_logit(lam, logit(rho))
    for k in range(N_out):
        others = np.arange(N_out) != k
        p_ref, _, _, _ = _group_by_enumeration(H[others, 0], G[others, 0], sigma2, rho)
        assert_allclose(expit(Lam[0] - lam[k, 0]), p_ref, rtol=1e-10)
        assert_allclose(expit(ext[k, 0]), p_ref, rtol=1e-10)


def test_denoiser_under_extrinsic_prior_gives_group_posterior():
    rng = np.random.default_rng(4)
    H = rng.normal(scale=2.0, size=(5, 6))
    G = rng.uniform(0.1, 8.0, size=(5, 6))
    logit_rho = rng.normal(size=6)
    Lam, lam = module_b(H, G, 0.5, logit_rho)
    m, c, pp = bg_denoiser(H, G, 0.5, Lam - lam)
    m2, c2, _ = group_posterior(H, G, 0.5, logit_rho)
    # every member carries the group's posterior support probability
    assert_allclose(pp, np.broadcast_to(expit(Lam), pp.shape), rtol=1e-13)
    assert_allclose(m, m2, rtol=1e-12, atol=1e-15)
    assert_allclose(c, c2, rtol=1e-12, atol=1e-15)


def test_extrinsic_logit_is_leave_one_out_sum_without_cancellation():
    rng = np.random.default_rng(5)
    lam = rng.normal(size=(6, 4))
    logit_rho = np.array([0.1, -1.0, 2.0, 0.0])
    ext = extrinsic_logit(lam, logit_rho)
    ref = np.array([[logit_rho[i] + lam[np.arange(6) != k, i].sum() for i in range(4)]
                    for k in range(6)])
    assert_allclose(ext, ref, rtol=1e-13, atol=1e-14)
    # one dominant member: the others' llr survive exactly (Lam - lam would round them)
    lam = np.array([[1e16], [-2.0], [0.5]])
    ext = extrinsic_logit(lam, -0.25)
    assert ext[0, 0] == -1.75
    assert_allclose(ext[1:, 0], [1e16, 1e16], rtol=1e-15)
    assert extrinsic_logit(np.array([[1.5, -2.0]]), 0.3).tolist() == [[0.3, 0.3]]


# ---------------------------------------------------------------------------
# M-step helpers
# ---------------------------------------------------------------------------


def test_rho_update_mean_of_posterior_support_and_clipping():
    Lam = np.array([0.0, np.log(3.0), -np.log(3.0), np.log(9.0)])
    # expit: 0.5, 0.75, 0.25, 0.9
    assert_allclose(rho_update(Lam), 0.6, rtol=1e-14)
    assert rho_update(np.full(5, -800.0)) == 1e-3
    assert rho_update(np.full(5, 800.0)) == 1 - 1e-3
    assert rho_update(np.full(5, -800.0), floor=0.05) == 0.05


def test_target_density_mask_keeps_exact_count_of_largest():
    Lam = np.array([0.3, 2.0, -1.0, 2.0, 5.0])
    assert_array_equal(target_density_mask(Lam, 0.4), [False, True, False, False, True])
    assert_array_equal(target_density_mask(Lam, 0.5), [False, True, False, True, True])
    assert_array_equal(target_density_mask(Lam, 0.61), [True, True, False, True, True])
    assert_array_equal(target_density_mask(Lam, 1.0), [True] * 5)
    assert_array_equal(target_density_mask(Lam, 1e-6), [False, False, False, False, True])
    # ties are broken by index: the lowest indices among equal Lam survive
    assert_array_equal(np.flatnonzero(target_density_mask(np.zeros(7), 3 / 7)), [0, 1, 2])
    Lam = np.zeros(50)
    Lam[::3] = 1.0  # 17 leaders, then the 8 lowest-index zeros
    kept = np.flatnonzero(target_density_mask(Lam, 0.5))
    assert_array_equal(kept, np.sort(np.r_[np.arange(0, 50, 3), [1, 2, 4, 5, 7, 8, 10, 11]]))
    # kappa N integral in exact arithmetic, not in floating point (7/25 * 25 = 7.000000000000001)
    rng = np.random.default_rng(6)
    for n, k in [(25, 7), (29, 15), (35, 29), (10, 3), (13, 6)]:
        assert target_density_mask(rng.normal(size=n), k / n).sum() == k
    assert target_density_mask(rng.normal(size=13), 6.5 / 13 + 1e-6).sum() == 7


def test_target_density_mask_kept_dominate_dropped():
    Lam = np.random.default_rng(7).normal(size=40)
    mask = target_density_mask(Lam, 0.25)
    assert mask.sum() == 10
    assert Lam[mask].min() > Lam[~mask].max()


@pytest.mark.parametrize("kappa", [0.0, -0.1, 1.5])
def test_target_density_mask_rejects_kappa_outside_unit_interval(kappa):
    with pytest.raises(ValueError, match="kappa"):
        target_density_mask(np.zeros(3), kappa)


def _mixture(mu1, v1, pi):
    m = pi * mu1
    return m, pi * (v1 + mu1**2) - m**2


def test_slab_variance_update_hand_computed():
    # group 0: pi = 1/2, conditional (mu, v) = (1, 1), (0, 2): E[w^2 | s=1] sums to 4
    # group 1: pi = 1/4, conditional (mu, v) = (2, 0), (0, 4): E[w^2 | s=1] sums to 8
    mu1 = np.array([[1.0, 2.0], [0.0, 0.0]])
    v1 = np.array([[1.0, 0.0], [2.0, 4.0]])
    pi = np.array([0.5, 0.25])
    m, c = _mixture(mu1, v1, pi)
    # (1/2 * 4 + 1/4 * 8) / (2 * 3/4) = 8 / 3
    assert_allclose(slab_variance_update(m, c, logit(pi)), 8.0 / 3.0, rtol=1e-14)
    # hard support on group 1 only, slab moments given: 8 / 2 = 4 (Lam is ignored)
    s2 = slab_variance_update(mu1, v1, np.array([-5.0, 7.0]), active=np.array([False, True]))
    assert_allclose(s2, 4.0, rtol=1e-14)
    # both groups hard-active: (4 + 8) / (2 * 2) = 3
    assert_allclose(slab_variance_update(mu1, v1, None, active=np.ones(2, bool)), 3.0,
                    rtol=1e-14)
    # no posterior support anywhere: the current value is kept (nan when not given)
    zeros, dead = np.zeros((2, 2)), np.full(2, -900.0)
    assert slab_variance_update(zeros, zeros, dead, 0.3) == 0.3
    assert np.isnan(slab_variance_update(zeros, zeros, dead))


def test_slab_variance_update_maximizes_expected_log_prior():
    rng = np.random.default_rng(8)
    H = rng.normal(scale=2.0, size=(5, 4))
    G = rng.uniform(0.1, 5.0, size=(5, 4))
    m, c, Lam = group_posterior(H, G, 0.6, logit(0.5))
    s_new = slab_variance_update(m, c, Lam)
    # slab-conditional second moments from the Gaussian denoiser
    mu1, v1 = gaussian_denoiser(H, G, 0.6)
    pi = expit(Lam)
    E2 = (v1 + mu1**2).sum(axis=0)

    def Q(s):  # pi-weighted expected log N(w; 0, s) given s = 1
        return np.sum(pi * (-0.5 * 5 * np.log(2 * np.pi * s) - E2 / (2 * s)))

    assert_allclose(s_new, np.sum(pi * E2) / (5 * pi.sum()), rtol=1e-12)
    dQ = (Q(s_new * (1 + 1e-6)) - Q(s_new * (1 - 1e-6))) / (2e-6 * s_new)
    assert_allclose(dQ, 0.0, atol=1e-6 * abs(Q(s_new)))
    assert Q(s_new) > Q(1.2 * s_new) and Q(s_new) > Q(0.8 * s_new)


# ---------------------------------------------------------------------------
# Extremes
# ---------------------------------------------------------------------------


def test_extreme_inputs_are_finite_and_warning_free():
    vals_H = [-1e100, -1e8, -1.0, 0.0, 1e-8, 1e8, 1e100]
    vals_G = [0.0, 1e-12, 1.0, 1e12]
    grid = np.array(list(itertools.product(vals_H, vals_G)))
    H = grid[:, :1].T.repeat(3, axis=0)  # (3, n_groups): identical members
    G = grid[:, 1:].T.repeat(3, axis=0)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for sigma2, logit_rho in itertools.product([1e-6, 1.0, 1e3], [-50.0, 0.0, 50.0]):
            Lam, lam = module_b(H, G, sigma2, logit_rho)
            m, c, Lam2 = group_posterior(H, G, sigma2, logit_rho)
            assert_allclose(Lam2, Lam, rtol=1e-13, atol=1e-14)  # log(G + 1/s2) form
            mb, cb, ppb = bg_denoiser(H, G, sigma2, extrinsic_logit(lam, logit_rho))
            mg, cg = gaussian_denoiser(H, G, sigma2)
            for a in (Lam, lam, m, c, mb, cb, ppb, mg, cg):
                assert np.all(np.isfinite(a))
            assert np.all(c >= 0) and np.all(cb >= 0)
            assert_allclose(mb, m, rtol=1e-12, atol=0)
            assert 0.0 < rho_update(Lam) < 1.0
            keep = target_density_mask(Lam, 0.5)
            assert np.isfinite(slab_variance_update(m, c, Lam, sigma2))
            assert np.isfinite(slab_variance_update(mg, cg, Lam, active=keep))
    # spot values: overwhelming evidence picks the slab and the data's value ...
    m, c, Lam = group_posterior(np.full((3, 1), 1e8), np.full((3, 1), 1e-12), 1.0, 0.0)
    assert_allclose(m, 1e8, rtol=1e-11)
    assert_allclose(c, 1.0, rtol=1e-11)
    # ... and a precise zero observation (G = 1e12, H = 0) picks the spike
    m, c, Lam = group_posterior(np.zeros((3, 1)), np.full((3, 1), 1e12), 1.0, 0.0)
    assert_allclose(Lam, -1.5 * np.log1p(1e12), rtol=1e-14)
    assert_allclose(c, expit(Lam[0]) * 1e-12 / (1 + 1e-12), rtol=1e-10)
