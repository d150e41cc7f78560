"""Module B of TDAMP: the group-sparse prior and its Bernoulli-Gaussian denoiser.

A layer's weight matrix ``W`` has shape ``(N_out, N_in)``. Group ``i`` is column ``i``
(every weight leaving input neuron ``i``) and shares one support bit ``s_i``:

    s_i ~ Bernoulli(rho),   w_ki | s_i = 1 ~ N(0, sigma2),   w_ki | s_i = 0 = 0.

Module A summarizes the data's evidence on each weight in natural parameters ``(H, G)``,
i.e. the factor ``exp(H w - G w^2 / 2)`` with ``G > 0`` (the caller clips ``G``). Every
quantity here is written in log-odds and never divides by ``G``, so that a weight with
no evidence (``G -> 0``) or with overwhelming evidence (``|H| -> inf``) stays finite.

See ALGORITHM.md sections 2, 4 and 5.5.
"""

import math

import numpy as np
from scipy.special import expit


def _floating(a):
    """``a`` as an array of its own floating dtype (float32 or float64), else float64."""
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)

__all__ = [
    "gaussian_denoiser",
    "group_posterior",
    "module_b",
    "rho_update",
    "slab_variance_update",
    "target_density_mask",
    "weight_llr",
]


def _slab_moments(H, G, sigma2):
    """Mean ``mu1`` and variance ``v1`` of ``w`` given ``s = 1`` and the evidence."""
    H, G = _floating(H), _floating(G)
    v1 = sigma2 / (1.0 + sigma2 * G)
    v1 = np.asarray(v1, dtype=np.result_type(H, G))
    return H * v1, np.broadcast_to(v1, np.broadcast_shapes(H.shape, v1.shape))


def weight_llr(H, G, sigma2):
    """Log-likelihood ratio of one weight's evidence under slab versus spike.

    Parameters
    ----------
    H : array_like
        Linear natural parameter of the evidence ``exp(H w - G w^2 / 2)``.
    G : array_like
        Precision of the evidence, ``G >= 0``, broadcastable to ``H``.
    sigma2 : float or array_like
        Slab variance, broadcastable to ``H``.

    Returns
    -------
    lam : ndarray of shape ``H.shape``
        ``lam = log N(r; 0, sigma2 + tau) - log N(r; 0, tau)`` with ``r = H / G`` and
        ``tau = 1 / G``, computed as
        ``-1/2 log(1 + sigma2 G) + H^2 sigma2 / (2 (1 + sigma2 G))``.

    Notes
    -----
    ``lam`` is ``log E_{w ~ N(0, sigma2)}[exp(H w - G w^2 / 2)]``: the log evidence of
    ``s = 1`` minus that of ``s = 0`` (for which ``w = 0`` and the factor is 1). The
    quadratic term is evaluated as ``H mu1 / 2`` with ``mu1 = H sigma2 / (1 + sigma2 G)``,
    which is finite for ``|H|`` up to about ``1e150``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp._core._group_prior import weight_llr
    >>> lam = weight_llr(np.array([0.0, 2.0]), np.array([3.0, 3.0]), 1.0)
    >>> np.round(lam, 6)
    array([-0.693147, -0.193147])
    """
    return _slab_terms(H, G, sigma2)[2]


def _slab_terms(H, G, sigma2):
    """Slab moments ``mu1, v1`` and the llr ``lam`` of :func:`weight_llr`, in one pass."""
    mu1, v1 = _slab_moments(H, G, sigma2)
    lam = 0.5 * _floating(H) * mu1 - 0.5 * np.log1p(mu1.dtype.type(sigma2) * _floating(G))
    return mu1, v1, lam


def module_b(H, G, sigma2, logit_rho):
    """Sum-product on each group's star graph: posterior support log-odds.

    Parameters
    ----------
    H, G : ndarray of shape (N_out, N_in)
        Evidence on each weight, ``exp(H w - G w^2 / 2)``; group ``i`` is column ``i``.
    sigma2 : float or array_like
        Slab variance, broadcastable to ``(N_out, N_in)``.
    logit_rho : float or ndarray of shape (N_in,)
        Prior log-odds ``log(rho / (1 - rho))`` of each group's support.

    Returns
    -------
    Lam : ndarray of shape (N_in,)
        ``Lam_i = logit_rho + sum_k lam_ki``: posterior log-odds of ``s_i = 1``, so
        ``pi_i = expit(Lam_i)``.
    lam : ndarray of shape (N_out, N_in)
        Per-weight log-likelihood ratio, :func:`weight_llr`.

    Notes
    -----
    ========  =====================================  ============
    symbol    meaning                                shape
    ========  =====================================  ============
    lam_ki    llr of weight (k, i), slab vs spike    (N_out, N_in)
    Lam_i     posterior support log-odds of group i  (N_in,)
    pi_i      expit(Lam_i) = q(s_i = 1)              (N_in,)
    ========  =====================================  ============

    The extrinsic B->A prior log-odds for weight ``(k, i)`` is ``Lam_i - lam_ki``
    (the posterior of the denoiser under it is :func:`group_posterior`).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp._core._group_prior import module_b
    >>> H = np.array([[0.0, 3.0], [0.0, 2.0]])
    >>> Lam, lam = module_b(H, np.ones((2, 2)), 1.0, 0.0)
    >>> np.round(Lam, 4)
    array([-0.6931,  2.5569])
    """
    lam = weight_llr(H, G, sigma2)
    Lam = np.asarray(logit_rho, dtype=np.float64) + lam.sum(axis=0, dtype=np.float64)
    return Lam, lam


def gaussian_denoiser(H, G, sigma2, scale=1.0, out=None):
    """Posterior moments of a weight under the Gaussian prior ``N(0, sigma2)``.

    Used for the bias columns, which are never pruned, and for layers without groups
    or with a fixed set of kept groups.

    Parameters
    ----------
    H, G : array_like
        Evidence natural parameters, ``G >= 0``.
    sigma2 : float or array_like
        Prior variance, broadcastable to ``H``.
    scale : float or array_like, default=1.0
        Factor applied to both moments (the damping weight of the new posterior),
        broadcastable to ``H``; it costs no pass of its own.
    out : tuple of two ndarray, optional
        Arrays of the shape of ``H`` that receive ``m`` and ``c``.

    Returns
    -------
    m : ndarray
        ``scale H sigma2 / (1 + sigma2 G)``.
    c : ndarray
        ``scale sigma2 / (1 + sigma2 G)``, computed as ``scale / (G + 1 / sigma2)``.

    Examples
    --------
    >>> from sk_tdamp._core._group_prior import gaussian_denoiser
    >>> m, c = gaussian_denoiser(3.0, 2.0, 1.0)
    >>> float(m), float(c)
    (1.0, 0.3333333333333333)
    >>> m, c = gaussian_denoiser(3.0, 2.0, 1.0, scale=0.5)
    >>> float(m), float(c)
    (0.5, 0.16666666666666666)
    """
    H = _floating(H)
    if out is None:
        out = (np.empty_like(H), np.empty_like(H))
    m, c = out
    np.add(G, np.reciprocal(np.asarray(sigma2, dtype=np.float64)), out=c)
    np.divide(scale, c, out=c)
    np.multiply(H, c, out=m)
    return m, c


def group_posterior(H, G, sigma2, logit_rho, scale=1.0, out=None, work=None):
    """Module B followed by the denoiser: posterior of a grouped weight matrix.

    Parameters
    ----------
    H, G : ndarray of shape (N_out, N_in)
        Evidence on each weight; group ``i`` is column ``i``.
    sigma2 : float
        Slab variance.
    logit_rho : float or ndarray of shape (N_in,)
        Prior support log-odds of each group.
    scale : float, default=1.0
        Factor applied to the returned ``m`` and ``c`` (the turbo loop passes the
        damping weight ``1 - psi``); it costs no extra pass over the matrix.
    out : tuple of two ndarrays of shape (N_out, N_in), optional
        Arrays (or views) that receive ``scale * m`` and ``scale * c``.
    work : tuple of two ndarrays of shape (N_out, N_in), optional
        Scratch arrays (or views).

    Returns
    -------
    m, c : ndarray of shape (N_out, N_in)
        Posterior mean and variance of each weight, times ``scale``.
    Lam : ndarray of shape (N_in,)
        Posterior support log-odds of each group, see :func:`module_b`.

    Notes
    -----
    The denoiser's posterior slab log-odds of weight ``(k, i)`` under the extrinsic
    prior is ``(Lam_i - lam_ki) + lam_ki = Lam_i``: every member of a group carries the
    group's ``pi_i = expit(Lam_i)``. It is used directly, which is exact and avoids
    subtracting a large ``lam_ki`` from ``Lam_i``. This equals the Bernoulli-Gaussian
    denoiser under the extrinsic prior ``Lam - lam`` up to rounding (the tests check it
    against quadrature of that denoiser).

    The matrix is the largest object of the E-step, so the moments are written to share
    its passes: with ``x = G + 1 / sigma2``, ``v1 = 1 / x`` and ``h = H mu1 = H^2 v1``,
    ``2 lam = h - log(x) - log(sigma2)`` and
    ``c = pi v1 + pi (1 - pi) mu1^2 = pi v1 (1 + (1 - pi) h)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp._core._group_prior import group_posterior
    >>> H = np.array([[0.0, 3.0], [0.0, 2.0]])
    >>> m, c, Lam = group_posterior(H, np.ones((2, 2)), 1.0, 0.0)
    >>> np.round(m, 4)
    array([[0.   , 1.392],
           [0.   , 0.928]])
    """
    H = _floating(H)
    G = np.broadcast_to(_floating(G), H.shape)
    if out is None:
        out = (np.empty_like(H), np.empty_like(H))
    t1, t2 = (np.empty_like(H), np.empty_like(H)) if work is None else work
    mu1, h = out
    x = np.add(G, 1.0 / sigma2, out=t1)  # (1 + sigma2 G) / sigma2
    log_x = np.log(x, out=t2)
    v1 = np.reciprocal(x, out=t1)
    np.multiply(H, v1, out=mu1)
    np.multiply(H, mu1, out=h)
    two_lam = (h.sum(axis=0, dtype=np.float64) - log_x.sum(axis=0, dtype=np.float64)
               - H.shape[0] * math.log(sigma2))
    Lam = np.asarray(logit_rho, dtype=np.float64) + 0.5 * two_lam
    w = scale * expit(Lam)
    h *= w * expit(-Lam)
    h += w
    h *= v1  # c = w v1 (1 + (1 - pi) h)
    mu1 *= w
    return mu1, h, Lam


def rho_update(Lam, floor=1e-3, ceil=1 - 1e-3):
    """M-step for the support probability: ``rho = mean_i expit(Lam_i)``, clipped.

    Parameters
    ----------
    Lam : array_like of shape (N_in,)
        Posterior support log-odds of the layer's groups.
    floor, ceil : float, default=1e-3 and 1 - 1e-3
        Bounds that keep ``logit(rho)`` finite.

    Returns
    -------
    rho : float

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp._core._group_prior import rho_update
    >>> rho_update(np.array([0.0, np.log(3.0)]))
    0.625
    """
    return float(np.clip(np.mean(expit(np.asarray(Lam, dtype=np.float64))), floor, ceil))


def target_density_mask(Lam, kappa):
    """Groups kept by the target-density rule (ALGORITHM.md section 4).

    Parameters
    ----------
    Lam : array_like of shape (N_in,)
        Posterior support log-odds of the groups.
    kappa : float in (0, 1]
        Fraction of groups to keep.

    Returns
    -------
    mask : ndarray of bool, shape (N_in,)
        True for the ``max(1, ceil(kappa N_in))`` groups with the largest ``Lam``;
        among equal ``Lam`` the smaller index is kept.

    Notes
    -----
    ``kappa N_in`` is rounded up after subtracting ``1e-9``, so that a product that is
    an integer in exact arithmetic (``0.3 * 10``) is not pushed to the next integer by
    floating-point error.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp._core._group_prior import target_density_mask
    >>> target_density_mask(np.array([0.5, 2.0, -1.0, 2.0]), 0.5)
    array([False,  True, False,  True])
    """
    Lam = np.asarray(Lam, dtype=np.float64)
    if not 0.0 < kappa <= 1.0:
        raise ValueError(f"kappa must be in (0, 1], got {kappa!r}.")
    n_in = Lam.shape[0]
    n_keep = min(n_in, max(1, math.ceil(kappa * n_in - 1e-9)))
    order = np.argsort(-Lam, kind="stable")
    mask = np.zeros(n_in, dtype=bool)
    mask[order[:n_keep]] = True
    return mask


def slab_variance_update(m, c, Lam, sigma2=None, active=None):
    """EM update of the slab variance ``sigma2`` of one layer.

    Parameters
    ----------
    m, c : ndarray of shape (N_out, N_in)
        Posterior means and variances of the grouped weights (no bias column). Without
        ``active`` they must be the mixture moments of :func:`group_posterior`; with
        ``active`` they must be the slab moments (:func:`gaussian_denoiser`) on the
        active groups.
    Lam : ndarray of shape (N_in,)
        Posterior support log-odds of the groups (unused when ``active`` is given).
    sigma2 : float, optional
        Current slab variance, returned unchanged when no group carries posterior
        support mass (every ``expit(Lam)`` underflows to 0); ``nan`` is returned in that
        case when it is not given.
    active : ndarray of bool, shape (N_in,), optional
        Hard support (e.g. :func:`target_density_mask`): ``pi_i`` is 1 on these groups
        and 0 elsewhere, instead of ``expit(Lam_i)``.

    Returns
    -------
    sigma2_new : float
        ``sum_i pi_i sum_k E[w_ki^2 | s_i = 1] / (N_out sum_i pi_i)``.

    Notes
    -----
    This maximizes ``sum_i pi_i sum_k E[log N(w_ki; 0, sigma2) | s_i = 1]``, the part
    of the expected complete log-likelihood that depends on ``sigma2``. With the hard
    ``pi_i`` of ``active`` it is ALGORITHM.md's "sum over active groups of
    E[w^2 | s = 1] over N_out times the number of active groups". Without it, ``m`` and
    ``c`` are moments of ``pi_i N(mu1, v1) + (1 - pi_i) delta_0``, so that
    ``pi_i E[w_ki^2 | s_i = 1] = m_ki^2 + c_ki`` and no division by ``pi_i`` is needed.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp._core._group_prior import slab_variance_update
    >>> m = np.array([[0.5, 0.0], [0.0, 1.0]])
    >>> c = np.array([[0.75, 1.0], [1.0, 1.0]])
    >>> slab_variance_update(m, c, np.array([0.0, 0.0]))
    2.5
    """
    second = np.sum(np.asarray(m, dtype=np.float64) ** 2 + np.asarray(c), axis=0)
    if active is None:
        pi = expit(np.asarray(Lam, dtype=np.float64))
    else:
        pi = np.asarray(active, dtype=bool)
        second = np.where(pi, second, 0.0)
    denom = np.shape(m)[0] * np.sum(pi)
    if not denom > 0.0:
        return float("nan") if sigma2 is None else float(sigma2)
    return float(np.sum(second) / denom)
