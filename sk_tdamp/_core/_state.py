"""Posterior state of EM-TDAMP: one dataclass of arrays per layer.

Layout. Layer ``l`` (0-based here, ``l + 1`` in ALGORITHM.md) maps the activations
``u_l`` of width ``N_l`` to the pre-activations ``z_{l+1}`` of width ``N_{l+1}``. Its
weights and bias are stored together as one ``(N_{l+1}, N_l + 1)`` matrix whose last
column is the bias (the bias is a weight fed by a constant input 1, ALGORITHM.md 1).
A group is a column of the weight part: all weights leaving input neuron ``i``.

=========  ====================================  ======================
symbol     meaning                               shape
=========  ====================================  ======================
m, c       posterior mean and variance            (N_out, N_in + 1)
Hp, Gp     PasP prior evidence exp(Hp w - Gp w^2/2) (N_out, N_in + 1)
Lam        posterior log-odds of group support    (N_in,)
sigma2     slab variance of the weights           scalar
logit_rho  prior log-odds of group support        scalar
keep       forced support (target density)        (N_in,) bool or None
H0, G0     initialization pseudo-evidence at its  (N_out, N_in + 1)
           start; ``init_scale * (H0, G0)`` is the
           part of (Hp, Gp) that belongs to the
           slab prior rather than to the data
init_scale decay of the pseudo-evidence so far       scalar
mu         shift of the layer's inputs (None:     (N_in,) or None
           unshifted): the layer computes
           m [u - mu; 1], fixed once set
=========  ====================================  ======================
"""

from dataclasses import dataclass, field

import numpy as np

from ._numerics import RHO_INIT_CLIP


@dataclass
class LayerState:
    """Posterior and prior evidence of one layer's weights (see module docstring)."""

    m: np.ndarray
    c: np.ndarray
    Hp: np.ndarray
    Gp: np.ndarray
    Lam: np.ndarray
    sigma2: float
    logit_rho: float
    grouped: bool = True
    keep: np.ndarray | None = None
    H0: np.ndarray | None = None
    G0: np.ndarray | None = None
    init_scale: float = 1.0
    mu: np.ndarray | None = None

    @property
    def n_in(self):
        return self.m.shape[1] - 1

    @property
    def n_out(self):
        return self.m.shape[0]

    def copy(self):
        """An independent copy. ``H0, G0`` are shared: nothing writes them after
        :func:`init_state` (the pseudo-evidence decays through ``init_scale``)."""
        return LayerState(
            m=self.m.copy(), c=self.c.copy(), Hp=self.Hp.copy(), Gp=self.Gp.copy(),
            Lam=self.Lam.copy(), sigma2=self.sigma2, logit_rho=self.logit_rho,
            grouped=self.grouped, keep=None if self.keep is None else self.keep.copy(),
            H0=self.H0, G0=self.G0, init_scale=self.init_scale,
            mu=None if self.mu is None else self.mu.copy(),
        )


@dataclass
class NetworkState:
    """The whole posterior: the layers, the noise variance ``v`` and the epoch count."""

    layers: list[LayerState] = field(default_factory=list)
    v: float = 1.0
    bias_var: float = 1.0

    def copy(self):
        return NetworkState([la.copy() for la in self.layers], self.v, self.bias_var)

    def is_finite(self):
        """True when every array of the state and ``v`` are finite."""
        arrays = [a for la in self.layers for a in (la.m, la.c, la.Hp, la.Gp)]
        return np.isfinite(self.v) and all(np.isfinite(a).all() for a in arrays)


def init_state(layer_sizes, rng, *, prior_scale=1.0, bias_var=1.0, v=1.0, rho=0.5,
               input_rho=None, init_evidence=1.0, dtype=np.float64):
    """Random initial posterior for a network with widths ``layer_sizes``.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(N_0, N_1, ..., N_L)``: features, hidden widths, outputs.
    rng : numpy.random.Generator
        Source of the random initial means ``m ~ N(0, sigma_l^2)``.
    prior_scale : float
        The slab variance of layer ``l`` is ``sigma_l^2 = prior_scale / N_{l-1}``.
    bias_var : float
        Prior variance of the biases (never pruned).
    v : float
        Initial noise variance.
    rho : float
        Initial prior support probability of the hidden-neuron groups.
    input_rho : float or None
        Initial support probability of the input-feature groups; ``None`` leaves
        the input features ungrouped (a plain Gaussian prior, never pruned).
    init_evidence : float
        Weight ``k`` of the initialization kept as prior pseudo-evidence,
        ``Hp0 = k m0 / sigma^2`` and ``Gp0 = k / sigma^2`` (ALGORITHM.md 5.6b).
    dtype : {numpy.float64, numpy.float32}
        Floating type of the weight-sized arrays (the draws are the same for both).

    Returns
    -------
    NetworkState
    """
    layers = []
    for l, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
        sigma2 = prior_scale / n_in
        m = np.empty((n_out, n_in + 1))
        m[:, :-1] = rng.standard_normal((n_out, n_in)) * np.sqrt(sigma2)
        m[:, -1] = 0.0
        c = np.full((n_out, n_in + 1), sigma2)
        c[:, -1] = bias_var
        prior_prec = np.full_like(m, 1.0 / sigma2)
        prior_prec[:, -1] = 1.0 / bias_var
        Gp = init_evidence * prior_prec
        Hp = Gp * m
        p = input_rho if l == 0 else rho
        grouped = p is not None
        p = 0.5 if p is None else float(np.clip(p, *RHO_INIT_CLIP))
        m, c, Hp, Gp = (a.astype(dtype, copy=False) for a in (m, c, Hp, Gp))
        layers.append(LayerState(
            m=m, c=c, Hp=Hp, Gp=Gp, Lam=np.zeros(n_in), sigma2=sigma2,
            logit_rho=float(np.log(p) - np.log1p(-p)), grouped=grouped,
            H0=Hp.copy() if init_evidence > 0 else None,
            G0=Gp.copy() if init_evidence > 0 else None,
        ))
    return NetworkState(layers=layers, v=float(v), bias_var=float(bias_var))
