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
of a real deployment in which the server never sees data; :func:`partition_clients`
splits a data set into IID or label-skewed clients for experiments.

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
- *Output statistics.* The client sends the running sums of the core's noise-variance
  statistics (``VSTATS``): for the Gaussian likelihood sums of ``(y - zhat)^2 + Var z``
  and counts, for the probit-product the per-pair margins ``z_y - z_j ~ N(dm, dv)`` of
  the last local epoch. The server pools them (sums and concatenations) and runs the
  same update as a centralized epoch.
"""

import dataclasses
import json
import numbers
import traceback
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_consistent_length, column_or_1d, validate_data

from ._core._mstep import VSTATS
from ._core._predict import centering_rows, layer_input_sums
from ._core._state import LayerState, NetworkState
from ._core._turbo import forgetting_factor, run_epoch
from ._estimators import EMTDAMPClassifier, EMTDAMPRegressor

__all__ = [
    "ClientError",
    "ClientSkippedWarning",
    "GlobalMessage",
    "LocalMessage",
    "client_shift_sums",
    "client_step",
    "initial_message",
    "partition_clients",
    "server_shift_step",
    "server_step",
    "to_estimator",
]

_ESTIMATORS = {cls.__name__: cls for cls in (EMTDAMPRegressor, EMTDAMPClassifier)}
_FORMAT = 1  # version of the flat (npz) encoding


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


# ------------------------------------------------------------------------- messages
def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return None  # e.g. a RandomState instance as random_state: not stored


def _pack(out, key, value, compact):
    """Store ``value`` under ``key``; ``compact`` drops all-zero columns of 2-D arrays."""
    if value is None:
        return
    arr = np.asarray(value)
    if compact and arr.ndim == 2:
        cols = np.flatnonzero(np.any(arr != 0, axis=0))
        if cols.size < arr.shape[1]:
            out[key] = np.ascontiguousarray(arr[:, cols])
            out[key + ".columns"] = cols.astype(np.int32)
            out[key + ".n_columns"] = np.asarray(arr.shape[1])
            return
    out[key] = arr


def _unpack(data, key):
    """Inverse of :func:`_pack`: the array (0-d arrays as Python scalars) or None."""
    if key not in data:
        return None
    arr = np.asarray(data[key])
    if key + ".columns" in data:
        full = np.zeros((arr.shape[0], int(data[key + ".n_columns"])), dtype=arr.dtype)
        full[:, np.asarray(data[key + ".columns"])] = arr
        return full
    return arr.item() if arr.ndim == 0 else arr


def _nbytes(flat):
    return int(sum(np.asarray(a).nbytes for a in flat.values()))


class _Message:
    """Shared encoding of the two message types: flat dict of arrays, npz, nbytes."""

    _kind = ""

    @property
    def nbytes(self):
        """Size in bytes of the arrays the message sends (its :meth:`to_dict` encoding)."""
        return _nbytes(self.to_dict())

    def compact_nbytes(self):
        """Size in bytes of the compact encoding (``to_dict(compact=True)``)."""
        return _nbytes(self.to_dict(compact=True))

    def to_npz(self, file, compact=False):
        """Write the message with :func:`numpy.savez` (no pickle needed to read it).

        Parameters
        ----------
        file : str, path or file-like
            Destination, as for :func:`numpy.savez`.
        compact : bool, default=False
            Drop the all-zero columns of the weight arrays (lossless).
        """
        np.savez(file, **self.to_dict(compact=compact))

    @classmethod
    def from_npz(cls, file):
        """Read a message written by :meth:`to_npz`.

        Parameters
        ----------
        file : str, path or file-like
            Source, as for :func:`numpy.load`.

        Returns
        -------
        message : instance of the class
        """
        with np.load(file, allow_pickle=False) as data:
            return cls.from_dict({key: data[key] for key in data.files})

    @classmethod
    def _check_kind(cls, data):
        kind = str(_unpack(data, "kind"))
        if kind != cls._kind:
            raise ValueError(f"expected a {cls._kind} encoding, got {kind!r}.")
        version = int(_unpack(data, "format"))
        if version > _FORMAT:
            raise ValueError(f"unsupported message format {version} (this version reads "
                             f"up to {_FORMAT}).")


@dataclass
class GlobalMessage(_Message):
    """What the server broadcasts at the start of a round.

    Attributes
    ----------
    estimator : str
        ``"EMTDAMPRegressor"`` or ``"EMTDAMPClassifier"``.
    params : dict
        The estimator's hyperparameters (``get_params``; the npz encoding stores them as
        JSON, where a ``random_state`` that is not an integer becomes None): the architecture
        (``hidden_layer_sizes``, ``activation``) and the settings of the client and
        server steps (``batch_size``, ``pasp_memory``, ``local_epochs``, the M-step
        switches, ...).
    round : int
        Number of completed rounds.
    n_samples : int
        Total number of training samples ``N`` over all clients; the clients forget at
        the global rate ``1 - B / (E N)``.
    n_features : int
        Number of input features.
    state : NetworkState
        The global posterior. Per layer (``state.layers[l]``, a ``LayerState``, weights
        of shape ``(n_out, n_in + 1)`` with the bias as last column): the
        posterior-as-prior evidence ``Hp, Gp``, the posterior moments ``m, c``, the
        support log-odds ``Lam`` of each group, the prior log-odds ``logit_rho``, the
        slab variance ``sigma2``, the target-density mask ``keep`` (or None), whether
        the layer is ``grouped`` and the initialization pseudo-evidence ``H0, G0`` (or
        None); plus the noise variance ``state.v`` and the bias prior ``state.bias_var``.
    target : dict of ndarray
        Target encoding shared by all clients: ``{"classes"}`` for the classifier;
        ``{"y_mean", "y_scale", "y_ndim"}`` for the regressor (y is standardized).
    history : dict of ndarray
        Per completed round: ``"loss"`` (weighted mean of the clients' prequential
        losses), ``"noise_variance"`` and ``"density"`` (fraction of hidden neurons kept).
    n_samples_seen : int
        Training samples processed by the clients so far (``t_`` of the estimator).
    feature_names : ndarray of str or None
        Names of the input features, when the model was fitted on a DataFrame.
    """

    estimator: str
    params: dict
    round: int
    n_samples: int
    n_features: int
    state: NetworkState
    target: dict
    history: dict = field(default_factory=dict)
    n_samples_seen: int = 0
    feature_names: np.ndarray | None = None

    _kind = "GlobalMessage"

    @property
    def pending_shift(self):
        """Index of the layer whose input shift the clients must pool next, or None.

        With centering (the ``centering`` setting, on by default for the classifier),
        every layer's inputs are shifted by their mean over the pooled training data
        before the first round (doc/algorithm.rst, "Centered layer inputs"). The means
        are pooled one layer at a time, since each depends on the shifts of the layers
        before it: :func:`client_shift_sums` on every client, then
        :func:`server_shift_step`, until this is None.
        """
        if not _blank_estimator(self)._centering():
            return None
        return next((l for l, la in enumerate(self.state.layers) if la.mu is None), None)

    def to_dict(self, compact=False):
        """Flat dictionary of NumPy arrays (the :meth:`to_npz` content).

        Parameters
        ----------
        compact : bool, default=False
            Store only the columns of each weight array that are not all zero, with
            their indices (lossless; pruned groups under a target density, whose
            means and variances are exactly zero, then do not travel).

        Returns
        -------
        data : dict of str to ndarray
        """
        out = {"kind": np.asarray(self._kind), "format": np.asarray(_FORMAT),
               "estimator": np.asarray(self.estimator),
               "params": np.asarray(json.dumps(self.params, default=_json_default)),
               "round": np.asarray(self.round), "n_samples": np.asarray(self.n_samples),
               "n_features": np.asarray(self.n_features),
               "n_samples_seen": np.asarray(self.n_samples_seen),
               "n_layers": np.asarray(len(self.state.layers))}
        _pack(out, "feature_names", self.feature_names, False)
        for f in dataclasses.fields(NetworkState):
            if f.name != "layers":
                _pack(out, f"state.{f.name}", getattr(self.state, f.name), False)
        for l, la in enumerate(self.state.layers):
            for f in dataclasses.fields(LayerState):
                _pack(out, f"layer{l}.{f.name}", getattr(la, f.name), compact)
        for key, value in self.target.items():
            _pack(out, f"target.{key}", _portable(value), False)
        for key, value in self.history.items():
            _pack(out, f"history.{key}", value, False)
        return out

    @classmethod
    def from_dict(cls, data):
        """Rebuild a message from :meth:`to_dict` output.

        Parameters
        ----------
        data : mapping of str to array-like

        Returns
        -------
        message : GlobalMessage
        """
        cls._check_kind(data)
        layers = []
        for l in range(int(_unpack(data, "n_layers"))):
            kwargs = {f.name: _unpack(data, f"layer{l}.{f.name}")
                      for f in dataclasses.fields(LayerState)}
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
            layers.append(LayerState(**kwargs))
        scalars = {f.name: _unpack(data, f"state.{f.name}")
                   for f in dataclasses.fields(NetworkState) if f.name != "layers"}
        state = NetworkState(layers=layers, **{k: v for k, v in scalars.items()
                                               if v is not None})
        target = {k.split(".", 1)[1]: _unpack(data, k) for k in data
                  if k.startswith("target.")}
        history = {k.split(".", 1)[1]: np.atleast_1d(_unpack(data, k)) for k in data
                   if k.startswith("history.")}
        return cls(
            estimator=str(_unpack(data, "estimator")),
            params=json.loads(str(_unpack(data, "params"))),
            round=int(_unpack(data, "round")), n_samples=int(_unpack(data, "n_samples")),
            n_features=int(_unpack(data, "n_features")), state=state, target=target,
            history=history, n_samples_seen=int(_unpack(data, "n_samples_seen")),
            feature_names=_unpack(data, "feature_names"))


@dataclass
class LocalMessage(_Message):
    """What a client sends back to the server after its local epochs.

    Attributes
    ----------
    client : object
        Identifier of the client (None when not given).
    round : int
        The ``round`` of the global message this message answers.
    n_samples : int
        Number of local samples ``N_k``; the server weighs the client by ``N_k / N``.
    layers : list of dict of ndarray
        The client's posterior, per layer: the arrays the E-step updates, i.e.
        ``"Hp", "Gp"`` (its posterior-as-prior evidence ``Hp_k, Gp_k``), ``"m", "c"``
        (posterior means and variances), ``"Lam"`` (support log-odds per group) and,
        when the model keeps initialization pseudo-evidence, ``"H0", "G0"``.
    output_stats : dict of ndarray
        Statistics of the noise-variance M-step over the client's last local epoch,
        named as the attributes of the core's accumulator: ``"total", "count"`` sums for
        the Gaussian likelihood; ``"dm", "dv"`` pair margins for the probit-product.
    loss : float
        Mean prequential negative log-likelihood over the client's last local epoch.
    init_decay : ndarray or None
        The forgetting factors the client applied, in order (one per minibatch). When
        given, ``"H0", "G0"`` are left out of ``layers``: the pseudo-evidence only decays,
        so the server recomputes it exactly from its own copy.
    """

    client: object
    round: int
    n_samples: int
    layers: list
    output_stats: dict
    loss: float
    init_decay: np.ndarray | None = None

    _kind = "LocalMessage"

    def to_dict(self, compact=False):
        """Flat dictionary of NumPy arrays (the :meth:`to_npz` content).

        Parameters
        ----------
        compact : bool, default=False
            Store only the columns of each weight array that are not all zero, with
            their indices (lossless).

        Returns
        -------
        data : dict of str to ndarray
        """
        out = {"kind": np.asarray(self._kind), "format": np.asarray(_FORMAT),
               "round": np.asarray(self.round), "n_samples": np.asarray(self.n_samples),
               "loss": np.asarray(self.loss), "n_layers": np.asarray(len(self.layers))}
        _pack(out, "client", _portable(self.client), False)
        _pack(out, "init_decay", self.init_decay, False)
        for l, arrays in enumerate(self.layers):
            for name, value in arrays.items():
                _pack(out, f"layer{l}.{name}", value, compact)
        for name, value in self.output_stats.items():
            _pack(out, f"stats.{name}", value, False)
        return out

    @classmethod
    def from_dict(cls, data):
        """Rebuild a message from :meth:`to_dict` output.

        Parameters
        ----------
        data : mapping of str to array-like

        Returns
        -------
        message : LocalMessage
        """
        cls._check_kind(data)
        layers = []
        for l in range(int(_unpack(data, "n_layers"))):
            prefix = f"layer{l}."
            names = {k[len(prefix):].split(".")[0] for k in data if k.startswith(prefix)}
            layers.append({name: _unpack(data, prefix + name) for name in sorted(names)})
        stats = {k.split(".", 1)[1]: np.asarray(data[k]) for k in data
                 if k.startswith("stats.")}
        return cls(client=_unpack(data, "client"), round=int(_unpack(data, "round")),
                   n_samples=int(_unpack(data, "n_samples")), layers=layers,
                   output_stats=stats, loss=float(_unpack(data, "loss")),
                   init_decay=_unpack_array(data, "init_decay"))


def _unpack_array(data, key):
    return None if key not in data else np.atleast_1d(np.asarray(data[key]))


def _portable(value):
    """Arrays of Python objects (e.g. string labels) as fixed-width arrays for npz."""
    arr = np.asarray(value)
    if arr.dtype == object:
        arr = np.asarray(arr.tolist())
    return arr


# --------------------------------------------------------- estimator <-> message
def _blank_estimator(message):
    try:
        cls = _ESTIMATORS[message.estimator]
    except KeyError:
        raise ValueError(f"unknown estimator {message.estimator!r} in the message.") from None
    return cls(**message.params)


def _estimator_from_message(message):
    """An estimator holding the message's posterior (not finalized: no fitted attributes).

    ``_initialize`` sets every per-fit attribute of the engine; the message then
    overwrites the posterior, the counters and the curves.
    """
    est = _blank_estimator(message)
    est._rng = np.random.default_rng(
        check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    n_outputs = message.state.layers[-1].n_out
    est._initialize(message.n_features, n_outputs, est._rng)
    est._state = message.state.copy()
    est.n_features_in_ = message.n_features
    if message.feature_names is not None:
        est.feature_names_in_ = np.asarray(message.feature_names, dtype=object)
    est.n_iter_ = message.round
    est.t_ = message.n_samples_seen
    est.loss_curve_ = [float(x) for x in message.history.get("loss", [])]
    est.noise_variance_curve_ = [float(x) for x in message.history.get("noise_variance", [])]
    est.density_curve_ = [float(x) for x in message.history.get("density", [])]
    est._best_loss = min(est.loss_curve_, default=np.inf)
    target = message.target
    if "classes" in target:
        est._encode_targets(np.asarray(target["classes"]), first_pass=True)
    else:
        est.y_mean_ = np.atleast_1d(np.asarray(target["y_mean"], dtype=np.float64))
        est.y_scale_ = np.atleast_1d(np.asarray(target["y_scale"], dtype=np.float64))
        est._y_ndim = int(target["y_ndim"])
    return est


def _message_from_estimator(est, n_samples):
    """The global message of an estimator whose posterior is initialized or fitted."""
    if hasattr(est, "classes_"):
        target = {"classes": est.classes_.copy()}
    else:
        target = {"y_mean": est.y_mean_.copy(), "y_scale": est.y_scale_.copy(),
                  "y_ndim": np.asarray(est._y_ndim)}
    history = {"loss": np.asarray(est.loss_curve_, dtype=np.float64),
               "noise_variance": np.asarray(est.noise_variance_curve_, dtype=np.float64),
               "density": np.asarray(est.density_curve_, dtype=np.float64)}
    names = getattr(est, "feature_names_in_", None)
    return GlobalMessage(
        estimator=type(est).__name__, params=est.get_params(deep=False),
        round=int(est.n_iter_), n_samples=int(n_samples), n_features=int(est.n_features_in_),
        state=est._state.copy(), target=target, history=history,
        n_samples_seen=int(est.t_),
        feature_names=None if names is None else np.asarray(names).astype(str))


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
    est = _fresh_estimator(estimator)
    if not (isinstance(n_features, numbers.Integral) and n_features >= 1):
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}.")
    if not (isinstance(n_samples, numbers.Integral) and n_samples >= 1):
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    if isinstance(est, EMTDAMPClassifier):
        if classes is None:
            raise ValueError("classes is required for EMTDAMPClassifier.")
        Y, n_outputs = est._encode_targets(np.asarray(classes), first_pass=True)
    else:
        mean = np.atleast_1d(np.zeros(1) if y_mean is None else np.asarray(y_mean, float))
        scale = np.ones_like(mean) if y_scale is None else np.atleast_1d(
            np.asarray(y_scale, dtype=float))
        if scale.shape != mean.shape or not np.all(scale > 0):
            raise ValueError("y_scale must be positive and have the shape of y_mean.")
        est.y_mean_, est.y_scale_ = mean, scale
        est._y_ndim = 1 if mean.size == 1 else 2
        n_outputs = mean.size
    est._rng = np.random.default_rng(
        check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    est._initialize(int(n_features), n_outputs, est._rng)
    est.n_features_in_ = int(n_features)
    return _message_from_estimator(est, n_samples)


def _fresh_estimator(estimator):
    if type(estimator).__name__ not in _ESTIMATORS:
        raise TypeError("estimator must be an EMTDAMPRegressor or an EMTDAMPClassifier, "
                        f"got {type(estimator).__name__}.")
    est = type(estimator)(**estimator.get_params(deep=False))
    est._validate_params()
    est._hidden_sizes()
    return est


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
    est = _estimator_from_message(message)
    est._finalize()
    return est


# ------------------------------------------------------------ client and server
def _draw_orders(rng, n, n_epochs):
    """The client's minibatch orders, drawn as a centralized epoch draws them."""
    return [rng.permutation(n) for _ in range(n_epochs)]


def _stats_arrays(vstats):
    """The accumulator's attributes as arrays: numbers as 0-d, lists concatenated."""
    out = {}
    for name, value in vars(vstats).items():
        if isinstance(value, list):
            out[name] = np.concatenate(value) if value else np.empty(0)
        else:
            out[name] = np.asarray(value)
    return out


def _merge_stats(likelihood, stats):
    """Pool the clients' output statistics into one accumulator of the core.

    Numbers are summed and lists concatenated in client order, so with one client the
    accumulator holds exactly what a centralized epoch would.
    """
    vstats = VSTATS[likelihood]()
    for name, default in vars(vstats).items():
        values = [s[name] for s in stats]
        if isinstance(default, list):
            setattr(vstats, name, [np.concatenate(values)])
        else:
            total = values[0]
            for value in values[1:]:
                total = total + value
            setattr(vstats, name, type(default)(total))
    return vstats


def _local_update(message, X, Y, orders, client=None):
    """TDAMP from the global posterior over one client's data (encoded targets).

    ``orders`` holds one permutation of the rows per local epoch (None keeps the data
    order). Untempered, the client forgets at the global rate: ``run_epoch`` uses
    ``lam = 1 - B / (memory n)`` with ``n = N_k``, so ``memory = E * (N / N_k)`` gives
    ``1 - B / (E N)``; with ``N_k = N`` the factor ``N / N_k`` is exactly 1. The
    client's evidence is multiplied by ``s = (N / N_k) ** client_likelihood_power`` and its
    memory divided by ``s``, which keeps ``E`` epochs of evidence in the average. The
    initialization pseudo-evidence ``(H0, G0)`` decays at the client's own rate
    ``1 - B / (E N_k)``: like a centralized epoch, a local pass over the data multiplies it
    by about ``exp(-1 / E)`` (doc/algorithm.rst, "Federated learning").
    """
    est = _blank_estimator(message)
    cfg = est._turbo_config(first_pass=message.round == 0)
    state = message.state.copy()
    n = X.shape[0]
    batch_size = min(est.batch_size, n)
    # Tempered likelihood: evidence times s = (N / N_k)^gamma, forgetting s times faster.
    cfg.evidence_scale = (message.n_samples / n) ** est.client_likelihood_power
    memory = est.pasp_memory * (message.n_samples / n) / cfg.evidence_scale
    init_memory = est.pasp_memory  # the pseudo-evidence decays per pass over local data
    decay = [forgetting_factor(min(batch_size, n - start), n, init_memory)
             for start in range(0, n, batch_size)] * est.local_epochs
    for epoch in range(est.local_epochs):
        vstats = VSTATS[est._likelihood]()
        Xe, Ye = (X, Y) if orders is None else (X[orders[epoch]], Y[orders[epoch]])
        with np.errstate(over="ignore", invalid="ignore"):
            loss = run_epoch(Xe, Ye, state, cfg, batch_size, memory, None, vstats,
                             init_memory=init_memory)
        if not (np.isfinite(loss) and state.is_finite()):
            raise FloatingPointError(
                f"the local posterior became non-finite in local epoch {epoch + 1}")
    layers = [{f.name: getattr(la, f.name) for f in dataclasses.fields(LayerState)
               if f.name not in _GLOBAL and isinstance(getattr(la, f.name), np.ndarray)}
              for la in state.layers]
    decay = np.asarray(decay)
    if all(np.array_equal(_decayed(getattr(old, name), decay), arrays[name])
           for old, arrays in zip(message.state.layers, layers) for name in _INIT
           if name in arrays):
        layers = [{k: v for k, v in arrays.items() if k not in _INIT} for arrays in layers]
    else:  # the core decays the pseudo-evidence otherwise: send it
        decay = None
    return LocalMessage(client=client, round=message.round, n_samples=n, layers=layers,
                        output_stats=_stats_arrays(vstats), loss=float(loss),
                        init_decay=decay)


_INIT = ("H0", "G0")
_GLOBAL = ("keep", "mu")  # set by the server only: not sent back by the clients


def _decayed(array, decay):
    """``array`` multiplied by each factor in turn, as the PasP updates of the core do."""
    if array is None:
        return None
    for lam in decay:
        array = lam * array
    return array


def _local_arrays(message, local, l):
    """Layer ``l`` of a local message, the pseudo-evidence recomputed when left out."""
    arrays = dict(local.layers[l])
    if local.init_decay is not None:
        old = message.state.layers[l]
        for name in _INIT:
            if getattr(old, name) is not None:
                arrays[name] = _decayed(getattr(old, name), local.init_decay)
    return arrays


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
    est = _estimator_from_message(message)
    X, y = est._validate_xy(X, y, reset=False)
    Y, _ = est._encode_targets(y, first_pass=False)
    orders = None
    if est.shuffle:
        rng = np.random.default_rng(
            check_random_state(random_state).randint(np.iinfo(np.int32).max))
        orders = _draw_orders(rng, X.shape[0], est.local_epochs)
    return _local_update(message, X, Y, orders, client)


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
    est = _estimator_from_message(message)
    X = centering_rows(validate_data(est, X, reset=False, dtype=np.float64))
    return X.shape[0], layer_input_sums(X, message.state.layers, est.activation, layer)


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
    client_sums = list(client_sums)
    if not client_sums:
        raise ValueError("client_sums is empty.")
    n_in = message.state.layers[layer].n_in
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
    state = message.state.copy()
    state.layers[layer].mu = total / total_n
    return dataclasses.replace(message, state=state)


def _aggregate(message, local_messages):
    """Weighted average of the local posteriors and pooled output statistics.

    Returns the new state (hyperparameters still those of ``message``), the pooled
    noise-variance accumulator, the weighted loss and the number of samples processed.
    """
    n = np.array([lm.n_samples for lm in local_messages], dtype=np.float64)
    weights = n / n.sum()  # exactly 1.0 for a single client

    def average(arrays):
        total = weights[0] * arrays[0]
        for a_k, x in zip(weights[1:], arrays[1:]):
            total = total + a_k * x
        return total

    layers = []
    for l, la in enumerate(message.state.layers):
        local = [_local_arrays(message, lm, l) for lm in local_messages]
        arrays = {name: average([a[name] for a in local]) for name in local[0]}
        keep = None if la.keep is None else la.keep.copy()
        layers.append(dataclasses.replace(la, keep=keep, **arrays))
    state = dataclasses.replace(message.state, layers=layers)
    likelihood = _ESTIMATORS[message.estimator]._likelihood
    vstats = _merge_stats(likelihood, [lm.output_stats for lm in local_messages])
    loss = float(average([lm.loss for lm in local_messages]))
    local_epochs = message.params.get("local_epochs", 1)
    return state, vstats, loss, int(n.sum()) * local_epochs


def _server_update(est, state, vstats, loss, n_seen):
    """Install the aggregated posterior in ``est`` and run the M-step, as after an epoch."""
    if not (np.isfinite(loss) and state.is_finite()):
        raise FloatingPointError(f"round {est.n_iter_ + 1}")
    est._state = state
    est.n_iter_ += 1
    est.t_ += n_seen
    est._m_step(vstats)
    est._record_epoch(loss)


def _check_local_messages(message, local_messages):
    if len(local_messages) == 0:
        raise ValueError("server_step needs at least one local message.")
    for lm in local_messages:
        if lm.round != message.round:
            raise ValueError(f"local message of client {lm.client!r} answers round "
                             f"{lm.round}, the global message is at round {message.round}.")
        if len(lm.layers) != len(message.state.layers) or any(
                arrays["m"].shape != la.m.shape
                for arrays, la in zip(lm.layers, message.state.layers)):
            raise ValueError(f"local message of client {lm.client!r} does not match the "
                             "architecture of the global message.")


def server_step(message, local_messages):
    """The server's work in a round: aggregate the local posteriors, then the M-step.

    Parameters
    ----------
    message : GlobalMessage
        The global message the clients answered.
    local_messages : sequence of LocalMessage
        The clients' answers (any subset of the clients: weights are ``N_k`` over the
        sum of the received ``N_k``).

    Returns
    -------
    message : GlobalMessage
        The next round's broadcast, ``round`` incremented.

    Notes
    -----
    Each posterior array is averaged with weights ``a_k = N_k / sum N_k`` (for the
    evidence ``(Hp, Gp)``: the weighted geometric average of the clients' posteriors in
    natural parameters); the output statistics are pooled; then the M-step of the
    estimator updates ``v``, ``rho`` (after the warm-up rounds), the target-density masks
    and the slab variances. See the module docstring and ALGORITHM.md section 8.
    Examples are in :func:`client_step`.
    """
    _check_local_messages(message, local_messages)
    est = _estimator_from_message(message)
    state, vstats, loss, n_seen = _aggregate(message, local_messages)
    _server_update(est, state, vstats, loss, n_seen)
    return _message_from_estimator(est, message.n_samples)


# -------------------------------------------------------------- simulation (fit)
class _ClientFailure:
    """A client's exception, returned (not raised) through joblib."""

    def __init__(self, client, error, text):
        self.client, self.error, self.text = client, error, text


def _guarded_update(message, X, Y, orders, client):
    try:
        return _local_update(message, X, Y, orders, client)
    except Exception as exc:  # reported by the server loop, which names the client
        return _ClientFailure(client, exc, traceback.format_exc())


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


def _collect(results, policy, round_):
    """The local messages of a round; raise or warn for the failed clients."""
    failures = [r for r in results if isinstance(r, _ClientFailure)]
    local = [r for r in results if not isinstance(r, _ClientFailure)]
    for failure in failures:
        text = (f"client {failure.client!r} failed in round {round_ + 1}: "
                f"{type(failure.error).__name__}: {failure.error}")
        if policy == "raise" or not local:
            prefix = "" if policy == "raise" else "every client failed; "
            raise ClientError(prefix + text, client=failure.client,
                              client_traceback=failure.text) from failure.error
        warnings.warn(text + " (skipped for this round)", ClientSkippedWarning,
                      stacklevel=4)
    return local


def _fit_federated(est, X, Y, client_ids):
    """Simulated federated fit: ``max_iter`` rounds over the clients of ``client_ids``.

    The seeds (here, the clients' minibatch orders) are drawn from the estimator's
    generator before dispatch, in client order, so the result is the same for every
    ``n_jobs`` and joblib backend. Called by ``_BaseEMTDAMP._fit`` after the posterior is
    initialized and the targets encoded; fit restores the estimator if this raises.
    """
    labels, inverse = np.unique(client_ids, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(labels.size)]
    est._average = None  # the fitted model is the last server posterior
    message = _message_from_estimator(est, X.shape[0])
    while message.pending_shift is not None:  # centering: pool the shifts first
        sums = Parallel(n_jobs=est.n_jobs)(
            delayed(client_shift_sums)(message, X[idx]) for idx in members)
        message = server_shift_step(message, sums)
    est._state = message.state
    for _ in range(est.max_iter):
        message = _message_from_estimator(est, X.shape[0])
        orders = [_draw_orders(est._rng, idx.size, est.local_epochs) if est.shuffle
                  else None for idx in members]
        results = Parallel(n_jobs=est.n_jobs)(
            delayed(_guarded_update)(message, X[idx], Y[idx], order, label)
            for idx, order, label in zip(members, orders, labels.tolist()))
        local = _collect(results, est.on_client_error, message.round)
        state, vstats, loss, n_seen = _aggregate(message, local)
        _server_update(est, state, vstats, loss, n_seen)
        if est._converged(loss):
            return
    warnings.warn(
        f"EM-TDAMP: maximum iterations ({est.max_iter}) reached and the training "
        "objective has not converged yet.", ConvergenceWarning, stacklevel=4)


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
