"""PosteriorAverage against the explicit weighted mixture of the posteriors it saw."""

from types import SimpleNamespace

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sk_tdamp._core._pasp import PosteriorAverage


def _states(rng, n_steps, shapes=((3, 4), (2, 4))):
    return [SimpleNamespace(layers=[
        SimpleNamespace(m=rng.normal(size=s), c=rng.uniform(0.1, 1.0, size=s))
        for s in shapes]) for _ in range(n_steps)]


@pytest.mark.parametrize("epochs, batch_size, n_samples, snapshots, k", [
    (1.0, 10, 50, None, 1), (0.5, 10, 40, None, 1), (3.0, 7, 20, None, 1),
    (1.0, 10, 50, 5, 1),  # 5 minibatches in the window: every one is a snapshot
    (2.0, 5, 60, 8, 3),  # 24 minibatches in the window, 8 snapshots: every third
    (1.0, 2, 50, 4, 6)])
def test_average_is_the_moment_matched_mixture_with_its_weights(epochs, batch_size,
                                                               n_samples, snapshots, k):
    rng = np.random.default_rng(0)
    chain = _states(rng, 40)
    avg = PosteriorAverage(epochs, snapshots=snapshots)
    for st in chain:
        avg.update(st, batch_size, n_samples)
    states = chain[::k]  # snapshots: minibatches 1, 1 + k, 1 + 2k, ...
    # weights of the recursion x <- x + a_t (y_t - x): w_t = a_t prod_{s > t} (1 - a_s)
    rates = [min(1.0, max(k * batch_size / (epochs * n_samples), 2.0 / (t + 1)))
             for t in range(1, len(states) + 1)]
    w = np.array([a * np.prod([1.0 - b for b in rates[t + 1:]])
                  for t, a in enumerate(rates)])
    assert_allclose(w.sum(), 1.0)
    for l, (mbar, cbar, spread) in enumerate(avg.moments()):
        m = np.array([st.layers[l].m for st in states])
        c = np.array([st.layers[l].c for st in states])
        ref_m = np.tensordot(w, m, axes=1)
        assert_allclose(mbar, ref_m, rtol=1e-12)
        assert_allclose(cbar, np.tensordot(w, c, axes=1), rtol=1e-12)
        # law of total variance of the mixture: spread = sum_t w_t (m_t - mbar)^2
        assert_allclose(spread, np.tensordot(w, (m - ref_m) ** 2, axes=1), atol=1e-12)


def test_average_of_a_constant_chain_is_that_posterior():
    rng = np.random.default_rng(1)
    st = _states(rng, 1)[0]
    avg = PosteriorAverage(2.0)
    for _ in range(5):
        avg.update(st, 4, 40)
    for la, (mbar, cbar, spread) in zip(st.layers, avg.moments()):
        assert_allclose(mbar, la.m, rtol=1e-12)
        assert_allclose(cbar, la.c, rtol=1e-12)
        assert_allclose(spread, 0.0, atol=1e-12)


def test_update_does_not_alias_the_state():
    rng = np.random.default_rng(2)
    st = _states(rng, 1)[0]
    avg = PosteriorAverage(1.0)
    avg.update(st, 10, 10)
    before = [m.copy() for m, _, _ in avg.moments()]
    for la in st.layers:
        la.m += 1.0  # in-place change of the chain's arrays after the update
    for b, (m, _, _) in zip(before, avg.moments()):
        assert_allclose(m, b)
