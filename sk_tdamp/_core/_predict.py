"""Prediction: forward moment propagation with the weight posterior (ALGORITHM.md 6)."""

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
