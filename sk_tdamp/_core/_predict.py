"""Prediction: forward moment propagation with the weight posterior (ALGORITHM.md 6)."""

from dataclasses import dataclass

import numpy as np

from ._activations import ACTIVATIONS
from ._module_a import augment, forward_layer


@dataclass(frozen=True)
class LayerMoments:
    """The weight posterior of one layer as prediction reads it.

    Attributes
    ----------
    m, c : ndarray of shape (N_out, N_in + 1)
        Posterior means and variances, bias in the last column.
    mu : ndarray of shape (N_in,) or None
        Shift of the layer's inputs: the layer computes ``m [u - mu; 1]``.

    A :class:`~._state.LayerState` has the same three attributes and can be passed
    wherever a ``LayerMoments`` is expected.
    """

    m: np.ndarray
    c: np.ndarray
    mu: np.ndarray | None = None


def _propagate(X, layers, activation, depth):
    """Moments ``(xa, Da)`` of the (uncentered, augmented) input of layer ``depth``.

    Layers ``0 .. depth - 1`` are applied with their shifts; ``depth = len(layers)``
    returns the output pre-activations ``(omega, V)`` instead.
    """
    act = ACTIVATIONS[activation]
    xa, Da = augment(X)  # fresh arrays, centered in place
    L = len(layers)
    for l in range(depth):
        la = layers[l]
        if la.mu is not None:
            xa[:, :-1] -= la.mu
        omega, V = forward_layer(xa, Da, la.m, la.c)
        if l == L - 1:
            return omega, V
        xa, Da = augment(*act.u_moments(omega, V, 0.0, 0.0))
    return xa, Da


def forward_moments(X, layers, activation):
    """Mean and variance ``(omega, V)`` of the output pre-activations for inputs ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, N_0)
    layers : list of LayerMoments or LayerState
        Weight posterior per layer, bias in the last column, and the shift ``mu`` of
        the layer's inputs (see :func:`layer_input_sums`).
    activation : str
        Key of ``ACTIVATIONS``.

    Returns
    -------
    omega, V : ndarray of shape (n, N_L)

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[2.0, 1.0]]); c = np.array([[0.5, 0.0]])
    >>> X = np.array([[1.0], [3.0]])
    >>> omega, V = forward_moments(X, [LayerMoments(m, c)], "identity")
    >>> omega.ravel().tolist(), V.ravel().tolist()
    ([3.0, 7.0], [0.5, 4.5])
    >>> omega, V = forward_moments(X, [LayerMoments(m, c, np.array([2.0]))], "identity")
    >>> omega.ravel().tolist(), V.ravel().tolist()
    ([-1.0, 3.0], [0.5, 0.5])
    """
    return _propagate(X, layers, activation, len(layers))


def centering_rows(X, max_rows=8192):
    """The rows of ``X`` whose inputs set the layer shifts: at most ``max_rows``,
    evenly spaced (every ``ceil(n / max_rows)``-th row, from the first).

    A shift only needs to be near the inputs' mean; on Fashion-MNIST (60,000 rows,
    784-300-100-10) the exact mean costs about half an epoch of training.

    Examples
    --------
    >>> import numpy as np
    >>> centering_rows(np.arange(10.0)[:, None], max_rows=4).ravel().tolist()
    [0.0, 3.0, 6.0, 9.0]
    """
    step = -(-X.shape[0] // max_rows)
    return X[::step]


def layer_input_sums(X, layers, activation, depth, chunk_size=256):
    """Sum over the rows of ``X`` of the mean input of layer ``depth``.

    The inputs of layer 0 are the data; those of a hidden layer are the means of its
    activations under the current posterior of the layers before it (their shifts
    included), propagated as at prediction. Divided by the number of rows this is the
    shift ``mu`` that centers the layer's inputs (doc/algorithm.rst, "Centered layer
    inputs"); the sum (rather than the mean) lets federated clients pool it exactly.
    ``X`` is processed in chunks of ``chunk_size`` rows, so memory does not grow with
    the number of rows.

    Parameters
    ----------
    X : ndarray of shape (n, N_0)
    layers : list of LayerMoments or LayerState
    activation : str
    depth : int
        Index of the layer whose inputs are summed, ``0 <= depth < len(layers)``.
    chunk_size : int, default=256

    Returns
    -------
    sums : ndarray of shape (N_depth,)

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[1.0, 0.0]]); c = np.zeros((1, 2))
    >>> X = np.array([[-1.0], [3.0]])
    >>> plain, shifted = LayerMoments(m, c), LayerMoments(m, c, np.array([1.0]))
    >>> layer_input_sums(X, [plain, plain], "identity", 0).tolist()
    [2.0]
    >>> layer_input_sums(X, [shifted, plain], "identity", 1).tolist()
    [0.0]
    """
    total = np.zeros(layers[depth].m.shape[1] - 1)
    for start in range(0, X.shape[0], chunk_size):
        xa = _propagate(X[start:start + chunk_size], layers, activation, depth)[0]
        total += xa[:, :-1].sum(axis=0)
    return total


def center_inputs(X, layers, activation, chunk_size=256):
    """Set every layer's input shift ``mu`` to the mean of its inputs over ``X``, in place.

    Layer by layer: the shift of layer ``d`` is the mean of its inputs under the layers
    before it, already centered; the same as :func:`layer_input_sums` of each layer in
    turn divided by the number of rows, but each layer's products are computed once
    (the inputs of the current layer are kept for all rows, chunk by chunk, rather than
    propagated again from the data for every layer).

    Parameters
    ----------
    X : ndarray of shape (n, N_0)
        The rows whose inputs set the shifts (see :func:`centering_rows`).
    layers : list of LayerState
        Their ``mu`` are set, from the first layer to the last.
    activation : str
    chunk_size : int, default=256
    """
    act = ACTIVATIONS[activation]
    n = X.shape[0]
    inputs = [(X[start:start + chunk_size], None) for start in range(0, n, chunk_size)]
    for depth, la in enumerate(layers):
        total = np.zeros(la.m.shape[1] - 1)
        for xh, _ in inputs:
            total += xh.sum(axis=0)
        la.mu = total / n
        if depth == len(layers) - 1:
            break
        nxt = []
        for xh, D in inputs:  # one layer further, as _propagate does it
            xa, Da = augment(xh, D)
            xa[:, :-1] -= la.mu
            omega, V = forward_layer(xa, Da, la.m, la.c)
            nxt.append(act.u_moments(omega, V, 0.0, 0.0))
        inputs = nxt


def one_pass_variance(c, sigma2, bias_var, memory):
    """Posterior variances with the data evidence counted once instead of ``memory`` times.

    PasP with a memory of ``E`` epochs holds about ``E`` passes of evidence, so the
    weight posterior is about ``E`` times too precise for a Bayesian predictive. With the
    prior precision ``p0`` (``1 / sigma2`` for weights, ``1 / bias_var`` for biases) and
    the posterior precision ``p = 1 / c``, the data part ``p - p0`` is divided by ``E``:
    ``c1 = 1 / (p0 + (p - p0) / E)``. Entries already at or above the prior variance
    (weak evidence, or a spike-slab mixture) are left as they are.

    Parameters
    ----------
    c : ndarray of shape (N_out, N_in + 1)
        Posterior variances, bias in the last column (zeros for pruned weights).
    sigma2, bias_var : float
        Prior variances of the weights and the biases.
    memory : float
        PasP memory ``E`` in epochs.

    Returns
    -------
    c1 : ndarray of the same shape

    Examples
    --------
    >>> import numpy as np
    >>> one_pass_variance(np.array([[0.1, 2.0, 0.5]]), 1.0, 1.0, 4.0).round(4).tolist()
    [[0.3077, 2.0, 0.8]]
    """
    p0 = np.full(c.shape[1], 1.0 / sigma2)
    p0[-1] = 1.0 / bias_var
    # 1 / (p0 + (1/c - p0) / E) rewritten without 1/c, which overflows for tiny c.
    q = p0 * c
    c1 = memory * c / (1.0 + (memory - 1.0) * q)
    return np.where((c > 0) & (q < 1.0), c1, c)
