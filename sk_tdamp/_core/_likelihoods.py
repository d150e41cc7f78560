"""Output layer of TDAMP: the Gaussian and probit-product likelihood factors.

Module A's forward sweep ends with a Gaussian message ``N(z_L; omega, V)`` on each output
pre-activation (diagonal, one pair per sample and output). An output step combines it
with the likelihood ``p(y | z_L)`` and returns an :class:`OutputStep`

========  ==========================================  =========
symbol    meaning                                     shape
========  ==========================================  =========
g         d log Z / d omega                           (B, C)
Gam       -d^2 log Z / d omega^2 (diagonal)           (B, C)
zhat      posterior mean of z_L, ``omega + V g``      (B, C)
zvar      posterior variance of z_L                   (B, C)
logZ      log normalizer, summed over the outputs     (B,)
========  ==========================================  =========

where ``Z = E_{z ~ N(omega, V)} p(y | z)`` (for the probit-product, the product of the
pairwise factors' normalizers, see :func:`probit_output`).

The noise variance ``v`` is learned by EM (ALGORITHM.md section 4): the output statistics
of an epoch are accumulated by the likelihood's statistics class (:class:`GaussianVStats`,
closed form; :class:`ProbitVStats`, a one-dimensional maximization,
:func:`probit_v_update_reference`, and the cheap :func:`probit_v_update` used every
epoch). Every likelihood is a :class:`Likelihood` factor with the same interface;
``LIKELIHOODS`` maps the option strings to them, so adding a likelihood touches this file.

See ALGORITHM.md sections 3, 4, 5.4 and 6.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.optimize import minimize_scalar
from scipy.special import erfcx, log_ndtr

from ._numerics import GAUSSIAN_V_BOUNDS, PROBIT_V_BOUNDS, TINY

__all__ = [
    "LIKELIHOODS",
    "GaussianVStats",
    "Likelihood",
    "OutputStep",
    "ProbitVStats",
    "gaussian_output",
    "probit_log_scores",
    "probit_output",
    "probit_pair_stats",
    "probit_v_objective",
    "probit_v_update",
    "probit_v_update_reference",
]


class OutputStep(NamedTuple):
    """What an output step returns (see the module docstring for the symbols)."""

    g: np.ndarray
    Gam: np.ndarray
    zhat: np.ndarray
    zvar: np.ndarray
    logZ: np.ndarray


_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_LOG_2PI = math.log(2.0 * math.pi)
# Below this t the curvature of log Phi is taken from its asymptotic series (1 - x R(x)
# loses about log10(x^2) digits to cancellation; at x = 50 the series is exact to 1e-13).
_T_ASYMPTOTIC = -50.0


def _probit_curvature(t):
    """Inverse Mills ratio and curvature of ``log Phi`` at ``t``, stable for any ``t``.

    Parameters
    ----------
    t : ndarray
        Points.

    Returns
    -------
    lam : ndarray
        ``phi(t) / Phi(t) = d log Phi(t) / dt``, via ``sqrt(2/pi) / erfcx(-t / sqrt 2)``.
    h : ndarray
        ``lam (t + lam) = -d^2 log Phi(t) / dt^2``, in ``[0, 1]``. For ``t < -50`` it is
        ``(lam / x)^2 x^2 (1 - x R(x))`` with ``x = -t`` and the Mills ratio series
        ``x^2 (1 - x R) = 1 - 3/x^2 + 15/x^4 - 105/x^6 + 945/x^8``, which avoids the
        cancellation in ``t + lam``.
    """
    t = np.asarray(t, dtype=np.float64)
    lam = _SQRT_2_OVER_PI / erfcx(-t / _SQRT2)
    h = lam * (t + lam)
    far = t < _T_ASYMPTOTIC
    if np.any(far):
        x = -t[far]
        z = 1.0 / x**2
        h[far] = (lam[far] / x) ** 2 * (1.0 - z * (3.0 - z * (15.0 - z * (105.0 - 945.0 * z))))
    return lam, np.clip(h, 0.0, 1.0)


def gaussian_output(y, omega, V, v):
    """Output step of the Gaussian likelihood ``p(y | z) = N(y; z, v)``.

    Parameters
    ----------
    y : ndarray of shape (B, C)
        Targets.
    omega, V : ndarray of shape (B, C)
        Mean and variance of the forward message on ``z_L``.
    v : float
        Noise variance, ``v > 0``.

    Returns
    -------
    g, Gam : ndarray of shape (B, C)
        ``(y - omega) / (V + v)`` and ``1 / (V + v)``.
    zhat, zvar : ndarray of shape (B, C)
        Posterior mean ``omega + V g`` and variance ``V v / (V + v)`` of ``z_L``.
    logZ : ndarray of shape (B,)
        ``sum_k log N(y_k; omega_k, V_k + v)``.

    Examples
    --------
    >>> import numpy as np
    >>> g, Gam, zhat, zvar, logZ = gaussian_output(
    ...     np.array([[1.0]]), np.array([[0.0]]), np.array([[1.0]]), 1.0)
    >>> float(g[0, 0]), float(zhat[0, 0]), float(zvar[0, 0])
    (0.5, 0.5, 0.5)
    """
    y, omega, V = (np.asarray(a, dtype=np.float64) for a in (y, omega, V))
    S = V + v
    Gam = 1.0 / S
    g = (y - omega) * Gam
    logZ = -0.5 * np.sum(_LOG_2PI + np.log(S) + (y - omega) * g, axis=1)
    return OutputStep(g, Gam, omega + V * g, V * v * Gam, logZ)


def probit_output(y, omega, V, v):
    """Output step of the probit-product likelihood, pairwise factors taken independently.

    With ``c = y_n`` the true class, each factor ``Phi((z_c - z_j) / sqrt(v))``, ``j != c``,
    has the Gaussian expectation ``Phi(t_j)``:

    ======  =======================================  =========
    symbol  meaning                                  shape
    ======  =======================================  =========
    s_j     ``sqrt(v + V_c + V_j)``                  (B, C)
    t_j     ``(omega_c - omega_j) / s_j``            (B, C)
    lam_j   ``phi(t_j) / Phi(t_j)``                  (B, C)
    ======  =======================================  =========

    and ``log Z = sum_{j != c} log Phi(t_j)`` (ALGORITHM.md 5.4).

    Parameters
    ----------
    y : ndarray of shape (B,)
        Class indices in ``[0, C)``.
    omega, V : ndarray of shape (B, C)
        Mean and variance of the forward message on ``z_L``.
    v : float
        Probit temperature, ``v > 0``.

    Returns
    -------
    g, Gam : ndarray of shape (B, C)
        ``g_j = -lam_j / s_j``, ``g_c = sum_{j != c} lam_j / s_j``;
        ``Gam_j = lam_j (t_j + lam_j) / s_j^2``, ``Gam_c = sum_{j != c} Gam_j``.
    zhat, zvar : ndarray of shape (B, C)
        ``omega + V g`` and ``V - V^2 Gam`` clipped to ``[tiny, V]``.
    logZ : ndarray of shape (B,)
        ``sum_{j != c} log Phi(t_j)``.

    Examples
    --------
    >>> import numpy as np
    >>> g, Gam, zhat, zvar, logZ = probit_output(
    ...     np.array([0]), np.zeros((1, 2)), np.ones((1, 2)), 2.0)
    >>> np.round(g, 4), np.round(np.exp(logZ), 4)
    (array([[ 0.3989, -0.3989]]), array([0.5]))
    """
    omega, V = np.asarray(omega, dtype=np.float64), np.asarray(V, dtype=np.float64)
    rows, y = np.arange(omega.shape[0]), np.asarray(y, dtype=np.intp)
    s = np.sqrt(v + V[rows, y][:, None] + V)
    t = (omega[rows, y][:, None] - omega) / s
    lam, h = _probit_curvature(t)
    log_phi = log_ndtr(t)
    for a in (lam, h, log_phi):
        a[rows, y] = 0.0
    g, Gam = -lam / s, h / s**2
    g[rows, y] = -np.sum(g, axis=1)
    Gam[rows, y] = 0.0
    Gam[rows, y] = np.sum(Gam, axis=1)
    zvar = np.clip(V - V**2 * Gam, TINY, V)
    return OutputStep(g, Gam, omega + V * g, zvar, np.sum(log_phi, axis=1))


def probit_log_scores(omega, V, v):
    """Unnormalized log class probabilities of the probit-product model (ALGORITHM.md 6).

    ``log P(c) = sum_{j != c} log Phi((omega_c - omega_j) / sqrt(v + V_c + V_j))`` up to a
    per-row constant; ``predict``, ``predict_proba``, ``predict_log_proba`` and
    ``decision_function`` of the classifier all derive from these scores.

    Parameters
    ----------
    omega, V : ndarray of shape (B, C)
        Predictive mean and variance of the outputs ``z_L``.
    v : float
        Probit temperature, ``v > 0``.

    Returns
    -------
    scores : ndarray of shape (B, C)

    Examples
    --------
    >>> import numpy as np
    >>> s = probit_log_scores(np.array([[0.0, 1.0]]), np.ones((1, 2)), 2.0)
    >>> np.round(np.exp(s), 4)
    array([[0.3085, 0.6915]])
    """
    omega, V = np.asarray(omega, dtype=np.float64), np.asarray(V, dtype=np.float64)
    V = np.broadcast_to(V, omega.shape)
    C = omega.shape[1]
    t = (omega[:, :, None] - omega[:, None, :]) / np.sqrt(v + V[:, :, None] + V[:, None, :])
    log_phi = log_ndtr(t)
    log_phi[:, np.arange(C), np.arange(C)] = 0.0
    return log_phi.sum(axis=2)


def probit_pair_stats(y, zhat, zvar):
    """Posterior moments of the class differences ``d = z_{y_n} - z_j``, ``j != y_n``.

    Parameters
    ----------
    y : ndarray of shape (B,)
        Class indices.
    zhat, zvar : ndarray of shape (B, C)
        Posterior means and variances of ``z_L`` (from :func:`probit_output`).

    Returns
    -------
    dm, dv : ndarray of shape (B * (C - 1),)
        ``zhat_{y_n} - zhat_j`` and ``zvar_{y_n} + zvar_j``, ordered by sample then ``j``.

    Examples
    --------
    >>> import numpy as np
    >>> dm, dv = probit_pair_stats(np.array([1]), np.array([[0.0, 2.0, 1.0]]),
    ...                            np.array([[0.1, 0.2, 0.3]]))
    >>> dm, dv
    (array([2., 1.]), array([0.3, 0.5]))
    """
    zhat, zvar = np.asarray(zhat, dtype=np.float64), np.asarray(zvar, dtype=np.float64)
    rows, y = np.arange(zhat.shape[0]), np.asarray(y, dtype=np.intp)
    others = np.ones(zhat.shape, dtype=bool)
    others[rows, y] = False
    dm = (zhat[rows, y][:, None] - zhat)[others]
    dv = (zvar[rows, y][:, None] + zvar)[others]
    return dm, dv


@functools.lru_cache(maxsize=8)
def _gauss_hermite(n_nodes):
    """Nodes and normalized weights of ``n_nodes``-point Gauss-Hermite (probabilists')."""
    x, w = hermegauss(n_nodes)
    return x, w / math.sqrt(2.0 * math.pi)


def _gh_objective(v, dm, dv, weights=None, n_nodes=20):
    """``sum_i w_i E_{d ~ N(dm_i, dv_i)} log Phi(d / sqrt v)`` by Gauss-Hermite."""
    x, w = _gauss_hermite(n_nodes)
    inv_s = 1.0 / math.sqrt(v)
    total = log_ndtr((dm[:, None] + np.sqrt(dv)[:, None] * x) * inv_s) @ w  # all nodes
    return float(np.sum(total) if weights is None else np.dot(weights, total))


def probit_v_objective(v, dm, dv, n_nodes=20, *, weights=None):
    """EM objective of the probit temperature, ``F(v) = sum E log Phi(d / sqrt v)``.

    Parameters
    ----------
    v : float
        Probit temperature, ``v > 0``.
    dm, dv : ndarray of shape (P,)
        Mean and variance of each pair difference ``d ~ N(dm, dv)``
        (from :func:`probit_pair_stats`).
    n_nodes : int, default=20
        Gauss-Hermite nodes (probabilists' weight ``exp(-x^2 / 2)``).
    weights : ndarray of shape (P,), default=None
        Multiplicity of each pair (all ones when None), e.g. the counts of a pooled
        summary of pairs.

    Returns
    -------
    F : float
        ``sum_i weights_i sum_k w_k log Phi((dm_i + sqrt(dv_i) x_k) / sqrt v)`` with
        normalized node weights ``w_k``; ``log Phi`` is ``scipy.special.log_ndtr``.

    Notes
    -----
    With ``sigma = sqrt(dv / v)`` the integrand in ``x`` bends over a width ``1 / sigma``,
    so 20 nodes are exact to about ``1e-8`` while ``sigma <= 2`` and leave relative errors
    of about ``1e-4`` at ``sigma = 3`` and ``3e-3`` at ``sigma = 10``. Pairs with
    ``sigma >> 1`` do not decide the maximizer: in that regime
    ``dF/d log v = (1/v) sum dv J(dm / sqrt dv) > 0`` with ``J > 0`` (a Gaussian's
    expected squared hinge), so the optimum lies where ``v`` is comparable to ``dv``.

    Examples
    --------
    >>> import numpy as np
    >>> round(probit_v_objective(1.0, np.array([0.0]), np.array([0.0])), 6)
    -0.693147
    """
    dm, dv = np.asarray(dm, dtype=np.float64), np.asarray(dv, dtype=np.float64)
    return _gh_objective(v, dm, dv, weights, n_nodes)


def _maximize_v(dm, dv, weights, bounds, n_nodes):
    """Bounded Brent search of ``argmax_v F(v)`` over ``log v``."""
    if dm.size == 0:
        raise ValueError("the probit v M-step needs at least one class pair")
    res = minimize_scalar(
        lambda u: -_gh_objective(math.exp(u), dm, dv, weights, n_nodes),
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return math.exp(res.x)


def probit_v_update_reference(dm, dv, bounds=PROBIT_V_BOUNDS, n_nodes=20, *, weights=None):
    """Reference probit M-step: ``argmax_v F(v)`` by a bounded search over ``log v``.

    Each objective evaluation costs ``n_nodes`` passes over the pairs, and the search
    needs about 20 to 30 of them; :func:`probit_v_update` is the cheap equivalent.

    Parameters
    ----------
    dm, dv : ndarray of shape (P,)
        Mean and variance of each pair difference (from :func:`probit_pair_stats`).
    bounds : tuple of float, default=(1e-3, 1e3)
        Search interval for ``v``.
    n_nodes : int, default=20
        Gauss-Hermite nodes of :func:`probit_v_objective`.
    weights : ndarray of shape (P,), default=None
        Multiplicity of each pair (all ones when None).

    Returns
    -------
    v : float
        The maximizer of :func:`probit_v_objective` within ``bounds`` (to a relative
        ``1e-6``).

    Examples
    --------
    >>> import numpy as np
    >>> dm, dv = np.array([2.0, 1.0, -1.0]), np.array([0.5, 0.5, 0.5])
    >>> round(probit_v_update_reference(dm, dv), 3)
    7.018
    """
    dm, dv = np.asarray(dm, dtype=np.float64), np.asarray(dv, dtype=np.float64)
    return _maximize_v(dm, dv, weights, bounds, n_nodes)


def _grid_index(coord, n):
    """Index of each value on a uniform grid of ``n`` cells spanning its range."""
    lo, hi = coord.min(), coord.max()
    if not hi > lo:
        return np.zeros(coord.shape, dtype=np.intp)
    return np.minimum(np.floor((coord - lo) * (n / (hi - lo))), n - 1).astype(np.intp)


def _compress_pairs(dm, dv, scale, n_bins, weights=None):
    """Moment-matched summary of the pairs on a grid in ``(asinh(dm / scale), log dv)``.

    The pairs of one cell are pooled into one weighted pair ``N(mean dm, mean dv + var dm)``,
    the Gaussian with the cell mixture's mean and variance. Returns ``(dm, dv, weights)``
    of the non-empty cells; input ``weights`` are pair multiplicities (ones when None).
    """
    size = n_bins[0] * n_bins[1]
    cells = _grid_index(np.arcsinh(dm / scale), n_bins[0]) * n_bins[1] + _grid_index(
        np.log(np.maximum(dv, TINY)), n_bins[1]
    )
    w = np.ones_like(dm) if weights is None else np.asarray(weights, dtype=np.float64)
    count = np.bincount(cells, w, size)
    keep = count > 0
    mean = np.bincount(cells, w * dm, size) / np.where(keep, count, 1.0)
    spread = np.bincount(cells, w * (dm - mean[cells]) ** 2, size)
    dv_pooled = (np.bincount(cells, w * dv, size)[keep] + spread[keep]) / count[keep]
    return mean[keep], dv_pooled, count[keep]


def probit_v_update(
    dm, dv, v_old, bounds=PROBIT_V_BOUNDS, *, n_bins=(128, 32), n_nodes=20, weights=None
):
    """Cheap probit M-step: the reference maximization on a moment-matched summary of pairs.

    The pairs are binned on a ``n_bins[0] x n_bins[1]`` grid in ``(asinh(dm / sqrt(v_old)),
    log dv)``; each non-empty cell becomes one pair ``N(mean dm, mean dv + var dm)``
    (the Gaussian with the cell's mixture mean and variance) weighted by its count, and
    :func:`probit_v_update_reference`'s search runs on those (at most
    ``n_bins[0] n_bins[1]``, typically one to three thousand) weighted pairs.
    The binning costs a handful of vectorized passes over the pairs (two transforms,
    four ``bincount``), and the search no longer depends on their number.

    Parameters
    ----------
    dm, dv : ndarray of shape (P,)
        Mean and variance of each pair difference (from :func:`probit_pair_stats`).
    v_old : float
        Current temperature. It sets the ``dm`` scale of the grid (resolution ``sqrt v``
        near ``dm = 0``, logarithmic beyond) and is returned when there are no pairs.
    bounds : tuple of float, default=(1e-3, 1e3)
        Search interval for ``v``.
    n_bins : tuple of int, default=(128, 32)
        Grid size in ``dm`` and ``dv``.
    n_nodes : int, default=20
        Gauss-Hermite nodes of the objective.
    weights : ndarray of shape (P,), default=None
        Multiplicity of each pair (all ones when None); summaries pooled from several
        sources (e.g. federated clients) can be concatenated and passed with their counts.

    Returns
    -------
    v : float
        Approximate maximizer of :func:`probit_v_objective`; on the test suite's inputs
        (separated or overlapping classes, misclassified pairs, ``dv`` from ``1e-6`` to
        ``20``) it is within a relative ``1e-3`` of the reference, typically ``1e-4``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> dm, dv = rng.normal(1.0, 2.0, 10_000), rng.uniform(0.1, 1.0, 10_000)
    >>> v_ref = probit_v_update_reference(dm, dv)
    >>> bool(abs(probit_v_update(dm, dv, v_old=10.0) / v_ref - 1) < 1e-3)
    True
    """
    dm, dv = np.asarray(dm, dtype=np.float64), np.asarray(dv, dtype=np.float64)
    if dm.size == 0:
        return float(v_old)
    scale = math.sqrt(min(max(v_old, bounds[0]), bounds[1]))
    dm_c, dv_c, counts = _compress_pairs(dm, dv, scale, n_bins, weights)
    return _maximize_v(dm_c, dv_c, counts, bounds, n_nodes)


@dataclass
class GaussianVStats:
    """Running sums of ``(y - zhat)^2 + zvar`` over an epoch, for the Gaussian v M-step.

    Attributes
    ----------
    total : float
        ``sum [(y - zhat)^2 + zvar]`` over samples and outputs.
    count : int
        Number of terms in ``total``.
    """

    total: float = 0.0
    count: int = 0

    def add(self, y, zhat, zvar):
        r = y - zhat
        self.total += float(np.sum(r * r + zvar))
        self.count += r.size

    def update(self, v_old):
        """``v = mean[(y - zhat)^2 + Var z_L]``, within ``GAUSSIAN_V_BOUNDS``.

        Examples
        --------
        >>> GaussianVStats(total=3.0, count=4).update(1.0)
        0.75
        """
        if self.count == 0:
            return v_old
        return float(np.clip(self.total / self.count, *GAUSSIAN_V_BOUNDS))

    def to_arrays(self):
        """The sums as 0-d arrays (a federated client's message)."""
        return {"total": np.asarray(self.total), "count": np.asarray(self.count)}

    @classmethod
    def from_arrays(cls, data):
        return cls(float(data["total"]), int(data["count"]))

    @classmethod
    def merge(cls, parts):
        """The statistics of the pooled data of ``parts`` (summed in order)."""
        total, count = parts[0].total, parts[0].count
        for part in parts[1:]:
            total, count = total + part.total, count + part.count
        return cls(float(total), int(count))


@dataclass
class ProbitVStats:
    """Pairwise margins ``z_y - z_j ~ N(dm, dv)`` of an epoch, for the probit v M-step.

    Attributes
    ----------
    dm, dv : list of ndarray
        The margins' posterior means and variances, one array per minibatch
        (:func:`probit_pair_stats`).
    """

    dm: list = field(default_factory=list)
    dv: list = field(default_factory=list)

    def add(self, y, zhat, zvar):
        dm, dv = probit_pair_stats(y, zhat, zvar)
        self.dm.append(dm)
        self.dv.append(dv)

    def update(self, v_old):
        """Maximize ``sum E log Phi(d / sqrt v)`` over ``v`` (ALGORITHM.md 4)."""
        if not self.dm:
            return v_old
        dm, dv = np.concatenate(self.dm), np.concatenate(self.dv)
        return float(probit_v_update(dm, dv, v_old))

    def to_arrays(self):
        """The margins as two flat arrays (a federated client's message)."""
        return {name: np.concatenate(parts) if parts else np.empty(0)
                for name, parts in (("dm", self.dm), ("dv", self.dv))}

    @classmethod
    def from_arrays(cls, data):
        return cls([np.asarray(data["dm"], dtype=np.float64)],
                   [np.asarray(data["dv"], dtype=np.float64)])

    @classmethod
    def merge(cls, parts):
        """The margins of the pooled data of ``parts``, concatenated in order."""
        return cls([np.concatenate([p.to_arrays()["dm"] for p in parts])],
                   [np.concatenate([p.to_arrays()["dv"] for p in parts])])


@dataclass(frozen=True)
class Likelihood:
    """A likelihood factor ``p(y | z_L)``: what module A and the M-step need of it.

    Attributes
    ----------
    name : str
        The option string.
    output : callable
        ``output(y, omega, V, v) -> OutputStep``.
    stats : type
        Accumulator of the noise-variance M-step (``add``, ``update``, ``merge``,
        ``to_arrays``, ``from_arrays``).
    v_bounds : tuple of float
        Interval of the noise variance ``v``.
    """

    name: str
    output: Callable
    stats: type
    v_bounds: tuple


LIKELIHOODS = {
    "gaussian": Likelihood("gaussian", gaussian_output, GaussianVStats, GAUSSIAN_V_BOUNDS),
    "probit": Likelihood("probit", probit_output, ProbitVStats, PROBIT_V_BOUNDS),
}
