"""The turbo loop of TDAMP on one minibatch and the PasP chain over an epoch.

One turbo iteration = module A (a forward and a backward sweep, ALGORITHM.md 5.1-5.2,
``_module_a``) followed by module B and the denoiser on every layer (5.5), with damping
(5.6). After the minibatch its evidence joins the prior of the next one (PasP, 5.7,
``_pasp``): ``Hp <- lam (Hp + H)``, ``Gp <- lam (Gp + G)``.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg.blas import daxpy

from ._group_prior import gaussian_denoiser, group_posterior, module_b, weight_llr
from ._likelihoods import OutputStep
from ._module_a import Messages, backward_sweep, forward_sweep
from ._numerics import EVIDENCE_PRECISION_FLOOR
from ._pasp import forgetting_factor, pasp_update


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
    evidence_scale : float
        Factor applied to every minibatch's evidence ``(H, G)``: the likelihood is
        raised to this power (a federated client's tempering; 1 otherwise).
    """

    activation: str = "relu"
    likelihood: str = "gaussian"
    n_sweeps: int = 2
    damping: float = 0.8
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
        m, c, la.Lam = weight_posterior(la, Hsum, np.maximum(Gsum, EVIDENCE_PRECISION_FLOOR),
                                        state.bias_var, off, 1.0 - psi)
        _add_scaled(m, psi, la.m)
        _add_scaled(c, psi, la.c)
        la.m, la.c = m, c
        totals.append((Hsum, Gsum))
    return totals


class MinibatchResult(NamedTuple):
    """What the turbo loop on one minibatch returns.

    Attributes
    ----------
    H, G : list of ndarray
        The minibatch's evidence per layer from the last sweep (for PasP).
    first, last : OutputStep
        The output step of the first sweep (a prequential loss: the batch had not been
        seen yet) and of the last sweep (the posterior of ``z_L`` for the noise-variance
        M-step).
    totals : list of tuple
        ``(Hp + H, Gp + G)`` per layer, fresh arrays (the ``totals`` of
        :func:`~._pasp.pasp_update`).
    """

    H: list
    G: list
    first: OutputStep
    last: OutputStep
    totals: list


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
    MinibatchResult
    """
    msgs = Messages.start(x, state.layers[0].mu, len(state.layers))
    # (H0, G0) change only between minibatches (PasP): their llr once per minibatch.
    offsets = [init_llr_offset(la) if la.grouped else 0.0 for la in state.layers]
    for sweep in range(cfg.n_sweeps):
        forward_sweep(state, cfg, msgs)
        H, G, out = backward_sweep(y, state, cfg, msgs)
        if cfg.evidence_scale != 1.0:
            H = [cfg.evidence_scale * h for h in H]
            G = [cfg.evidence_scale * g for g in G]
        if sweep == 0:
            first = out
        totals = _update_weights(state, H, G, cfg.damping, offsets)
    return MinibatchResult(H, G, first, out, totals)


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
        res = minibatch_estep(X[idx], Y[idx], state, cfg)
        lam0 = None if init_memory is None else forgetting_factor(idx.size, n, init_memory)
        pasp_update(state, res.H, res.G, forgetting_factor(idx.size, n, memory), lam0,
                    res.totals)
        if average is not None:
            average.update(state, idx.size, n)
        loss -= float(res.first.logZ.sum())
        vstats.add(Y[idx], res.last.zhat, res.last.zvar)
    return loss / n
