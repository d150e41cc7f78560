"""The turbo loop of TDAMP on one minibatch and the PasP chain over an epoch.

One turbo iteration = module A (a forward and a backward sweep, ALGORITHM.md 5.1-5.2,
``_module_a``) followed by module B and the denoiser on every layer (5.5), with damping
(5.6). After the minibatch its evidence joins the prior of the next one (PasP, 5.7,
``_pasp``): ``Hp <- lam (Hp + H)``, ``Gp <- lam (Gp + G)``.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._group_prior import gaussian_denoiser, group_posterior, module_b, weight_llr
from ._likelihoods import OutputStep
from ._module_a import Messages, backward_sweep, forward_sweep
from ._pasp import add_scaled, forgetting_factor, pasp_update


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

    The pseudo-evidence ``init_scale (H0, G0)`` (ALGORITHM.md 5.6b) is part of the slab
    prior, not data: with it, the slab is ``N(0, sigma^2) exp(H0 w - G0 w^2 / 2)``
    (normalized) and the support log-likelihood ratio of the total evidence is
    ``lam(Hp + H, Gp + G) - lam(H0, G0)``. Subtracting this offset from ``logit(rho)``
    keeps a fresh network's groups at their prior odds instead of reading the random
    initialization as evidence against the slab.
    """
    if la.H0 is None:
        return 0.0
    s = la.init_scale
    return weight_llr(s * la.H0[:, :-1], s * la.G0[:, :-1], la.sigma2).sum(axis=0)


@dataclass
class LayerWorkspace:
    """Scratch arrays of one layer's turbo loop, of the weights' shape, reused by every
    minibatch of an epoch: ``G, T`` for the evidence (then the denoiser), ``m, c`` for
    the new posterior (swapped with the state's after damping), ``H, Gt`` for the totals
    of sweeps before the last (the last one writes them into ``Hp, Gp`` in place)."""

    G: np.ndarray
    T: np.ndarray
    m: np.ndarray
    c: np.ndarray
    H: np.ndarray | None = None
    Gt: np.ndarray | None = None

    @classmethod
    def for_layer(cls, la, n_sweeps):
        def new():
            return np.empty_like(la.m)
        return cls(new(), new(), new(), new(), *((new(), new()) if n_sweeps > 1 else ()))


def weight_posterior(la, Htot, Gtot, bias_var, offset, scale, out, work):
    """Module B + denoiser for one layer from total evidence, into ``out = (m, c)``;
    returns ``Lam``.

    ``offset`` is :func:`init_llr_offset` of the layer (constant within a minibatch);
    ``m`` and ``c`` are multiplied by ``scale`` (the damping weight of the new
    posterior). ``work`` holds two scratch arrays of the weights' shape.
    """
    m, c = out
    if not la.grouped or la.keep is not None:
        # Gaussian on every column (kept groups only): one pass over whole, contiguous
        # rows, with the bias column's own prior variance
        var = np.full(la.n_in + 1, la.sigma2)
        var[-1] = bias_var
        col_scale = scale if la.keep is None else np.append(scale * la.keep, scale)
        gaussian_denoiser(Htot, Gtot, var, col_scale, out=out)
        if not la.grouped:
            return np.full(la.n_in, np.inf)
        return module_b(Htot[:, :-1], Gtot[:, :-1], la.sigma2, -offset)[0]
    gaussian_denoiser(Htot[:, -1], Gtot[:, -1], bias_var, scale, out=(m[:, -1], c[:, -1]))
    return group_posterior(Htot[:, :-1], Gtot[:, :-1], la.sigma2, la.logit_rho - offset,
                           scale, out=(m[:, :-1], c[:, :-1]),
                           work=(work[0][:, :-1], work[1][:, :-1]))[2]


def _update_weights(state, totals, psi, offsets, workspace):
    """Module B + denoiser + damping on every layer, from its totals ``(Hp + H, Gp + G)``.

    Damping, ``new = psi * old + (1 - psi) * new``, has ``(1 - psi)`` folded into the
    denoiser's output and the rest in one axpy; the new posterior is written into the
    workspace and swapped with the state's arrays, which become the next scratch (a
    reference to a layer's old ``m`` or ``c`` is overwritten by the next sweep; copies of
    the state are not).
    """
    for la, (Htot, Gtot), off, w in zip(state.layers, totals, offsets, workspace):
        la.Lam = weight_posterior(la, Htot, Gtot, state.bias_var, off, 1.0 - psi,
                                  out=(w.m, w.c), work=(w.G, w.T))
        add_scaled(w.m, psi, la.m)
        add_scaled(w.c, psi, la.c)
        la.m, w.m = w.m, la.m
        la.c, w.c = w.c, la.c


class MinibatchResult(NamedTuple):
    """What the turbo loop on one minibatch returns.

    Attributes
    ----------
    first, last : OutputStep
        The output step of the first sweep (a prequential loss: the batch had not been
        seen yet) and of the last sweep (the posterior of ``z_L`` for the noise-variance
        M-step).
    """

    first: OutputStep
    last: OutputStep


def minibatch_estep(x, y, state, cfg, workspace=None):
    """Run the turbo loop on one minibatch, updating ``state`` in place.

    The weight posterior ``(m, c, Lam)`` is the last sweep's, and ``(Hp, Gp)`` hold the
    totals ``(Hp + H, Gp + G)`` of the last sweep: this minibatch's evidence folded into
    the prior, not yet forgotten (:func:`~._pasp.pasp_update` does that).

    Parameters
    ----------
    x : ndarray of shape (B, N_0)
    y : ndarray
        Targets in the format of the likelihood (``(B, C)`` floats or ``(B,)`` ints).
    state : NetworkState
    cfg : TurboConfig
    workspace : list of LayerWorkspace, optional
        Scratch arrays (one per layer), reused across minibatches; made when not given.

    Returns
    -------
    MinibatchResult
    """
    if workspace is None:
        workspace = [LayerWorkspace.for_layer(la, cfg.n_sweeps) for la in state.layers]
    msgs = Messages.start(x, state.layers[0].mu, len(state.layers), state.layers[0].m.dtype)
    # (H0, G0) change only between minibatches (PasP): their llr once per minibatch.
    offsets = [init_llr_offset(la) if la.grouped else 0.0 for la in state.layers]
    for sweep in range(cfg.n_sweeps):
        last = sweep == cfg.n_sweeps - 1
        forward_sweep(state, cfg, msgs)
        targets = [((la.Hp, la.Gp) if last else (w.H, w.Gt), (w.G, w.T))
                   for la, w in zip(state.layers, workspace)]
        H, G, out = backward_sweep(y, state, cfg, msgs, targets)
        if sweep == 0:
            first = out
        _update_weights(state, list(zip(H, G)), cfg.damping, offsets, workspace)
    return MinibatchResult(first, out)


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
    workspace = [LayerWorkspace.for_layer(la, cfg.n_sweeps) for la in state.layers]
    loss = 0.0
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        res = minibatch_estep(X[idx], Y[idx], state, cfg, workspace)
        lam0 = None if init_memory is None else forgetting_factor(idx.size, n, init_memory)
        pasp_update(state, forgetting_factor(idx.size, n, memory), lam0)
        if average is not None:
            average.update(state, idx.size, n)
        loss -= float(res.first.logZ.sum())
        vstats.add(Y[idx], res.last.zhat, res.last.zvar)
    return loss / n
