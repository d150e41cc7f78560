"""scikit-learn estimators on the EM-TDAMP engine: EMTDAMPRegressor and EMTDAMPClassifier.

The estimators are a thin layer: parameter validation, data validation, target encoding
and the fitted attributes. Settings are resolved in ``_settings``, the epoch loop and the
M-step live in ``_engine``, the fitted model is read out by ``_readout``, and the
message passing itself in ``sk_tdamp._core``.
"""

from abc import ABCMeta
from numbers import Integral, Real

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _engine
from ._core._likelihoods import probit_log_scores
from ._core._predict import forward_moments
from ._docstrings import (
    ATTRS_DOC,
    FIT_DOC,
    PARAMS_DOC,
    REFERENCES,
    Y_CLS,
    Y_REG,
    fill,
)
from ._messages import GlobalMessage
from ._readout import mlp_weights, pruned, readout
from ._settings import resolve_settings
from ._targets import ClassTarget, RegressionTarget, target_from_arrays

_DENSITY = Interval(Real, 0, 1, closed="right")


def _seed(random_state, size=None):
    """Seeds drawn from ``random_state`` (scikit-learn's single randomness entry point)."""
    return check_random_state(random_state).randint(np.iinfo(np.int32).max, size=size)


def _check_client_ids(client_ids, X):
    """Client id per sample as a 1-D array, validated before the model changes."""
    ids = column_or_1d(client_ids, warn=True)
    check_consistent_length(X, ids)
    try:
        np.unique(ids)
    except TypeError as exc:
        raise ValueError(f"client_ids must be sortable (one type of label): {exc}") from None
    if ids.dtype.kind == "f" and np.isnan(ids).any():
        raise ValueError("client_ids contains NaN.")
    return ids


def template_settings(estimator):
    """The :class:`~._settings.Settings` of an estimator's parameters, validated.

    For code that runs the engine from an unfitted template (the federated
    ``initial_message``); a fit resolves its settings itself and exposes them as
    ``settings_``.
    """
    estimator._validate_params()
    return resolve_settings(estimator.get_params(deep=False), estimator._likelihood)


class _BaseEMTDAMP(BaseEstimator, metaclass=ABCMeta):
    """Shared part of the EM-TDAMP estimators (not for direct use)."""

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
        "dtype": [StrOptions({"float64", "float32"}), Options(type, {np.float64, np.float32})],
    }

    def __init__(self, *, hidden_layer_sizes=(50,), activation="relu", batch_size=32,
                 max_iter=100, tol=1e-4, n_iter_no_change=10, n_init="auto", n_turbo_iter="auto",
                 damping="auto", prior_variance="auto", learn_prior_variance=False,
                 bias_variance=1.0, rho_init=0.5, learn_rho=True, target_density=None,
                 input_rho_init=None, input_target_density=None, noise_variance_init=1.0,
                 learn_noise_variance=True, pasp_memory=4.0, init_evidence=3.0,
                 centering="auto", posterior_average=1.0, shuffle=True, random_state=None,
                 verbose=False, warm_start=False, local_epochs=1,
                 client_likelihood_power=0.5, n_jobs=None, on_client_error="raise",
                 dtype="float64"):
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
        self.dtype = dtype

    _likelihood = None  # the likelihood factor of the subclass ("gaussian", "probit")

    # ------------------------------------------------------------------------ fitting
    def _fit(self, X, y, *, incremental, classes=None, client_ids=None):
        first_pass = not (hasattr(self, "_chain") and (incremental or self.warm_start))
        settings = resolve_settings(self.get_params(deep=False), self._likelihood)
        federation = None
        if client_ids is not None:  # simulated federated fit (sk_tdamp.federated)
            federation = _engine.Federation.from_ids(
                _check_client_ids(client_ids, X), self.n_jobs, self.on_client_error)
        saved = dict(self.__dict__)  # shallow: a fit replaces attributes, mutates none
        try:
            X, y = self._validate_xy(X, y, reset=first_pass)
            target = self._fit_target(y, classes) if first_pass else self._target
            Y = target.encode(y)
            if first_pass:
                seeds = _seed(self.random_state, 1 if incremental else settings.n_init)
                chain = _engine.fit(settings, X, Y, n_outputs=target.n_outputs, seeds=seeds,
                                    v_scale=target.v_scale, incremental=incremental,
                                    federation=federation)
            else:
                chain = _engine.fit_more(self._chain, settings, X, Y,
                                         incremental=incremental, federation=federation)
        except Exception:  # e.g. a diverged chain or a failed client: no change at all
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        self._chain, self._target, self.settings_ = chain, target, settings
        self._finalize()
        return self

    def _finalize(self):
        """Expose the chain's posterior as fitted attributes (zero the pruned groups)."""
        chain, target = self._chain, self._target
        self._posterior = post = readout(chain.state, chain.average, self.settings_)
        self.n_layers_ = len(chain.state.layers) + 1
        self.n_outputs_ = target.n_outputs
        self.n_iter_, self.t_ = chain.n_iter, chain.n_seen
        self.loss_curve_ = list(chain.loss_curve)
        self.noise_variance_curve_ = list(chain.noise_variance_curve)
        self.density_curve_ = list(chain.density_curve)
        self.neuron_masks_, self.support_probas_ = post.masks, post.support_probas
        self.rho_, self.prior_variances_ = post.rho, post.prior_variances
        self.noise_variance_ = float(post.v * target.v_scale)
        self.n_features_kept_ = int(post.masks[0].sum())
        self.n_neurons_kept_ = [int(m.sum()) for m in post.masks[1:]]
        self.density_ = [float(m.mean()) for m in post.masks[1:]]
        weights = mlp_weights(post.layers, *self._output_units())
        self.coefs_, self.intercepts_ = weights.coefs, weights.intercepts
        self.coefs_var_, self.intercepts_var_ = weights.coefs_var, weights.intercepts_var
        self.input_shifts_ = [np.zeros(la.m.shape[1] - 1) if la.mu is None else la.mu.copy()
                              for la in post.layers]
        small, self.pruned_input_shifts_ = pruned(weights, post.masks, self.input_shifts_)
        self.pruned_coefs_, self.pruned_intercepts_ = small.coefs, small.intercepts
        self.pruned_coefs_var_ = small.coefs_var
        self.pruned_intercepts_var_ = small.intercepts_var
        self.kept_features_ = np.flatnonzero(post.masks[0])

    def _output_units(self):
        """``(scale, shift)`` from the network's outputs to the target's units."""
        return None, None

    # ---------------------------------------------------------------- the posterior
    def get_posterior(self):
        """The fitted posterior as a message of named NumPy arrays.

        The same object a federated server broadcasts (:mod:`sk_tdamp.federated`): the
        weight posterior and prior evidence of every layer, the resolved
        ``settings_``, the target encoding and the training history. A federated
        client starts from it (:func:`sk_tdamp.federated.client_step`), ``to_dict()``
        gives it as a flat dict of arrays (``np.savez``-able), and
        :meth:`from_posterior` rebuilds the fitted estimator.

        Returns
        -------
        message : sk_tdamp.federated.GlobalMessage
            ``n_samples`` is the number of training rows of the last fit.

        Examples
        --------
        >>> import numpy as np
        >>> from sk_tdamp import EMTDAMPRegressor
        >>> X = np.random.default_rng(0).normal(size=(40, 3)); y = X[:, 0]
        >>> reg = EMTDAMPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
        >>> msg = reg.fit(X, y).get_posterior()
        >>> msg.state.layers[0].m.shape, msg.round
        ((4, 4), 2)
        >>> copy = EMTDAMPRegressor.from_posterior(msg)
        >>> bool(np.array_equal(copy.predict(X), reg.predict(X)))
        True
        """
        check_is_fitted(self)
        return GlobalMessage.from_chain(
            self._chain, estimator=type(self).__name__, params=self.get_params(deep=False),
            settings=self.settings_, n_samples=self._chain.n_data,
            n_features=self.n_features_in_, target=self._target,
            feature_names=getattr(self, "feature_names_in_", None))

    @classmethod
    def from_posterior(cls, message):
        """A fitted estimator predicting with the posterior of ``message``.

        Parameters
        ----------
        message : sk_tdamp.federated.GlobalMessage
            From :meth:`get_posterior` or a federated server (for instance the final
            round's broadcast).

        Returns
        -------
        estimator : instance of the class
            Fitted: predictions, the pruning attributes, ``partial_fit`` and warm
            starts work as after ``fit``, continuing from this posterior as prior;
            ``n_iter_`` counts the epochs or rounds the posterior has seen.
        """
        if message.estimator != cls.__name__:
            raise ValueError(f"the message holds an {message.estimator}, not an "
                             f"{cls.__name__}.")
        est = cls(**message.params)
        est._chain = message.to_chain(rng=np.random.default_rng(_seed(est.random_state)))
        est._target = target_from_arrays(message.target)
        est.n_features_in_ = message.n_features
        if message.feature_names is not None:
            est.feature_names_in_ = np.asarray(message.feature_names, dtype=object)
        est.settings_ = message.settings
        est._finalize()
        return est

    # ------------------------------------------------------------------- prediction
    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return forward_moments(X, self._posterior.layers, self.activation)

    def __sklearn_is_fitted__(self):
        # Fitted once a fit has completed: a failed first fit leaves no model.
        return hasattr(self, "_posterior")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class EMTDAMPRegressor(RegressorMixin, _BaseEMTDAMP):
    __doc__ = """Bayesian neural network regressor fitted by EM-TDAMP.

    A multilayer perceptron with a group-sparse Bernoulli-Gaussian prior on the weights
    (one group per neuron: its outgoing weights) and a Gaussian likelihood. The E-step
    approximates the posterior of the weights by turbo deep approximate message passing
    over minibatches chained by the posterior-as-prior rule; the M-step learns the
    sparsity of each layer and the noise variance. The result predicts with an
    uncertainty and prunes neurons.

    Parameters
    ----------""" + fill(
        PARAMS_DOC, v_default="1.0", v_units=", in units of the variance of the "
        "training target (y is standardized internally)") + """
    Attributes
    ----------""" + fill(
        ATTRS_DOC, v_units=", in the units of y squared") + """
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

""" + REFERENCES + """
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

    def _validate_xy(self, X, y, reset):
        return validate_data(self, X, y, reset=reset, multi_output=True, y_numeric=True,
                             dtype=[np.float64, np.float32])

    def _fit_target(self, y, classes=None):
        return RegressionTarget.fit(y)

    def _output_units(self):
        return self._target.scale, self._target.mean

    def _finalize(self):
        super()._finalize()
        self.y_mean_, self.y_scale_ = self._target.mean, self._target.scale

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, client_ids=None):
        return self._fit(X, y, incremental=False, client_ids=client_ids)

    fit.__doc__ = fill(FIT_DOC, y=Y_REG)

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
        target = self._target
        mean = omega * target.scale + target.mean
        std = np.sqrt(V + self._posterior.v) * target.scale
        if target.ndim == 1:
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
    ----------""" + fill(
        PARAMS_DOC, v_default="1.0", v_units=" (a temperature of the probit-product)") + """
    Attributes
    ----------""" + fill(ATTRS_DOC, v_units="") + """
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

""" + REFERENCES + """
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

    def _validate_xy(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        return X, y

    def _fit_target(self, y, classes=None):
        return ClassTarget.fit(y, classes)

    def _finalize(self):
        super()._finalize()
        self.classes_ = self._target.classes

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, client_ids=None):
        return self._fit(X, y, incremental=False, client_ids=client_ids)

    fit.__doc__ = fill(FIT_DOC, y=Y_CLS)

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
        if not hasattr(self, "_chain"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes)!r} is not the same as classes_="
                f"{self.classes_!r} of the fitted model.")
        return self._fit(X, y, incremental=True, classes=classes)

    def _log_scores(self, X):
        omega, V = self._forward(X)
        return probit_log_scores(omega, V, self._posterior.v)

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
