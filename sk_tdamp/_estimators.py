"""scikit-learn estimators on the EM-TDAMP core: EMTDAMPRegressor and EMTDAMPClassifier.

The estimators are a thin layer: validation, target encoding, the epoch loop with the
M-step and the fitted attributes. All the message passing lives in ``sk_tdamp._core``.
"""

import copy
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from scipy.special import expit, log_ndtr, logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._core._mstep import VSTATS, rho_step, slab_variance_step, target_density_step
from ._core._predict import (
    centering_rows,
    forward_moments,
    layer_input_sums,
    one_pass_variance,
)
from ._core._state import init_state
from ._core._turbo import PosteriorAverage, TurboConfig, run_epoch

_DENSITY = Interval(Real, 0, 1, closed="right")


class _BaseEMTDAMP(BaseEstimator, metaclass=ABCMeta):
    """Shared engine of the EM-TDAMP estimators (not for direct use)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"relu", "identity"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_turbo_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "damping": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "prior_variance": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "learn_prior_variance": ["boolean"],
        "bias_variance": [Interval(Real, 0, None, closed="neither")],
        "rho_init": [_DENSITY],
        "learn_rho": ["boolean"],
        "target_density": [_DENSITY, None],
        "input_rho_init": [_DENSITY, None],
        "input_target_density": [_DENSITY, None],
        "noise_variance_init": [Interval(Real, 0, None, closed="neither")],
        "learn_noise_variance": ["boolean"],
        "pasp_memory": [Interval(Real, 0, None, closed="neither")],
        "init_evidence": [Interval(Real, 0, None, closed="left")],
        "centering": ["boolean", StrOptions({"auto"})],
        "posterior_average": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "local_epochs": [Interval(Integral, 1, None, closed="left")],
        "client_likelihood_power": [Interval(Real, 0, 1, closed="both")],
        "n_jobs": [Integral, None],
        "on_client_error": [StrOptions({"raise", "skip"})],
    }

    # Epochs before the rho M-step starts (ALGORITHM.md 5.6b: the initialization
    # pseudo-evidence otherwise reads as evidence against the slab).
    _rho_warmup = 2
    # Epochs before the noise-variance M-step starts, for networks with up to two hidden
    # layers and with more (doc/algorithm.rst, "Probit temperature after the first pass").
    _v_warmup = (0, 0)
    # fit() keeps the model of its best epoch when the training objective ends this many
    # nats per sample above its minimum: the PasP chain broke down (Fashion-MNIST after
    # about 35 epochs before the inward self term of the backward message,
    # doc/algorithm.rst "Breakdown of long runs"). Normal fits end at most 0.04 above
    # their minimum (Boston, digits).
    _breakdown_margin = 0.1
    # n_init="auto": initializations tried at most while the fits end collapsed, the
    # scale of noise_variance_init for the restarts, and the collapse test: a layer with
    # no kept group, or a hidden layer of at least _collapse_width[0] neurons keeping at
    # most _collapse_width[1] (doc/algorithm.rst, "Collapsed fits and restarts").
    _auto_max_init = 3
    _restart_noise_scale = 0.1
    _collapse_width = (4, 2)

    def __init__(self, *, hidden_layer_sizes=(50,), activation="relu", batch_size=32,
                 max_iter=100, tol=1e-4, n_iter_no_change=10, n_init="auto", n_turbo_iter="auto",
                 damping="auto", prior_variance="auto", learn_prior_variance=False,
                 bias_variance=1.0, rho_init=0.5, learn_rho=True, target_density=None,
                 input_rho_init=None, input_target_density=None, noise_variance_init=1.0,
                 learn_noise_variance=True, pasp_memory=4.0, init_evidence=3.0,
                 centering="auto", posterior_average=1.0, shuffle=True, random_state=None,
                 verbose=False, warm_start=False, local_epochs=1,
                 client_likelihood_power=0.5, n_jobs=None, on_client_error="raise"):
        # One signature for both estimators (they inherit it): parameters only stored.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.n_init = n_init
        self.n_turbo_iter = n_turbo_iter
        self.damping = damping
        self.prior_variance = prior_variance
        self.learn_prior_variance = learn_prior_variance
        self.bias_variance = bias_variance
        self.rho_init = rho_init
        self.learn_rho = learn_rho
        self.target_density = target_density
        self.input_rho_init = input_rho_init
        self.input_target_density = input_target_density
        self.noise_variance_init = noise_variance_init
        self.learn_noise_variance = learn_noise_variance
        self.pasp_memory = pasp_memory
        self.init_evidence = init_evidence
        self.centering = centering
        self.posterior_average = posterior_average
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.local_epochs = local_epochs
        self.client_likelihood_power = client_likelihood_power
        self.n_jobs = n_jobs
        self.on_client_error = on_client_error

    # ----------------------------------------------------------------- subclass hooks
    _likelihood = None

    @abstractmethod
    def _encode_targets(self, y, first_pass, classes=None):
        """Return targets in the core's format and the number of outputs."""

    # ------------------------------------------------------------------------ engine
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral):
            sizes = [sizes]
        sizes = list(sizes)
        valid = all(isinstance(s, Integral | np.integer) and not isinstance(s, bool | np.bool_)
                    and s >= 1 for s in sizes)
        if not valid:
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers, got "
                f"{self.hidden_layer_sizes!r}.")
        return [int(s) for s in sizes]

    def _turbo_settings(self, first_pass=False):
        """``(n_turbo_iter, damping)`` of one epoch, ``"auto"`` resolved (parameter docs).

        ``first_pass``: the epoch is the first pass over the data (``n_iter_ == 0``: the
        first epoch of ``fit`` or the first ``partial_fit``, the first federated round).
        """
        n_sweeps = self.n_turbo_iter
        if n_sweeps == "auto":
            n_sweeps = self._auto_turbo_iter[0 if first_pass else 1]
        damping = self.damping
        if damping == "auto":
            damping = 0.5 if n_sweeps == 1 else 0.8
        return n_sweeps, damping

    def _prior_variance(self):
        """``prior_variance`` with ``"auto"`` resolved (see the parameter docs)."""
        pv = self.prior_variance
        if pv != "auto":
            return pv
        return self._by_depth(self._auto_prior_variance)

    def _by_depth(self, pair):
        """``pair[0]`` for networks with up to two hidden layers, ``pair[1]`` for deeper."""
        return pair[0] if len(self._hidden_sizes()) <= 2 else pair[1]

    def _centering(self):
        """``centering`` with ``"auto"`` resolved (see the parameter docs)."""
        return self._auto_centering if self.centering == "auto" else bool(self.centering)

    def _center_layers(self, X):
        """Set the shift ``mu`` of every layer's inputs: their mean over (up to 8192
        evenly spaced rows of) ``X``.

        Layer by layer, each one under the posterior of the layers before it, already
        centered (doc/algorithm.rst, "Centered layer inputs").
        """
        X = centering_rows(X)
        for depth, la in enumerate(self._state.layers):
            la.mu = layer_input_sums(X, self._state.layers, self.activation,
                                     depth) / X.shape[0]

    def _turbo_config(self, first_pass=False):
        n_sweeps, damping = self._turbo_settings(first_pass)
        return TurboConfig(activation=self.activation, likelihood=self._likelihood,
                           n_sweeps=n_sweeps, damping=damping)

    def _initialize(self, n_features, n_outputs, rng, noise_variance=None):
        sizes = [n_features, *self._hidden_sizes(), n_outputs]
        input_rho = self.input_rho_init
        if input_rho is None and self.input_target_density is not None:
            input_rho = 0.5
        self._state = init_state(
            sizes, rng, prior_scale=self._prior_variance(), bias_var=self.bias_variance,
            v=self.noise_variance_init if noise_variance is None else noise_variance,
            rho=self.rho_init, input_rho=input_rho,
            init_evidence=self.init_evidence)
        self.n_layers_ = len(sizes)
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self._average = None
        self.loss_curve_ = []
        self.noise_variance_curve_ = []
        self.density_curve_ = []
        self._best_loss = np.inf
        self._no_improvement_count = 0

    def _fit(self, X, y, *, incremental, classes=None, client_ids=None):
        saved = copy.deepcopy(self.__dict__)  # restored if the fit diverges
        if client_ids is not None:  # federated simulation (sk_tdamp.federated)
            from .federated import _check_client_ids
            client_ids = _check_client_ids(client_ids, X)
        first_pass = incremental and not hasattr(self, "_state")
        first_pass = first_pass or (not incremental and not (
            self.warm_start and hasattr(self, "_state")))
        X, y = self._validate_xy(X, y, reset=first_pass)
        Y, n_outputs = self._encode_targets(y, first_pass, classes)
        if not first_pass and n_outputs != self.n_outputs_:
            raise ValueError(
                f"y has {n_outputs} outputs but the fitted model has {self.n_outputs_}.")
        auto = self.n_init == "auto"  # further initializations while fits are constant
        n_init = 1
        if first_pass and not incremental:
            n_init = self._auto_max_init if auto else self.n_init
        seeds = [None]  # None: go on from the current posterior
        if first_pass:  # one seed per initialization, the first one that of n_init=1
            seeds = check_random_state(self.random_state).randint(
                np.iinfo(np.int32).max, size=n_init)
        best = None  # (objective, fitted __dict__, warnings) of the best initialization
        try:
            for k, seed in enumerate(seeds):
                if self.verbose and auto and k > 0:
                    print(f"Initialization {k + 1} of at most {n_init}: the previous "
                          "fit collapsed")
                elif self.verbose and n_init > 1 and not auto:
                    print(f"Initialization {k + 1} of {n_init}")
                with warnings.catch_warnings(record=n_init > 1) as caught:
                    if n_init > 1:
                        warnings.simplefilter("always")
                    v_init = None  # "auto" restarts: a smaller initial noise variance
                    if auto and k > 0:
                        v_init = self.noise_variance_init * self._restart_noise_scale
                    objective = self._fit_once(X, Y, n_outputs, seed, incremental,
                                               client_ids, v_init)
                if best is None or objective < best[0]:
                    best = (objective, dict(self.__dict__), caught)
                if auto and not self._collapsed():
                    break
        except FloatingPointError as exc:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise ValueError(
                "EM-TDAMP diverged: the posterior became non-finite "
                f"({exc}). Standardize the inputs, or try a larger damping, a smaller "
                "prior_variance or a larger noise_variance_init.") from None
        except Exception:  # e.g. a failed federated client: no half-updated model
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        if n_init > 1:  # keep the best initialization and its warnings only
            self.__dict__.clear()
            self.__dict__.update(best[1])
            for w in best[2]:
                warnings.warn(w.message, w.category, stacklevel=3)
        self._finalize()
        return self

    def _collapsed(self):
        """True when a layer keeps no group (a constant network) or a hidden layer of at
        least ``_collapse_width[0]`` neurons keeps at most ``_collapse_width[1]`` (not
        under a target density, which sets the count)."""
        masks = self._group_masks()
        if not all(mask.any() for mask in masks):
            return True
        wide, narrow = self._collapse_width
        return any(mask.size >= wide and mask.sum() <= narrow and la.keep is None
                   for mask, la in zip(masks[1:], self._state.layers[1:]))

    def _fit_once(self, X, Y, n_outputs, seed, incremental, client_ids, v_init=None):
        """One run from a fresh initialization drawn from ``seed`` (or from the current
        posterior if ``seed`` is None); returns the training objective of its model."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._initialize(X.shape[1], n_outputs, self._rng, v_init)
            if self._centering() and client_ids is None:  # federated: by the clients
                self._center_layers(X)
        if client_ids is None:
            return self._run_epochs(X, Y, 1 if incremental else self.max_iter, incremental)
        from .federated import _fit_federated
        _fit_federated(self, X, Y, client_ids)
        return self.loss_curve_[-1]

    def _run_epochs(self, X, Y, n_epochs, incremental):
        batch_size = min(self.batch_size, X.shape[0])
        if self.posterior_average == 0:
            self._average = None
        elif self._average is None:
            self._average = PosteriorAverage(self.posterior_average)
        else:
            self._average.epochs = self.posterior_average
        best = None  # fit(): (loss, epoch, state, average) of this call's best epoch
        for _ in range(n_epochs):
            vstats = VSTATS[self._likelihood]()
            rng = self._rng if self.shuffle else None
            cfg = self._turbo_config(first_pass=self.n_iter_ == 0)
            with np.errstate(over="ignore", invalid="ignore"):
                loss = run_epoch(X, Y, self._state, cfg, batch_size, self.pasp_memory,
                                 rng, vstats, average=self._average)
            if not (np.isfinite(loss) and self._state.is_finite()):
                raise FloatingPointError(f"epoch {self.n_iter_ + 1}")
            self.n_iter_ += 1
            self.t_ += X.shape[0]
            self._m_step(vstats)
            self._record_epoch(loss)
            if incremental:
                continue
            if best is None or loss < best[0]:
                best = (loss, self.n_iter_, self._state.copy(),
                        copy.deepcopy(self._average))
            if self._converged(loss):
                return self._keep_best_epoch(best)
        if incremental:
            return loss
        objective = self._keep_best_epoch(best)
        warnings.warn(
            f"EM-TDAMP: maximum iterations ({n_epochs}) reached and the training "
            "objective has not converged yet.", ConvergenceWarning, stacklevel=4)
        return objective

    def _keep_best_epoch(self, best):
        """Go back to ``fit``'s best epoch if the training objective ended far above it.

        Returns the training objective of the model kept.
        """
        last = self.loss_curve_[-1]
        if best is None or last <= best[0] + self._breakdown_margin:
            return last
        loss, epoch, self._state, self._average = best
        warnings.warn(
            f"EM-TDAMP: the training objective rose from {loss:.4f} (epoch {epoch}) to "
            f"{last:.4f} (epoch {self.n_iter_}): the posterior chain broke down, so the "
            f"model of epoch {epoch} is kept. Setting max_iter={epoch} avoids the "
            "extra epochs.", ConvergenceWarning, stacklevel=5)
        return loss

    def _m_step(self, vstats):
        state = self._state
        if self.learn_noise_variance and self.n_iter_ > self._by_depth(self._v_warmup):
            state.v = vstats.update(state.v)
        kappas = [self.input_target_density] + [self.target_density] * (
            len(state.layers) - 1)
        target_density_step(state, kappas)
        if self.learn_rho and self.n_iter_ > self._rho_warmup:
            rho_step(state)
        if self.learn_prior_variance:
            slab_variance_step(state)

    def _record_epoch(self, loss):
        self.loss_curve_.append(loss)
        self.noise_variance_curve_.append(self._output_noise_variance())
        masks = self._group_masks()
        hidden = np.concatenate(masks[1:]) if len(masks) > 1 else np.ones(1)
        self.density_curve_.append(float(hidden.mean()))
        if self.verbose:
            print(f"Epoch {self.n_iter_}, loss = {loss:.6f}, noise variance = "
                  f"{self.noise_variance_curve_[-1]:.4g}, hidden neurons kept = "
                  f"{self.density_curve_[-1]:.3f}")

    def _converged(self, loss):
        if loss > self._best_loss - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        self._best_loss = min(self._best_loss, loss)
        return self._no_improvement_count >= self.n_iter_no_change

    # ------------------------------------------------------------- fitted attributes
    def _group_masks(self):
        """Kept groups per layer: input features, then each hidden layer's neurons."""
        masks = []
        for la in self._state.layers:
            if not la.grouped:
                masks.append(np.ones(la.n_in, dtype=bool))
            elif la.keep is not None:
                masks.append(la.keep.copy())
            else:
                masks.append(la.Lam > 0.0)
        return masks

    def _finalize(self):
        """Zero the pruned groups and expose the posterior as fitted attributes."""
        masks = self._group_masks()
        layers = self._state.layers
        average = getattr(self, "_average", None)
        if average is not None and average.t > 0:
            moments = average.moments()
        else:
            moments = [(la.m, la.c, 0.0) for la in layers]
        self._final = []
        for la, (m, c, spread), mask in zip(layers, moments, masks):
            keep = np.append(mask, True)
            c = one_pass_variance(c, la.sigma2, self._state.bias_var, self.pasp_memory)
            self._final.append((m * keep, (c + spread) * keep, la.mu))
        self.neuron_masks_ = masks
        self.support_probas_ = [
            expit(la.Lam) if la.grouped else np.ones(la.n_in) for la in self._state.layers]
        self.rho_ = np.array([expit(la.logit_rho) if la.grouped else 1.0
                              for la in self._state.layers])
        self.prior_variances_ = np.array([la.sigma2 for la in self._state.layers])
        self.noise_variance_ = self._output_noise_variance()
        self.n_features_kept_ = int(masks[0].sum())
        self.n_neurons_kept_ = [int(m.sum()) for m in masks[1:]]
        self.density_ = [float(m.mean()) for m in masks[1:]]
        coefs, intercepts, cvars, ivars = self._public_weights(self._final)
        self.coefs_, self.intercepts_ = coefs, intercepts
        self.coefs_var_, self.intercepts_var_ = cvars, ivars
        self.input_shifts_ = [np.zeros(la.n_in) if la.mu is None else la.mu.copy()
                              for la in layers]
        self._set_pruned_network(masks)

    def _public_weights(self, layers):
        """MLP orientation ``(n_in, n_out)``; the regressor maps the last layer to y units.

        A layer with shifted inputs computes ``W (u - mu) + b'``; its MLP-form intercept
        is ``b = b' - W mu``, with the marginal posterior moments of independent ``W``
        and ``b'``: mean ``m_b' - m_W mu`` and variance ``c_b' + c_W mu^2``.
        """
        coefs, intercepts, cvars, ivars = [], [], [], []
        for m, c, mu in layers:
            W, cW = m[:, :-1], c[:, :-1]
            b, cb = m[:, -1].copy(), c[:, -1].copy()
            if mu is not None:
                b -= W @ mu
                cb += cW @ (mu * mu)
            coefs.append(W.T.copy())
            intercepts.append(b)
            cvars.append(cW.T.copy())
            ivars.append(cb)
        return coefs, intercepts, cvars, ivars

    def _set_pruned_network(self, masks):
        """Compact network: rows/columns of the kept neurons only (ALGORITHM.md 7)."""
        rows = masks[1:] + [np.ones(self.n_outputs_, dtype=bool)]
        self.pruned_coefs_, self.pruned_intercepts_ = [], []
        self.pruned_coefs_var_, self.pruned_intercepts_var_ = [], []
        for W, b, cW, cb, cols, r in zip(self.coefs_, self.intercepts_, self.coefs_var_,
                                         self.intercepts_var_, masks, rows):
            self.pruned_coefs_.append(W[np.ix_(cols, r)])
            self.pruned_intercepts_.append(b[r])
            self.pruned_coefs_var_.append(cW[np.ix_(cols, r)])
            self.pruned_intercepts_var_.append(cb[r])
        self.pruned_input_shifts_ = [mu[cols] for mu, cols in zip(self.input_shifts_, masks)]
        self.kept_features_ = np.flatnonzero(masks[0])

    def _output_noise_variance(self):
        return self._state.v

    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return forward_moments(X, self._final, self.activation)

    def __sklearn_is_fitted__(self):
        # Fitted once a fit has completed: a failed first fit may have set some
        # attributes (classes_, y_mean_) without producing a model.
        return hasattr(self, "_final")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


_PARAMS_DOC = """
    hidden_layer_sizes : array-like of int, default=(50,)
        Width of each hidden layer; ``()`` gives a model with no hidden layer.
    activation : {"relu", "identity"}, default="relu"
        Activation of the hidden layers.
    batch_size : int, default=32
        Minibatch size of the E-step (clipped to the number of samples).
    max_iter : int, default=100
        Number of epochs (passes over the data) of ``fit``.
    tol : float, default=1e-4
        ``fit`` stops when the training objective (``loss_curve_``) has not improved
        by at least ``tol`` for ``n_iter_no_change`` consecutive epochs. If the
        objective then ends more than 0.1 nats per sample above its minimum (the
        posterior chain broke down), ``fit`` returns the model of the best epoch and
        warns with a ``ConvergenceWarning``.
    n_iter_no_change : int, default=10
        See ``tol``.
    n_init : int or "auto", default="auto"
        Number of initializations ``fit`` runs, each from its own random network (seeds
        drawn from ``random_state``; the first is the initialization of
        ``n_init=1``). The model with the lowest training objective is kept, with its
        ``loss_curve_``, ``n_iter_`` and warnings. The posterior can end at a collapsed
        fixed point that predicts a constant (every group of a layer pruned): a network
        with two hidden layers did so for 2 of 6 seeds on a teacher-student problem
        and for 4 of 6 on one whose target has no linear trend, where the training
        objective tells the collapsed fits apart (see the algorithm page,
        "Collapsed fits and restarts"), or partly collapsed, with a hidden layer
        reduced to one or two neurons and a poor fit. ``"auto"`` runs one
        initialization and another one (up to 3 in all) only while the fits end
        collapsed (a layer with no kept group, or a hidden layer of 4 or more neurons
        keeping at most 2 without a ``target_density``), restarting from
        ``noise_variance_init / 10`` (a first pass that weighs the data more finds the
        signal before pruning sets in); a fit that does not end collapsed is the fit of
        ``n_init=1``. On data without signal, where a constant is the right answer, it
        triples the fitting time. Warm-started fits and ``partial_fit`` go on from the
        current posterior and ignore it.
    n_turbo_iter : int or "auto", default="auto"
        Turbo iterations (module A sweep + module B) per minibatch. ``"auto"`` runs 2
        for :class:`EMTDAMPRegressor`; :class:`EMTDAMPClassifier` runs 2 in the first
        pass over the data (the first epoch of ``fit``, the first ``partial_fit``, the
        first federated round) and 1 afterwards. A second iteration lowers the Boston
        RMSE of a (50, 50) network from 2.87 to 2.75 and the classifier's test error
        after the first Fashion-MNIST epoch from 0.150 to 0.145, while later on one
        iteration (at half the cost per epoch) matches two in accuracy on MNIST-5k (see
        the algorithm page, "Turbo iterations and damping").
    damping : float in [0, 1) or "auto", default="auto"
        Damping of the posterior updates: ``new = damping * old + (1 - damping) * new``.
        ``"auto"`` is 0.5 with one turbo iteration and 0.8 with more, so that a
        minibatch moves the posterior by about the same fraction (``1 - damping ** n``,
        0.5 and 0.64) either way.
    prior_variance : float or "auto", default="auto"
        Scale of the slab variance: the weights of a layer with ``n_in`` inputs have
        prior variance ``prior_variance / n_in`` when their group is active (and are
        initialized with that variance). ``"auto"`` is 1 for :class:`EMTDAMPRegressor`;
        for :class:`EMTDAMPClassifier` it is 16 with up to two hidden layers and 1 with
        more. With centered layer inputs a wide prior trains the classifier faster
        (784-300-100-10, one turbo iteration: Fashion-MNIST test error after one epoch
        0.150 against 0.172 with 1) and more accurately (MNIST-5k, seeds 0-4: 94.5%
        against 93.6%); with three or four hidden layers 16 trains as well but is no
        more accurate (MNIST-5k, three seeds: 93.8% against 94.0% and 93.1% against
        93.7%). See the algorithm page, "Centered layer inputs" and "Probit
        temperature after the first pass".
    learn_prior_variance : bool, default=False
        Whether the M-step also learns the slab variance of each layer.
    bias_variance : float, default=1.0
        Gaussian prior variance of the biases (never pruned).
    rho_init : float in (0, 1], default=0.5
        Initial prior probability that a hidden neuron is active.
    learn_rho : bool, default=True
        Whether the M-step learns the sparsity ``rho`` of each layer.
    target_density : float in (0, 1] or None, default=None
        If set, keep exactly ``ceil(target_density * n)`` neurons in every hidden layer
        (those with the largest support probability) instead of learning ``rho``.
    input_rho_init : float in (0, 1] or None, default=None
        Initial support probability of the input-feature groups, learned separately
        from the hidden layers. ``None`` leaves the input features ungrouped (never
        pruned).
    input_target_density : float in (0, 1] or None, default=None
        If set, keep exactly that fraction of the input features.
    noise_variance_init : float, default={v_default}
        Initial noise variance ``v`` of the likelihood{v_units}.
    learn_noise_variance : bool, default=True
        Whether the M-step learns ``v``. With more than two hidden layers,
        :class:`EMTDAMPClassifier` skips the M-step of ``v`` after the first pass over
        the data (the first update comes after the second): the statistics of that
        pass, gathered mostly by a near-random network, drive the probit temperature
        down and the network diverged (MNIST-5k with four hidden layers: ``v`` 0.14
        after one epoch). With up to two hidden layers, whose wide prior gives large
        outputs, the first update is needed (federated MNIST-5k with label skew broke
        down without it).
    pasp_memory : float, default=4.0
        Memory of the posterior-as-prior chain in epochs ``E``: after each minibatch of
        size ``B`` the accumulated evidence is multiplied by ``1 - B / (E n_samples)``.
    init_evidence : float, default=3.0
        Weight of the random initialization kept as prior pseudo-evidence (it then
        decays through the PasP chain); needed by networks with two or more hidden
        layers to break the symmetry between hidden neurons.
    centering : bool or "auto", default="auto"
        Whether every layer computes with centered inputs, ``W (u - mu) + b'``, with
        ``mu`` the mean of the layer's inputs over the first fit's training data (at
        most 8192 evenly spaced rows; the data for the first layer, the activations of
        the initial network for the others), fixed from then on. It is a
        reparametrization of the same network (the prior sits on ``b'`` instead of
        ``b``) that removes the common mode of non-negative inputs from the parallel
        weight updates of the message passing.
        ``"auto"`` is True for :class:`EMTDAMPClassifier` (without it, prior variances
        above about 4 diverge in the first epoch) and False for
        :class:`EMTDAMPRegressor` (Boston: test RMSE 2.95 with it against 2.83).
        Federated fits pool the means from the clients before the first round.
    posterior_average : float, default=1.0
        Window in epochs of the moving average of the posterior that the fitted model
        (prediction, ``coefs_``, the pruned network) is read from: the moment-matched
        mixture of the posteriors after the minibatches of about the last
        ``posterior_average`` passes (ALGORITHM.md 5.7 gives the posterior after the last
        minibatch, which moves with it). ``0`` reads the last posterior. Training itself
        does not depend on it. Federated fits read the last server posterior.
    shuffle : bool, default=True
        Whether to shuffle the samples at each epoch.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialization and of the shuffling.
    verbose : bool, default=False
        Print one line per epoch.
    warm_start : bool, default=False
        Reuse the previous posterior as the starting point of ``fit``.
    local_epochs : int, default=1
        Federated fit only (``fit(X, y, client_ids=...)``): passes of each client over
        its data per communication round.
    client_likelihood_power : float in [0, 1], default=0.5
        Federated fit only: exponent ``gamma`` of the tempering of each client's
        likelihood. Client ``k`` with ``N_k`` of the ``N`` samples multiplies its evidence
        by ``s_k = (N / N_k) ** gamma`` and forgets ``s_k`` times faster, so the average
        still holds ``pasp_memory`` epochs of evidence. ``0`` is the plain weighted
        average of the local posteriors (a round then adds about ``1/K`` of an epoch of
        evidence with ``K`` equal clients); ``1`` lets every client treat its data as the
        whole data set, fast on IID clients but unstable under label skew. With a single
        client ``s_k = 1`` whatever ``gamma``. See the "Federated learning" section of the
        algorithm page for the measurements behind the default.
    n_jobs : int or None, default=None
        Federated fit only: number of clients run in parallel through
        :class:`joblib.Parallel` (``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` uses all processors). The
        backend is not forced, so ``joblib.parallel_config(backend="dask")`` runs the
        clients on a Dask cluster. Results do not depend on ``n_jobs`` or the backend.
    on_client_error : {"raise", "skip"}, default="raise"
        Federated fit only: when a client raises, ``"raise"`` stops ``fit`` with a
        :class:`sk_tdamp.federated.ClientError` naming the client (the estimator is left
        as it was before ``fit``); ``"skip"`` leaves that client out of the round with a
        :class:`sk_tdamp.federated.ClientSkippedWarning`.
"""

_ATTRS_DOC = """
    coefs_ : list of ndarray of shape (n_in, n_out)
        Posterior means of the weights of each layer (pruned neurons are zero).
    intercepts_ : list of ndarray of shape (n_out,)
        Posterior means of the biases, such that ``X @ coefs_[0] + intercepts_[0]``
        etc. is the posterior-mean network.
    coefs_var_, intercepts_var_ : list of ndarray
        Posterior variances of the weights and biases, same shapes.
    input_shifts_ : list of ndarray of shape (n_in,)
        Shift of each layer's inputs with ``centering`` (zeros without): the model
        holds layer ``l`` as ``(u - input_shifts_[l]) @ W + b'`` with ``W`` and ``b'``
        independent a posteriori, so ``intercepts_[l] = b' - input_shifts_[l] @ W``
        and ``intercepts_var_`` adds ``input_shifts_[l] ** 2 @ coefs_var_[l]`` to the
        variance of ``b'``. The predictive variance also uses the covariance of the
        intercepts with the weights that this implies.
    support_probas_ : list of ndarray
        Posterior probability that each group is active: first the input features,
        then the neurons of each hidden layer.
    neuron_masks_ : list of ndarray of bool
        Kept input features and neurons, same layout as ``support_probas_``.
    n_features_kept_ : int
        Number of input features kept.
    n_neurons_kept_ : list of int
        Number of neurons kept in each hidden layer.
    density_ : list of float
        Fraction of neurons kept in each hidden layer.
    kept_features_ : ndarray of int
        Indices of the kept input features.
    pruned_coefs_, pruned_intercepts_, pruned_coefs_var_, pruned_intercepts_var_ : list
        The compact network: the same as ``coefs_`` etc. restricted to the kept
        features and neurons. It predicts exactly as the full network.
    pruned_input_shifts_ : list of ndarray
        ``input_shifts_`` restricted to the kept features and neurons.
    rho_ : ndarray of shape (`n_layers_` - 1,)
        Learned prior support probability of each layer's groups (1 for ungrouped).
    prior_variances_ : ndarray of shape (`n_layers_` - 1,)
        Slab variance of each layer.
    noise_variance_ : float
        Learned noise variance ``v``{v_units}.
    n_iter_ : int
        Number of epochs run.
    t_ : int
        Number of training samples seen.
    loss_curve_ : list of float
        Training objective per epoch: mean negative log-likelihood of each
        minibatch's targets under the model before it was fitted on them.
    noise_variance_curve_ : list of float
        ``v`` after each epoch.
    density_curve_ : list of float
        Fraction of hidden neurons kept after each epoch.
    n_layers_ : int
        Number of layers including input and output.
    n_outputs_ : int
        Number of network outputs.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.
"""


def _fill(doc, **fields):
    """Substitute ``{name}`` fields of a shared docstring fragment."""
    for key, value in fields.items():
        doc = doc.replace("{" + key + "}", value)
    return doc


_REFERENCES = """    References
    ----------
    W. Xu, A. Liu, Y. Zhang and V. Lau, "Bayesian Deep Learning via Expectation
    Maximization and Turbo Deep Approximate Message Passing", IEEE Trans. Signal
    Processing 72 (2024), 3865-3878.
"""
_Y_REG = """        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Training targets, one column per output.
"""
_Y_CLS = """        y : array-like of shape (n_samples,)
            Training class labels.
"""
_FIT_DOC = """Fit the posterior by EM-TDAMP for ``max_iter`` epochs (or until converged).

        With ``client_ids``, simulate Bayesian federated learning instead
        (:mod:`sk_tdamp.federated`): each distinct id is a client whose samples stay
        with it, and ``max_iter`` counts communication rounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs, preferably standardized.
{y}        client_ids : array-like of shape (n_samples,), default=None
            Client of each sample (any sortable labels). In each round every client
            runs ``local_epochs`` passes of TDAMP from the global posterior (in parallel
            with ``n_jobs``), then the server averages their posteriors and runs the
            M-step. Routed by scikit-learn's metadata routing after
            ``set_fit_request(client_ids=True)``.

        Returns
        -------
        self : object
            The fitted estimator.
        """


class EMTDAMPRegressor(RegressorMixin, _BaseEMTDAMP):
    __doc__ = """Bayesian neural network regressor fitted by EM-TDAMP.

    A multilayer perceptron with a group-sparse Bernoulli-Gaussian prior on the weights
    (one group per neuron: its outgoing weights) and a Gaussian likelihood. The E-step
    approximates the posterior of the weights by turbo deep approximate message passing
    over minibatches chained by the posterior-as-prior rule; the M-step learns the
    sparsity of each layer and the noise variance. The result predicts with an
    uncertainty and prunes neurons.

    Parameters
    ----------""" + _fill(
        _PARAMS_DOC, v_default="1.0", v_units=", in units of the variance of the "
        "training target (y is standardized internally)") + """
    Attributes
    ----------""" + _fill(
        _ATTRS_DOC, v_units=", in the units of y squared") + """
    y_mean_, y_scale_ : ndarray of shape (`n_outputs_`,)
        The internal standardization of the target.

    See Also
    --------
    EMTDAMPClassifier : The same model with a probit-product likelihood.
    sklearn.neural_network.MLPRegressor : A network trained by gradient descent.
    sklearn.linear_model.BayesianRidge : Bayesian linear regression.

    Notes
    -----
    The predictive distribution of a test point is Gaussian with mean ``omega`` and
    variance ``V + v``, where ``(omega, V)`` is the forward moment propagation of the
    weight posterior through the network and ``v`` the learned noise variance. The
    training target is standardized internally, so predictions are equivariant to the
    scale of y. Inputs should be standardized (e.g. ``StandardScaler`` in a pipeline):
    the prior variance is set relative to unit-variance inputs.

""" + _REFERENCES + """
    Examples
    --------
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sk_tdamp import EMTDAMPRegressor
    >>> from sk_tdamp.datasets import load_boston_housing
    >>> X, y = load_boston_housing(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> reg = make_pipeline(StandardScaler(), EMTDAMPRegressor(max_iter=20, random_state=0))
    >>> reg = reg.fit(X_train, y_train)
    >>> mean, std = reg.predict(X_test[:2], return_std=True)
    >>> mean.shape, bool((std > 0).all())
    ((2,), True)
    """

    _likelihood = "gaussian"
    _auto_turbo_iter = (2, 2)  # first pass over the data, later passes
    _auto_prior_variance = (1.0, 1.0)  # up to two hidden layers, more
    _auto_centering = False

    def _validate_xy(self, X, y, reset):
        self._hidden_sizes()  # fail before any fitted attribute changes
        return validate_data(self, X, y, reset=reset, multi_output=True, y_numeric=True,
                             dtype=np.float64)

    def _encode_targets(self, y, first_pass, classes=None):
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if first_pass:
            self._y_ndim = y.ndim
            self.y_mean_ = Y.mean(axis=0)
            scale = Y.std(axis=0)
            self.y_scale_ = np.where(scale > 0, scale, 1.0)
        elif Y.shape[1] != self.y_mean_.shape[0]:
            raise ValueError(f"y has {Y.shape[1]} outputs but the model was fitted with "
                             f"{self.y_mean_.shape[0]}.")
        return (Y - self.y_mean_) / self.y_scale_, Y.shape[1]

    def _output_noise_variance(self):
        return float(self._state.v * np.mean(self.y_scale_ ** 2))

    def _public_weights(self, layers):
        coefs, intercepts, cvars, ivars = super()._public_weights(layers)
        s = self.y_scale_
        coefs[-1] = coefs[-1] * s
        cvars[-1] = cvars[-1] * s ** 2
        intercepts[-1] = intercepts[-1] * s + self.y_mean_
        ivars[-1] = ivars[-1] * s ** 2
        return coefs, intercepts, cvars, ivars

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, client_ids=None):
        return self._fit(X, y, incremental=False, client_ids=client_ids)

    fit.__doc__ = _fill(_FIT_DOC, y=_Y_REG)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """Run one PasP pass over ``(X, y)`` starting from the current posterior.

        The first call initializes the model (and fixes the standardization of y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs, preferably standardized.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Training targets, one column per output.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, incremental=True)

    def predict(self, X, return_std=False):
        """Predictive mean, and optionally standard deviation, of the target.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs to predict.
        return_std : bool, default=False
            Also return the predictive standard deviation ``sqrt(V + v)``.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictive mean (1-D when the model was fitted on a 1-D y).
        y_std : ndarray, same shape as ``y_mean``
            Predictive standard deviation, returned only when ``return_std`` is True.
        """
        omega, V = self._forward(X)
        mean = omega * self.y_scale_ + self.y_mean_
        std = np.sqrt(V + self._state.v) * self.y_scale_
        if self._y_ndim == 1:
            mean, std = mean.ravel(), std.ravel()
        return (mean, std) if return_std else mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class EMTDAMPClassifier(ClassifierMixin, _BaseEMTDAMP):
    __doc__ = """Bayesian neural network classifier fitted by EM-TDAMP.

    The same group-sparse Bayesian MLP as :class:`EMTDAMPRegressor` with the
    probit-product likelihood ``p(y = c | z) = prod_{j != c} Phi((z_c - z_j) / sqrt(v))``,
    whose noise variance ``v`` acts as a learned temperature. Class probabilities come
    from the posterior predictive.

    Parameters
    ----------""" + _fill(
        _PARAMS_DOC, v_default="1.0", v_units=" (a temperature of the probit-product)") + """
    Attributes
    ----------""" + _fill(_ATTRS_DOC, v_units="") + """
    classes_ : ndarray of shape (n_classes,)
        Class labels.

    See Also
    --------
    EMTDAMPRegressor : The same model for regression.
    sklearn.neural_network.MLPClassifier : A network trained by gradient descent.

    Notes
    -----
    Binary problems use two outputs (one per class). ``predict_proba`` normalizes
    ``prod_{j != c} Phi((omega_c - omega_j) / sqrt(v + V_c + V_j))`` over the classes.

""" + _REFERENCES + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sk_tdamp import EMTDAMPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(),
    ...                     EMTDAMPClassifier(max_iter=20, random_state=0)).fit(X, y)
    >>> proba = clf.predict_proba(X[:3])
    >>> proba.shape, bool(abs(proba.sum(axis=1) - 1).max() < 1e-12)
    ((3, 3), True)
    """

    _likelihood = "probit"
    _auto_turbo_iter = (2, 1)  # first pass over the data, later passes
    _v_warmup = (0, 1)  # deeper networks: no probit-temperature M-step after the first pass
    _auto_prior_variance = (16.0, 1.0)  # up to two hidden layers, more
    _auto_centering = True

    def _validate_xy(self, X, y, reset):
        self._hidden_sizes()  # fail before any fitted attribute changes
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64)
        check_classification_targets(y)
        return X, y

    def _encode_targets(self, y, first_pass, classes=None):
        # Validate everything before storing: a failed call leaves the model as it was.
        if first_pass:
            encoder = LabelEncoder().fit(np.unique(y) if classes is None else classes)
        else:
            encoder = self._label_encoder
        if encoder.classes_.size < 2:
            raise ValueError(
                "EMTDAMPClassifier needs samples of at least 2 classes in the data, "
                f"got only one class: {encoder.classes_[0]!r}.")
        unknown = np.setdiff1d(y, encoder.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels not in classes_: {unknown[:5]!r}.")
        self._label_encoder, self.classes_ = encoder, encoder.classes_
        return encoder.transform(y), encoder.classes_.size

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, client_ids=None):
        return self._fit(X, y, incremental=False, client_ids=client_ids)

    fit.__doc__ = _fill(_FIT_DOC, y=_Y_CLS)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """Run one PasP pass over ``(X, y)`` starting from the current posterior.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs, preferably standardized.
        y : array-like of shape (n_samples,)
            Training class labels.
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call. Later calls may omit it or
            must pass the same classes.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if not hasattr(self, "_state"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes)!r} is not the same as classes_="
                f"{self.classes_!r} of the fitted model.")
        return self._fit(X, y, incremental=True, classes=classes)

    def _log_scores(self, X):
        """Unnormalized log class probabilities ``sum_{j != c} log Phi(t_cj)``.

        ``t_cj = (omega_c - omega_j) / sqrt(v + V_c + V_j)`` with the predictive moments
        ``(omega, V)`` of the outputs (ALGORITHM.md 6). Every prediction method derives
        from these scores, so ``predict``, ``predict_proba``, ``predict_log_proba`` and
        ``decision_function`` always agree.
        """
        omega, V = self._forward(X)
        C = omega.shape[1]
        t = (omega[:, :, None] - omega[:, None, :]) / np.sqrt(
            self._state.v + V[:, :, None] + V[:, None, :])
        log_phi = log_ndtr(t)
        log_phi[:, np.arange(C), np.arange(C)] = 0.0
        return log_phi.sum(axis=2)

    def predict_proba(self, X):
        """Posterior predictive class probabilities.

        ``P(c)`` is proportional to ``prod_{j != c} Phi((omega_c - omega_j) /
        sqrt(v + V_c + V_j))``, normalized over the classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``; rows sum to one.
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed in the log domain.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs to predict.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Finite even where a probability underflows to zero.
        """
        scores = self._log_scores(X)
        return scores - logsumexp(scores, axis=1, keepdims=True)

    def decision_function(self, X):
        """Confidence scores: the unnormalized log predictive probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs to predict.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the log-odds ``log P(classes_[1]) - log P(classes_[0])``
            (positive where :meth:`predict` returns ``classes_[1]``); otherwise one
            column per class, ``log P(c)`` up to a per-row constant, whose argmax is
            :meth:`predict`.
        """
        scores = self._log_scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """Most probable class under the posterior predictive.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted class labels, taken from ``classes_``.
        """
        index = np.argmax(self._log_scores(X), axis=1)
        return self.classes_[index]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags

