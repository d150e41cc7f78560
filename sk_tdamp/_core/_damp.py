"""Module A of TDAMP: deep approximate message passing through the layers.

Each function is one line group of ALGORITHM.md 5.1-5.2, written as matrix products
over a minibatch. Per layer (0-based index ``l``: input ``u_l``, output ``z_{l+1}``):

=========  =====================================================  ===============
symbol     meaning                                                shape
=========  =====================================================  ===============
xh, D      posterior mean and variance of the layer input u_l      (B, N_in)
m, c       weight posterior mean and variance (bias last column)   (N_out, N_in+1)
omega, V   forward message N(omega, V) on z_{l+1}                  (B, N_out)
g, Gam     d log Z / d omega and -d^2 log Z / d omega^2            (B, N_out)
Am, Bm     backward message exp(Bm u - Am u^2 / 2) on u_l          (B, N_in)
H, G       weight evidence exp(H w - G w^2 / 2) of the minibatch  (N_out, N_in+1)
=========  =====================================================  ===============

``D = None`` stands for exactly known inputs (the data, ``D_0 = 0``), which saves the
products that would multiply zeros. The ``old`` tuples carry the previous sweep's
values for the time-lagged (Onsager) corrections; ``None`` drops them (first sweep).
"""

import numpy as np


def forward_layer(xh, D, m, c, old=None):
    """Forward message ``(omega, V)`` on the pre-activations (ALGORITHM.md 5.1).

    Parameters
    ----------
    xh, D : ndarray of shape (B, N_in); D may be None
        Mean and variance of the layer input.
    m, c : ndarray of shape (N_out, N_in + 1)
        Weight posterior, bias in the last column.
    old : tuple (g_old, xh_old, m_old) or None
        Previous sweep's ``g`` of this layer, input mean and weight mean.

    Returns
    -------
    omega, V : ndarray of shape (B, N_out)

    Examples
    --------
    >>> import numpy as np
    >>> omega, V = forward_layer(np.ones((1, 2)), None, np.ones((1, 3)), np.ones((1, 3)))
    >>> omega.tolist(), V.tolist()
    ([[3.0]], [[3.0]])
    """
    W, b, cW, cb = m[:, :-1], m[:, -1], c[:, :-1], c[:, -1]
    omega = xh @ W.T + b
    V = (xh * xh) @ cW.T + cb
    if D is not None:
        V += D @ (W * W + cW).T
    if old is not None:
        g_old, xh_old, m_old = old
        corr = (xh * xh_old) @ cW.T + cb
        if D is not None:
            corr += D @ (W * m_old[:, :-1]).T
        omega -= g_old * corr
    return omega, V


def hidden_g_gam(omega, V, zh, zv):
    """Backward scalars of a hidden layer from its tilted moments (ALGORITHM.md 5.2).

    ``g = (E[z] - omega) / V`` and ``Gam = (V - Var[z]) / V^2``, clipped at 0.
    """
    g = (zh - omega) / V
    Gam = np.maximum((V - zv) / (V * V), 0.0)
    return g, Gam


def weight_evidence(xh, D, g, Gam, m, old=None):
    """This minibatch's evidence ``(H, G)`` on the layer's weights (ALGORITHM.md 5.2).

    ``G`` is clipped at 0 elementwise. ``old`` is ``(g_old, m_old)`` or None.

    Returns
    -------
    H, G : ndarray of shape (N_out, N_in + 1)
    """
    xsq = xh * xh
    GamX2 = Gam.T @ xsq
    G = np.empty_like(m)
    H = np.empty_like(m)
    if D is None:
        G[:, :-1] = GamX2
    else:
        G[:, :-1] = GamX2 + Gam.T @ D - (g * g).T @ D
    G[:, -1] = Gam.sum(axis=0)
    H[:, :-1] = g.T @ xh + m[:, :-1] * GamX2
    H[:, -1] = g.sum(axis=0) + m[:, -1] * G[:, -1]
    if old is not None and D is not None:
        g_old, m_old = old
        H[:, :-1] -= m_old[:, :-1] * ((g * g_old).T @ D)
    np.maximum(G, 0.0, out=G)
    return H, G


def backward_message(xh, g, Gam, m, c, old=None):
    """Message ``(Am, Bm)`` from a layer to its inputs (ALGORITHM.md 5.2).

    ``old`` is ``(g_old, xh_old)`` or None. ``Am`` is clipped at 0.

    Returns
    -------
    Am, Bm : ndarray of shape (B, N_in)
    """
    W, cW = m[:, :-1], c[:, :-1]
    W2 = W * W
    GamW2 = Gam @ W2
    Am = GamW2 + Gam @ cW - (g * g) @ cW
    Bm = g @ W + xh * GamW2
    if old is not None:
        g_old, xh_old = old
        Bm -= xh_old * ((g * g_old) @ cW)
    np.maximum(Am, 0.0, out=Am)
    return Am, Bm
