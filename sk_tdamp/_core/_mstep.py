"""M-step of EM-TDAMP: noise variance, support probability and slab variance.

Each update reads the posterior left by the E-step (ALGORITHM.md 4) and returns or
writes the new hyperparameters; statistics of the output layer are accumulated over an
epoch by the ``*VStats`` classes and applied once per epoch.
"""

import numpy as np

from ._group_prior import rho_update, slab_variance_update, target_density_mask
from ._likelihoods import probit_pair_stats, probit_v_update

V_BOUNDS = (1e-6, 1e6)


class GaussianVStats:
    """Running sums of ``(y - zhat)^2 + zvar`` for the Gaussian noise variance."""

    def __init__(self):
        self.total = 0.0
        self.count = 0

    def add(self, y, zhat, zvar):
        r = y - zhat
        self.total += float(np.sum(r * r + zvar))
        self.count += r.size

    def update(self, v_old):
        """``v = mean[(y - zhat)^2 + Var z_L]`` over samples and outputs."""
        if self.count == 0:
            return v_old
        return float(np.clip(self.total / self.count, *V_BOUNDS))


class ProbitVStats:
    """Pairwise margins ``z_y - z_j ~ N(dm, dv)`` collected for the probit v-update."""

    def __init__(self):
        self.dm, self.dv = [], []

    def add(self, y, zhat, zvar):
        dm, dv = probit_pair_stats(y, zhat, zvar)
        self.dm.append(dm)
        self.dv.append(dv)

    def update(self, v_old):
        """Maximize ``sum E log Phi(d / sqrt v)`` over ``v`` (ALGORITHM.md 4)."""
        if not self.dm:
            return v_old
        dm, dv = np.concatenate(self.dm), np.concatenate(self.dv)
        return float(probit_v_update(dm, dv, v_old, bounds=(1e-3, 1e3)))


VSTATS = {"gaussian": GaussianVStats, "probit": ProbitVStats}


def rho_step(state, floor=1e-3, ceil=1 - 1e-3):
    """``rho_l <- mean_i pi_{l,i}`` for every grouped layer not under a target density."""
    for la in state.layers:
        if la.grouped and la.keep is None:
            rho = rho_update(la.Lam, floor=floor, ceil=ceil)
            la.logit_rho = float(np.log(rho) - np.log1p(-rho))


def target_density_step(state, kappas):
    """Keep exactly ``ceil(kappa N)`` groups per layer, those with the largest ``Lam``.

    ``kappas`` has one entry per layer, ``None`` where no target density applies.
    """
    for la, kappa in zip(state.layers, kappas):
        if kappa is not None and la.grouped:
            la.keep = target_density_mask(la.Lam, kappa)


def slab_variance_step(state, floor=1e-8):
    """EM update of each grouped layer's slab variance ``sigma_l^2`` (ALGORITHM.md 4)."""
    for la in state.layers:
        if la.grouped:
            s2 = slab_variance_update(la.m[:, :-1], la.c[:, :-1], la.Lam,
                                      sigma2=la.sigma2, active=la.keep)
            la.sigma2 = float(max(s2, floor))
