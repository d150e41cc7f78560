"""Synthetic data: a random group-sparse teacher network and its noisy outputs."""

import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state

_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "identity": lambda z: z,
}
_BIAS_STD = 0.1


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_density(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}.")
    return float(value)


def _check_hidden_layer_sizes(hidden_layer_sizes):
    sizes = hidden_layer_sizes
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes
    ):
        raise ValueError(
            "hidden_layer_sizes must be a positive integer or a sequence of positive "
            f"integers, got {hidden_layer_sizes!r}."
        )
    return tuple(int(s) for s in sizes)


def _draw_active_mask(width, density, rng):
    """Each of ``width`` neurons is active with probability ``density``; at least one is."""
    mask = rng.uniform(size=width) < density
    if not mask.any():
        mask[rng.randint(width)] = True
    return mask


def _draw_teacher(layer_sizes, densities, rng):
    """Draw weights (scikit-learn orientation) with zero rows for inactive neurons."""
    coefs, intercepts, active_masks = [], [], []
    for n_in, n_out, density in zip(layer_sizes[:-1], layer_sizes[1:], densities):
        mask = _draw_active_mask(n_in, density, rng)
        weights = rng.normal(scale=1.0 / np.sqrt(mask.sum()), size=(n_in, n_out))
        weights[~mask] = 0.0
        coefs.append(weights)
        intercepts.append(rng.normal(scale=_BIAS_STD, size=n_out))
        active_masks.append(mask)
    return coefs, intercepts, active_masks


def _teacher_forward(X, coefs, intercepts, activation):
    """Output pre-activation of the teacher network; hidden layers use ``activation``."""
    f = _ACTIVATIONS[activation]
    u = X
    for layer, (weights, bias) in enumerate(zip(coefs, intercepts)):
        z = u @ weights + bias
        u = f(z) if layer < len(coefs) - 1 else z
    return u


def make_teacher_student(
    n_samples=1000,
    n_features=10,
    hidden_layer_sizes=(20,),
    *,
    density=0.5,
    input_density=1.0,
    noise_std=0.1,
    activation="relu",
    n_outputs=1,
    random_state=None,
    return_teacher=False,
):
    r"""Generate regression data from a random group-sparse teacher network.

    A multilayer perceptron (the teacher) is drawn at random with the
    structure that EM-TDAMP's group-sparse prior assumes: each neuron (input
    feature or hidden unit) is either active or inactive, and an inactive
    neuron has all of its outgoing weights exactly zero, so it plays no part
    in the output. Inputs are standard Gaussian and the targets are the
    teacher's outputs plus Gaussian noise. A student fitted on ``(X, y)`` can
    then be checked against the known active neurons and noise level.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of samples.
    n_features : int, default=10
        Number of input features.
    hidden_layer_sizes : int or sequence of int, default=(20,)
        Width of each hidden layer of the teacher; an empty sequence gives a
        linear teacher.
    density : float in (0, 1], default=0.5
        Probability that a hidden neuron is active. At least one neuron of
        each hidden layer is active.
    input_density : float in (0, 1], default=1.0
        Probability that an input feature is active (is used by the
        teacher). At least one feature is active.
    noise_std : float >= 0, default=0.1
        Standard deviation of the Gaussian noise added to the outputs.
    activation : {"relu", "identity"}, default="relu"
        Activation of the hidden layers. The output layer is linear.
    n_outputs : int, default=1
        Number of outputs (regression targets).
    random_state : int, RandomState instance or None, default=None
        Seed of the draws of the teacher, the inputs and the noise. The
        teacher is drawn first, so it depends on ``random_state`` and on the
        architecture but not on ``n_samples``.
    return_teacher : bool, default=False
        If True, also return the teacher.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Inputs, i.i.d. standard Gaussian.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Noisy teacher outputs; 1-D when ``n_outputs == 1``.
    teacher : :class:`~sklearn.utils.Bunch`
        Only when ``return_teacher=True``, with the fields

        coefs : list of ndarray
            ``coefs[l]`` has shape (fan_in, fan_out) as
            ``MLPRegressor.coefs_``: row ``i`` holds the outgoing weights of
            neuron ``i`` of layer ``l`` (layer 0 being the input features),
            i.e. one group of the prior, and is zero when that neuron is
            inactive.
        intercepts : list of ndarray
            ``intercepts[l]`` has shape (fan_out,).
        active_masks : list of ndarray of bool
            One mask per layer of neurons whose outgoing weights can be
            pruned: the input features (length ``n_features``), then each
            hidden layer.
        activation : str
            The hidden activation used.
        noise_variance : float
            ``noise_std ** 2``.
        y_clean : ndarray of the same shape as ``y``
            Teacher outputs before noise.

    Raises
    ------
    ValueError
        If an argument is out of range or of the wrong type.

    Notes
    -----
    Weight matrix ``l`` has i.i.d. entries
    :math:`\mathcal{N}(0, 1/N^{\mathrm{act}}_l)` on the rows of active
    neurons, where :math:`N^{\mathrm{act}}_l` is the number of active neurons
    feeding the layer. This matches the default slab variance
    :math:`\sigma_l^2 = 1/N_{l-1}` of the group prior restricted to active
    groups and keeps the pre-activations of order one (with ReLU, their
    second moment roughly halves from one hidden layer to the next). Biases
    are :math:`\mathcal{N}(0, 0.1^2)`.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp.datasets import make_teacher_student
    >>> X, y, teacher = make_teacher_student(
    ...     n_samples=200, n_features=8, hidden_layer_sizes=(16,), density=0.25,
    ...     input_density=0.5, random_state=0, return_teacher=True)
    >>> X.shape, y.shape
    ((200, 8), (200,))
    >>> [mask.shape for mask in teacher.active_masks]
    [(8,), (16,)]
    >>> bool(np.all(teacher.coefs[1][~teacher.active_masks[1]] == 0.0))
    True
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_features = _check_int(n_features, "n_features", 1)
    n_outputs = _check_int(n_outputs, "n_outputs", 1)
    hidden = _check_hidden_layer_sizes(hidden_layer_sizes)
    density = _check_density(density, "density")
    input_density = _check_density(input_density, "input_density")
    if (
        isinstance(noise_std, bool)
        or not isinstance(noise_std, numbers.Real)
        or not np.isfinite(noise_std)
        or noise_std < 0
    ):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}.")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}.")
    rng = check_random_state(random_state)

    layer_sizes = (n_features, *hidden, n_outputs)
    densities = (input_density,) + (density,) * len(hidden)
    coefs, intercepts, active_masks = _draw_teacher(layer_sizes, densities, rng)
    X = rng.standard_normal(size=(n_samples, n_features))
    y_clean = _teacher_forward(X, coefs, intercepts, activation)
    y = y_clean + noise_std * rng.standard_normal(size=y_clean.shape)
    if n_outputs == 1:
        y, y_clean = y.ravel(), y_clean.ravel()
    if not return_teacher:
        return X, y
    teacher = Bunch(
        coefs=coefs,
        intercepts=intercepts,
        active_masks=active_masks,
        activation=activation,
        noise_variance=float(noise_std) ** 2,
        y_clean=y_clean,
    )
    return X, y, teacher
