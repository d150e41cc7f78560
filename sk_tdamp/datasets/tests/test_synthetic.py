"""Tests of the teacher-student data generator."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sk_tdamp.datasets import make_teacher_student


def _forward(X, coefs, intercepts, activation):
    """Reference forward pass written independently of the generator."""
    u = X
    for k, (W, b) in enumerate(zip(coefs, intercepts)):
        z = u @ W + b
        if k == len(coefs) - 1:
            return z
        u = np.maximum(z, 0.0) if activation == "relu" else z


def test_make_teacher_student_shapes_and_defaults():
    X, y = make_teacher_student(random_state=0)
    assert X.shape == (1000, 10) and y.shape == (1000,)
    assert X.dtype == np.float64 and y.dtype == np.float64
    X, y = make_teacher_student(n_samples=7, n_features=3, n_outputs=4, random_state=0)
    assert X.shape == (7, 3) and y.shape == (7, 4)


def test_make_teacher_student_is_deterministic():
    kwargs = {"n_samples": 50, "hidden_layer_sizes": (6, 5), "return_teacher": True}
    X1, y1, t1 = make_teacher_student(random_state=3, **kwargs)
    X2, y2, t2 = make_teacher_student(random_state=np.random.RandomState(3), **kwargs)
    assert_array_equal(X1, X2)
    assert_array_equal(y1, y2)
    for a, b in zip(t1.coefs + t1.active_masks, t2.coefs + t2.active_masks):
        assert_array_equal(a, b)
    X3, _ = make_teacher_student(n_samples=50, hidden_layer_sizes=(6, 5), random_state=4)
    assert not np.allclose(X1, X3)


def test_make_teacher_student_teacher_does_not_depend_on_n_samples():
    _, _, small = make_teacher_student(n_samples=5, random_state=1, return_teacher=True)
    _, _, large = make_teacher_student(n_samples=500, random_state=1, return_teacher=True)
    for a, b in zip(small.coefs + small.intercepts, large.coefs + large.intercepts):
        assert_array_equal(a, b)


def test_make_teacher_student_inactive_neurons_have_zero_outgoing_weights():
    _, _, teacher = make_teacher_student(
        n_features=30,
        hidden_layer_sizes=(40, 25),
        density=0.4,
        input_density=0.5,
        random_state=2,
        return_teacher=True,
    )
    widths = [30, 40, 25]
    assert len(teacher.active_masks) == 3 and len(teacher.coefs) == 3
    for mask, W, width in zip(teacher.active_masks, teacher.coefs, widths):
        assert mask.dtype == bool and mask.shape == (width,)
        assert W.shape[0] == width
        # with these seeds and densities, both kinds occur
        assert 0 < mask.sum() < width
        assert np.all(W[~mask] == 0.0)
        assert np.all(W[mask] != 0.0)
    assert [W.shape for W in teacher.coefs] == [(30, 40), (40, 25), (25, 1)]
    assert [b.shape for b in teacher.intercepts] == [(40,), (25,), (1,)]


def test_make_teacher_student_density_fraction_matches():
    _, _, teacher = make_teacher_student(
        hidden_layer_sizes=(4000,), density=0.3, random_state=0, return_teacher=True
    )
    # Bernoulli(0.3) over 4000 neurons: standard error 0.007
    assert_allclose(teacher.active_masks[1].mean(), 0.3, atol=0.03)
    assert teacher.active_masks[0].all()  # input_density=1.0 keeps every feature


def test_make_teacher_student_keeps_one_neuron_per_layer():
    _, _, teacher = make_teacher_student(
        hidden_layer_sizes=(10, 10),
        density=1e-9,
        input_density=1e-9,
        random_state=0,
        return_teacher=True,
    )
    assert [int(mask.sum()) for mask in teacher.active_masks] == [1, 1, 1]


@pytest.mark.parametrize("activation", ["relu", "identity"])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_make_teacher_student_y_clean_is_forward_pass(activation, n_outputs):
    X, y, teacher = make_teacher_student(
        n_samples=300,
        n_features=6,
        hidden_layer_sizes=(12, 8),
        activation=activation,
        n_outputs=n_outputs,
        random_state=5,
        return_teacher=True,
    )
    expected = _forward(X, teacher.coefs, teacher.intercepts, activation)
    if n_outputs == 1:
        expected = expected.ravel()
    assert teacher.activation == activation
    assert teacher.y_clean.shape == y.shape
    assert_allclose(teacher.y_clean, expected, rtol=1e-12, atol=1e-12)


def test_make_teacher_student_identity_teacher_is_linear():
    X, _, teacher = make_teacher_student(
        n_samples=40, hidden_layer_sizes=(7,), activation="identity", random_state=6,
        return_teacher=True,
    )  # fmt: skip
    (W1, W2), (b1, b2) = teacher.coefs, teacher.intercepts
    assert_allclose(teacher.y_clean, (X @ (W1 @ W2) + b1 @ W2 + b2).ravel(), rtol=1e-12)


def test_make_teacher_student_noise_level_matches_noise_std():
    _, y, teacher = make_teacher_student(
        n_samples=20000, noise_std=0.3, random_state=7, return_teacher=True
    )
    residual = y - teacher.y_clean
    # standard errors: 0.3 / sqrt(20000) = 0.002 for the mean, 0.3 / sqrt(40000) = 0.0015
    # for the standard deviation
    assert_allclose(residual.mean(), 0.0, atol=0.008)
    assert_allclose(residual.std(), 0.3, rtol=0.02)
    assert teacher.noise_variance == pytest.approx(0.09)


def test_make_teacher_student_zero_noise_gives_clean_targets():
    _, y, teacher = make_teacher_student(noise_std=0.0, random_state=8, return_teacher=True)
    assert_array_equal(y, teacher.y_clean)
    assert teacher.noise_variance == 0.0


def test_make_teacher_student_first_layer_preactivations_are_order_one():
    X, _, teacher = make_teacher_student(
        n_samples=5000, n_features=50, hidden_layer_sizes=(200,), input_density=0.4,
        random_state=9, return_teacher=True,
    )  # fmt: skip
    z = X @ teacher.coefs[0] + teacher.intercepts[0]
    # weights N(0, 1/n_active) on active inputs: per-unit variance averages to 1 (+ bias)
    assert_allclose(z.var(axis=0).mean(), 1.0, atol=0.1)


def test_make_teacher_student_linear_teacher_without_hidden_layers():
    X, y, teacher = make_teacher_student(
        n_samples=20, n_features=5, hidden_layer_sizes=(), input_density=0.6,
        noise_std=0.0, random_state=10, return_teacher=True,
    )  # fmt: skip
    assert len(teacher.coefs) == 1 and len(teacher.active_masks) == 1
    assert_allclose(y, (X @ teacher.coefs[0] + teacher.intercepts[0]).ravel(), rtol=1e-12)


def test_make_teacher_student_accepts_int_hidden_layer_sizes():
    _, _, teacher = make_teacher_student(
        n_samples=5, hidden_layer_sizes=9, random_state=0, return_teacher=True
    )
    assert [W.shape for W in teacher.coefs] == [(10, 9), (9, 1)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_samples": 0}, "n_samples must be an integer >= 1, got 0"),
        ({"n_samples": 10.5}, "n_samples must be an integer >= 1"),
        ({"n_features": True}, "n_features must be an integer >= 1"),
        ({"n_outputs": 0}, "n_outputs must be an integer >= 1"),
        (
            {"hidden_layer_sizes": (5, 0)},
            "hidden_layer_sizes must be a positive integer",
        ),
        ({"hidden_layer_sizes": "20"}, "hidden_layer_sizes must be a positive integer"),
        ({"hidden_layer_sizes": None}, "hidden_layer_sizes must be a positive integer"),
        ({"density": 0.0}, r"density must be a number in \(0, 1\], got 0.0"),
        ({"density": 1.5}, r"density must be a number in \(0, 1\]"),
        ({"input_density": -0.1}, r"input_density must be a number in \(0, 1\]"),
        ({"noise_std": -1.0}, "noise_std must be a finite number >= 0"),
        ({"noise_std": np.inf}, "noise_std must be a finite number >= 0"),
        ({"activation": "tanh"}, r"activation must be one of \['identity', 'relu'\]"),
    ],
)
def test_make_teacher_student_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_teacher_student(random_state=0, **kwargs)
