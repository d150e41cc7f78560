"""Bayesian federated learning with EM-TDAMP (ALGORITHM.md section 8).

``K`` clients hold data that never leave them. A communication round:

1. the server broadcasts a :class:`GlobalMessage`: the global posterior (per layer the
   posterior-as-prior evidence ``(Hp, Gp)``, the posterior moments ``(m, c)``, the
   support log-odds ``Lam``, the hyperparameters ``rho``, ``sigma^2`` and ``v``), the
   total number of samples ``N`` and the model settings;
2. each client runs TDAMP from that posterior over its ``N_k`` samples
   (:func:`client_step`, ``local_epochs`` passes of PasP minibatches) and returns a
   :class:`LocalMessage`: its posterior and the output statistics of the noise-variance
   M-step;
3. the server (:func:`server_step`) takes the weighted geometric average of the local
   posteriors, i.e. averages their natural parameters with weights ``a_k = N_k / N``,
   pools the output statistics, runs the M-step (``v``, ``rho``, optional target density
   and slab variance) and broadcasts the new global message.

``EMTDAMPRegressor.fit(X, y, client_ids=...)`` and ``EMTDAMPClassifier.fit`` simulate
this protocol, with the clients dispatched through :class:`sklearn.utils.parallel.Parallel`
(any joblib backend, e.g. ``dask.distributed``, runs them); :func:`client_step`,
:func:`server_step`, :func:`initial_message` and :func:`to_estimator` are the primitives
of a real deployment in which the server never sees data (a fitted estimator's
``get_posterior()`` is a global message too); :func:`partition_clients` splits a data set
into IID or label-skewed clients for experiments. The simulation and the primitives run
the same engine functions (``sk_tdamp._engine``), so they give the same model.

Design choices
--------------
- *Global forgetting rate.* A client forgets at ``lam = 1 - B / (E N)`` with the global
  ``N`` (ALGORITHM.md 8), not its own ``N_k``: the core's ``run_epoch`` computes
  ``lam = 1 - B / (memory n)`` from the rows it is given, so a client passes
  ``memory = E (N / N_k)``, which makes ``memory * N_k = E N``.
- *What is averaged.* Every array of a layer's posterior that the E-step updates is
  averaged with the weights ``a_k``: the evidence ``(Hp, Gp)`` and the initialization
  pseudo-evidence ``(H0, G0)`` (natural parameters: the geometric average of the
  Gaussian factors), the support log-odds ``Lam`` (the geometric average of the
  clients' Bernoulli support posteriors) and the moments ``(m, c)`` (the iterate the next
  round starts from, which the E-step damps towards). With one client every weight is
  exactly 1, so the server step is the identity on the client's posterior and a
  one-client federated fit *is* the centralized fit, bit for bit.
- *Output statistics.* The client sends the likelihood's noise-variance statistics
  (``GaussianVStats``: sums of ``(y - zhat)^2 + Var z`` and counts; ``ProbitVStats``: the
  per-pair margins ``z_y - z_j ~ N(dm, dv)``) of its last local epoch. The server pools
  them (sums and concatenations, ``merge``) and runs the same update as a centralized
  epoch.
"""

import dataclasses
import numbers

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_X_y

from .._core._likelihoods import LIKELIHOODS
from .._engine import (
    ClientError,
    ClientSkippedWarning,
    LocalLayer,
    aggregate,
    apply_shift_sums,
    client_update,
    draw_orders,
    finish_epoch,
    new_chain,
    shift_sums,
)
from .._estimators import EMTDAMPClassifier, EMTDAMPRegressor, template_settings
from .._messages import GlobalMessage, LocalMessage
from .._targets import ClassTarget, RegressionTarget, target_from_arrays

__all__ = [
    "ClientError",
    "ClientSkippedWarning",
    "GlobalMessage",
    "LocalLayer",
    "LocalMessage",
    "check_local_message",
    "client_shift_sums",
    "client_step",
    "initial_message",
    "partition_clients",
    "server_shift_step",
    "server_step",
    "to_estimator",
]

_ESTIMATORS = {cls.__name__: cls for cls in (EMTDAMPRegressor, EMTDAMPClassifier)}


def _generator(random_state):
    return np.random.default_rng(check_random_state(random_state).randint(np.iinfo(np.int32).max))


# ------------------------------------------------------------------ the protocol
def initial_message(estimator, n_features, n_samples, *, classes=None, y_mean=None,
                    y_scale=None):
    """The round-0 global message of a deployment: a freshly initialized posterior.

    Parameters
    ----------
    estimator : EMTDAMPRegressor or EMTDAMPClassifier
        Unfitted template whose hyperparameters (architecture, ``local_epochs``,
        ``random_state`` of the shared random initialization, ...) the federation uses.
    n_features : int
        Number of input features (the clients' X must have them, standardized alike).
    n_samples : int
        Total number of training samples over all clients (``N``).
    classes : array-like of shape (n_classes,), default=None
        All class labels; required for the classifier (a client may hold a subset).
    y_mean, y_scale : array-like of shape (n_outputs,), default=None
        Target standardization of the regressor, e.g. pooled from the clients' counts,
        sums and sums of squares; default 0 and 1 with one output. With one output the
        model predicts a 1-D y, with several a 2-D y.

    Returns
    -------
    message : GlobalMessage

    Examples
    --------
    >>> from sk_tdamp import EMTDAMPClassifier
    >>> from sk_tdamp.federated import initial_message
    >>> msg = initial_message(EMTDAMPClassifier(hidden_layer_sizes=(8,), random_state=0),
    ...                       n_features=4, n_samples=100, classes=[0, 1, 2])
    >>> msg.round, msg.state.layers[0].m.shape, msg.state.layers[1].m.shape
    (0, (8, 5), (3, 9))
    """
    if type(estimator).__name__ not in _ESTIMATORS:
        raise TypeError("estimator must be an EMTDAMPRegressor or an EMTDAMPClassifier, "
                        f"got {type(estimator).__name__}.")
    settings = template_settings(estimator)
    if not (isinstance(n_features, numbers.Integral) and n_features >= 1):
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}.")
    if not (isinstance(n_samples, numbers.Integral) and n_samples >= 1):
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    if isinstance(estimator, EMTDAMPClassifier):
        if classes is None:
            raise ValueError("classes is required for EMTDAMPClassifier.")
        target = ClassTarget.fit(np.asarray(classes))
    else:
        mean = np.atleast_1d(np.zeros(1) if y_mean is None else np.asarray(y_mean, float))
        scale = np.ones_like(mean) if y_scale is None else np.atleast_1d(
            np.asarray(y_scale, dtype=float))
        if scale.shape != mean.shape or not np.all(scale > 0):
            raise ValueError("y_scale must be positive and have the shape of y_mean.")
        target = RegressionTarget(mean, scale, 1 if mean.size == 1 else 2)
    seed = check_random_state(estimator.random_state).randint(np.iinfo(np.int32).max)
    chain = new_chain(settings, int(n_features), target.n_outputs, seed, target.v_scale)
    return GlobalMessage.from_chain(
        chain, estimator=type(estimator).__name__, params=estimator.get_params(deep=False),
        settings=settings, n_samples=n_samples, n_features=n_features, target=target)


def to_estimator(message):
    """A fitted estimator predicting with the global posterior of ``message``.

    Parameters
    ----------
    message : GlobalMessage
        Typically the final message of a federation.

    Returns
    -------
    estimator : EMTDAMPRegressor or EMTDAMPClassifier
        Fitted: ``predict``, ``predict_proba`` / ``return_std``, the pruning attributes
        and ``partial_fit`` work as after ``fit``; ``n_iter_`` is the number of rounds.
        The same as ``EMTDAMPRegressor.from_posterior(message)`` (or the classifier's).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp import EMTDAMPRegressor
    >>> from sk_tdamp.federated import initial_message, to_estimator
    >>> msg = initial_message(EMTDAMPRegressor(hidden_layer_sizes=(4,), random_state=0),
    ...                       n_features=2, n_samples=10)
    >>> to_estimator(msg).predict(np.zeros((3, 2))).shape
    (3,)
    """
    try:
        cls = _ESTIMATORS[message.estimator]
    except KeyError:
        raise ValueError(f"unknown estimator {message.estimator!r} in the message.") from None
    return cls.from_posterior(message)


def _check_client_data(message, X, y=None):
    """The client's data validated against the federation's model (``X`` float64)."""
    if y is None:
        X = check_array(X, dtype=np.float64)
    elif message.settings.likelihood == "gaussian":
        X, y = check_X_y(X, y, multi_output=True, y_numeric=True, dtype=np.float64)
    else:
        X, y = check_X_y(X, y, dtype=np.float64)
        check_classification_targets(y)
    if X.shape[1] != message.n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the federation's "
                         f"{message.estimator} is expecting {message.n_features} features "
                         "as input.")
    return X, y


def client_step(message, X, y, *, random_state=None, client=None):
    """One client's work in a round: TDAMP from the global posterior on local data.

    Parameters
    ----------
    message : GlobalMessage
        The server's broadcast.
    X : array-like of shape (n_samples, n_features)
        The client's inputs, preprocessed as agreed by the federation.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        The client's targets (class labels from ``message.target["classes"]``, or
        regression targets in their original units).
    random_state : int, RandomState instance or None, default=None
        Shuffling of the local minibatches (when the ``shuffle`` setting is on).
    client : object, default=None
        Identifier copied into the local message.

    Returns
    -------
    local : LocalMessage

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp import EMTDAMPRegressor
    >>> from sk_tdamp.federated import client_step, initial_message, server_step
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 3)); y = X @ [1.0, -1.0, 0.5]
    >>> msg = initial_message(EMTDAMPRegressor(hidden_layer_sizes=(5,), random_state=0),
    ...                       n_features=3, n_samples=60)
    >>> for r in range(3):
    ...     local = [client_step(msg, X[k::2], y[k::2], random_state=r, client=k)
    ...              for k in range(2)]
    ...     msg = server_step(msg, local)
    >>> msg.round, local[0].n_samples, local[0].nbytes < msg.nbytes
    (3, 30, True)
    """
    if message.pending_shift is not None:
        raise ValueError(
            f"The input shift of layer {message.pending_shift} is not set yet: with "
            "centering, run client_shift_sums and server_shift_step until "
            "message.pending_shift is None before the first round.")
    settings = message.settings
    X, y = _check_client_data(message, X, y)
    Y = target_from_arrays(message.target).encode(y)
    orders = None
    if settings.shuffle:
        orders = draw_orders(_generator(random_state), X.shape[0], settings.local_epochs)
    update = client_update(message.state, settings, X, Y, orders, message.n_samples,
                           message.round == 0)
    return LocalMessage.from_update(update, message, client)


def client_shift_sums(message, X):
    """A client's part of the input shift of layer ``message.pending_shift``.

    Parameters
    ----------
    message : GlobalMessage
        The server's broadcast, with a pending shift.
    X : array-like of shape (n_samples, n_features)
        The client's inputs.

    Returns
    -------
    n_samples : int
        Number of local samples.
    sums : ndarray of shape (n_inputs,)
        Sum over the local samples of the layer's mean inputs under the global
        posterior (the data for layer 0); only these aggregates leave the client.
        A client with more than 8192 samples uses 8192 evenly spaced ones, as a
        centralized fit does (so that a one-client federation is the centralized fit).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp import EMTDAMPClassifier
    >>> from sk_tdamp.federated import client_shift_sums, initial_message, server_shift_step
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 3)) + 5.0
    >>> msg = initial_message(EMTDAMPClassifier(hidden_layer_sizes=(4,), random_state=0),
    ...                       n_features=3, n_samples=40, classes=[0, 1])
    >>> while msg.pending_shift is not None:
    ...     msg = server_shift_step(msg, [client_shift_sums(msg, X[k::2]) for k in range(2)])
    >>> bool(np.allclose(msg.state.layers[0].mu, X.mean(axis=0)))
    True
    """
    layer = message.pending_shift
    if layer is None:
        raise ValueError("The message has no pending input shift.")
    X, _ = _check_client_data(message, X)
    return shift_sums(message.state, message.settings.activation, layer, X)


def server_shift_step(message, client_sums):
    """Set the input shift of layer ``message.pending_shift`` from the clients' sums.

    Parameters
    ----------
    message : GlobalMessage
        The message the clients answered.
    client_sums : sequence of (int, ndarray)
        The outputs of :func:`client_shift_sums`.

    Returns
    -------
    message : GlobalMessage
        A copy with the layer's shift ``mu = sum(sums) / sum(n_samples)`` (the mean over
        the pooled data; the round counter is unchanged). Examples are in
        :func:`client_shift_sums`.
    """
    layer = message.pending_shift
    if layer is None:
        raise ValueError("The message has no pending input shift.")
    state = message.state.copy()
    apply_shift_sums(state, layer, client_sums)
    return dataclasses.replace(message, state=state)


def check_local_message(message, local):
    """Check that a client's reply can be aggregated into ``message``'s round.

    Parameters
    ----------
    message : GlobalMessage
        The global message the client answered.
    local : LocalMessage
        The client's reply.

    Raises
    ------
    ValueError
        Naming the client and the first problem found: another round, another
        architecture (an array of another shape), no samples, or non-finite values (NaN
        anywhere; infinities anywhere but in the support log-odds ``Lam``, where they
        mean a support the evidence made certain).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp import EMTDAMPRegressor
    >>> from sk_tdamp.federated import check_local_message, client_step, initial_message
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    >>> msg = initial_message(EMTDAMPRegressor(hidden_layer_sizes=(4,), random_state=0),
    ...                       n_features=3, n_samples=20)
    >>> local = client_step(msg, X, y, client="a")
    >>> check_local_message(msg, local)  # fine: returns None
    >>> local.layers[0].m[0, 0] = np.nan
    >>> check_local_message(msg, local)
    Traceback (most recent call last):
    ...
    ValueError: local message of client 'a' holds non-finite values (layer 0, m).
    """
    who = f"local message of client {local.client!r}"
    if local.round != message.round:
        raise ValueError(f"{who} answers round {local.round}, the global message is at "
                         f"round {message.round}.")
    if not (isinstance(local.n_samples, numbers.Integral) and local.n_samples >= 1):
        raise ValueError(f"{who} has n_samples={local.n_samples!r}, not a positive "
                         "integer.")
    if len(local.layers) != len(message.state.layers):
        raise ValueError(f"{who} does not match the architecture of the global message "
                         f"({len(local.layers)} layers, not {len(message.state.layers)}).")
    for l, (mine, la) in enumerate(zip(local.layers, message.state.layers)):
        for name in ("m", "c", "Hp", "Gp", "Lam", "init_scale"):
            value, expected = np.asarray(getattr(mine, name)), getattr(la, name)
            if value.shape != np.shape(expected):
                raise ValueError(f"{who} does not match the architecture of the global "
                                 f"message (layer {l}, {name} of shape {value.shape}, not "
                                 f"{np.shape(expected)}).")
            if value.dtype.kind not in "fiu":
                raise ValueError(f"{who} holds non-numeric values (layer {l}, {name}).")
            bad = np.isnan(value) if name == "Lam" else ~np.isfinite(value)
            if np.any(bad):
                raise ValueError(f"{who} holds non-finite values (layer {l}, {name}).")
    expected = LIKELIHOODS[message.settings.likelihood].stats
    if type(local.output_stats) is not expected:
        raise ValueError(f"{who} sends {type(local.output_stats).__name__}, the model's "
                         f"likelihood needs {expected.__name__}.")
    for name, value in local.output_stats.to_arrays().items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{who} holds non-finite output statistics ({name}).")
    if not np.isfinite(local.loss):
        raise ValueError(f"{who} has a non-finite loss.")


def server_step(message, local_messages):
    """The server's work in a round: aggregate the local posteriors, then the M-step.

    Parameters
    ----------
    message : GlobalMessage
        The global message the clients answered.
    local_messages : sequence of LocalMessage
        The clients' answers (any subset of the clients: weights are ``N_k`` over the
        sum of the received ``N_k``). A message that does not answer this round, does not
        match the architecture or holds non-finite values is rejected (``ValueError``
        naming the client) before anything is aggregated.

    Returns
    -------
    message : GlobalMessage
        The next round's broadcast, ``round`` incremented.

    Notes
    -----
    Each posterior array is averaged with weights ``a_k = N_k / sum N_k`` (for the
    evidence ``(Hp, Gp)``: the weighted geometric average of the clients' posteriors in
    natural parameters); the output statistics are pooled; then the M-step updates
    ``v``, ``rho`` (after the warm-up rounds), the target-density masks and the slab
    variances, as after a centralized epoch. See the module docstring and ALGORITHM.md
    section 8. Examples are in :func:`client_step`.
    """
    local_messages = list(local_messages)
    if not local_messages:
        raise ValueError("server_step needs at least one local message.")
    for local in local_messages:
        check_local_message(message, local)
    settings = message.settings
    chain = message.to_chain(copy=False)
    updates = [lm.to_update() for lm in local_messages]
    chain.state, stats, loss, n_seen = aggregate(chain.state, updates, settings)
    finish_epoch(chain, settings, loss, stats, n_seen, "round")
    return GlobalMessage.from_chain(
        chain, estimator=message.estimator, params=message.params, settings=settings,
        n_samples=message.n_samples, n_features=message.n_features,
        target=target_from_arrays(message.target), feature_names=message.feature_names,
        copy=False)


# ------------------------------------------------------------------- experiments
def partition_clients(y, n_clients, *, iid=True, concentration=0.5, n_bins=10,
                      random_state=None):
    """Split samples into clients, IID or with a Dirichlet label skew.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets: class labels, or continuous values (then skewed on ``n_bins``
        quantile bins of the first output).
    n_clients : int
        Number of clients ``K`` (at most ``n_samples``).
    iid : bool, default=True
        True: a random split into ``K`` parts whose sizes differ by at most one.
        False: label skew, each class (or bin) shared among the clients in proportions
        drawn from ``Dirichlet(concentration, ..., concentration)``.
    concentration : float, default=0.5
        Dirichlet concentration of the label skew; small values give clients dominated
        by few classes, large values approach IID.
    n_bins : int, default=10
        Quantile bins of a continuous ``y`` for the label skew.
    random_state : int, RandomState instance or None, default=None
        Seed of the split.

    Returns
    -------
    client_ids : ndarray of shape (n_samples,)
        Client index in ``0 .. n_clients - 1`` of each sample; every client gets at
        least one sample (an empty client of the Dirichlet draw receives one sample
        from the largest client).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp.federated import partition_clients
    >>> y = np.repeat([0, 1, 2], 20)
    >>> ids = partition_clients(y, 4, random_state=0)
    >>> np.bincount(ids).tolist()
    [15, 15, 15, 15]
    >>> skewed = partition_clients(y, 4, iid=False, concentration=0.1, random_state=0)
    >>> int(np.bincount(skewed, minlength=4).min()) >= 1
    True
    """
    y = np.asarray(y)
    n = y.shape[0]
    if not (isinstance(n_clients, numbers.Integral) and 1 <= n_clients <= n):
        raise ValueError(f"n_clients must be an integer in [1, n_samples={n}], "
                         f"got {n_clients!r}.")
    if not (isinstance(concentration, numbers.Real) and concentration > 0):
        raise ValueError(f"concentration must be positive, got {concentration!r}.")
    rng = check_random_state(random_state)
    ids = np.empty(n, dtype=np.intp)
    if iid:
        ids[rng.permutation(n)] = np.arange(n) % n_clients
        return ids
    labels = y if y.ndim == 1 else y[:, 0]
    if type_of_target(y).startswith("continuous"):
        edges = np.quantile(labels, np.linspace(0, 1, n_bins + 1)[1:-1])
        labels = np.searchsorted(edges, labels, side="right")
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        shares = rng.dirichlet(np.full(n_clients, float(concentration)))
        cuts = np.round(np.cumsum(shares)[:-1] * idx.size).astype(int)
        for k, part in enumerate(np.split(idx, cuts)):
            ids[part] = k
    for k in range(n_clients):  # no empty client
        if not np.any(ids == k):
            largest = np.argmax(np.bincount(ids, minlength=n_clients))
            ids[rng.choice(np.flatnonzero(ids == largest))] = k
    return ids
