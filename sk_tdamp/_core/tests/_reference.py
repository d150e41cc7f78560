"""Test oracles: slow or literal formulas that the production core is checked against.

None of these runs in a fit; they live with the tests so that production modules hold
production code only.
"""

import numpy as np
from scipy.special import expit, log_ndtr

from sk_tdamp._core._group_prior import weight_llr
from sk_tdamp._core._special import normal_tail

_LOG_2PI = float(np.log(2.0 * np.pi))


def log_phi(x):
    """Log of the standard normal density, ``-x^2 / 2 - log(2 pi) / 2``.

    Parameters
    ----------
    x : array_like

    Returns
    -------
    ndarray or float
        ``log phi(x)``, same shape as ``x``.

    Examples
    --------
    >>> round(float(log_phi(0.0)), 6)
    -0.918939
    """
    x = np.asarray(x, dtype=np.float64)
    return -0.5 * (x * x + _LOG_2PI)

def log_Phi(x):
    """Log of the standard normal cdf (``scipy.special.log_ndtr``), accurate in both tails.

    Parameters
    ----------
    x : array_like

    Returns
    -------
    ndarray or float
        ``log Phi(x)``, same shape as ``x``.

    Examples
    --------
    >>> round(float(log_Phi(0.0)), 6)
    -0.693147
    """
    return log_ndtr(np.asarray(x, dtype=np.float64))

def log_gauss(x, mean, var):
    """Log density of ``N(mean, var)`` at ``x``.

    Parameters
    ----------
    x, mean, var : array_like
        Broadcastable; ``var > 0``.

    Returns
    -------
    ndarray or float
        ``log N(x; mean, var)``, broadcast shape.

    Examples
    --------
    >>> round(float(log_gauss(1.0, 1.0, 1.0)), 6)
    -0.918939
    """
    x, mean, var = (np.asarray(t, dtype=np.float64) for t in (x, mean, var))
    d = x - mean
    return -0.5 * (d * d / var + np.log(var) + _LOG_2PI)


def inv_mills(x):
    """Inverse Mills ratio ``phi(x) / Phi(x)`` as the core computes it (``normal_tail``)."""
    return normal_tail(x)[2]


def extrinsic_logit(lam, logit_rho):
    """Extrinsic B->A prior log-odds ``Lam_i - lam_ki``, free of cancellation.

    Parameters
    ----------
    lam : ndarray of shape (N_out, N_in)
        Per-weight log-likelihood ratios from :func:`module_b`.
    logit_rho : float or ndarray of shape (N_in,)
        Prior log-odds of each group's support.

    Returns
    -------
    logit_pi_ba : ndarray of shape (N_out, N_in)
        ``logit_rho + sum_{j != k} lam_ji``, the support log-odds of group ``i`` given
        every member's evidence except weight ``k``'s.

    Notes
    -----
    The leave-one-out sum is the sum of an exclusive prefix and an exclusive suffix
    cumulative sum, so one dominant ``lam_ki`` (say ``1e15``) does not wipe out the
    others, as it does in ``Lam_i - lam_ki``.

    Examples
    --------
    >>> import numpy as np
    >>> extrinsic_logit(np.array([[1e16], [-2.0], [0.5]]), 0.0)
    array([[-1.5e+00],
           [ 1.0e+16],
           [ 1.0e+16]])
    """
    lam = np.asarray(lam, dtype=np.float64)
    before = np.concatenate([np.zeros_like(lam[:1]), np.cumsum(lam[:-1], axis=0)], axis=0)
    after = np.cumsum(lam[::-1], axis=0)[::-1]
    after = np.concatenate([after[1:], np.zeros_like(lam[:1])], axis=0)
    return np.asarray(logit_rho, dtype=np.float64) + (before + after)


def bg_denoiser(H, G, sigma2, logit_p):
    """Posterior moments ``(m, c, pp)`` of a weight under the Bernoulli-Gaussian prior
    ``p N(0, sigma2) + (1 - p) delta_0``, ``p = expit(logit_p)``, and the evidence
    ``exp(H w - G w^2 / 2)``: ``pp = expit(logit_p + lam)``, ``m = pp mu1``,
    ``c = pp v1 + pp (1 - pp) mu1^2`` with the slab moments ``mu1, v1``.
    """
    H = np.asarray(H, dtype=np.float64)
    sigma2 = np.asarray(sigma2, dtype=np.float64)
    v1 = sigma2 / (1.0 + sigma2 * np.asarray(G, dtype=np.float64))
    mu1 = H * v1
    L = np.asarray(logit_p, dtype=np.float64) + weight_llr(H, G, sigma2)
    pp, qq = expit(L), expit(-L)
    return pp * mu1, pp * v1 + (pp * qq) * (mu1 * mu1), pp
