"""Prediction: forward moment propagation with the weight posterior (ALGORITHM.md 6)."""

import numpy as np

from ._activations import ACTIVATIONS
from ._damp import augment, forward_layer


def forward_moments(X, layers, activation):
    """Mean and variance ``(omega, V)`` of the output pre-activations for inputs ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, N_0)
    layers : list of LayerState or of (m, c) pairs
        Weight posterior per layer, bias in the last column.
    activation : str
        Key of ``ACTIVATIONS``.

    Returns
    -------
    omega, V : ndarray of shape (n, N_L)

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[2.0, 1.0]]); c = np.array([[0.5, 0.0]])
    >>> omega, V = forward_moments(np.array([[1.0], [3.0]]), [(m, c)], "identity")
    >>> omega.ravel().tolist(), V.ravel().tolist()
    ([3.0, 7.0], [0.5, 4.5])
    """
    act = ACTIVATIONS[activation]
    xa, Da = augment(X)
    L = len(layers)
    for l, la in enumerate(layers):
        m, c = (la.m, la.c) if hasattr(la, "m") else la
        omega, V = forward_layer(xa, Da, m, c)
        if l < L - 1:
            xa, Da = augment(*act(omega, V, 0.0, 0.0)[:2])
    return omega, V


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
