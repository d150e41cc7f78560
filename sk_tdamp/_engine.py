"""The one epoch loop of EM-TDAMP, for centralized, incremental and federated fits.

A fit is a :class:`Chain`: the posterior state, the random generator, the moving average
of the posteriors, the counters and the curves. :func:`run` advances it by epochs; an
epoch is an E-step (:func:`centralized_epoch`, a pass of TDAMP over the data, or
:func:`federated_round`, the clients' local passes and the server's average) followed by
the same M-step, bookkeeping and stopping rule (:func:`finish_epoch`). :func:`fit` runs
the initializations of ``n_init`` and keeps the best (the pattern of scikit-learn's
mixture models: each initialization fits a chain of its own, the kept one's warnings
are issued once at the end). Nothing here imports the estimators: they validate and
encode the data, call :func:`fit` or :func:`fit_more` and read the chain out.

The federated pieces (:func:`client_update`, :func:`aggregate`, the shift exchange) are
pure functions of a state and the :class:`~._settings.Settings`; the simulation
dispatches them through joblib and ``sk_tdamp.federated`` wraps them in messages.
"""

import copy
import traceback
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.parallel import Parallel, delayed

from ._core._likelihoods import LIKELIHOODS
from ._core._mstep import rho_step, slab_variance_step, target_density_step
from ._core._pasp import PosteriorAverage
from ._core._predict import center_inputs, centering_rows, layer_input_sums
from ._core._state import init_state
from ._core._turbo import run_epoch
from ._readout import group_masks


class ClientError(RuntimeError):
    """A federated client raised an exception.

    Attributes
    ----------
    client : object
        Identifier of the failing client.
    client_traceback : str
        The traceback formatted where the client ran (possibly another process).
    """

    def __init__(self, message, client=None, client_traceback=""):
        super().__init__(message)
        self.client = client
        self.client_traceback = client_traceback


class ClientSkippedWarning(UserWarning):
    """A federated client failed and was left out of a round (``on_client_error="skip"``)."""


@dataclass
class Chain:
    """Everything a fit carries from one epoch to the next.

    Attributes
    ----------
    state : NetworkState
        The posterior and the hyperparameters.
    rng : numpy.random.Generator or None
        Shuffling (and federated minibatch orders); None where nothing is drawn.
    average : PosteriorAverage or None
        Moving average of the posteriors along the chain (the read-out).
    n_iter, n_seen : int
        Epochs (rounds) run and training samples processed.
    n_data : int
        Training samples per epoch of the last call (all clients' in a federation).
    v_scale : float
        Factor from the core's noise variance to the target's units.
    loss_curve, noise_variance_curve, density_curve : list of float
        Per epoch: the training objective, ``v`` in the target's units and the fraction
        of hidden neurons kept.
    best_loss : float
        Lowest objective so far (the ``tol`` rule).
    no_improvement : int
        Epochs since the objective last improved by ``tol``.
    """

    state: object
    rng: object = None
    average: object = None
    n_iter: int = 0
    n_seen: int = 0
    n_data: int = 0
    v_scale: float = 1.0
    loss_curve: list = field(default_factory=list)
    noise_variance_curve: list = field(default_factory=list)
    density_curve: list = field(default_factory=list)
    best_loss: float = np.inf
    no_improvement: int = 0

    def copy(self):
        """An independent copy (the state's arrays, the average and the generator)."""
        return replace(self, state=self.state.copy(), rng=copy.deepcopy(self.rng),
                       average=copy.deepcopy(self.average), loss_curve=list(self.loss_curve),
                       noise_variance_curve=list(self.noise_variance_curve),
                       density_curve=list(self.density_curve))


@dataclass
class FitResult:
    """A chain after :func:`run`, with what its warnings need.

    Attributes
    ----------
    chain : Chain
    objective : float
        Training objective of the model kept.
    converged : bool
        The ``tol`` rule stopped the run (False: ``max_iter`` was reached).
    breakdown : tuple or None
        ``(best_loss, best_epoch, last_loss)`` when the best epoch was restored.
    incremental : bool
        One epoch of ``partial_fit`` (no stopping rule, no warning).
    n_epochs : int
        The epoch budget of the call (its ``max_iter``).
    """

    chain: Chain
    objective: float
    converged: bool = False
    breakdown: tuple | None = None
    incremental: bool = False
    n_epochs: int = 1


# ------------------------------------------------------------------ initialization
def new_chain(settings, n_features, n_outputs, seed, v_scale, noise_variance=None):
    """A chain at a random initial posterior drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    sizes = [n_features, *settings.hidden_layer_sizes, n_outputs]
    v0 = settings.init_noise_variances[0] if noise_variance is None else noise_variance
    state = init_state(sizes, rng, prior_scale=settings.prior_variance,
                       bias_var=settings.bias_variance, v=v0, rho=settings.rho_init,
                       input_rho=settings.input_rho_init,
                       init_evidence=settings.init_evidence, dtype=np.dtype(settings.dtype))
    return Chain(state=state, rng=rng, v_scale=v_scale)


def center_layers(state, X, activation):
    """Set every layer's input shift ``mu`` to the mean of its inputs over (up to 8192
    evenly spaced rows of) ``X``, layer by layer, each under the posterior of the layers
    before it, already centered (doc/algorithm.rst, "Centered layer inputs")."""
    center_inputs(centering_rows(X), state.layers, activation)


# ---------------------------------------------------------------------- the epoch
def centralized_epoch(chain, settings, X, Y):
    """One pass of TDAMP over ``(X, Y)``; returns ``(loss, output stats, n_samples)``."""
    batch_size = min(settings.batch_size, X.shape[0])
    stats = LIKELIHOODS[settings.likelihood].stats()
    rng = chain.rng if settings.shuffle else None
    cfg = settings.turbo(first_pass=chain.n_iter == 0)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = run_epoch(X, Y, chain.state, cfg, batch_size, settings.pasp_memory, rng,
                         stats, average=chain.average)
    return loss, stats, X.shape[0]


def m_step(chain, settings, stats):
    """The M-step after an epoch: ``v``, target densities, ``rho``, slab variances."""
    state = chain.state
    if settings.learn_noise_variance and chain.n_iter > settings.v_warmup:
        state.v = stats.update(state.v)
    target_density_step(state, settings.layer_kappas(len(state.layers)))
    if settings.learn_rho and chain.n_iter > settings.rho_warmup:
        rho_step(state)
    if settings.learn_prior_variance:
        slab_variance_step(state)


def finish_epoch(chain, settings, loss, stats, n_seen, unit="epoch"):
    """After an E-step: finite check, counters, M-step and the curves (verbose line)."""
    if not (np.isfinite(loss) and chain.state.is_finite()):
        raise FloatingPointError(f"{unit} {chain.n_iter + 1}")
    chain.n_iter += 1
    chain.n_seen += n_seen
    m_step(chain, settings, stats)
    chain.loss_curve.append(loss)
    chain.noise_variance_curve.append(float(chain.state.v * chain.v_scale))
    masks = group_masks(chain.state)
    hidden = np.concatenate(masks[1:]) if len(masks) > 1 else np.ones(1)
    chain.density_curve.append(float(hidden.mean()))
    if settings.verbose:
        print(f"Epoch {chain.n_iter}, loss = {loss:.6f}, noise variance = "
              f"{chain.noise_variance_curve[-1]:.4g}, hidden neurons kept = "
              f"{chain.density_curve[-1]:.3f}")


def converged(chain, settings, loss):
    """The ``tol`` rule: no improvement by ``tol`` for ``n_iter_no_change`` epochs."""
    if loss > chain.best_loss - settings.tol:
        chain.no_improvement += 1
    else:
        chain.no_improvement = 0
    chain.best_loss = min(chain.best_loss, loss)
    return chain.no_improvement >= settings.n_iter_no_change


def run(chain, settings, X, Y, n_epochs, *, incremental=False, federation=None):
    """Advance ``chain`` by up to ``n_epochs`` epochs (rounds with ``federation``).

    ``fit`` (not ``incremental``) stops by the ``tol`` rule and keeps its best epoch when
    the objective ends more than ``breakdown_margin`` above it; returns a FitResult.
    """
    chain.n_data = X.shape[0]
    if federation is not None:
        chain.average = None  # the fitted model is the last server posterior
    elif settings.posterior_average == 0:
        chain.average = None
    elif chain.average is None:
        chain.average = PosteriorAverage(settings.posterior_average)
    else:
        chain.average.epochs = settings.posterior_average
    best = None  # (loss, epoch, state, average) of this call's best epoch
    for _ in range(n_epochs):
        if federation is None:
            loss, stats, n_seen = centralized_epoch(chain, settings, X, Y)
        else:
            loss, stats, n_seen = federated_round(chain, settings, X, Y, federation)
        finish_epoch(chain, settings, loss, stats, n_seen,
                     "epoch" if federation is None else "round")
        if incremental:
            continue
        if best is None or loss < best[0]:
            best = (loss, chain.n_iter, chain.state.copy(), copy.deepcopy(chain.average))
        if converged(chain, settings, loss):
            return _keep_best_epoch(chain, settings, best, True, n_epochs)
    if incremental:
        return FitResult(chain, loss, incremental=True, n_epochs=n_epochs)
    return _keep_best_epoch(chain, settings, best, False, n_epochs)


def _keep_best_epoch(chain, settings, best, converged, n_epochs):
    last = chain.loss_curve[-1]
    if best is None or last <= best[0] + settings.breakdown_margin:
        return FitResult(chain, last, converged, n_epochs=n_epochs)
    loss, epoch, chain.state, chain.average = best
    return FitResult(chain, loss, converged, breakdown=(loss, epoch, last),
                     n_epochs=n_epochs)


def warn(result, stacklevel=2):
    """The warnings of a kept fit: a breakdown, then ``max_iter`` without convergence."""
    if result.incremental:
        return
    chain = result.chain
    if result.breakdown is not None:
        loss, epoch, last = result.breakdown
        warnings.warn(
            f"EM-TDAMP: the training objective rose from {loss:.4f} (epoch {epoch}) to "
            f"{last:.4f} (epoch {chain.n_iter}): the posterior chain broke down, so the "
            f"model of epoch {epoch} is kept. Setting max_iter={epoch} avoids the "
            "extra epochs.", ConvergenceWarning, stacklevel=stacklevel + 1)
    if not result.converged:
        warnings.warn(
            f"EM-TDAMP: maximum iterations ({result.n_epochs}) reached and the "
            "training objective has not converged yet.", ConvergenceWarning,
            stacklevel=stacklevel + 1)


def collapsed(state, settings):
    """True when a layer keeps no group (a constant network) or a hidden layer of at
    least ``collapse_width[0]`` neurons keeps at most ``collapse_width[1]`` (not under a
    target density, which sets the count)."""
    masks = group_masks(state)
    if not all(mask.any() for mask in masks):
        return True
    wide, narrow = settings.collapse_width
    return any(mask.size >= wide and mask.sum() <= narrow and la.keep is None
               for mask, la in zip(masks[1:], state.layers[1:]))


# -------------------------------------------------------------- fits, best of n
_DIVERGED = ("EM-TDAMP diverged: the posterior became non-finite ({}). Standardize the "
             "inputs, or try a larger damping, a smaller prior_variance or a larger "
             "noise_variance_init.")


def fit(settings, X, Y, *, n_outputs, seeds, v_scale, incremental=False, federation=None):
    """A fit from scratch: one chain per initialization (``seeds``), the best kept.

    Initialization ``k`` starts from ``settings.init_noise_variances[k]``; with
    ``restart_while_collapsed`` the next one runs only while the fits end collapsed.
    ``incremental``: the first ``partial_fit``, one epoch (give one seed).
    Returns the kept chain; its warnings are issued here, once.
    """
    best = None
    auto = settings.restart_while_collapsed
    n_epochs = 1 if incremental else settings.max_iter
    try:
        for k, (seed, v0) in enumerate(zip(seeds, settings.init_noise_variances)):
            if settings.verbose and (k > 0 if auto else len(seeds) > 1):
                print(f"Initialization {k + 1} of at most {len(seeds)}: the previous fit "
                      "collapsed" if auto else f"Initialization {k + 1} of {len(seeds)}")
            chain = new_chain(settings, X.shape[1], n_outputs, seed, v_scale, v0)
            if federation is not None:
                pool_shifts(chain.state, settings, X, federation)
            elif settings.centering:
                center_layers(chain.state, X, settings.activation)
            result = run(chain, settings, X, Y, n_epochs, incremental=incremental,
                         federation=federation)
            if best is None or result.objective < best.objective:
                best = result
            if auto and not collapsed(chain.state, settings):
                break
    except FloatingPointError as exc:
        raise ValueError(_DIVERGED.format(exc)) from None
    warn(best, stacklevel=5)
    return best.chain


def fit_more(chain, settings, X, Y, *, incremental, federation=None):
    """Go on from ``chain`` (``partial_fit``: one epoch; warm start: ``max_iter``).

    Works on a copy, returned: ``chain`` is untouched if the fit raises.
    """
    chain = chain.copy()
    n_epochs = 1 if incremental else settings.max_iter
    try:
        if federation is not None:
            pool_shifts(chain.state, settings, X, federation)
        result = run(chain, settings, X, Y, n_epochs, incremental=incremental,
                     federation=federation)
    except FloatingPointError as exc:
        raise ValueError(_DIVERGED.format(exc)) from None
    warn(result, stacklevel=5)
    return chain


# ---------------------------------------------------------------------- federated
@dataclass(frozen=True)
class LocalLayer:
    """What a client's E-step updates of a layer's posterior: the moments, the prior
    evidence, the support log-odds, and the decay of the (shared) initialization
    pseudo-evidence."""

    m: np.ndarray
    c: np.ndarray
    Hp: np.ndarray
    Gp: np.ndarray
    Lam: np.ndarray
    init_scale: float = 1.0


@dataclass(frozen=True)
class ClientUpdate:
    """What a client's local passes produce: its posterior, output statistics,
    prequential loss over its last local epoch and its number of samples."""

    layers: list
    stats: object
    loss: float
    n_samples: int


@dataclass(frozen=True)
class Federation:
    """The clients of a simulated federated fit: their rows, labels and dispatch."""

    members: list
    labels: list
    n_jobs: int | None = None
    on_client_error: str = "raise"

    @classmethod
    def from_ids(cls, client_ids, n_jobs=None, on_client_error="raise"):
        labels, inverse = np.unique(client_ids, return_inverse=True)
        members = [np.flatnonzero(inverse == k) for k in range(labels.size)]
        return cls(members, labels.tolist(), n_jobs, on_client_error)


def client_update(state, settings, X, Y, orders, n_total, first_pass):
    """TDAMP from the global posterior ``state`` over one client's data (encoded targets).

    ``orders`` holds one permutation of the rows per local epoch (None keeps the data
    order). Untempered, the client forgets at the global rate ``1 - B / (E N)``:
    ``run_epoch`` uses ``lam = 1 - B / (memory n)`` with ``n = N_k``, so
    ``memory = E N / N_k``. Its evidence is multiplied by ``s = (N / N_k) ** gamma``
    (``client_likelihood_power``) and its memory divided by ``s``, which keeps ``E``
    epochs of evidence in the average. The initialization pseudo-evidence ``(H0, G0)``
    decays at the client's own rate ``1 - B / (E N_k)``: like a centralized epoch, a local
    pass multiplies it by about ``exp(-1 / E)`` (doc/algorithm.rst, "Federated learning").
    """
    local = state.copy()
    n = X.shape[0]
    batch_size = min(settings.batch_size, n)
    scale = (n_total / n) ** settings.client_likelihood_power
    cfg = settings.turbo(first_pass, evidence_scale=scale)
    memory = settings.pasp_memory * (n_total / n) / scale
    for epoch in range(settings.local_epochs):
        stats = LIKELIHOODS[settings.likelihood].stats()
        Xe, Ye = (X, Y) if orders is None else (X[orders[epoch]], Y[orders[epoch]])
        with np.errstate(over="ignore", invalid="ignore"):
            loss = run_epoch(Xe, Ye, local, cfg, batch_size, memory, None, stats,
                             init_memory=settings.pasp_memory)
        if not (np.isfinite(loss) and local.is_finite()):
            raise FloatingPointError(
                f"the local posterior became non-finite in local epoch {epoch + 1}")
    layers = [LocalLayer(la.m, la.c, la.Hp, la.Gp, la.Lam, float(la.init_scale))
              for la in local.layers]
    return ClientUpdate(layers, stats, float(loss), n)


def aggregate(state, updates, settings):
    """Weighted average of the clients' posteriors, pooled output statistics.

    Every array a client's E-step updates is averaged with the weights ``N_k / N``
    (for the evidence: the weighted geometric average of the posteriors in natural
    parameters); with one client the weight is exactly 1 and this is the identity. The
    initialization pseudo-evidence is the global ``(H0, G0)`` times each client's decay,
    so its average is ``(H0, G0)`` times the average decay.
    Returns the new state (hyperparameters still those of ``state``), the pooled
    statistics, the weighted loss and the number of samples processed.
    """
    n = np.array([u.n_samples for u in updates], dtype=np.float64)
    weights = (n / n.sum()).tolist()  # Python floats keep the arrays' dtype

    def average(arrays):
        total = weights[0] * arrays[0]
        for a_k, x in zip(weights[1:], arrays[1:]):
            total = total + a_k * x
        return total

    layers = []
    for l, la in enumerate(state.layers):
        local = [u.layers[l] for u in updates]
        arrays = {name: average([getattr(x, name) for x in local])
                  for name in ("m", "c", "Hp", "Gp", "Lam", "init_scale")}
        arrays["init_scale"] = float(arrays["init_scale"])
        keep = None if la.keep is None else la.keep.copy()
        layers.append(replace(la, keep=keep, **arrays))
    stats = LIKELIHOODS[settings.likelihood].stats.merge([u.stats for u in updates])
    loss = float(average([u.loss for u in updates]))
    return replace(state, layers=layers), stats, loss, int(n.sum()) * settings.local_epochs


def draw_orders(rng, n, n_epochs):
    """A client's minibatch orders, drawn as a centralized epoch draws them."""
    return [rng.permutation(n) for _ in range(n_epochs)]


class _ClientFailure:
    """A client's exception, returned (not raised) through joblib."""

    def __init__(self, client, error, text):
        self.client, self.error, self.text = client, error, text


def _guarded_update(state, settings, X, Y, orders, n_total, first_pass, client):
    try:
        return client_update(state, settings, X, Y, orders, n_total, first_pass)
    except Exception as exc:  # reported by the server loop, which names the client
        return _ClientFailure(client, exc, traceback.format_exc())


def collect(results, policy, round_):
    """The clients' updates of a round; raise or warn for the failed clients."""
    failures = [r for r in results if isinstance(r, _ClientFailure)]
    updates = [r for r in results if not isinstance(r, _ClientFailure)]
    for failure in failures:
        text = (f"client {failure.client!r} failed in round {round_ + 1}: "
                f"{type(failure.error).__name__}: {failure.error}")
        if policy == "raise" or not updates:
            prefix = "" if policy == "raise" else "every client failed; "
            raise ClientError(prefix + text, client=failure.client,
                              client_traceback=failure.text) from failure.error
        warnings.warn(text + " (skipped for this round)", ClientSkippedWarning,
                      stacklevel=4)
    return updates


def federated_round(chain, settings, X, Y, federation):
    """One communication round of the simulation; installs the averaged posterior.

    The clients' minibatch orders are drawn from the chain's generator before dispatch,
    in client order, so the result does not depend on ``n_jobs`` or the joblib backend.
    """
    members = federation.members
    orders = [draw_orders(chain.rng, idx.size, settings.local_epochs) if settings.shuffle
              else None for idx in members]
    results = Parallel(n_jobs=federation.n_jobs)(
        delayed(_guarded_update)(chain.state, settings, X[idx], Y[idx], order, X.shape[0],
                                 chain.n_iter == 0, label)
        for idx, order, label in zip(members, orders, federation.labels))
    updates = collect(results, federation.on_client_error, chain.n_iter)
    chain.state, stats, loss, n_seen = aggregate(chain.state, updates, settings)
    return loss, stats, n_seen


def pending_shift(state, settings):
    """Index of the layer whose input shift must be pooled next, or None."""
    if not settings.centering:
        return None
    return next((l for l, la in enumerate(state.layers) if la.mu is None), None)


def shift_sums(state, activation, layer, X):
    """A client's part of layer ``layer``'s input shift: ``(n rows, sums of inputs)``.

    At most 8192 evenly spaced rows, as a centralized fit uses (so that one client is
    the centralized fit).
    """
    X = centering_rows(X)
    return X.shape[0], layer_input_sums(X, state.layers, activation, layer)


def apply_shift_sums(state, layer, client_sums):
    """Set layer ``layer``'s shift to the pooled mean of the clients' sums (in place)."""
    client_sums = list(client_sums)
    if not client_sums:
        raise ValueError("client_sums is empty.")
    n_in = state.layers[layer].n_in
    total_n, total = 0, np.zeros(n_in)
    for n, sums in client_sums:
        sums = np.asarray(sums, dtype=np.float64)
        if sums.shape != (n_in,):
            raise ValueError(f"Layer {layer} has {n_in} inputs; a client sent sums of "
                             f"shape {sums.shape}.")
        total_n += int(n)
        total += sums
    if total_n < 1:
        raise ValueError("The clients hold no samples.")
    state.layers[layer].mu = total / total_n


def pool_shifts(state, settings, X, federation):
    """The shift exchange before the first round: every layer, one at a time."""
    while (layer := pending_shift(state, settings)) is not None:
        sums = Parallel(n_jobs=federation.n_jobs)(
            delayed(shift_sums)(state, settings.activation, layer, X[idx])
            for idx in federation.members)
        apply_shift_sums(state, layer, sums)
