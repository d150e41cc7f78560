"""Teacher-student recovery (ALGORITHM.md 9): data from a random sparse teacher MLP."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sk_tdamp import EMTDAMPRegressor
from sk_tdamp.datasets import make_teacher_student


# Over teacher seeds 0-4 for both depths (benchmarks/teacher_student.py) the input
# support is exact in 9 of 10 with the default n_init="auto"; the miss is one extra
# feature ((8,), seed 1). With n_init=1 the (8, 6) seed-4 student also collapses (every
# feature pruned); tests/test_regressor.py covers the restarts that fix it.
@pytest.mark.parametrize(("hidden", "seed"), [((8,), 0), ((8, 6), 2)])
def test_teacher_student_finds_input_support_and_reaches_noise_floor(hidden, seed):
    X, y, teacher = make_teacher_student(
        n_samples=1500, n_features=8, hidden_layer_sizes=hidden, density=0.5,
        input_density=0.5, noise_std=0.1, random_state=seed, return_teacher=True)
    assert 0 < teacher.active_masks[0].sum() < 8
    reg = EMTDAMPRegressor(hidden_layer_sizes=hidden, input_rho_init=0.5, max_iter=40,
                           batch_size=64, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X[:1000], y[:1000])
    # the active input features are exactly the teacher's
    assert_array_equal(reg.neuron_masks_[0], teacher.active_masks[0])
    # test error at the noise floor (noise variance 0.01; var(y) is about 0.2-0.3)
    mse = np.mean((reg.predict(X[1000:]) - y[1000:]) ** 2)
    assert mse < 1.3 * teacher.noise_variance
    # and the learned noise variance is the teacher's
    assert 0.7 < reg.noise_variance_ / teacher.noise_variance < 1.3
