"""Posterior as prior (PasP) over minibatches, and the moving average of its posteriors.

After minibatch ``t`` of size ``B`` its evidence joins the prior of the next one
(ALGORITHM.md 5.7): ``Hp <- lam (Hp + H_t)``, ``Gp <- lam (Gp + G_t)``, with the
forgetting factor ``lam = 1 - B / (E N)`` for a memory of ``E`` passes over ``N`` samples.
:class:`PosteriorAverage` is a read-out of the chain for prediction.
"""

import numpy as np
from scipy.linalg.blas import get_blas_funcs

_AXPY = {np.dtype(t): get_blas_funcs("axpy", dtype=t) for t in (np.float64, np.float32)}


def add_scaled(y, a, x):
    """``y += a * x`` in place, in one pass (BLAS axpy) for contiguous arrays of one
    floating dtype; ``y`` and ``x`` of the same shape."""
    axpy = _AXPY.get(y.dtype)
    if axpy is not None and y.flags.c_contiguous and x.flags.c_contiguous and (
            y.dtype == x.dtype and y.shape == x.shape):
        axpy(x.reshape(-1), y.reshape(-1), a=a)
    else:
        y += a * x


def pasp_update(state, lam, lam0=None):
    """Forget after a minibatch (ALGORITHM.md 5.7), in place.

    The turbo loop leaves the totals ``Hp + H, Gp + G`` (prior plus this minibatch's
    evidence) in ``(Hp, Gp)``; they become the prior of the next minibatch,
    ``Hp <- lam (Hp + H)``. ``lam0`` (default ``lam``) is the decay of the
    initialization pseudo-evidence ``init_scale (H0, G0)``, which is part of ``(Hp, Gp)``:
    ``Hp <- lam (Hp + H) + (lam0 - lam) init_scale H0`` and ``init_scale <- lam0 init_scale``.
    """
    lam0 = lam if lam0 is None else lam0
    for la in state.layers:
        la.Hp *= lam
        la.Gp *= lam
        if la.H0 is None:
            continue
        if lam0 != lam:
            shift = (lam0 - lam) * la.init_scale
            la.Hp += shift * la.H0
            la.Gp += shift * la.G0
        la.init_scale *= lam0


class PosteriorAverage:
    """Moving average of the PasP posteriors along the minibatch chain.

    PasP's posterior after a minibatch moves with that minibatch's evidence: on MNIST-5k
    (784-300-100-10) the test accuracy of consecutive end-of-epoch posteriors swings by
    several points. The average over the last ``epochs`` passes is the moment-matched
    mixture of those posteriors,

        mbar = E_t[m_t],   cbar = E_t[c_t] + (E_t[m_t^2] - mbar^2),

    an exponential average over snapshots of the chain, one every ``k`` minibatches,
    with rate ``a_t = max(k B / (epochs N), 2 / (t + 1))`` at the ``t``-th snapshot
    (``2 / (t + 1)``: weights growing linearly with ``t`` until the window is full, so
    the first minibatches, drawn from the initialization, fade out). It is a read-out for
    prediction; the chain itself is unchanged.

    Parameters
    ----------
    epochs : float
        Window of the average in passes over the data (``> 0``).
    snapshots : int or None, default=32
        Snapshots per window: ``k = max(1, floor(epochs N / (B snapshots)))``. The
        damped chain moves little between neighbouring minibatches, and each snapshot
        costs three passes over every weight; ``None`` takes every minibatch (``k = 1``).

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> avg = PosteriorAverage(epochs=1.0)
    >>> for m in (0.0, 3.0):  # weights 1/3 and 2/3 (rate 2 / (t + 1))
    ...     layer = SimpleNamespace(m=np.array([m]), c=np.array([1.0]))
    ...     avg.update(SimpleNamespace(layers=[layer]), batch_size=10, n_samples=20)
    >>> mbar, cbar, spread = avg.moments()[0]
    >>> float(mbar[0]), float(cbar[0]), float(spread[0])
    (2.0, 1.0, 2.0)
    """

    def __init__(self, epochs, snapshots=32):
        self.epochs = epochs
        self.snapshots = snapshots
        self.t = 0
        self._since = 0  # minibatches since the last snapshot
        self.m, self.c, self.m2 = [], [], []

    def update(self, state, batch_size, n_samples):
        """Called after every minibatch: fold the posterior in when a snapshot is due."""
        window = self.epochs * n_samples / batch_size  # minibatches in the window
        k = 1 if self.snapshots is None else max(1, int(window // self.snapshots))
        if self.t > 0 and self._since < k - 1:
            self._since += 1
            return
        self._since = 0
        self.t += 1
        a = max(k / window, 2.0 / (self.t + 1))
        if a >= 1.0:  # always at t = 1 (rate 2 / (t + 1)): start from this posterior
            self.m = [la.m.copy() for la in state.layers]
            self.c = [la.c.copy() for la in state.layers]
            self.m2 = [la.m * la.m for la in state.layers]
            return
        for m, c, m2, la in zip(self.m, self.c, self.m2, state.layers):
            for mean, new in ((m, la.m), (c, la.c), (m2, la.m * la.m)):
                mean *= 1.0 - a
                add_scaled(mean, a, new)

    def moments(self):
        """Per layer ``(mbar, E_t[c_t], spread)``, ``spread = E_t[m_t^2] - mbar^2 >= 0``.

        The mixture variance is ``E_t[c_t] + spread``; the two parts are returned apart
        because only the first one holds the PasP evidence of several passes.
        """
        return [(m, c, np.maximum(m2 - m * m, 0.0))
                for m, c, m2 in zip(self.m, self.c, self.m2)]

    def to_arrays(self):
        """The average as named arrays (a message's encoding); inverse: :meth:`from_arrays`."""
        out = {"epochs": np.asarray(self.epochs, dtype=np.float64),
               "snapshots": np.asarray(-1 if self.snapshots is None else self.snapshots),
               "t": np.asarray(self.t), "since": np.asarray(self._since),
               "n_layers": np.asarray(len(self.m))}
        for name in ("m", "c", "m2"):
            for l, arr in enumerate(getattr(self, name)):
                out[f"{name}{l}"] = arr
        return out

    @classmethod
    def from_arrays(cls, data):
        snapshots = int(data["snapshots"])
        avg = cls(float(data["epochs"]), None if snapshots < 0 else snapshots)
        avg.t, avg._since = int(data["t"]), int(data["since"])
        for name in ("m", "c", "m2"):
            setattr(avg, name, [np.array(data[f"{name}{l}"])
                                for l in range(int(data["n_layers"]))])
        return avg


def forgetting_factor(batch_size, n_samples, memory):
    """PasP factor ``lam = 1 - B / (E N)`` for a memory of ``E`` epochs (at least 0)."""
    return max(0.0, 1.0 - batch_size / (memory * n_samples))
