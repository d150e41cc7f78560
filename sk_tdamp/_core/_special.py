"""Stable Gaussian helpers of the core: tails, Mills ratios, truncated moments.

Symbols
-------
==========  ==========================================================
x           standardized argument (any shape)
phi, Phi    standard normal pdf and cdf
h           inverse Mills ratio ``phi(x) / Phi(x)``
Q           smaller tail ``Phi(-|x|)``
Phis        scaled cdf ``Phi(x) exp(min(x, 0)^2 / 2)``, in ``(0, 1]``
r, w        mean and variance of ``N(x, 1)`` truncated to ``(0, inf)``
==========  ==========================================================

The scaled cdf keeps ``log Phi(x) = log(Phis) - min(x, 0)^2 / 2`` free of cancellation: two
such logs can be subtracted with the quadratic parts cancelled exactly. The truncated
moments ``r = x + h`` and ``w = 1 - h r`` cancel catastrophically for very negative ``x``;
there they come from Laplace's continued fraction for the Mills ratio instead.
"""

import numpy as np
from scipy.special import erfc, erfcx

_INV_SQRT_2PI = float(1.0 / np.sqrt(2.0 * np.pi))
_INV_SQRT2 = float(1.0 / np.sqrt(2.0))
# exp(-x^2 / 2) is 0.0 in float64 beyond |x| ~ 38.6: clipping |x| at 40 is exact there
# and avoids overflow of x^2.
_X_EXP_MAX = 40.0
# Below this |x|, Phi(-|x|) from erfc and exp(-x^2/2) are normal floats (>1e-140).
_X_ERFC_MAX = 25.0
# below this x the direct r = x + h, w = 1 - h r lose more than ~5e-13 relative accuracy
# (w: 8e-14 at -5, 5e-13 at -6 to -8 against 40-digit arithmetic)
_CF_SWITCH = -8.0
# continued-fraction depth: relative error < 7e-15 for x <= _CF_SWITCH, better further out
_CF_TERMS = 16


def normal_tail(x):
    """Tail probability, scaled cdf and inverse Mills ratio from one ``erfcx`` and one ``exp``.

    Parameters
    ----------
    x : array_like

    Returns
    -------
    Q : ndarray
        ``Phi(-|x|)``, the smaller of ``Phi(x)`` and ``Phi(-x)``.
    Phis : ndarray
        ``Phi(x) exp(min(x, 0)^2 / 2)``, in ``(0, 1]``;
        ``log Phi(x) = log(Phis) - min(x, 0)^2 / 2``
        (to absolute accuracy ~1e-16 for ``x > 0``, which is what log-weight differences need;
        use ``scipy.special.log_ndtr`` for relative accuracy there).
    h : ndarray
        ``phi(x) / Phi(x)``; ``~ -x`` as ``x -> -inf``, ``~ phi(x)`` as ``x -> +inf``.

    Notes
    -----
    With ``e = erfcx(|x| / sqrt 2)``: ``Phi(-|x|) = e exp(-x^2/2) / 2``; for ``x <= 0``,
    ``Phis = e / 2`` and ``h = sqrt(2/pi) / e``, with no under- or overflow. For
    ``|x| <= 25`` ``e / 2`` is computed as ``Phi(-|x|) / exp(-x^2/2)`` from ``erfc``, which
    costs half as much as ``erfcx``; the ratio agrees with ``erfcx`` to about 1e-13
    relative (the rounding of ``x^2`` inside ``exp``).

    Examples
    --------
    >>> Q, Phis, h = normal_tail(0.0)
    >>> float(Q), float(Phis), round(float(h), 6)
    (0.5, 0.5, 0.797885)
    """
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    x = x.reshape(-1)
    Q, G, e2 = abs_tail(np.abs(x))
    Phis, h = signed_tail(x > 0, Q, G, e2)
    return Q.reshape(shape)[()], Phis.reshape(shape)[()], h.reshape(shape)[()]


def abs_tail(ax):
    """The sign-free part of :func:`normal_tail` at ``ax = |x|`` (any shape).

    Returns ``Q = Phi(-ax)``, ``G = exp(-ax^2 / 2)`` (0 beyond 40) and
    ``e2 = Phi(-ax) / G``; with them :func:`signed_tail` gives the scaled cdf and the
    inverse Mills ratio of ``x`` and of ``-x`` alike.
    """
    Q = 0.5 * erfc(ax * _INV_SQRT2)  # erfc costs half of erfcx
    xc = np.minimum(ax, _X_EXP_MAX)
    G = np.exp(-0.5 * xc * xc)
    # Phi(-ax) exp(ax^2/2) = Q / G while both are normal numbers; erfcx beyond
    far = ax > _X_ERFC_MAX
    e2 = np.divide(Q, G, out=np.ones_like(Q), where=~far)
    if far.any():
        e2[far] = 0.5 * erfcx(ax[far] * _INV_SQRT2)
        Q[far] = e2[far] * G[far]
    return Q, G, e2


def signed_tail(pos, Q, G, e2):
    """``(Phis, h)`` of :func:`normal_tail` at ``x`` from :func:`abs_tail` of ``|x|``;
    ``pos`` is ``x > 0``."""
    Phis = np.where(pos, 1.0 - Q, e2)
    h = np.where(pos, G, 1.0) * _INV_SQRT_2PI / Phis
    return Phis, h


def _trunc_moments_cf(u):
    """``(r, w)`` at ``x = -u`` (``u >= 8``) from Laplace's continued fraction.

    ``Phi(-u) / phi(u) = 1 / T_0`` with ``T_k = u + (k + 1) / T_{k+1}`` (evaluated from
    ``T_{_CF_TERMS} = u`` down, in place); then ``h = T_0``,
    ``r = h - u = 1 / T_1`` and ``w = 1 - T_0 / T_1 = (u + 4/T_2 - 3/T_3) / (T_1^2 T_2)``,
    all sums of positive terms.
    """
    T3 = u.copy()
    for k in range(_CF_TERMS - 1, 2, -1):
        np.divide(k + 1, T3, out=T3)
        T3 += u
    T2 = u + 3.0 / T3
    T1 = u + 2.0 / T2
    return 1.0 / T1, (u + 4.0 / T2 - 3.0 / T3) / T1 / T1 / T2


def trunc_moments(x, h=None):
    """Mean and variance of ``N(x, 1)`` truncated to ``(0, inf)``.

    Parameters
    ----------
    x : array_like
        Mean of the untruncated Gaussian, in units of its standard deviation.
    h : array_like, optional
        ``normal_tail(x)[2]`` (the inverse Mills ratio) if already computed.

    Returns
    -------
    r : ndarray
        Mean ``x + h(x) > 0``; ``~ 1 / |x|`` as ``x -> -inf``, ``~ x`` as ``x -> +inf``.
    w : ndarray
        Variance ``1 - h(x) r(x)`` in ``(0, 1)``; ``~ 1 / x^2`` as ``x -> -inf``.

    Notes
    -----
    A Gaussian ``N(mu, s^2)`` restricted to ``z > 0`` has mean ``s r(mu / s)`` and variance
    ``s^2 w(mu / s)``. For ``x < -8`` both come from a continued fraction (no cancellation).

    Examples
    --------
    >>> r, w = trunc_moments(0.0)  # half-normal
    >>> round(float(r), 6), round(float(w), 6)
    (0.797885, 0.36338)
    """
    x = np.asarray(x, dtype=np.float64)
    h = normal_tail(x)[2] if h is None else np.asarray(h, dtype=np.float64)
    far = x < _CF_SWITCH
    r = np.asarray(x + h)
    w = np.asarray(1.0 - h * np.where(far, 0.0, r))  # far entries are replaced below
    if np.any(far):
        r[far], w[far] = _trunc_moments_cf(-x[far])
    return r[()], w[()]
