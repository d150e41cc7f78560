"""From the posterior chain to the fitted model: one read-out function, one typed result.

:func:`readout` turns the state left by the E-step (and the moving average of its
posteriors) into a :class:`Posterior`: the kept groups, the predictive weight moments
(the data evidence counted once, ALGORITHM.md 5.7 and doc/algorithm.rst "Predictive
variance: one pass of evidence"), the support probabilities and hyperparameters.
:func:`mlp_weights` gives the same network in the orientation of scikit-learn's MLP, and
:func:`pruned` its compact version (ALGORITHM.md 7).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from ._core._predict import LayerMoments, one_pass_variance


@dataclass(frozen=True)
class Posterior:
    """The fitted model as prediction and the fitted attributes read it.

    Attributes
    ----------
    layers : list of LayerMoments
        Predictive weight moments per layer (pruned groups zero), with the input shifts.
    masks : list of ndarray of bool
        Kept groups: input features, then each hidden layer's neurons.
    support_probas : list of ndarray
        Posterior support probability of each group (ones where ungrouped).
    rho : ndarray
        Prior support probability of each layer's groups (1 where ungrouped).
    prior_variances : ndarray
        Slab variance of each layer.
    v : float
        Noise variance in the core's (standardized) units.
    """

    layers: list
    masks: list
    support_probas: list
    rho: np.ndarray
    prior_variances: np.ndarray
    v: float


@dataclass(frozen=True)
class MLPWeights:
    """A network in scikit-learn's MLP orientation: lists over the layers of
    ``coefs (n_in, n_out)``, ``intercepts (n_out,)`` and their posterior variances."""

    coefs: list
    intercepts: list
    coefs_var: list
    intercepts_var: list


def group_masks(state):
    """Kept groups per layer: input features, then each hidden layer's neurons."""
    masks = []
    for la in state.layers:
        if not la.grouped:
            masks.append(np.ones(la.n_in, dtype=bool))
        elif la.keep is not None:
            masks.append(la.keep.copy())
        else:
            masks.append(la.Lam > 0.0)
    return masks


def readout(state, average, settings):
    """The :class:`Posterior` of a chain's state and posterior average (or None)."""
    masks = group_masks(state)
    if average is not None and average.t > 0:
        moments = average.moments()
    else:
        moments = [(la.m, la.c, 0.0) for la in state.layers]
    layers = []
    for la, (m, c, spread), mask in zip(state.layers, moments, masks):
        keep = np.append(mask, True)
        m, c = m.astype(np.float64), c.astype(np.float64)  # predictions in float64
        c = one_pass_variance(c, la.sigma2, state.bias_var, settings.pasp_memory)
        layers.append(LayerMoments(m * keep, (c + spread) * keep, la.mu))
    return Posterior(
        layers=layers, masks=masks,
        support_probas=[expit(la.Lam) if la.grouped else np.ones(la.n_in)
                        for la in state.layers],
        rho=np.array([expit(la.logit_rho) if la.grouped else 1.0 for la in state.layers]),
        prior_variances=np.array([la.sigma2 for la in state.layers]), v=state.v)


def mlp_weights(layers, out_scale=None, out_shift=None):
    """:class:`MLPWeights` of predictive layer moments.

    A layer with shifted inputs computes ``W (u - mu) + b'``; its MLP-form intercept is
    ``b = b' - W mu``, with the marginal posterior moments of independent ``W`` and
    ``b'``: mean ``m_b' - m_W mu`` and variance ``c_b' + c_W mu^2``. ``out_scale`` and
    ``out_shift`` map the last layer to the target's units (the regressor's
    standardization of y).
    """
    coefs, intercepts, cvars, ivars = [], [], [], []
    for la in layers:
        W, cW = la.m[:, :-1], la.c[:, :-1]
        b, cb = la.m[:, -1].copy(), la.c[:, -1].copy()
        if la.mu is not None:
            b -= W @ la.mu
            cb += cW @ (la.mu * la.mu)
        coefs.append(W.T.copy())
        intercepts.append(b)
        cvars.append(cW.T.copy())
        ivars.append(cb)
    if out_scale is not None:
        coefs[-1] = coefs[-1] * out_scale
        cvars[-1] = cvars[-1] * out_scale ** 2
        intercepts[-1] = intercepts[-1] * out_scale + out_shift
        ivars[-1] = ivars[-1] * out_scale ** 2
    return MLPWeights(coefs, intercepts, cvars, ivars)


def pruned(weights, masks, shifts):
    """The compact network: the kept features' and neurons' rows and columns only.

    Returns ``(MLPWeights, pruned shifts)``; it predicts exactly as the full network.
    """
    rows = masks[1:] + [np.ones(weights.intercepts[-1].shape[0], dtype=bool)]
    out = MLPWeights([], [], [], [])
    for W, b, cW, cb, cols, r in zip(weights.coefs, weights.intercepts, weights.coefs_var,
                                     weights.intercepts_var, masks, rows):
        out.coefs.append(W[np.ix_(cols, r)])
        out.intercepts.append(b[r])
        out.coefs_var.append(cW[np.ix_(cols, r)])
        out.intercepts_var.append(cb[r])
    return out, [mu[cols] for mu, cols in zip(shifts, masks)]
