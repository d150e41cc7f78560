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
from scipy.linalg.blas import get_blas_funcs

from ._activations import ACTIVATIONS
from ._likelihoods import LIKELIHOODS


def augment(xh, D=None, dtype=np.float64):
    """Append the constant bias input: ``xa = [xh, 1]`` and ``Da = [D, 0]`` (in
    ``dtype``, the weights' floating type).

    Examples
    --------
    >>> import numpy as np
    >>> augment(np.array([[2.0]]))[0].tolist()
    [[2.0, 1.0]]
    """
    B, n = xh.shape
    xa = np.empty((B, n + 1), dtype=dtype)
    xa[:, :-1] = xh
    xa[:, -1] = 1.0
    if D is None:
        return xa, None
    Da = np.zeros((B, n + 1), dtype=dtype)
    Da[:, :-1] = D
    return xa, Da


def forward_layer(xa, Da, m, c, g_old=None, mm=None):
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
    mm : ndarray of shape (N_out, N_in + 1), optional
        ``m * m`` if already computed (the backward message needs it too).

    Returns
    -------
    omega, V : ndarray of shape (B, N_out)
        ``omega = xa m^T`` and ``V = (xa^2 + Da) c^T + Da (m^2)^T``, the variance of
        ``sum_i w_i u_i`` for independent weights and inputs.

    Examples
    --------
    >>> import numpy as np
    >>> omega, V = forward_layer(np.ones((1, 3)), None, np.ones((1, 3)), np.ones((1, 3)))
    >>> omega.tolist(), V.tolist()
    ([[3.0]], [[3.0]])
    """
    omega = xa @ m.T
    if Da is None:
        V = (xa * xa) @ c.T
        if g_old is not None:
            omega -= g_old * V
        return omega, V
    V = (xa * xa + Da) @ c.T
    V += Da @ (m * m if mm is None else mm).T
    return omega, V


def hidden_g_gam(omega, V, zh, zv):
    """Backward scalars of a hidden layer from its tilted moments (ALGORITHM.md 5.2).

    ``g = (E[z] - omega) / V`` and ``Gam = (V - Var[z]) / V^2``, clipped at 0.
    """
    g = (zh - omega) / V
    Gam = np.maximum((V - zv) / (V * V), 0.0)
    return g, Gam


def _gemm_tn(alpha, a, b, c, beta=0.0):
    """``c = alpha b^T a + beta c`` in place for a C-contiguous ``c`` (BLAS gemm on the
    transposed, Fortran-ordered view: no copy of ``c``, no separate pass to add it)."""
    gemm = get_blas_funcs("gemm", (c,))
    gemm(alpha, a, b, beta=beta, c=c.T, trans_a=1, overwrite_c=1)
    return c


def weight_evidence(xa, Da, g, Gam, m, Hp=None, Gp=None, scale=1.0, out=None, work=None):
    """This minibatch's evidence ``(H, G)`` on the layer's weights (ALGORITHM.md 5.2),
    or the totals ``(Hp + H, Gp + G)`` when the prior evidence is given.

    ``G = sum_n [(xa^2 + Da) Gam - Da g^2]``, clipped at 0 elementwise, and
    ``H = sum_n xa g + m G`` (self term paired with the clipped ``G``, see the module
    notes), both times ``scale`` (a tempered likelihood).

    Parameters
    ----------
    xa, Da, g, Gam, m : ndarray
        As in the module table (``Da`` None for data inputs).
    Hp, Gp : ndarray of shape (N_out, N_in + 1), optional
        Prior evidence to add.
    scale : float, default=1.0
    out : tuple of two ndarray, optional
        Receive the two results; they may be ``Hp`` and ``Gp`` themselves, which are
        then updated in place (the products add into them, no pass of their own).
    work : tuple of two ndarray, optional
        Scratch arrays of the weights' shape.

    Returns
    -------
    H, G : ndarray of shape (N_out, N_in + 1)
    """
    shape, dtype = m.shape, m.dtype
    g, Gam = g.astype(dtype, copy=False), Gam.astype(dtype, copy=False)
    Hout, Gout = (None, None) if out is None else out
    Gw, Tw = (np.empty(shape, dtype), np.empty(shape, dtype)) if work is None else work
    G = _gemm_tn(scale, xa * xa, Gam, Gw)
    if Da is not None:
        _gemm_tn(scale, Da, Gam - g * g, G, beta=1.0)
        np.maximum(G, 0.0, out=G)
    H = np.empty(shape, dtype) if Hout is None else Hout
    if Hp is not None and H is not Hp:
        np.copyto(H, Hp)
    _gemm_tn(scale, xa, g, H, beta=0.0 if Hp is None else 1.0)
    H += np.multiply(m, G, out=Tw)
    if Gp is None:  # this minibatch's G alone
        if Gout is None:
            return H, G
        np.copyto(Gout, G)
        return H, Gout
    if Gout is Gp:
        Gp += G
        return H, Gp
    return H, np.add(Gp, G, out=np.empty(shape, dtype) if Gout is None else Gout)


def backward_message(xa, g, Gam, m, c, mu=None, mm=None):
    """Message ``(Am, Bm)`` from a layer to its inputs (ALGORITHM.md 5.2).

    ``Am = sum_k [(m^2 + c) Gam - c g^2]`` clipped at 0 and
    ``Bm = sum_k m g + xh min(S, Am)`` with ``S = sum_k m^2 Gam``: ``Bm - xh Am`` is the
    gradient of ``sum_k log Z_k`` in the input means, keeping its part through ``V``
    only where it pulls an input toward 0 (see the module notes).

    With shifted inputs (``mu``, the layer computes ``m [u - mu; 1]`` and ``xa`` holds
    ``xh - mu``), the same message is formed in the centered input ``u - mu`` (the pull
    through ``V`` is toward ``mu``) and returned as a message on ``u``: ``Bm`` gains
    ``Am mu``.

    ``mm`` is ``m * m`` if already computed (by the forward sweep).

    Returns
    -------
    Am, Bm : ndarray of shape (B, N_in), without the bias input
    """
    Gam, g = Gam.astype(m.dtype, copy=False), g.astype(m.dtype, copy=False)
    S = (Gam @ (m * m if mm is None else mm))[:, :-1]
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
    mm : list of ndarray of shape (N_{l+1}, N_l + 1)
        ``m * m`` of the layers with uncertain inputs, computed by the forward sweep for
        the backward one (None for the data layer).
    cache : list of dict
        Per layer, the activation's work shared by the forward and backward calls of one
        sweep (reset by each forward sweep).
    """

    xa: list
    Da: list
    omega: list
    V: list
    Am: list
    Bm: list
    g: list
    mm: list
    cache: list

    @classmethod
    def start(cls, x, mu, n_layers, dtype=np.float64):
        """Messages before the first sweep on inputs ``x`` (shifted by ``mu``, or None),
        in the weights' floating ``dtype``."""
        xa = augment(x, dtype=dtype)[0]
        if mu is not None:
            xa[:, :-1] -= mu
        empty = [None] * n_layers
        return cls(xa=[xa, *empty[1:]], Da=list(empty), omega=list(empty), V=list(empty),
                   Am=[0.0] * n_layers, Bm=[0.0] * n_layers, g=list(empty), mm=list(empty),
                   cache=[{} for _ in range(n_layers)])


def forward_sweep(state, cfg, msgs):
    """Forward sweep over the layers: sets ``msgs.xa``, ``msgs.Da``, ``msgs.omega``,
    ``msgs.V``; activations are damped from the second sweep of a minibatch on."""
    act = ACTIVATIONS[cfg.activation]
    L = len(state.layers)
    xa, Da = msgs.xa, msgs.Da
    psi = cfg.damping
    for l, la in enumerate(state.layers):
        g_old = msgs.g[0] if l == 0 else None  # the Onsager term (data inputs only)
        if Da[l] is not None:
            msgs.mm[l] = la.m * la.m
        omega, V = forward_layer(xa[l], Da[l], la.m, la.c, g_old, msgs.mm[l])
        msgs.omega[l], msgs.V[l] = omega, V
        if l < L - 1:
            msgs.cache[l] = {}
            xn, Dn = augment(*act.u_moments(omega, V, msgs.Am[l + 1], msgs.Bm[l + 1],
                                            msgs.cache[l]), dtype=la.m.dtype)
            if state.layers[l + 1].mu is not None:  # centered inputs (before damping)
                xn[:, :-1] -= state.layers[l + 1].mu
            if xa[l + 1] is not None:  # second and later sweeps: damp
                xn = psi * xa[l + 1] + (1.0 - psi) * xn
                Dn = psi * Da[l + 1] + (1.0 - psi) * Dn
            xa[l + 1], Da[l + 1] = xn, Dn


def backward_sweep(y, state, cfg, msgs, totals=None):
    """Output step and backward sweep (ALGORITHM.md 5.2, 5.4).

    Returns the evidence of every layer and the :class:`~._likelihoods.OutputStep`; sets
    ``msgs.g``, ``msgs.Am``, ``msgs.Bm``. ``totals`` (optional) is one
    ``(out, work)`` per layer for :func:`weight_evidence`: the evidence is then the total
    ``(Hp + H, Gp + G)`` with the layer's prior, written into ``out``.
    """
    act = ACTIVATIONS[cfg.activation]
    L = len(state.layers)
    H, G = [None] * L, [None] * L
    out = LIKELIHOODS[cfg.likelihood].output(y, msgs.omega[-1], msgs.V[-1], state.v)
    g, Gam = out.g, out.Gam
    for l in range(L - 1, -1, -1):
        la = state.layers[l]
        if l < L - 1:
            omega, V = msgs.omega[l], msgs.V[l]
            zh, zv = act.z_moments(omega, V, msgs.Am[l + 1], msgs.Bm[l + 1], msgs.cache[l])
            g, Gam = hidden_g_gam(omega, V, zh, zv)
        msgs.g[l] = g
        if totals is None:
            H[l], G[l] = weight_evidence(msgs.xa[l], msgs.Da[l], g, Gam, la.m,
                                         scale=cfg.evidence_scale)
        else:
            H[l], G[l] = weight_evidence(msgs.xa[l], msgs.Da[l], g, Gam, la.m, la.Hp, la.Gp,
                                         cfg.evidence_scale, *totals[l])
        if l > 0:
            msgs.Am[l], msgs.Bm[l] = backward_message(msgs.xa[l], g, Gam, la.m, la.c, la.mu,
                                                      msgs.mm[l])
    return H, G, out
