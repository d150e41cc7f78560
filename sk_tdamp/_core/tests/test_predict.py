"""Prediction helpers: one-pass variances and forward moment propagation."""

import warnings

import numpy as np
from numpy.testing import assert_allclose

from sk_tdamp._core._predict import LayerMoments, forward_moments, one_pass_variance


def test_one_pass_variance_divides_the_data_precision_by_the_memory():
    rng = np.random.default_rng(0)
    sigma2, bias_var, E = 0.5, 2.0, 4.0
    c = rng.uniform(1e-3, 3.0, size=(5, 7))
    got = one_pass_variance(c, sigma2, bias_var, E)
    p0 = np.r_[np.full(6, 1 / sigma2), 1 / bias_var]
    p = 1 / c
    want = np.where(p > p0, 1 / (p0 + (p - p0) / E), c)  # the definition, term by term
    assert_allclose(got, want, rtol=1e-12)
    assert_allclose(one_pass_variance(c, sigma2, bias_var, 1.0), c, rtol=1e-12)


def test_one_pass_variance_tiny_and_zero_variances_stay_finite_without_warnings():
    c = np.array([[1e-310, 0.0, 1e-300, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = one_pass_variance(c, 1.0, 1.0, 4.0)
    assert np.isfinite(got).all()
    # E c / (1 + (E - 1) c / sigma2): four times the tiny variances, zero stays zero
    assert_allclose(got[0, :3], [4e-310, 0.0, 4e-300], rtol=1e-6)


def test_forward_moments_of_a_linear_layer_are_exact():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 3))
    m, c = rng.standard_normal((2, 4)), rng.uniform(0.1, 1.0, (2, 4))
    mean, var = forward_moments(X, [LayerMoments(m, c)], "relu")
    Xa = np.c_[X, np.ones(4)]
    assert_allclose(mean, Xa @ m.T)
    assert_allclose(var, (Xa ** 2) @ c.T)
