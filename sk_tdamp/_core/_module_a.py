"""Module A of TDAMP: deep approximate message passing through the layers.

Each formula function is one line group of ALGORITHM.md 5.1-5.2, written as matrix
products over a minibatch; :func:`forward_sweep` and :func:`backward_sweep` run them over
the layers on one minibatch's :class:`Messages`. Per layer (0-based index ``l``: input
``u_l``, output ``z_{l+1}``):

=========  =====================================================  ===============
symbol     meaning                                                shape
=========  =====================================================  ===============
xa, Da     mean and variance of the layer input u_l, augmented   (B, N_in+1)
           with the constant bias input (xa[:, -1] = 1, Da[:, -1] = 0);
           with an input shift mu, xa holds the centered mean xh - mu
m, c       weight posterior mean and variance (bias last column)   (N_out, N_in+1)
omega, V   forward message N(omega, V) on z_{l+1}                  (B, N_out)
g, Gam     d log Z / d omega and -d^2 log Z / d omega^2            (B, N_out)
Am, Bm     backward message exp(Bm u - Am u^2 / 2) on u_l          (B, N_in)
H, G       weight evidence exp(H w - G w^2 / 2) of the minibatch  (N_out, N_in+1)
=========  =====================================================  ===============

``Da = None`` stands for exactly known inputs (the data, ``D_0 = 0``), which saves the
products that would multiply zeros. Augmenting the inputs with the bias column keeps
every product on contiguous arrays (a strided view of the weight part costs about 2x).
Onsager term. On the first layer, whose inputs are data, the forward message carries
the GAMP correction ``omega = sum m xa - g_old V`` (``g_old`` from the previous sweep of
the same minibatch); it makes the fixed point of a linear-Gaussian layer the exact
Bayesian posterior mean. The spec's time-lagged terms on layers with uncertain inputs
(``xa xa_old c + m m_old Da`` in ``omega``, ``m_old g g_old Da`` in ``H``,
``xh_old c g g_old`` in ``Bm``) are left out: with them a 64-300-100-10 network
diverged within one epoch, without them it trains (doc/algorithm.rst, "Deep networks").

Self terms and clipping. The spec's precisions ``G`` (weights) and ``Am`` (activations)
contain ``-D g^2`` and ``-c g^2`` and are clipped at 0. The self terms of ``H`` and ``Bm``
decide how much of the gradient of the variance ``V`` the update follows (``V`` depends on
the weights through ``D m^2`` and on the inputs through ``xh^2 c``). The spec's
``m sum xa^2 Gam`` and ``xh sum m^2 Gam`` follow all of it, which pushes weights and
activations outward whenever residuals exceed their predicted variance; with two hidden
layers it made the posterior means grow geometrically. For the weights we use the
Gauss-Newton form ``H = sum xa g + m G``, which follows none of it. For the activations
we keep its inward half: with ``S = sum_k m^2 Gam``,
``Bm = sum m g + xh min(S, Am)``, the spec's term where the variance gradient pulls
``xh`` toward 0 (``Am > S``, residuals smaller than predicted) and Gauss-Newton where it
would push outward. With Gauss-Newton there too, long runs on Fashion-MNIST broke down
(doc/algorithm.rst, "Deep networks" and "Breakdown of long runs").
"""

from dataclasses import dataclass

import numpy as np

from ._activations import ACTIVATIONS
from ._likelihoods import LIKELIHOODS


def augment(xh, D=None):
    """Append the constant bias input: ``xa = [xh, 1]`` and ``Da = [D, 0]``.

    Examples
    --------
    >>> import numpy as np
    >>> augment(np.array([[2.0]]))[0].tolist()
    [[2.0, 1.0]]
    """
    B, n = xh.shape
    xa = np.empty((B, n + 1))
    xa[:, :-1] = xh
    xa[:, -1] = 1.0
    if D is None:
        return xa, None
    Da = np.zeros((B, n + 1))
    Da[:, :-1] = D
    return xa, Da


def forward_layer(xa, Da, m, c, g_old=None):
    """Forward message ``(omega, V)`` on the pre-activations (ALGORITHM.md 5.1).

    Parameters
    ----------
    xa, Da : ndarray of shape (B, N_in + 1); Da may be None
        Mean and variance of the augmented layer input.
    m, c : ndarray of shape (N_out, N_in + 1)
        Weight posterior, bias in the last column.
    g_old : ndarray of shape (B, N_out) or None
        Previous sweep's ``g`` of this layer, for the Onsager term (data inputs only,
        ``Da is None``; ignored otherwise).

    Returns
    -------
    omega, V : ndarray of shape (B, N_out)

    Examples
    --------
    >>> import numpy as np
    >>> omega, V = forward_layer(np.ones((1, 3)), None, np.ones((1, 3)), np.ones((1, 3)))
    >>> omega.tolist(), V.tolist()
    ([[3.0]], [[3.0]])
    """
    omega = xa @ m.T
    V = (xa * xa) @ c.T
    if Da is not None:
        V += Da @ (m * m + c).T
    if g_old is not None and Da is None:
        omega -= g_old * V
    return omega, V


def hidden_g_gam(omega, V, zh, zv):
    """Backward scalars of a hidden layer from its tilted moments (ALGORITHM.md 5.2).

    ``g = (E[z] - omega) / V`` and ``Gam = (V - Var[z]) / V^2``, clipped at 0.
    """
    g = (zh - omega) / V
    Gam = np.maximum((V - zv) / (V * V), 0.0)
    return g, Gam


def weight_evidence(xa, Da, g, Gam, m):
    """This minibatch's evidence ``(H, G)`` on the layer's weights (ALGORITHM.md 5.2).

    ``G = sum_n [(xa^2 + Da) Gam - Da g^2]``, clipped at 0 elementwise, and
    ``H = sum_n xa g + m G`` (self term paired with the clipped ``G``, see the module
    notes).

    Returns
    -------
    H, G : ndarray of shape (N_out, N_in + 1)
    """
    G = Gam.T @ (xa * xa)
    if Da is not None:
        G += (Gam - g * g).T @ Da
        np.maximum(G, 0.0, out=G)
    H = g.T @ xa + m * G
    return H, G


def backward_message(xa, g, Gam, m, c, mu=None):
    """Message ``(Am, Bm)`` from a layer to its inputs (ALGORITHM.md 5.2).

    ``Am = sum_k [(m^2 + c) Gam - c g^2]`` clipped at 0 and
    ``Bm = sum_k m g + xh min(S, Am)`` with ``S = sum_k m^2 Gam``: ``Bm - xh Am`` is the
    gradient of ``sum_k log Z_k`` in the input means, keeping its part through ``V``
    only where it pulls an input toward 0 (see the module notes).

    With shifted inputs (``mu``, the layer computes ``m [u - mu; 1]`` and ``xa`` holds
    ``xh - mu``), the same message is formed in the centered input ``u - mu`` (the pull
    through ``V`` is toward ``mu``) and returned as a message on ``u``: ``Bm`` gains
    ``Am mu``.

    Returns
    -------
    Am, Bm : ndarray of shape (B, N_in), without the bias input
    """
    S = (Gam @ (m * m))[:, :-1]
    Am = S + ((Gam - g * g) @ c)[:, :-1]
    np.maximum(Am, 0.0, out=Am)
    Bm = (g @ m)[:, :-1] + xa[:, :-1] * np.minimum(S, Am)
    if mu is not None:
        Bm += Am * mu
    return Am, Bm


@dataclass
class Messages:
    """The messages of one minibatch's sweeps, one list entry per layer ``l``.

    Attributes
    ----------
    xa, Da : list of ndarray of shape (B, N_l + 1)
        Mean and variance of layer ``l``'s augmented (and shifted) input; ``Da[0]`` is
        None (data inputs), the others are None until the first forward sweep sets them.
    omega, V : list of ndarray of shape (B, N_{l+1})
        Forward message on layer ``l``'s pre-activations.
    Am, Bm : list of ndarray of shape (B, N_l), or 0.0
        Backward message on layer ``l``'s input from the layer itself (``l >= 1``),
        ``0.0`` before the first backward sweep (plain moment propagation).
    g : list of ndarray of shape (B, N_{l+1})
        The last backward sweep's ``g`` (the first layer's Onsager term reads it).
    """

    xa: list
    Da: list
    omega: list
    V: list
    Am: list
    Bm: list
    g: list

    @classmethod
    def start(cls, x, mu, n_layers):
        """Messages before the first sweep on inputs ``x`` (shifted by ``mu``, or None)."""
        xa = augment(x)[0]
        if mu is not None:
            xa[:, :-1] -= mu
        empty = [None] * n_layers
        return cls(xa=[xa, *empty[1:]], Da=list(empty), omega=list(empty), V=list(empty),
                   Am=[0.0] * n_layers, Bm=[0.0] * n_layers, g=list(empty))


def forward_sweep(state, cfg, msgs):
    """Forward sweep over the layers: sets ``msgs.xa``, ``msgs.Da``, ``msgs.omega``,
    ``msgs.V``; activations are damped from the second sweep of a minibatch on."""
    act = ACTIVATIONS[cfg.activation]
    L = len(state.layers)
    xa, Da = msgs.xa, msgs.Da
    psi = cfg.damping
    for l, la in enumerate(state.layers):
        g_old = msgs.g[0] if l == 0 else None  # the Onsager term (data inputs only)
        omega, V = forward_layer(xa[l], Da[l], la.m, la.c, g_old)
        msgs.omega[l], msgs.V[l] = omega, V
        if l < L - 1:
            xn, Dn = augment(*act.moments(omega, V, msgs.Am[l + 1], msgs.Bm[l + 1])[:2])
            if state.layers[l + 1].mu is not None:  # centered inputs (before damping)
                xn[:, :-1] -= state.layers[l + 1].mu
            if xa[l + 1] is not None:  # second and later sweeps: damp
                xn = psi * xa[l + 1] + (1.0 - psi) * xn
                Dn = psi * Da[l + 1] + (1.0 - psi) * Dn
            xa[l + 1], Da[l + 1] = xn, Dn


def backward_sweep(y, state, cfg, msgs):
    """Output step and backward sweep: returns the evidence lists ``H, G`` of every layer
    and the :class:`~._likelihoods.OutputStep`; sets ``msgs.g``, ``msgs.Am``, ``msgs.Bm``."""
    act = ACTIVATIONS[cfg.activation]
    L = len(state.layers)
    H, G = [None] * L, [None] * L
    out = LIKELIHOODS[cfg.likelihood].output(y, msgs.omega[-1], msgs.V[-1], state.v)
    g, Gam = out.g, out.Gam
    for l in range(L - 1, -1, -1):
        la = state.layers[l]
        if l < L - 1:
            omega, V = msgs.omega[l], msgs.V[l]
            _, _, zh, zv = act.moments(omega, V, msgs.Am[l + 1], msgs.Bm[l + 1])
            g, Gam = hidden_g_gam(omega, V, zh, zv)
        msgs.g[l] = g
        H[l], G[l] = weight_evidence(msgs.xa[l], msgs.Da[l], g, Gam, la.m)
        if l > 0:
            msgs.Am[l], msgs.Bm[l] = backward_message(msgs.xa[l], g, Gam, la.m, la.c, la.mu)
    return H, G, out
