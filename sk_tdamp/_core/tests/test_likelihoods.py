"""Math truths for the output layer: derivatives of log Z, quadrature, closed forms."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import integrate
from scipy.special import logsumexp
from scipy.stats import norm

from sk_tdamp._core._likelihoods import (
    LIKELIHOODS,
    GaussianVStats,
    _probit_curvature,
    gaussian_output,
    probit_log_scores,
    probit_output,
    probit_pair_stats,
    probit_v_objective,
    probit_v_update,
    probit_v_update_reference,
)
from sk_tdamp._core._numerics import GAUSSIAN_V_BOUNDS


def probit_predict_proba(omega, V, v):
    """The classifier's probabilities: the production scores, normalized per row."""
    scores = probit_log_scores(omega, V, v)
    return np.exp(scores - logsumexp(scores, axis=1, keepdims=True))


def _finite_differences(log_z, omega, step):
    """Central first and second differences of ``log_z(omega)[n]`` in each ``omega[n, k]``.

    Rows are independent, so column ``k`` is perturbed for all rows at once.
    """
    d1, d2 = np.empty_like(omega), np.empty_like(omega)
    f0 = log_z(omega)
    for k in range(omega.shape[1]):
        e = np.zeros_like(omega)
        e[:, k] = step
        fp, fm = log_z(omega + e), log_z(omega - e)
        d1[:, k] = (fp - fm) / (2 * step)
        d2[:, k] = (fp - 2 * f0 + fm) / step**2
    return d1, d2


def _box_quadrature(f, mean, sd, n=160):
    """``int f(z0, z1) N(z0; mean0, sd0^2) N(z1; mean1, sd1^2)`` by tensor Gauss-Legendre.

    The box is ``mean +- 10 sd`` in each coordinate (Gaussian mass outside: 1.5e-23).
    """
    x, w = np.polynomial.legendre.leggauss(n)
    z = [mean[k] + 10.0 * sd[k] * x for k in range(2)]
    wk = [10.0 * sd[k] * w * norm.pdf(z[k], mean[k], sd[k]) for k in range(2)]
    z0, z1 = np.meshgrid(z[0], z[1], indexing="ij")
    return float(wk[0] @ f(z0, z1) @ wk[1])


def _outputs_problem(seed, B, C):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, C)), rng.uniform(0.1, 2.0, size=(B, C)), rng.normal(size=(B, C))


# ---------------------------------------------------------------- Gaussian likelihood


def test_gaussian_output_derivatives_match_finite_differences():
    omega, V, y = _outputs_problem(0, 5, 3)
    v = 0.7
    g, Gam, _, _, _ = gaussian_output(y, omega, V, v)
    d1, d2 = _finite_differences(lambda o: gaussian_output(y, o, V, v)[4], omega, 1e-4)
    assert_allclose(g, d1, rtol=1e-7, atol=1e-9)
    assert_allclose(Gam, -d2, rtol=1e-5)


def test_gaussian_output_posterior_and_evidence_match_closed_form():
    omega, V, y = _outputs_problem(1, 4, 2)
    v = 0.3
    _, _, zhat, zvar, logZ = gaussian_output(y, omega, V, v)
    # product of the Gaussians N(z; omega, V) N(y; z, v), in precision form
    precision = 1.0 / V + 1.0 / v
    assert_allclose(zvar, 1.0 / precision, rtol=1e-13)
    assert_allclose(zhat, (omega / V + y / v) / precision, rtol=1e-12)
    expected = norm.logpdf(y, loc=omega, scale=np.sqrt(V + v)).sum(axis=1)
    assert_allclose(logZ, expected, rtol=1e-13)


def test_gaussian_v_update_is_mean_within_bounds():
    rng = np.random.default_rng(2)
    y, zhat, zvar = rng.normal(size=50), rng.normal(size=50), rng.uniform(0, 0.2, 50)
    stats = GaussianVStats()
    for part in (slice(0, 20), slice(20, 50)):  # accumulated over two minibatches
        stats.add(y[part], zhat[part], zvar[part])
    assert stats.count == 50
    assert_allclose(stats.update(9.0), np.mean((y - zhat) ** 2 + zvar), rtol=1e-14)
    zero = GaussianVStats()
    zero.add(y, y, np.zeros(50))
    assert zero.update(1.0) == GAUSSIAN_V_BOUNDS[0]
    assert GaussianVStats().update(0.25) == 0.25  # no data: v unchanged


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_statistics_of_split_data_merge_to_those_of_the_pooled_data(name):
    # a federated server pools clients' statistics: the update must equal the pooled one
    rng = np.random.default_rng(3)
    B, C = 40, 3
    y = rng.normal(size=(B, C)) if name == "gaussian" else rng.integers(0, C, B)
    zhat, zvar = rng.normal(size=(B, C)), rng.uniform(0.1, 1.0, (B, C))
    stats = LIKELIHOODS[name].stats
    pooled, parts = stats(), [stats(), stats()]
    pooled.add(y, zhat, zvar)
    parts[0].add(y[:15], zhat[:15], zvar[:15])
    parts[1].add(y[15:], zhat[15:], zvar[15:])
    restored = [stats.from_arrays(p.to_arrays()) for p in parts]  # through a message
    assert_allclose(stats.merge(restored).update(2.0), pooled.update(2.0), rtol=1e-12)


# ----------------------------------------------------------- probit-product likelihood


def _probit_problem(seed, B, C):
    rng = np.random.default_rng(seed)
    omega, V = 2.0 * rng.normal(size=(B, C)), rng.uniform(0.05, 1.5, size=(B, C))
    return rng.integers(0, C, size=B), omega, V


@pytest.mark.parametrize("C", [2, 3, 10])
def test_probit_output_derivatives_match_finite_differences(C):
    y, omega, V = _probit_problem(C, 6, C)
    v = 0.8
    g, Gam, _, _, _ = probit_output(y, omega, V, v)
    d1, d2 = _finite_differences(lambda o: probit_output(y, o, V, v)[4], omega, 1e-4)
    assert_allclose(g, d1, rtol=1e-7, atol=1e-9)
    assert_allclose(Gam, -d2, rtol=1e-5, atol=1e-7)


def test_probit_output_derivatives_at_extreme_margins():
    # one true class (0) against classes at t = -40 and t = +40 (s = 2 for every pair)
    V, v = np.full((2, 3), 1.0), 2.0
    omega = np.array([[0.0, 80.0, -80.0], [0.0, -80.0, 80.0]])
    y = np.array([0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g, Gam, zhat, zvar, logZ = probit_output(y, omega, V, v)
        d1, d2 = _finite_differences(lambda o: probit_output(y, o, V, v)[4], omega, 1e-3)
    assert_allclose(logZ, [norm.logcdf(-40.0)] * 2, rtol=1e-12)
    assert_allclose(g, d1, rtol=1e-7, atol=1e-9)
    assert_allclose(Gam, -d2, rtol=1e-5, atol=1e-7)
    # the t = -40 pair against the asymptotic series in z = 1 / t^2 (s = 2):
    # lam = |t| (1 + z - 2 z^2 + 10 z^3 - ...), lam (t + lam) = 1 - z + 6 z^2 - 50 z^3 + ...
    z = 1.0 / 40.0**2
    assert_allclose(-2.0 * g[0, 1], 40.0 * (1 + z - 2 * z**2 + 10 * z**3), rtol=1e-10)
    assert_allclose(4.0 * Gam[0, 1], 1 - z + 6 * z**2 - 50 * z**3, rtol=1e-9)
    assert abs(g[1, 1]) < 1e-300 and Gam[1, 1] < 1e-300  # the t = +40 pair: lam = 1e-348
    assert np.all(zvar >= 0) and np.all(zvar <= V)


@pytest.mark.parametrize("t", [-1e9, -1e3, -60.0, -50.0, -45.0, -5.0, 0.0, 3.0])
def test_probit_curvature_matches_truncated_normal_variance(t):
    # 1 - lam (t + lam) = Var(X | X <= t), X ~ N(0, 1); with y = t - X >= 0 the
    # conditional density is proportional to exp(t y - y^2 / 2) (finite at any t).
    weight = [lambda u, p=p: u**p * np.exp(t * u - u * u / 2) for p in range(3)]
    upper = min(40.0, 40.0 / abs(t)) if t < 0 else np.inf
    m0, m1, m2 = (integrate.quad(f, 0, upper, epsabs=0, epsrel=1e-13)[0] for f in weight)
    lam, h = _probit_curvature(np.array([t]))
    assert_allclose(1.0 - h, m2 / m0 - (m1 / m0) ** 2, rtol=1e-7, atol=1e-16)
    # E[X | X <= t] = -lam, i.e. lam = E[y] - t
    assert_allclose(lam, m1 / m0 - t, rtol=1e-10)


def test_probit_curvature_continuous_at_series_switch():
    t = np.array([-50.0 - 1e-9, -50.0 + 1e-9])
    lam, h = _probit_curvature(t)
    assert_allclose(h[0], h[1], rtol=1e-12)


@pytest.mark.parametrize("C", [2, 3, 5])
def test_probit_pairwise_factor_expectation_matches_quadrature(C):
    # E_{z ~ N(omega, V)} Phi((z_c - z_j) / sqrt v) by a 2-d quadrature over (z_c, z_j)
    # equals Phi(t_j), and log Z is the sum of the logs of these expectations
    rng = np.random.default_rng(10 + C)
    omega, V, v, c = rng.normal(size=(1, C)), rng.uniform(0.2, 1.5, (1, C)), 0.6, C - 1
    factors = []
    for j in range(C - 1):
        mean, sd = omega[0, [c, j]], np.sqrt(V[0, [c, j]])
        val = _box_quadrature(lambda zc, zj: norm.cdf((zc - zj) / np.sqrt(v)), mean, sd)
        t = (omega[0, c] - omega[0, j]) / np.sqrt(v + V[0, c] + V[0, j])
        assert_allclose(val, norm.cdf(t), rtol=1e-10)
        factors.append(val)
    logZ = probit_output(np.array([c]), omega, V, v)[4]
    assert_allclose(logZ, [np.sum(np.log(factors))], rtol=1e-10)


def test_probit_output_two_classes_posterior_matches_quadrature():
    # with C = 2 there is one factor, so the output step is exact: zhat and zvar are the
    # moments of N(z; omega, V) Phi((z_1 - z_0) / sqrt v)
    omega, V, v = np.array([[0.4, -0.3]]), np.array([[0.7, 1.2]]), 0.5
    _, _, zhat, zvar, _ = probit_output(np.array([1]), omega, V, v)

    def moment(f):
        def tilted(z0, z1):
            return f(z0, z1) * norm.cdf((z1 - z0) / np.sqrt(v))

        return _box_quadrature(tilted, omega[0], np.sqrt(V[0]))

    Z = moment(lambda z0, z1: 1.0)
    mean = np.array([moment(lambda z0, z1: z0), moment(lambda z0, z1: z1)]) / Z
    second = np.array([moment(lambda z0, z1: z0**2), moment(lambda z0, z1: z1**2)]) / Z
    assert_allclose(zhat[0], mean, rtol=1e-10)
    assert_allclose(zvar[0], second - mean**2, rtol=1e-10)


def test_probit_output_finite_without_warnings_at_extremes():
    y = np.array([0, 1, 2, 0])
    omega = np.array(
        [[1e8, 0.0, -1e8], [1e8, 0.0, -1e8], [0.0, 0.0, 0.0], [-3e4, 2e4, 0.0]]
    )
    V = np.array([[1e-12, 1e6, 1e-3], [1e-12, 1e6, 1e-3], [0.0, 0.0, 0.0], [1e3, 1e3, 1e3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = probit_output(y, omega, V, 1e-6)
    for a in out:
        assert np.all(np.isfinite(a))
    g, Gam, zhat, zvar, logZ = out
    assert np.all(Gam >= 0)
    assert np.all((zvar > 0) | (V == 0)) and np.all(zvar <= V)
    # row 2 (all equal, V = 0): each of the two pairs is Phi(0)
    assert_allclose(logZ[2], 2 * np.log(0.5), rtol=1e-14)
    # row 1, true class 1 against class 0 far ahead: curvature tends to 1 / s^2
    assert_allclose(Gam[1, 0] * (1e-6 + 1e6 + 1e-12), 1.0, rtol=1e-9)


# ----------------------------------------------------------------------- prediction


def test_probit_predict_proba_rows_sum_to_one_and_match_enumeration():
    rng = np.random.default_rng(3)
    omega, V, v = rng.normal(size=(7, 5)), rng.uniform(0.1, 1.0, (7, 5)), 0.9
    p = probit_predict_proba(omega, V, v)
    assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)
    unnorm = np.ones_like(omega)
    for n in range(7):
        for c in range(5):
            for j in range(5):
                if j != c:
                    s = np.sqrt(v + V[n, c] + V[n, j])
                    unnorm[n, c] *= norm.cdf((omega[n, c] - omega[n, j]) / s)
    assert_allclose(p, unnorm / unnorm.sum(axis=1, keepdims=True), rtol=1e-12)


def test_probit_predict_proba_two_classes_closed_form():
    rng = np.random.default_rng(4)
    omega, V, v = rng.normal(size=(6, 2)), rng.uniform(0.1, 2.0, (6, 2)), 1.3
    p = probit_predict_proba(omega, V, v)
    assert_allclose(p[:, 1], norm.cdf((omega[:, 1] - omega[:, 0]) / np.sqrt(v + V.sum(1))))


def test_probit_predict_proba_argmax_follows_omega_when_variances_equal():
    rng = np.random.default_rng(5)
    omega = rng.normal(size=(200, 4))
    p = probit_predict_proba(omega, np.full((200, 4), 0.7), 2.0)
    assert_array_equal(p.argmax(axis=1), omega.argmax(axis=1))


def test_probit_predict_proba_finite_at_huge_margins():
    omega = np.array([[0.0, 1e6, -1e6], [5e7, 5e7, -5e7], [-1e8, -1e8, -1e8]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = probit_predict_proba(omega, np.full((3, 3), 1e-3), 1e-6)
    assert_allclose(p, [[0, 1, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-15)


# -------------------------------------------------------------------- v M-step, probit


def test_probit_pair_stats_matches_loops():
    rng = np.random.default_rng(6)
    y, zhat, zvar = rng.integers(0, 4, 5), rng.normal(size=(5, 4)), rng.uniform(size=(5, 4))
    dm, dv = probit_pair_stats(y, zhat, zvar)
    pairs = [(n, j) for n in range(5) for j in range(4) if j != y[n]]
    assert_allclose(dm, [zhat[n, y[n]] - zhat[n, j] for n, j in pairs], rtol=1e-15)
    assert_allclose(dv, [zvar[n, y[n]] + zvar[n, j] for n, j in pairs], rtol=1e-15)


@pytest.mark.parametrize("v, rtol", [(0.05, 3e-5), (0.5, 1e-7), (1.0, 1e-8), (30.0, 1e-8)])
def test_probit_v_objective_matches_quadrature(v, rtol):
    # 20 Gauss-Hermite nodes are exact to ~1e-8 while sqrt(dv / v) <= 2; at v = 0.05 the
    # last pair has sqrt(dv / v) = 6.3 and they leave a relative error of ~1e-5
    dm, dv = np.array([-2.0, 0.3, 1.5, 4.0]), np.array([0.2, 1.0, 0.01, 2.0])
    expected = 0.0
    for m, s2 in zip(dm, dv):
        sd = np.sqrt(s2)
        expected += integrate.quad(
            lambda d, m=m, sd=sd: norm.logcdf(d / np.sqrt(v)) * norm.pdf(d, m, sd),
            m - 14 * sd,
            m + 14 * sd,
            epsabs=1e-13,
            epsrel=1e-12,
            limit=200,
        )[0]
    assert_allclose(probit_v_objective(v, dm, dv), expected, rtol=rtol)


def _pairs(kind, P, seed):
    """Realistic pair statistics: (mean margin, spread of margins, typical dv, dv spread)."""
    center, spread, dv0, dv_spread = {
        "separated": (6.0, 2.0, 0.05, 1.0),
        "overlapping": (1.0, 2.0, 0.5, 1.0),
        "misclassified": (0.3, 3.0, 1.0, 1.0),
        "dv_small": (2.0, 1.5, 1e-6, 1.0),
        "dv_large": (3.0, 3.0, 20.0, 0.5),
        "wide_scale": (40.0, 30.0, 5.0, 1.0),
    }[kind]
    rng = np.random.default_rng(seed)
    dm = rng.normal(center, spread, P)
    return dm, rng.lognormal(np.log(dv0), dv_spread, P)


@pytest.mark.parametrize("kind", ["separated", "overlapping", "dv_large"])
def test_probit_v_update_reference_matches_dense_grid(kind):
    dm, dv = _pairs(kind, 300, 7)
    v_ref = probit_v_update_reference(dm, dv)
    # coarse grid over the bounds, then a fine one (neighbour ratio 1.0012) around its best
    coarse = np.geomspace(1e-3, 1e3, 121)
    k = np.argmax([probit_v_objective(v, dm, dv) for v in coarse])
    assert 0 < k < coarse.size - 1  # interior maximum
    fine = np.geomspace(coarse[k - 1], coarse[k + 1], 201)
    F = np.array([probit_v_objective(v, dm, dv) for v in fine])
    assert 0 < np.argmax(F) < fine.size - 1
    assert_allclose(v_ref, fine[np.argmax(F)], rtol=1.5e-3)
    assert probit_v_objective(v_ref, dm, dv) >= F.max() - 1e-9


def test_probit_v_update_reference_hits_lower_bound_without_uncertainty():
    # every pair correct and certain: F increases as v -> 0
    v = probit_v_update_reference(np.array([1.0, 2.0, 0.5]), np.zeros(3), bounds=(1e-3, 1e3))
    assert_allclose(v, 1e-3, rtol=1e-4)


@pytest.mark.parametrize(
    "kind", ["separated", "overlapping", "misclassified", "dv_small", "dv_large", "wide_scale"]
)
def test_probit_v_update_agrees_with_reference(kind):
    dm, dv = _pairs(kind, 10_000, 8)
    # a few badly misclassified pairs
    dm[:20] = -np.abs(dm[:20]) - 1.0
    v_ref = probit_v_update_reference(dm, dv)
    for v_old in (0.01, 1.0, 100.0):
        assert_allclose(probit_v_update(dm, dv, v_old), v_ref, rtol=1e-3)


def test_probit_v_weights_equal_repeated_pairs():
    dm, dv = _pairs("overlapping", 400, 11)
    counts = np.random.default_rng(12).integers(1, 4, dm.size)
    dm_rep, dv_rep = np.repeat(dm, counts), np.repeat(dv, counts)
    assert_allclose(
        probit_v_objective(1.7, dm, dv, weights=counts),
        probit_v_objective(1.7, dm_rep, dv_rep),
        rtol=1e-12,
    )
    v_rep = probit_v_update_reference(dm_rep, dv_rep)
    assert_allclose(probit_v_update_reference(dm, dv, weights=counts), v_rep, rtol=1e-5)
    assert_allclose(probit_v_update(dm, dv, 2.0, weights=counts), v_rep, rtol=1e-3)


def test_probit_v_update_without_pairs_keeps_v():
    assert probit_v_update(np.array([]), np.array([]), 3.5) == 3.5
    with pytest.raises(ValueError, match="at least one class pair"):
        probit_v_update_reference(np.array([]), np.array([]))


def test_probit_v_update_end_to_end_from_output_step():
    rng = np.random.default_rng(9)
    B, C = 2000, 4
    y = rng.integers(0, C, B)
    omega = rng.normal(size=(B, C))
    omega[np.arange(B), y] += 2.0
    V = rng.uniform(0.05, 0.5, (B, C))
    _, _, zhat, zvar, _ = probit_output(y, omega, V, 3.0)
    dm, dv = probit_pair_stats(y, zhat, zvar)
    assert dm.shape == (B * (C - 1),)
    assert_allclose(probit_v_update(dm, dv, 3.0), probit_v_update_reference(dm, dv), rtol=1e-3)


def _targets(name, seed, B, C):
    rng = np.random.default_rng(seed)
    if name == "gaussian":
        return rng.normal(size=(B, C))
    return rng.integers(0, C, size=B)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_every_likelihood_factor_obeys_the_derivative_identities_of_log_z(name):
    # one harness for all factors: g = d log Z / d omega, Gam = -d^2 log Z / d omega^2,
    # zhat = omega + V g, and zvar = V - V^2 Gam (the posterior of z_L)
    output = LIKELIHOODS[name].output
    rng = np.random.default_rng(11)
    B, C = 5, 3
    omega, V = rng.normal(size=(B, C)), rng.uniform(0.1, 1.5, size=(B, C))
    y, v = _targets(name, 12, B, C), 0.6
    step = output(y, omega, V, v)
    d1, d2 = _finite_differences(lambda o: output(y, o, V, v).logZ, omega, 1e-4)
    assert_allclose(step.g, d1, rtol=1e-7, atol=1e-9)
    assert_allclose(step.Gam, -d2, rtol=1e-5, atol=1e-7)
    assert_allclose(step.zhat, omega + V * step.g, rtol=1e-13)
    assert_allclose(step.zvar, V - V**2 * step.Gam, rtol=1e-10, atol=1e-14)
    lo, hi = LIKELIHOODS[name].v_bounds
    assert 0 < lo < v < hi
