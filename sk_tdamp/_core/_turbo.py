"""The turbo loop of TDAMP on one minibatch and the PasP chain over an epoch.

One turbo iteration = module A (a forward and a backward sweep, ALGORITHM.md 5.1-5.2)
followed by module B and the denoiser on every layer (5.5), with damping (5.6). After the
minibatch its evidence joins the prior of the next one (PasP, 5.7):
``Hp <- lam (Hp + H)``, ``Gp <- lam (Gp + G)``.
"""

from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import daxpy

from ._activations import ACTIVATIONS
from ._damp import augment, backward_message, forward_layer, hidden_g_gam, weight_evidence
from ._group_prior import gaussian_denoiser, group_posterior, module_b, weight_llr
from ._likelihoods import OUTPUTS

G_FLOOR = 1e-12


@dataclass
class TurboConfig:
    """Settings of the E-step.

    Attributes
    ----------
    activation : {"relu", "identity"}
    likelihood : {"gaussian", "probit"}
    n_sweeps : int
        Turbo iterations per minibatch (each one forward + backward sweep).
    damping : float
        ``psi`` in ``new = psi * old + (1 - psi) * new``.
    onsager : bool
        Whether the first layer's forward message carries the Onsager term.
    evidence_scale : float
        Factor applied to every minibatch's evidence ``(H, G)``: the likelihood is
        raised to this power (a federated client's tempering; 1 otherwise).
    """

    activation: str = "relu"
    likelihood: str = "gaussian"
    n_sweeps: int = 2
    damping: float = 0.8
    onsager: bool = True
    evidence_scale: float = 1.0


def init_llr_offset(la):
    """Log-odds that the initialization pseudo-evidence alone gives each group.

    The pseudo-evidence ``(H0, G0)`` (ALGORITHM.md 5.6b) is part of the slab prior, not
    data: with it, the slab is ``N(0, sigma^2) exp(H0 w - G0 w^2 / 2)`` (normalized) and
    the support log-likelihood ratio of the total evidence is
    ``lam(Hp + H, Gp + G) - lam(H0, G0)``. Subtracting this offset from ``logit(rho)``
    keeps a fresh network's groups at their prior odds instead of reading the random
    initialization as evidence against the slab.
    """
    if la.H0 is None:
        return 0.0
    return weight_llr(la.H0[:, :-1], la.G0[:, :-1], la.sigma2).sum(axis=0)


def weight_posterior(la, Htot, Gtot, bias_var, offset, scale=1.0):
    """Module B + denoiser for one layer from total evidence: returns ``(m, c, Lam)``.

    ``offset`` is :func:`init_llr_offset` of the layer (constant within a minibatch);
    ``m`` and ``c`` are multiplied by ``scale`` (the damping weight of the new posterior).
    """
    HW, GW = Htot[:, :-1], Gtot[:, :-1]
    m = np.empty_like(Htot)
    c = np.empty_like(Htot)
    if not la.grouped or la.keep is not None:
        # Gaussian on every column (kept groups only): one pass over whole, contiguous
        # rows, with the bias column's own prior variance
        var = np.full(la.n_in + 1, la.sigma2)
        var[-1] = bias_var
        col_scale = scale if la.keep is None else np.append(scale * la.keep, scale)
        gaussian_denoiser(Htot, Gtot, var, col_scale, out=(m, c))
        if not la.grouped:
            return m, c, np.full(la.n_in, np.inf)
        return m, c, module_b(HW, GW, la.sigma2, -offset)[0]
    gaussian_denoiser(Htot[:, -1], Gtot[:, -1], bias_var, scale, out=(m[:, -1], c[:, -1]))
    Lam = group_posterior(HW, GW, la.sigma2, la.logit_rho - offset, scale,
                          out=(m[:, :-1], c[:, :-1]))[2]
    return m, c, Lam


def _add_scaled(y, a, x):
    """``y += a * x`` in place, in one pass (BLAS axpy) for contiguous float64 arrays."""
    if (y.flags.c_contiguous and x.flags.c_contiguous and y.dtype == np.float64
            and x.dtype == np.float64 and y.shape == x.shape):
        daxpy(x.reshape(-1), y.reshape(-1), a=a)
    else:
        y += a * x


def _update_weights(state, H, G, psi, offsets):
    """Module B + denoiser + damping on every layer; returns the totals ``(Hp + H, Gp + G)``.

    The totals are fresh arrays that :func:`pasp_update` may take over.
    """
    totals = []
    for la, Hl, Gl, off in zip(state.layers, H, G, offsets):
        Hsum, Gsum = la.Hp + Hl, la.Gp + Gl
        # damping, new = psi * old + (1 - psi) * new, with (1 - psi) folded into the
        # denoiser's output; fresh arrays, so that copies of the state stay untouched
        m, c, la.Lam = weight_posterior(la, Hsum, np.maximum(Gsum, G_FLOOR),
                                        state.bias_var, off, 1.0 - psi)
        _add_scaled(m, psi, la.m)
        _add_scaled(c, psi, la.c)
        la.m, la.c = m, c
        totals.append((Hsum, Gsum))
    return totals


def _forward_sweep(state, cfg, msgs):
    """Forward sweep; fills msgs['xa'], msgs['Da'], msgs['omega'], msgs['V']."""
    act = ACTIVATIONS[cfg.activation]
    L = len(state.layers)
    xa, Da = msgs["xa"], msgs["Da"]
    psi = cfg.damping
    for l, la in enumerate(state.layers):
        g_old = None if l > 0 or not cfg.onsager else msgs["g"][0]
        omega, V = forward_layer(xa[l], Da[l], la.m, la.c, g_old)
        msgs["omega"][l], msgs["V"][l] = omega, V
        if l < L - 1:
            xn, Dn = augment(*act(omega, V, msgs["Am"][l + 1], msgs["Bm"][l + 1])[:2])
            if state.layers[l + 1].mu is not None:  # centered inputs (before damping)
                xn[:, :-1] -= state.layers[l + 1].mu
            if xa[l + 1] is not None:  # second and later sweeps: damp
                xn = psi * xa[l + 1] + (1.0 - psi) * xn
                Dn = psi * Da[l + 1] + (1.0 - psi) * Dn
            xa[l + 1], Da[l + 1] = xn, Dn


def _backward_sweep(y, state, cfg, msgs):
    """Output step and backward sweep; returns the evidence lists and the output step."""
    act = ACTIVATIONS[cfg.activation]
    L = len(state.layers)
    H, G = [None] * L, [None] * L
    out = OUTPUTS[cfg.likelihood](y, msgs["omega"][-1], msgs["V"][-1], state.v)
    g, Gam = out[0], out[1]
    for l in range(L - 1, -1, -1):
        la = state.layers[l]
        if l < L - 1:
            omega, V = msgs["omega"][l], msgs["V"][l]
            _, _, zh, zv = act(omega, V, msgs["Am"][l + 1], msgs["Bm"][l + 1])
            g, Gam = hidden_g_gam(omega, V, zh, zv)
        msgs["g"][l] = g
        H[l], G[l] = weight_evidence(msgs["xa"][l], msgs["Da"][l], g, Gam, la.m)
        if l > 0:
            msgs["Am"][l], msgs["Bm"][l] = backward_message(
                msgs["xa"][l], g, Gam, la.m, la.c, la.mu)
    return H, G, out


def minibatch_estep(x, y, state, cfg):
    """Run the turbo loop on one minibatch, updating ``state`` weights in place.

    Parameters
    ----------
    x : ndarray of shape (B, N_0)
    y : ndarray
        Targets in the format of the likelihood (``(B, C)`` floats or ``(B,)`` ints).
    state : NetworkState
    cfg : TurboConfig

    Returns
    -------
    H, G : list of ndarray
        The minibatch's evidence per layer from the last sweep (for PasP).
    first_out, last_out : tuple
        The output step ``(g, Gam, zhat, zvar, logZ)`` of the first sweep (a
        prequential loss: the batch had not been seen yet) and of the last sweep
        (the posterior of ``z_L`` for the noise-variance M-step).
    totals : list of tuple
        ``(Hp + H, Gp + G)`` per layer, fresh arrays (the ``totals`` of
        :func:`pasp_update`).
    """
    L = len(state.layers)
    msgs = {k: [None] * L for k in ("xa", "Da", "omega", "V", "Am", "Bm", "g")}
    msgs["xa"][0] = augment(x)[0]
    if state.layers[0].mu is not None:
        msgs["xa"][0][:, :-1] -= state.layers[0].mu
    msgs["Am"] = [0.0] * L
    msgs["Bm"] = [0.0] * L
    # (H0, G0) change only between minibatches (PasP): their llr once per minibatch.
    offsets = [init_llr_offset(la) if la.grouped else 0.0 for la in state.layers]
    for sweep in range(cfg.n_sweeps):
        _forward_sweep(state, cfg, msgs)
        H, G, out = _backward_sweep(y, state, cfg, msgs)
        if cfg.evidence_scale != 1.0:
            H = [cfg.evidence_scale * h for h in H]
            G = [cfg.evidence_scale * g for g in G]
        if sweep == 0:
            first_out = out
        totals = _update_weights(state, H, G, cfg.damping, offsets)
    return H, G, first_out, out, totals


def pasp_update(state, H, G, lam, lam0=None, totals=None):
    """Fold a minibatch's evidence into the prior of the next one (ALGORITHM.md 5.7).

    ``lam0`` (default ``lam``) is the decay of the initialization pseudo-evidence
    ``(H0, G0)``, which is part of ``(Hp, Gp)``: ``Hp <- lam (Hp + H) + (lam0 - lam) H0``.
    ``totals``, optional, holds ``(Hp + H, Gp + G)`` per layer already computed (by
    :func:`minibatch_estep`); those arrays become the new ``(Hp, Gp)``.
    """
    lam0 = lam if lam0 is None else lam0
    if totals is None:  # new arrays: the caller's state copies stay untouched
        totals = [(la.Hp + Hl, la.Gp + Gl) for la, Hl, Gl in zip(state.layers, H, G)]
    for la, (Hsum, Gsum) in zip(state.layers, totals):
        la.Hp = Hsum
        la.Hp *= lam
        la.Gp = Gsum
        la.Gp *= lam
        if la.H0 is None:
            continue
        if lam0 != lam:
            la.Hp += (lam0 - lam) * la.H0
            la.Gp += (lam0 - lam) * la.G0
        la.H0 = la.H0 * lam0
        la.G0 = la.G0 * lam0


class PosteriorAverage:
    """Moving average of the PasP posteriors along the minibatch chain.

    PasP's posterior after a minibatch moves with that minibatch's evidence: on MNIST-5k
    (784-300-100-10) the test accuracy of consecutive end-of-epoch posteriors swings by
    several points. The average over the last ``epochs`` passes is the moment-matched
    mixture of those posteriors,

        mbar = E_t[m_t],   cbar = E_t[c_t] + (E_t[m_t^2] - mbar^2),

    an exponential average over snapshots of the chain, one every ``k`` minibatches,
    with rate ``a_t = max(k B / (epochs N), 2 / (t + 1))`` at the ``t``-th snapshot
    (``2 / (t + 1)``: weights growing linearly with ``t`` until the window is full, so
    the first minibatches, drawn from the initialization, fade out). It is a read-out for
    prediction; the chain itself is unchanged.

    Parameters
    ----------
    epochs : float
        Window of the average in passes over the data (``> 0``).
    snapshots : int or None, default=32
        Snapshots per window: ``k = max(1, floor(epochs N / (B snapshots)))``. The
        damped chain moves little between neighbouring minibatches, and each snapshot
        costs three passes over every weight; ``None`` takes every minibatch (``k = 1``).

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> avg = PosteriorAverage(epochs=1.0)
    >>> for m in (0.0, 3.0):  # weights 1/3 and 2/3 (rate 2 / (t + 1))
    ...     layer = SimpleNamespace(m=np.array([m]), c=np.array([1.0]))
    ...     avg.update(SimpleNamespace(layers=[layer]), batch_size=10, n_samples=20)
    >>> mbar, cbar, spread = avg.moments()[0]
    >>> float(mbar[0]), float(cbar[0]), float(spread[0])
    (2.0, 1.0, 2.0)
    """

    def __init__(self, epochs, snapshots=32):
        self.epochs = epochs
        self.snapshots = snapshots
        self.t = 0
        self._since = 0  # minibatches since the last snapshot
        self.m, self.c, self.m2 = [], [], []

    def update(self, state, batch_size, n_samples):
        """Called after every minibatch: fold the posterior in when a snapshot is due."""
        window = self.epochs * n_samples / batch_size  # minibatches in the window
        k = 1 if self.snapshots is None else max(1, int(window // self.snapshots))
        if self.t > 0 and self._since < k - 1:
            self._since += 1
            return
        self._since = 0
        self.t += 1
        a = max(k / window, 2.0 / (self.t + 1))
        if a >= 1.0:  # always at t = 1 (rate 2 / (t + 1)): start from this posterior
            self.m = [la.m.copy() for la in state.layers]
            self.c = [la.c.copy() for la in state.layers]
            self.m2 = [la.m * la.m for la in state.layers]
            return
        for m, c, m2, la in zip(self.m, self.c, self.m2, state.layers):
            m += a * (la.m - m)
            c += a * (la.c - c)
            m2 += a * (la.m * la.m - m2)

    def moments(self):
        """Per layer ``(mbar, E_t[c_t], spread)``, ``spread = E_t[m_t^2] - mbar^2 >= 0``.

        The mixture variance is ``E_t[c_t] + spread``; the two parts are returned apart
        because only the first one holds the PasP evidence of several passes.
        """
        return [(m, c, np.maximum(m2 - m * m, 0.0))
                for m, c, m2 in zip(self.m, self.c, self.m2)]


def forgetting_factor(batch_size, n_samples, memory):
    """PasP factor ``lam = 1 - B / (E N)`` for a memory of ``E`` epochs (at least 0)."""
    return max(0.0, 1.0 - batch_size / (memory * n_samples))


def run_epoch(X, Y, state, cfg, batch_size, memory, rng, vstats, init_memory=None,
              average=None):
    """One pass of TDAMP over the data, minibatches chained by PasP.

    Parameters
    ----------
    X : ndarray of shape (N, N_0)
    Y : ndarray
        Targets in the likelihood's format, first axis N.
    state : NetworkState
        Updated in place.
    cfg : TurboConfig
    batch_size : int
    memory : float
        PasP memory ``E`` in epochs (``lam = 1 - B / (E N)`` per minibatch).
    rng : numpy.random.Generator or None
        Shuffles the minibatches; ``None`` keeps the data order.
    vstats : object with ``add(y, zhat, zvar)``
        Accumulates the output-layer statistics of the noise-variance M-step.
    init_memory : float or None
        Memory of the initialization pseudo-evidence ``(H0, G0)`` in passes over
        ``X``; ``None`` decays it with the evidence (``memory``).
    average : PosteriorAverage or None
        Updated after every minibatch when given.

    Returns
    -------
    loss : float
        Mean over samples of ``-log Z`` of each minibatch's first sweep, a prequential
        negative log-likelihood of the targets before the minibatch was fitted.
    """
    n = X.shape[0]
    order = np.arange(n) if rng is None else rng.permutation(n)
    loss = 0.0
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        H, G, first, last, totals = minibatch_estep(X[idx], Y[idx], state, cfg)
        lam0 = None if init_memory is None else forgetting_factor(idx.size, n, init_memory)
        pasp_update(state, H, G, forgetting_factor(idx.size, n, memory), lam0, totals)
        if average is not None:
            average.update(state, idx.size, n)
        loss -= float(first[4].sum())
        vstats.add(Y[idx], last[2], last[3])
    return loss / n
