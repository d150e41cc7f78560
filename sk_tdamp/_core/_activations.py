"""Activation factors: moments of ``u = f(z)`` and ``z`` under a tilted Gaussian.

ALGORITHM.md 5.3 (moments) and 5.2 (hidden-layer ``g``, ``Gam`` derive from them).

The forward message ``N(z; omega, V)`` times the backward message ``exp(Bm u - Am u^2 / 2)``
on ``u = f(z)`` gives the tilted density

    p(z) = N(z; omega, V) exp(Bm f(z) - Am f(z)^2 / 2) / Z.

Every activation is an :class:`Activation` factor with the same interface,
``moments(omega, V, Am, Bm) -> (xhat, D, zhat, zvar)`` and the matching
``log_partition(omega, V, Am, Bm) -> log Z``; ``ACTIVATIONS`` maps the estimator's option
strings to the factors, so adding an activation touches this file only.

Symbols (all arrays broadcast to a common shape, typically (batch, n_units)):

=========  =============================================================
omega, V   mean and variance of the forward message on ``z`` (``V > 0``)
Am, Bm     precision-like and linear coefficients of the backward message on ``u``
k          ``1 + Am V``
vt, mt     variance ``V / k`` and mean ``(omega + Bm V) / k`` of the ``z > 0`` piece
a, b       ``mt / sqrt(vt)`` and ``-omega / sqrt(V)``: standardized distances of the two
           pieces' means into their half-lines
xhat, D    mean and variance of ``u = f(z)``
zhat, zvar mean and variance of ``z``
=========  =============================================================
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from ._numerics import FORWARD_VARIANCE_FLOOR
from ._special import abs_tail, normal_tail, signed_tail, trunc_moments


def _prepare(omega, V, Am, Bm):
    """Broadcast to float64, floor ``V`` and clip ``Am >= 0``."""
    arrays = [np.asarray(t, dtype=np.float64) for t in (omega, V, Am, Bm)]
    if any(t.shape != arrays[0].shape for t in arrays[1:]):
        arrays = np.broadcast_arrays(*arrays)
    omega, V, Am, Bm = arrays
    return omega, np.maximum(V, FORWARD_VARIANCE_FLOOR), np.maximum(Am, 0.0), Bm


def _untilted(Am, Bm):
    """True when the backward message is zero (plain moment propagation)."""
    return not (np.any(Am) or np.any(Bm))


def _tail(omega, s, cache):
    """:func:`~._special.abs_tail` of ``|omega| / s``, shared through ``cache`` (a dict
    the caller keeps while ``omega`` and ``V`` stay the same: the forward and backward
    calls of one sweep)."""
    if cache is not None and "tail" in cache:
        return cache["tail"]
    tail = abs_tail(np.abs(omega) / s)
    if cache is not None:
        cache["tail"] = tail
    return tail


def _relu_untilted(omega, V, cache=None):
    """ReLU moments ``(xhat, D)`` of ``u`` under plain ``N(omega, V)`` (``Am = Bm = 0``);
    there ``zhat = omega`` and ``zvar = V``."""
    s = np.sqrt(V)
    a = omega / s
    Q, G, e2 = _tail(omega, s, cache)
    pos = a > 0
    r, w = trunc_moments(a, signed_tail(pos, Q, G, e2)[1])
    p1, p0 = np.where(pos, 1.0 - Q, Q), np.where(pos, Q, 1.0 - Q)
    z1 = s * r
    return p1 * z1, p1 * (V * w + p0 * z1 * z1)


def _relu_pieces(omega, V, Am, Bm, cache=None):
    """Standardized distances of the two pieces into their half-lines and their tails:
    ``s = sqrt(V)``, ``sk = sqrt(1 + Am V)``, ``st = s / sk``, ``a = mt / sqrt(vt)``,
    ``b = -omega / s``, and ``Phis``, ``h`` (:func:`~._special.normal_tail`) of each."""
    s = np.sqrt(V)
    sk = np.sqrt(1.0 + Am * V)
    st = s / sk
    a = (omega + Bm * V) / (sk * sk * st)
    b = -omega / s
    _, Psa, ha = normal_tail(a)
    Psb, hb = signed_tail(b > 0, *_tail(omega, s, cache))
    return s, sk, st, a, b, Psa, ha, Psb, hb


def _relu_tilted(omega, V, Am, Bm, want="all", cache=None):
    """Tilted ReLU moments (inputs prepared): ``want`` is ``"u"`` for ``(xhat, D)``,
    ``"z"`` for ``(zhat, zvar)``, ``"all"`` for the four.

    ``p(z)`` mixes ``N(omega, V)`` truncated to ``z < 0`` (weight ``Phi(b)``) and
    ``C N(mt, vt)`` truncated to ``z > 0`` (weight ``C Phi(a)``). With
    ``log C = -log(k)/2 + (a^2 - b^2)/2`` and ``log Phi(x) = log Phis(x) - min(x,0)^2/2``,
    the log weight ratio is ``d = (max(a,0)^2 - max(b,0)^2)/2 + log(Phis(a) / (Phis(b)
    sqrt k))``: the large quadratic parts cancel exactly.
    """
    s, sk, st, a, b, Psa, ha, Psb, hb = _relu_pieces(omega, V, Am, Bm, cache)
    ap, bp = np.maximum(a, 0.0), np.maximum(b, 0.0)
    d = 0.5 * (ap * ap - bp * bp) + np.log(Psa / (Psb * sk))
    if want == "u":
        ra, wa = trunc_moments(a, ha)
    else:  # both pieces in one call (one continued fraction for the far tails of both)
        (ra, rb), (wa, wb) = trunc_moments(np.stack((a, b)), np.stack((ha, hb)))
    p1, p0 = expit(d), expit(-d)
    z1 = st * ra  # the z > 0 piece's mean and variance
    v1 = st * st * wa
    out = ()
    if want != "z":
        out = (p1 * z1, p1 * (v1 + p0 * z1 * z1))
    if want != "u":
        z0 = s * rb  # the z < 0 piece's mean is -z0
        gap = z1 + z0
        out += (p1 * z1 - p0 * z0, p0 * V * wb + p1 * v1 + p0 * p1 * gap * gap)
    return out


def relu_moments(omega, V, Am, Bm):
    """Moments of ``u = max(z, 0)`` and of ``z`` under the tilted density.

    Parameters
    ----------
    omega, V : array_like
        Mean and variance of the forward message ``N(z; omega, V)``; ``V`` is floored at 1e-200.
    Am, Bm : array_like
        Backward message ``exp(Bm u - Am u^2 / 2)`` on ``u``; ``Am`` is clipped at 0.
        ``Am = Bm = 0`` everywhere takes an exact fast path (plain moment propagation).

    Returns
    -------
    xhat, D : ndarray
        Mean and variance of ``u``, both ``>= 0``.
    zhat, zvar : ndarray
        Mean and variance of ``z``, ``zvar >= 0``.

    Notes
    -----
    ``p(z)`` is a mixture of ``N(omega, V)`` truncated to ``z < 0`` with weight
    ``Phi(b)`` and ``C N(mt, vt)`` truncated to ``z > 0`` with weight ``C Phi(a)``. The
    weights are normalized as ``expit(+-d)`` of their log ratio ``d``; each piece's moments
    are ``trunc_moments`` (mean ``-sqrt(V) r(b)``, resp. ``sqrt(vt) r(a)``) and
    the mixture variances come from the law of total variance (sums of non-negative terms).
    :func:`relu_u_moments` and :func:`relu_z_moments` compute either half alone.

    Examples
    --------
    >>> xhat, D, zhat, zvar = relu_moments(0.0, 1.0, 0.0, 0.0)
    >>> round(float(xhat), 6), round(float(D), 6), float(zhat), float(zvar)
    (0.398942, 0.340845, 0.0, 1.0)
    >>> xhat, D, zhat, zvar = relu_moments(-1.0, 1.0, 1.0, 3.0)
    >>> round(float(xhat), 6), round(float(zhat), 6)
    (0.623927, 0.058367)
    """
    omega, V, Am, Bm = _prepare(omega, V, Am, Bm)
    if _untilted(Am, Bm):
        return (*_relu_untilted(omega, V), omega.copy(), V.copy())
    return _relu_tilted(omega, V, Am, Bm, "all")


def relu_u_moments(omega, V, Am, Bm, cache=None):
    """The ``(xhat, D)`` half of :func:`relu_moments` (what the forward sweep needs).

    ``cache``: a dict kept by the caller while ``omega`` and ``V`` are unchanged, which
    shares the Gaussian tail of ``omega / sqrt(V)`` with :func:`relu_z_moments`.
    """
    omega, V, Am, Bm = _prepare(omega, V, Am, Bm)
    if _untilted(Am, Bm):
        return _relu_untilted(omega, V, cache)
    return _relu_tilted(omega, V, Am, Bm, "u", cache)


def relu_z_moments(omega, V, Am, Bm, cache=None):
    """The ``(zhat, zvar)`` half of :func:`relu_moments` (what the backward sweep needs)."""
    omega, V, Am, Bm = _prepare(omega, V, Am, Bm)
    if _untilted(Am, Bm):
        return omega.copy(), V.copy()
    return _relu_tilted(omega, V, Am, Bm, "z", cache)


def relu_log_partition(omega, V, Am, Bm):
    """Log normalizer ``log Z = log int N(z; omega, V) exp(Bm u - Am u^2 / 2) dz``, ``u = f(z)``.

    With ``f(z) = max(z, 0)``; the ``Z`` whose derivatives in ``omega`` give ``g`` and ``Gam``.

    Parameters
    ----------
    omega, V, Am, Bm : array_like
        As in :func:`relu_moments`.

    Returns
    -------
    ndarray
        ``log(Phi(b) + C Phi(a))``, evaluated in the log domain; 0 when ``Am = Bm = 0``.

    Notes
    -----
    ``d log Z / d omega = (zhat - omega) / V`` and
    ``d^2 log Z / d omega^2 = (zvar - V) / V^2`` (ALGORITHM.md 5.2).

    Examples
    --------
    >>> round(float(relu_log_partition(0.0, 1.0, 0.0, 1.0)), 6)
    0.635064
    """
    omega, V, Am, Bm = _prepare(omega, V, Am, Bm)
    _, _, _, a, b, Psa, _, Psb, _ = _relu_pieces(omega, V, Am, Bm)
    bm = np.minimum(b, 0.0)
    l0 = np.log(Psb) - 0.5 * bm * bm
    # log C + log Phi(a): for a >= 0 with the exponent of 5.3 (small when the tilt is), for
    # a < 0 as -b^2/2 + log Phis(a) (the a^2/2 of log C and of log Phi(a) cancel exactly)
    k = 1.0 + Am * V
    expo = np.where(a >= 0, 0.5 * (Bm * (Bm * V + 2.0 * omega) - Am * omega * omega) / k,
                    -0.5 * b * b)
    l1 = expo - 0.5 * np.log1p(Am * V) + np.log(Psa)
    return np.logaddexp(l0, l1)[()]


def identity_moments(omega, V, Am, Bm):
    """Moments under the tilted density with ``f(z) = z`` (a Gaussian, closed form).

    Parameters
    ----------
    omega, V, Am, Bm : array_like
        As in :func:`relu_moments`.

    Returns
    -------
    xhat, D, zhat, zvar : ndarray
        ``u = z``, so ``xhat = zhat = (omega + Bm V) / (1 + Am V)`` and
        ``D = zvar = V / (1 + Am V)``.

    Examples
    --------
    >>> xhat, D, zhat, zvar = identity_moments(1.0, 2.0, 0.5, 1.0)
    >>> float(xhat), float(D)
    (1.5, 1.0)
    """
    omega, V, Am, Bm = _prepare(omega, V, Am, Bm)
    k = 1.0 + Am * V
    mt, vt = (omega + Bm * V) / k, V / k
    return mt, vt, mt.copy(), vt.copy()


def identity_log_partition(omega, V, Am, Bm):
    """Log normalizer of the identity tilted density.

    Parameters
    ----------
    omega, V, Am, Bm : array_like
        As in :func:`relu_moments`.

    Returns
    -------
    ndarray
        ``log C = -log(1 + Am V) / 2 + (Bm^2 V + 2 Bm omega - Am omega^2) / (2 (1 + Am V))``.

    Examples
    --------
    >>> float(identity_log_partition(0.0, 1.0, 0.0, 2.0))
    2.0
    """
    omega, V, Am, Bm = _prepare(omega, V, Am, Bm)
    k = 1.0 + Am * V
    return (0.5 * ((Bm * (Bm * V + 2.0 * omega) - Am * omega * omega) / k - np.log1p(Am * V)))[()]


def identity_u_moments(omega, V, Am, Bm, cache=None):
    """The ``(xhat, D)`` half of :func:`identity_moments`."""
    return identity_moments(omega, V, Am, Bm)[:2]


def identity_z_moments(omega, V, Am, Bm, cache=None):
    """The ``(zhat, zvar)`` half of :func:`identity_moments`."""
    return identity_moments(omega, V, Am, Bm)[2:]


@dataclass(frozen=True)
class Activation:
    """An activation factor ``u = f(z)``: its tilted moments and their log normalizer.

    Attributes
    ----------
    name : str
        The estimator's option string.
    moments : callable
        ``moments(omega, V, Am, Bm) -> (xhat, D, zhat, zvar)``.
    log_partition : callable
        ``log_partition(omega, V, Am, Bm) -> log Z``, whose derivatives in ``omega`` are
        ``(zhat - omega) / V`` and ``(zvar - V) / V^2``.
    u_moments, z_moments : callable
        ``(omega, V, Am, Bm, cache=None) -> (xhat, D)`` and ``-> (zhat, zvar)``: the
        halves of ``moments`` that the forward and the backward sweep need; ``cache`` is
        a dict the sweep keeps per layer for work the two share.
    """

    name: str
    moments: Callable
    log_partition: Callable
    u_moments: Callable
    z_moments: Callable


ACTIVATIONS = {
    "relu": Activation("relu", relu_moments, relu_log_partition, relu_u_moments,
                       relu_z_moments),
    "identity": Activation("identity", identity_moments, identity_log_partition,
                           identity_u_moments, identity_z_moments),
}
