"""M-step of EM-TDAMP on the network state: support probability, target density, slab
variance (ALGORITHM.md 4).

Each update reads the posterior left by the E-step and writes the new hyperparameters
into the state. The noise variance is updated from the output statistics of an epoch by
the likelihood's statistics class (``_likelihoods.LIKELIHOODS[name].stats``); when each
update runs is the engine's schedule.
"""

import numpy as np

from ._group_prior import rho_update, slab_variance_update, target_density_mask
from ._numerics import RHO_BOUNDS, SLAB_VARIANCE_FLOOR


def rho_step(state, bounds=RHO_BOUNDS):
    """``rho_l <- mean_i pi_{l,i}`` for every grouped layer not under a target density."""
    for la in state.layers:
        if la.grouped and la.keep is None:
            rho = rho_update(la.Lam, floor=bounds[0], ceil=bounds[1])
            la.logit_rho = float(np.log(rho) - np.log1p(-rho))


def target_density_step(state, kappas):
    """Keep exactly ``ceil(kappa N)`` groups per layer, those with the largest ``Lam``.

    ``kappas`` has one entry per layer, ``None`` where no target density applies.
    """
    for la, kappa in zip(state.layers, kappas):
        if kappa is not None and la.grouped:
            la.keep = target_density_mask(la.Lam, kappa)


def slab_variance_step(state, floor=SLAB_VARIANCE_FLOOR):
    """EM update of each grouped layer's slab variance ``sigma_l^2`` (ALGORITHM.md 4)."""
    for la in state.layers:
        if la.grouped:
            s2 = slab_variance_update(la.m[:, :-1], la.c[:, :-1], la.Lam,
                                      sigma2=la.sigma2, active=la.keep)
            la.sigma2 = float(max(s2, floor))
