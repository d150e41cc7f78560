"""The federated messages, and one codec between dataclasses and flat dicts of arrays.

A :class:`GlobalMessage` is a fitted (or freshly initialized) model as the server
broadcasts it: the posterior state, the resolved settings, the target encoding and the
history; a :class:`LocalMessage` is a client's answer. Both encode to a flat dictionary of
NumPy arrays (``to_dict``, ``np.savez``-able, no pickle) by the generic codec
:func:`encode` / :func:`decode`, which walks the dataclass fields by their annotations.
The estimators read and write global messages (``get_posterior``, ``from_posterior``);
``sk_tdamp.federated`` builds the protocol on them.
"""

import copy as _copy
import json
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass

import numpy as np

from ._core._likelihoods import LIKELIHOODS, GaussianVStats, ProbitVStats
from ._core._pasp import PosteriorAverage
from ._core._state import NetworkState
from ._engine import Chain, ClientUpdate, LocalLayer
from ._settings import Settings
from ._targets import target_from_arrays

_FORMAT = 2  # version of the flat (npz) encoding
# classes with their own array form (to_arrays / from_arrays): every likelihood's
# output statistics, and the posterior average
_ARRAY_CLASSES = {cls.__name__: cls for cls in (
    *(lik.stats for lik in LIKELIHOODS.values()), PosteriorAverage)}


# ------------------------------------------------------------------- the codec
def _pack(out, key, value, compact):
    """Store ``value`` under ``key``; ``compact`` drops all-zero columns of 2-D arrays."""
    arr = np.asarray(value)
    if arr.dtype == object:  # e.g. string labels: fixed-width for npz
        arr = np.asarray(arr.tolist())
    if compact and arr.ndim == 2:
        cols = np.flatnonzero(np.any(arr != 0, axis=0))
        if cols.size < arr.shape[1]:
            out[key] = np.ascontiguousarray(arr[:, cols])
            out[key + ".columns"] = cols.astype(np.int32)
            out[key + ".n_columns"] = np.asarray(arr.shape[1])
            return
    out[key] = arr


def _unpack(data, key):
    """Inverse of :func:`_pack`: the array, or None when absent."""
    if key not in data:
        return None
    arr = np.asarray(data[key])
    if key + ".columns" in data:
        full = np.zeros((arr.shape[0], int(data[key + ".n_columns"])), dtype=arr.dtype)
        full[:, np.asarray(data[key + ".columns"])] = arr
        return full
    return arr


def _hints(cls):
    return typing.get_type_hints(cls)


def _strip_optional(tp):
    """``X | None`` -> ``X``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def encode(obj, prefix="", out=None, compact=False):
    """Flat ``{key: ndarray}`` of a dataclass: nested dataclasses and lists of them by
    dotted keys, ``dict`` fields by ``name.key``, :class:`Settings` and ``dict`` of
    plain values as JSON, None fields left out."""
    out = {} if out is None else out
    hints = _hints(type(obj))
    for f in fields(obj):
        value, key, tp = getattr(obj, f.name), prefix + f.name, _strip_optional(hints[f.name])
        if value is None:
            continue
        if tp is Settings or (tp is dict and f.metadata.get("json")):
            out[key] = np.asarray(value.to_json() if tp is Settings else json.dumps(value))
        elif hasattr(value, "to_arrays"):  # a class with its own array form
            out[key + ".type"] = np.asarray(type(value).__name__)
            for name, item in value.to_arrays().items():
                _pack(out, f"{key}.{name}", item, False)
        elif is_dataclass(value):
            out[key + ".type"] = np.asarray(type(value).__name__)
            encode(value, key + ".", out, compact)
        elif isinstance(value, list) and typing.get_args(tp):
            out[key + ".n"] = np.asarray(len(value))
            for i, item in enumerate(value):
                encode(item, f"{key}.{i}.", out, compact)
        elif isinstance(value, dict):
            for name, item in value.items():
                _pack(out, f"{key}.{name}", item, False)
        else:
            _pack(out, key, value, compact)
    return out


def decode(cls, data, prefix=""):
    """Inverse of :func:`encode`: an instance of ``cls`` from the flat dict ``data``."""
    hints, kwargs = _hints(cls), {}
    for f in fields(cls):
        key, tp = prefix + f.name, _strip_optional(hints[f.name])
        if tp is Settings or (tp is dict and f.metadata.get("json")):
            if key in data:
                text = str(np.asarray(data[key]))
                kwargs[f.name] = Settings.from_json(text) if tp is Settings else json.loads(text)
        elif key + ".type" in data:
            name = str(np.asarray(data[key + ".type"]))
            if name in _ARRAY_CLASSES:
                head = key + "."
                kwargs[f.name] = _ARRAY_CLASSES[name].from_arrays(
                    {k[len(head):]: np.asarray(data[k]) for k in data
                     if k.startswith(head) and k != key + ".type"})
            else:
                kwargs[f.name] = decode(tp, data, key + ".")
        elif key + ".n" in data:
            item = typing.get_args(tp)[0]
            kwargs[f.name] = [decode(item, data, f"{key}.{i}.")
                              for i in range(int(np.asarray(data[key + ".n"])))]
        elif tp is dict:
            head = key + "."
            kwargs[f.name] = {k[len(head):]: np.asarray(data[k]) for k in data
                              if k.startswith(head)}
        elif key in data:
            value = _unpack(data, key)
            kwargs[f.name] = tp(value.item()) if tp in (int, float, str, bool) else (
                value.item() if tp is object and value.ndim == 0 else value)
        elif f.default is MISSING and f.default_factory is MISSING:
            kwargs[f.name] = None  # a required field that was None when encoded
    return cls(**kwargs)


class _Message:
    """Shared encoding of the two message types: flat dict of arrays, npz, nbytes."""

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
        out = {"kind": np.asarray(type(self).__name__), "format": np.asarray(_FORMAT)}
        return encode(self, out=out, compact=compact)

    @classmethod
    def from_dict(cls, data):
        """Rebuild a message from :meth:`to_dict` output.

        Parameters
        ----------
        data : mapping of str to array-like

        Returns
        -------
        message : instance of the class
        """
        kind = str(np.asarray(data.get("kind", "")))
        if kind != cls.__name__:
            raise ValueError(f"expected a {cls.__name__} encoding, got {kind!r}.")
        version = int(np.asarray(data["format"]))
        if version != _FORMAT:
            raise ValueError(f"unsupported message format {version} (this version reads "
                             f"format {_FORMAT}).")
        return decode(cls, data)

    @property
    def nbytes(self):
        """Size in bytes of the arrays the message sends (its :meth:`to_dict` encoding)."""
        return int(sum(a.nbytes for a in self.to_dict().values()))

    def compact_nbytes(self):
        """Size in bytes of the compact encoding (``to_dict(compact=True)``)."""
        return int(sum(a.nbytes for a in self.to_dict(compact=True).values()))

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


# ---------------------------------------------------------------- the messages
@dataclass
class GlobalMessage(_Message):
    """A model as the server broadcasts it at the start of a round.

    Attributes
    ----------
    estimator : str
        ``"EMTDAMPRegressor"`` or ``"EMTDAMPClassifier"``.
    params : dict
        The template estimator's parameters (``get_params``; stored as JSON, where a
        ``random_state`` that is not an integer becomes None). Only
        :func:`~sk_tdamp.federated.to_estimator` reads them, to rebuild the estimator;
        clients and server work from ``settings``.
    settings : Settings
        Every setting of the fit, resolved (the estimator's ``settings_``).
    round : int
        Number of completed rounds (epochs of a centralized fit).
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
        the layer is ``grouped``, the initialization pseudo-evidence ``H0, G0`` (or
        None) and the input shift ``mu`` (or None); plus the noise variance ``state.v``
        and the bias prior ``state.bias_var``.
    target : dict of ndarray
        Target encoding shared by all clients: ``{"classes"}`` for the classifier;
        ``{"y_mean", "y_scale", "y_ndim"}`` for the regressor (y is standardized).
    history : dict of ndarray
        Per completed round: ``"loss"`` (weighted mean of the clients' prequential
        losses), ``"noise_variance"`` and ``"density"`` (fraction of hidden neurons kept).
    n_samples_seen : int
        Training samples processed so far (``t_`` of the estimator).
    feature_names : ndarray of str or None
        Names of the input features, when the model was fitted on a DataFrame.
    average : PosteriorAverage or None
        The moving average of the posteriors that a centralized fit reads its model from
        (``posterior_average``); None in a federation, whose model is the last server
        posterior.
    """

    estimator: str
    params: dict = field(metadata={"json": True})
    settings: Settings
    round: int
    n_samples: int
    n_features: int
    state: NetworkState
    target: dict
    history: dict = field(default_factory=dict)
    n_samples_seen: int = 0
    feature_names: np.ndarray | None = None
    average: PosteriorAverage | None = None

    def to_chain(self, rng=None, copy=True):
        """The :class:`~sk_tdamp._engine.Chain` this message holds (state copied unless
        ``copy=False``)."""
        target = target_from_arrays(self.target)
        history = {k: [float(x) for x in np.atleast_1d(self.history.get(k, []))]
                   for k in ("loss", "noise_variance", "density")}
        average = self.average
        return Chain(state=self.state.copy() if copy else self.state, rng=rng,
                     average=_copy.deepcopy(average) if copy else average, n_iter=int(self.round),
                     n_seen=int(self.n_samples_seen), n_data=int(self.n_samples),
                     v_scale=target.v_scale,
                     loss_curve=history["loss"],
                     noise_variance_curve=history["noise_variance"],
                     density_curve=history["density"],
                     best_loss=min(history["loss"], default=np.inf))

    @classmethod
    def from_chain(cls, chain, *, estimator, params, settings, n_samples, n_features,
                   target, feature_names=None, copy=True):
        """The message of a chain (its state copied unless ``copy=False``) and the
        model's metadata."""
        history = {"loss": np.asarray(chain.loss_curve, dtype=np.float64),
                   "noise_variance": np.asarray(chain.noise_variance_curve,
                                                dtype=np.float64),
                   "density": np.asarray(chain.density_curve, dtype=np.float64)}
        return cls(estimator=estimator, params=_portable_params(params), settings=settings,
                   round=int(chain.n_iter), n_samples=int(n_samples),
                   n_features=int(n_features),
                   state=chain.state.copy() if copy else chain.state,
                   target=target.to_arrays(), history=history,
                   n_samples_seen=int(chain.n_seen),
                   feature_names=None if feature_names is None
                   else np.asarray(feature_names).astype(str),
                   average=_copy.deepcopy(chain.average) if copy else chain.average)

    @property
    def pending_shift(self):
        """Index of the layer whose input shift the clients must pool next, or None.

        With centering (the ``centering`` setting, on by default for the classifier),
        every layer's inputs are shifted by their mean over the pooled training data
        before the first round (doc/algorithm.rst, "Centered layer inputs"). The means
        are pooled one layer at a time, since each depends on the shifts of the layers
        before it: :func:`~sk_tdamp.federated.client_shift_sums` on every client, then
        :func:`~sk_tdamp.federated.server_shift_step`, until this is None.
        """
        if not self.settings.centering:
            return None
        return next((l for l, la in enumerate(self.state.layers) if la.mu is None), None)


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
    layers : list of LocalLayer
        The client's posterior, per layer: the arrays its E-step updates, ``m, c``
        (posterior means and variances), ``Hp, Gp`` (its posterior-as-prior evidence),
        ``Lam`` (support log-odds per group), and ``init_scale``, the decay of the
        initialization pseudo-evidence (whose arrays the server holds).
    output_stats : GaussianVStats or ProbitVStats
        Statistics of the noise-variance M-step over the client's last local epoch: for
        the Gaussian likelihood the sums of ``(y - zhat)^2 + Var z`` and their count,
        for the probit-product the pairwise margins ``dm, dv``.
    loss : float
        Mean prequential negative log-likelihood over the client's last local epoch.
    """

    client: object
    round: int
    n_samples: int
    layers: list[LocalLayer]
    output_stats: GaussianVStats | ProbitVStats
    loss: float

    @classmethod
    def from_update(cls, update, message, client=None):
        """The message of a client's update in answer to ``message``."""
        return cls(client=client, round=message.round, n_samples=update.n_samples,
                   layers=update.layers, output_stats=update.stats, loss=update.loss)

    def to_update(self):
        """The :class:`~sk_tdamp._engine.ClientUpdate` of this message."""
        return ClientUpdate(self.layers, self.output_stats, float(self.loss),
                            int(self.n_samples))


def _portable_params(params):
    """Parameters as JSON can hold them (a RandomState instance becomes None)."""
    def portable(value):
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, str | int | float | bool | list | tuple | type(None)):
            return value
        return None
    return {key: portable(value) for key, value in params.items()}
