"""Bayesian federated learning with EM-TDAMP on Flower (``pip install "sk-tdamp[flower]"``).

`Flower <https://flower.ai>`_ runs federated learning across real machines: a SuperLink
relays messages between a ``ServerApp`` and the ``ClientApp`` of every SuperNode. This
module plugs the protocol of :mod:`sk_tdamp.federated` into Flower's Message API:

- :class:`EMTDAMPStrategy`, a ``flwr.serverapp.strategy.Strategy`` that broadcasts the
  global posterior (the arrays of :meth:`GlobalMessage.to_dict
  <sk_tdamp.federated.GlobalMessage.to_dict>`, settings included) and aggregates the
  clients' replies with :func:`~sk_tdamp.federated.server_step`: the weighted geometric
  average of the local posteriors (weights ``N_k / N``), pooled output statistics, module
  B and the M-step on the server. Averaging these arrays the FedAvg way would be wrong:
  they are natural parameters and sufficient statistics, not weights.
- :func:`make_client_app`, a ``flwr.clientapp.ClientApp`` around a client's local
  ``(X, y)`` that runs :func:`~sk_tdamp.federated.client_step` from the received
  posterior and replies with its :class:`~sk_tdamp.federated.LocalMessage` and sample
  count.
- :func:`make_server_app` and :func:`simulate`: a ``ServerApp`` running the strategy, and
  Flower's simulation runtime (Ray) on one machine.
- :func:`to_arrays` and :func:`from_arrays`: a :class:`~sk_tdamp.federated.GlobalMessage`
  as a Flower ``ArrayRecord`` and back.

Before the first round the strategy runs two short exchanges (``query`` messages):
a census, in which every client reports its number of samples and features and either
its class labels (classifier) or the mean and the sum of squared deviations of its
targets (regressor), from which the server builds the round-0 global message with
:func:`~sk_tdamp.federated.initial_message`; then, with centered layer inputs (the
classifier's default), one exchange per layer of :func:`~sk_tdamp.federated.client_shift_sums`
and :func:`~sk_tdamp.federated.server_shift_step`. Starting the strategy from a
:class:`~sk_tdamp.federated.GlobalMessage` instead of an estimator skips the census.

Failures. A client that raises, or whose reply does not arrive within the round's
``timeout``, is dropped from the round with a logged warning and a
:class:`~sk_tdamp.federated.ClientSkippedWarning` (``on_client_error="skip"``); a reply
that does not decode, answers another round, has arrays of the wrong shapes or holds
non-finite values (NaN anywhere; infinities anywhere but in the support log-odds
``Lam``, where they mean a support the evidence made certain) is rejected with an error
naming the node and never aggregated. Each failure is recorded in
:attr:`EMTDAMPStrategy.failures_`. With ``on_client_error="raise"`` the first failure
raises :class:`~sk_tdamp.federated.ClientError`.

The simulation with ``K`` clients gives the same global model as
``fit(X, y, client_ids=...)`` on the same partition when the clients' minibatch orders
agree (``shuffle=False``; with shuffling, ``fit`` draws the orders from the estimator's
generator and the Flower clients from the seeds the strategy sends, so the two runs are
equivalent in distribution, not equal).
"""

import logging
import numbers
import time
import warnings
import zlib

import numpy as np
from sklearn.metrics import accuracy_score, log_loss
from sklearn.utils import check_random_state

try:
    from flwr.app import (
        Array,
        ArrayRecord,
        ConfigRecord,
        Message,
        MessageType,
        MetricRecord,
        RecordDict,
    )
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import Strategy
except ImportError as exc:  # the optional extra is not installed
    raise ImportError(
        "sk_tdamp.federated.flower needs Flower (flwr >= 1.42); install the extra with "
        'pip install "sk-tdamp[flower]"') from exc

from .._estimators import EMTDAMPClassifier, EMTDAMPRegressor
from . import (
    ClientError,
    ClientSkippedWarning,
    GlobalMessage,
    LocalMessage,
    check_local_message,
    client_shift_sums,
    client_step,
    initial_message,
    server_shift_step,
    server_step,
    to_estimator,
)

__all__ = [
    "EMTDAMPStrategy",
    "client_seed",
    "from_arrays",
    "make_client_app",
    "make_server_app",
    "simulate",
    "to_arrays",
]

logger = logging.getLogger("flwr")  # Flower's logger: its console handler shows these

# Message types: the census and the shift exchange are custom query actions.
CENSUS = f"{MessageType.QUERY}.sk_tdamp_census"
SHIFT = f"{MessageType.QUERY}.sk_tdamp_shift"
_ON_ERROR = ("skip", "raise")


# ---------------------------------------------------------------- array records
def to_arrays(message, compact=True):
    """A message as a Flower ``ArrayRecord`` (one array per :meth:`to_dict` entry).

    Parameters
    ----------
    message : GlobalMessage or LocalMessage
        The message to send.
    compact : bool, default=True
        Leave out the all-zero columns of pruned groups (lossless, see
        :meth:`GlobalMessage.to_dict <sk_tdamp.federated.GlobalMessage.to_dict>`).

    Returns
    -------
    arrays : flwr.app.ArrayRecord

    Examples
    --------
    >>> from sk_tdamp import EMTDAMPRegressor
    >>> from sk_tdamp.federated import initial_message
    >>> from sk_tdamp.federated.flower import from_arrays, to_arrays
    >>> msg = initial_message(EMTDAMPRegressor(hidden_layer_sizes=(4,), random_state=0),
    ...                       n_features=3, n_samples=50)
    >>> back = from_arrays(to_arrays(msg))
    >>> back.round, back.n_samples, back.state.layers[0].m.shape
    (0, 50, (4, 4))
    """
    return ArrayRecord({key: Array(np.asarray(value, order="C"))
                        for key, value in message.to_dict(compact=compact).items()})


def _flat(arrays):
    return {key: array.numpy() for key, array in arrays.items()}


def from_arrays(arrays, kind=GlobalMessage):
    """Decode an ``ArrayRecord`` written by :func:`to_arrays`.

    Parameters
    ----------
    arrays : flwr.app.ArrayRecord
        For example ``result.arrays`` after :meth:`EMTDAMPStrategy.start`.
    kind : {GlobalMessage, LocalMessage}, default=GlobalMessage
        The message class to rebuild.

    Returns
    -------
    message : GlobalMessage or LocalMessage
        Pass a global message to :func:`~sk_tdamp.federated.to_estimator` for a fitted
        estimator. Examples are in :func:`to_arrays`.
    """
    if len(arrays) == 0:
        raise ValueError("The ArrayRecord is empty: it holds no sk_tdamp message.")
    return kind.from_dict(_flat(arrays))


# ------------------------------------------------------------------------ client
def _client_data(data, context):
    X, y = data(context) if callable(data) else data
    return X, y


def _client_name(client, context):
    if client is None:
        return context.node_config.get("partition-id", context.node_id)
    return client(context) if callable(client) else client


def client_seed(seed, client):
    """The seed of a client's minibatch orders in a round of :class:`EMTDAMPStrategy`.

    The strategy sends one seed per round; each ClientApp of :func:`make_client_app`
    mixes it with its identifier and passes the result to
    :func:`~sk_tdamp.federated.client_step` as ``random_state``, so every client shuffles
    differently and a run depends on no node id. With the seeds of
    ``strategy.history_``, the deployment primitives replay a Flower run exactly.

    Parameters
    ----------
    seed : int or None
        The round's seed (``config["seed"]``); None gives None (fresh randomness).
    client : object
        The client's identifier (its ``client`` in the replies).

    Returns
    -------
    random_state : int or None
        In ``[0, 2**31)``.

    Examples
    --------
    >>> from sk_tdamp.federated.flower import client_seed
    >>> client_seed(7, 0) == client_seed(7, 0) != client_seed(7, 1)
    True
    """
    if seed is None:
        return None
    entropy = [int(seed), zlib.crc32(repr(client).encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def _reply(message, arrays=None, metrics=None):
    content = RecordDict()
    if arrays is not None:
        content["arrays"] = arrays
    if metrics is not None:
        content["metrics"] = MetricRecord(metrics)
    return Message(content=content, reply_to=message)


def _census_arrays(estimator, X, y, name):
    """A client's census: sample and feature counts, its labels or target moments."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}.")
    y = np.asarray(y)
    out = {"n_samples": np.asarray(X.shape[0]), "n_features": np.asarray(X.shape[1]),
           "client": np.asarray(_portable(name))}
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}.")
    if estimator == "EMTDAMPClassifier":
        out["classes"] = _portable(np.unique(y))
    else:
        Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
        mean = Y.mean(axis=0)
        out.update(y_mean=mean, y_m2=((Y - mean) ** 2).sum(axis=0),
                   y_ndim=np.asarray(y.ndim))
    return ArrayRecord({key: Array(np.asarray(v, order="C")) for key, v in out.items()})


def _portable(value):
    """Labels as a NumPy array that ``np.save`` writes without pickling."""
    arr = np.asarray(value)
    return np.asarray(arr.tolist()) if arr.dtype == object else arr


def _evaluate_metrics(message, X, y):
    """Metrics of the global posterior on one client's evaluation data."""
    est = to_estimator(message)
    n = int(np.asarray(X).shape[0])
    if isinstance(est, EMTDAMPClassifier):
        proba = est.predict_proba(X)
        accuracy = accuracy_score(y, est.classes_[proba.argmax(axis=1)])
        loss = log_loss(y, proba, labels=est.classes_)
        return {"num-examples": n, "accuracy": float(accuracy), "loss": float(loss)}
    mean, std = est.predict(X, return_std=True)
    resid = np.asarray(y, dtype=np.float64).reshape(mean.shape) - mean
    mse = float(np.mean(resid ** 2))
    nll = 0.5 * (np.log(2 * np.pi * std ** 2) + (resid / std) ** 2)
    return {"num-examples": n, "mse": mse, "loss": float(np.mean(nll))}


def make_client_app(data, *, evaluate_data=None, client=None, mods=None):
    """A Flower ``ClientApp`` that trains EM-TDAMP on one client's local data.

    Parameters
    ----------
    data : tuple (X, y) or callable
        The client's training data, preprocessed as the federation agreed, or a
        function ``data(context) -> (X, y)`` of the Flower ``Context`` (in a simulation
        every virtual SuperNode runs the same ClientApp: select the partition from
        ``context.node_config["partition-id"]``; in a deployment read the node's own
        files, e.g. from a path in ``context.node_config``). Called for each message.
    evaluate_data : tuple (X, y) or callable, default=None
        The client's evaluation data, same forms; None evaluates on ``data``.
    client : object or callable, default=None
        The client's identifier in its replies, or ``client(context)``; default
        ``context.node_config["partition-id"]`` when the node has one, else the node
        id. The server aggregates the replies in the order of these identifiers, so
        with the partition ids ``0 .. K-1`` a simulation adds in the order of
        ``fit(X, y, client_ids=...)`` with the same ids.
    mods : list of callable, default=None
        Flower mods wrapped around every handler (``ClientApp(mods=...)``).

    Returns
    -------
    app : flwr.clientapp.ClientApp
        Handles ``train`` (:func:`~sk_tdamp.federated.client_step` from the received
        posterior, its minibatch orders seeded by the round's ``config["seed"]`` and
        the client's identifier; replies with the local
        message and ``num-examples``), ``evaluate`` (accuracy or mean squared error and
        the mean negative log predictive density of the global posterior) and the
        census and input-shift queries of :class:`EMTDAMPStrategy`.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_tdamp.federated.flower import make_client_app
    >>> X, y = np.zeros((10, 3)), np.arange(10) % 2
    >>> app = make_client_app((X, y))
    >>> type(app).__name__
    'ClientApp'
    """
    app = ClientApp(mods=mods)

    @app.train()
    def train(message, context):
        glob = from_arrays(message.content["arrays"])
        config = message.content["config"] if "config" in message.content else {}
        X, y = _client_data(data, context)
        name = _client_name(client, context)
        local = client_step(glob, X, y, random_state=client_seed(config.get("seed"), name),
                            client=name)
        return _reply(message, to_arrays(local),
                      {"num-examples": int(local.n_samples), "loss": float(local.loss)})

    @app.evaluate()
    def evaluate(message, context):
        glob = from_arrays(message.content["arrays"])
        X, y = _client_data(data if evaluate_data is None else evaluate_data, context)
        return _reply(message, metrics=_evaluate_metrics(glob, X, y))

    @app.query("sk_tdamp_census")
    def census(message, context):
        estimator = str(message.content["config"]["estimator"])
        X, y = _client_data(data, context)
        return _reply(message, _census_arrays(estimator, X, y,
                                              _client_name(client, context)))

    @app.query("sk_tdamp_shift")
    def shift(message, context):
        glob = from_arrays(message.content["arrays"])
        X, _ = _client_data(data, context)
        n, sums = client_shift_sums(glob, X)
        return _reply(message, ArrayRecord({"sums": Array(np.asarray(sums))}),
                      {"num-examples": int(n)})

    return app


# ------------------------------------------------------------------------ server
def _finite(name, value):
    """None if ``value`` is a finite numeric array, else the reason it is not."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        return f"{name} is not numeric (dtype {arr.dtype})"
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return f"non-finite values in {name}"
    return None


def _reply_problem(message, local):
    """Why a decoded local message cannot be aggregated into ``message``, or None
    (:func:`~sk_tdamp.federated.check_local_message`)."""
    try:
        check_local_message(message, local)
    except ValueError as exc:
        return str(exc)
    return None


def _sorted_by_client(items):
    """``(client, node_id, payload)`` triples in client order (node order if mixed)."""
    try:
        return sorted(items, key=lambda item: (item[0], item[1]))
    except TypeError:
        return sorted(items, key=lambda item: item[1])


class EMTDAMPStrategy(Strategy):
    """Flower strategy that aggregates EM-TDAMP posteriors (Bayesian federated learning).

    Each round the strategy broadcasts the global posterior and the model settings (the
    arrays of a :class:`~sk_tdamp.federated.GlobalMessage`) and a seed; the
    clients (:func:`make_client_app`) run TDAMP from it on their data and reply with
    their local posteriors, which the server combines with
    :func:`~sk_tdamp.federated.server_step`. Before the first round it runs the census
    and, with centered inputs, the shift exchange (see the module docstring).

    Parameters
    ----------
    estimator : EMTDAMPRegressor, EMTDAMPClassifier or GlobalMessage
        An unfitted estimator whose hyperparameters (architecture, ``local_epochs``,
        ``random_state`` of the initial weights, ...) the federation uses; the census
        then gives the number of samples, of features and the target encoding. Or a
        global message (e.g. from :func:`~sk_tdamp.federated.initial_message`, or the
        ``global_message_`` of an earlier run to continue it): no census. ``n_init``
        and the stopping rule (``tol``, ``n_iter_no_change``) are not used: the
        strategy runs one initialization for ``num_rounds`` rounds.
    fraction_train : float, default=1.0
        Fraction of the clients sampled for each training round (at least
        ``min_train_nodes``); the server weighs the clients that replied by their
        ``N_k`` over the sum of theirs.
    fraction_evaluate : float, default=0.0
        Fraction of the clients asked to evaluate the global posterior on their
        evaluation data after each round (0 skips the federated evaluation).
    min_train_nodes, min_evaluate_nodes : int, default=2
        Minimum numbers of clients sampled for training and for evaluation.
    min_available_nodes : int, default=2
        Clients that must be connected before the census starts; the census counts
        the clients connected then, and only those clients train (a client that joins
        later has samples the global ``N`` does not count).
    on_client_error : {"skip", "raise"}, default="skip"
        A client that raised, timed out or sent an invalid reply: ``"skip"`` drops it
        from the round (logged warning and :class:`~sk_tdamp.federated.ClientSkippedWarning`;
        a round without any valid reply leaves the global posterior unchanged),
        ``"raise"`` raises :class:`~sk_tdamp.federated.ClientError`.
    random_state : int, RandomState instance or None, default=None
        Source of the round's seed (drawn by the server before each round; each client
        seeds its minibatch orders with it and its identifier, so a run is
        reproducible whatever node ids Flower assigns) and of the sampling of clients
        (in the order of their identifiers when the census gave them).

    Attributes
    ----------
    initial_message_ : GlobalMessage
        The round-0 message after the census and the input shifts: starting another
        run from it (``EMTDAMPStrategy(strategy.initial_message_)``) repeats this one
        without the census.
    global_message_ : GlobalMessage
        The latest global posterior (after the last aggregated round);
        ``to_estimator(strategy.global_message_)`` is the fitted model.
    history_ : list of dict
        Per training round: ``"server_round"``, ``"round"`` (rounds aggregated so far),
        ``"loss"``, ``"noise_variance"``, ``"density"`` (of the global message's
        history), ``"num_replies"``, ``"num_failures"``, ``"download_bytes"`` and
        ``"upload_bytes"`` (the encoded arrays sent to and received from the clients),
        ``"seed"`` (the round's seed; client ``k`` shuffled with
        ``random_state=client_seed(seed, k)``) and
        ``"wall_time"`` (seconds from sending to aggregating). The same values,
        dashes for underscores, are the round's Flower ``MetricRecord``.
    failures_ : list of dict
        Per dropped client: ``"server_round"`` (0 before the first round),
        ``"stage"`` (``"census"``, ``"shift"``, ``"train"`` or ``"evaluate"``),
        ``"node_id"``, ``"client"`` (when known) and ``"reason"``.
    clients_ : dict
        Node id -> client identifier and number of samples, from the census.
    result_ : flwr.serverapp.strategy.Result
        What the last :meth:`start` returned.

    See Also
    --------
    sk_tdamp.federated.server_step : The aggregation this strategy runs.
    make_client_app : The matching ClientApp.

    Notes
    -----
    Server step (doc/user_guide/federated.rst): with the replies of the clients
    :math:`k \\in S`, :math:`H_p = \\sum_{k \\in S} a_k H_{p,k}`,
    :math:`G_p = \\sum_{k \\in S} a_k G_{p,k}` with :math:`a_k = N_k / \\sum_{j \\in S} N_j`,
    the output statistics pooled, then module B and the M-step. The replies are added
    in the order of the clients' identifiers, so that the sums are those of
    ``fit(client_ids=...)``.

    Examples
    --------
    >>> from sk_tdamp import EMTDAMPClassifier
    >>> from sk_tdamp.federated.flower import EMTDAMPStrategy
    >>> strategy = EMTDAMPStrategy(EMTDAMPClassifier(hidden_layer_sizes=(20,),
    ...                                              shuffle=False, random_state=0))
    >>> strategy.on_client_error
    'skip'
    """

    def __init__(self, estimator, *, fraction_train=1.0, fraction_evaluate=0.0,
                 min_train_nodes=2, min_evaluate_nodes=2, min_available_nodes=2,
                 on_client_error="skip", random_state=None):
        if not isinstance(estimator, EMTDAMPRegressor | EMTDAMPClassifier | GlobalMessage):
            raise TypeError("estimator must be an EMTDAMPRegressor, an EMTDAMPClassifier "
                            f"or a GlobalMessage, got {type(estimator).__name__}.")
        for name, value in (("fraction_train", fraction_train),
                            ("fraction_evaluate", fraction_evaluate)):
            if not (isinstance(value, numbers.Real) and 0 <= value <= 1):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
        if fraction_train == 0:
            raise ValueError("fraction_train must be positive: the strategy trains.")
        for name, value in (("min_train_nodes", min_train_nodes),
                            ("min_evaluate_nodes", min_evaluate_nodes),
                            ("min_available_nodes", min_available_nodes)):
            if not (isinstance(value, numbers.Integral) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if on_client_error not in _ON_ERROR:
            raise ValueError(f"on_client_error must be one of {_ON_ERROR}, got "
                             f"{on_client_error!r}.")
        self.estimator = estimator
        self.fraction_train = fraction_train
        self.fraction_evaluate = fraction_evaluate
        self.min_train_nodes = min_train_nodes
        self.min_evaluate_nodes = min_evaluate_nodes
        self.min_available_nodes = min_available_nodes
        self.on_client_error = on_client_error
        self.random_state = random_state
        self._reset()

    def _reset(self):
        self.history_, self.failures_, self.clients_ = [], [], {}
        self._rng = check_random_state(self.random_state)
        self._members = None  # node ids that train (None: every connected node)
        self._sent = None  # (server round, message, node ids, bytes, seed, start time)
        self._timeout = 3600.0

    # --------------------------------------------------------------- Strategy API
    def summary(self):
        """Log the strategy's configuration (Flower's ``Strategy.summary``)."""
        est = self.estimator
        name = est.estimator if isinstance(est, GlobalMessage) else type(est).__name__
        logger.info("\t├──> Model: %s (%s)", name, "from a global message"
                    if isinstance(est, GlobalMessage) else "census before round 1")
        logger.info("\t├──> Sampling: fraction train %.2f | evaluate %.2f",
                    self.fraction_train, self.fraction_evaluate)
        logger.info("\t├──> Minimum nodes: train %d | evaluate %d | available %d",
                    self.min_train_nodes, self.min_evaluate_nodes,
                    self.min_available_nodes)
        logger.info("\t└──> Failed clients: %s", self.on_client_error)

    def start(self, grid, initial_arrays=None, num_rounds=3, timeout=3600.0,
              train_config=None, evaluate_config=None, evaluate_fn=None):
        """Run the census, the shift exchange and ``num_rounds`` rounds.

        Parameters
        ----------
        grid : flwr.serverapp.Grid
            The Grid of the ServerApp.
        initial_arrays : flwr.app.ArrayRecord, default=None
            A global message as :func:`to_arrays` encodes it; None starts from the
            ``estimator`` parameter.
        num_rounds : int, default=3
            Number of communication rounds.
        timeout : float, default=3600.0
            Seconds to wait for the replies of each exchange; clients that have not
            replied by then are dropped from it.
        train_config, evaluate_config : flwr.app.ConfigRecord, default=None
            Extra entries sent to the clients.
        evaluate_fn : callable, default=None
            ``evaluate_fn(server_round, arrays) -> MetricRecord or None``, centralized
            evaluation (``from_arrays(arrays)`` is the global message), also before the
            first round.

        Returns
        -------
        result : flwr.serverapp.strategy.Result
            Final arrays (``from_arrays(result.arrays)``) and the metrics per round.
        """
        self._reset()
        self._timeout = float(timeout)
        arrays = self.setup(grid, initial_arrays, timeout=timeout)
        self.result_ = super().start(
            grid, arrays, num_rounds=num_rounds, timeout=timeout,
            train_config=train_config, evaluate_config=evaluate_config,
            evaluate_fn=evaluate_fn)
        if len(self.result_.arrays) == 0:  # no round was aggregated
            self.result_.arrays = to_arrays(self.global_message_)
        return self.result_

    def setup(self, grid, arrays=None, *, timeout=None):
        """The global message ready for round 1: census and input shifts as needed.

        :meth:`start` calls it; :meth:`configure_train` calls it when it receives a
        message that is not ready (empty arrays, or an input shift still pending).

        Parameters
        ----------
        grid : flwr.serverapp.Grid
        arrays : flwr.app.ArrayRecord, default=None
            A global message, or None / empty to run the census from ``estimator``.
        timeout : float, default=None
            Seconds to wait for each exchange (default: that of :meth:`start`).

        Returns
        -------
        arrays : flwr.app.ArrayRecord
        """
        timeout = self._timeout if timeout is None else float(timeout)
        if arrays is not None and len(arrays):
            message = from_arrays(arrays)
        elif isinstance(self.estimator, GlobalMessage):
            message = self.estimator
        else:
            message = self._census(grid, timeout)
        while message.pending_shift is not None:
            message = self._shift(grid, message, timeout)
        self.initial_message_ = self.global_message_ = message
        return to_arrays(message)

    def configure_train(self, server_round, arrays, config, grid):
        """Messages of a training round: the global posterior and the round's seed."""
        message = from_arrays(arrays) if len(arrays) else None
        if message is None or message.pending_shift is not None:
            arrays = self.setup(grid, arrays)
            message = self.global_message_
        nodes = self._sample(grid, self.fraction_train, self.min_train_nodes)
        config = ConfigRecord(dict(config))
        config["server-round"] = int(server_round)
        config["seed"] = int(self._rng.randint(np.iinfo(np.int32).max))
        record = RecordDict({"arrays": arrays, "config": config})
        out = [Message(record, dst_node_id=node, message_type=MessageType.TRAIN)
               for node in nodes]
        self._sent = (server_round, message, nodes, _nbytes(arrays), config["seed"],
                      time.perf_counter())
        logger.info("configure_train: round %d (global round %d) sent to %d clients",
                    server_round, message.round, len(nodes))
        return out

    def aggregate_train(self, server_round, replies):
        """Check the replies, drop the failed clients, then :func:`server_step`."""
        sent_round, message, nodes, down, seed, started = self._sent
        if sent_round != server_round:
            raise RuntimeError(f"aggregate_train for round {server_round}, but round "
                               f"{sent_round} was configured.")
        good, up = self._decode_train(server_round, list(replies), nodes, message)
        up_total = sum(up)
        if good:
            new = server_step(message, [local for _, _, local in _sorted_by_client(good)])
            self.global_message_ = new
            arrays = to_arrays(new)
        else:
            logger.warning("aggregate_train: no valid reply in round %d; the global "
                           "posterior is unchanged.", server_round)
            new, arrays = message, None
        record = {"server_round": int(server_round), "round": int(new.round),
                  "loss": _last(new.history, "loss"),
                  "noise_variance": _last(new.history, "noise_variance"),
                  "density": _last(new.history, "density"),
                  "num_replies": len(good), "num_failures": len(nodes) - len(good),
                  "download_bytes": int(down * len(nodes)), "upload_bytes": int(up_total),
                  "seed": int(seed), "wall_time": time.perf_counter() - started}
        self.history_.append(record)
        metrics = MetricRecord({k.replace("_", "-"): v for k, v in record.items()
                                if k != "server_round"})
        return arrays, metrics

    def configure_evaluate(self, server_round, arrays, config, grid):
        """Messages asking clients to evaluate the global posterior (if enabled)."""
        if self.fraction_evaluate == 0:
            return []
        nodes = self._sample(grid, self.fraction_evaluate, self.min_evaluate_nodes)
        config = ConfigRecord(dict(config))
        config["server-round"] = int(server_round)
        record = RecordDict({"arrays": arrays, "config": config})
        return [Message(record, dst_node_id=node, message_type=MessageType.EVALUATE)
                for node in nodes]

    def aggregate_evaluate(self, server_round, replies):
        """Average of the clients' metrics weighted by their ``num-examples``."""
        valid = []
        for reply in replies:
            node = reply.metadata.src_node_id
            if reply.has_error():
                self._fail(server_round, "evaluate", node, _error_text(reply),
                           skip_only=True)
                continue
            metrics = reply.content["metrics"] if "metrics" in reply.content else {}
            n = metrics.get("num-examples")
            if not (isinstance(n, numbers.Integral) and n >= 1) or not all(
                    np.isfinite(v) for v in metrics.values()
                    if isinstance(v, numbers.Real)):
                self._fail(server_round, "evaluate", node, "reply rejected: "
                           "no positive num-examples or non-finite metrics",
                           skip_only=True)
                continue
            valid.append(metrics)
        if not valid:
            return None
        weights = np.array([m["num-examples"] for m in valid], dtype=np.float64)
        out = {"num-examples": int(weights.sum())}
        for key in valid[0]:
            if key != "num-examples" and all(key in m for m in valid):
                values = np.array([m[key] for m in valid], dtype=np.float64)
                out[key] = float(weights @ values / weights.sum())
        return MetricRecord(out)

    # --------------------------------------------------------------- exchanges
    def _connected(self, grid, timeout):
        """Node ids once ``min_available_nodes`` are connected (wait up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(nodes := sorted(grid.get_node_ids())) < self.min_available_nodes:
            if time.monotonic() > deadline:
                raise ClientError(f"only {len(nodes)} clients connected after "
                                  f"{timeout:g} s; min_available_nodes="
                                  f"{self.min_available_nodes}.")
            logger.info("Waiting for clients: %d connected, %d needed.", len(nodes),
                        self.min_available_nodes)
            time.sleep(min(1.0, timeout))
        return nodes

    def _sample(self, grid, fraction, minimum):
        nodes = self._connected(grid, self._timeout)
        if self._members is not None:
            nodes = [n for n in nodes if n in self._members]
        k = min(len(nodes), max(minimum, int(len(nodes) * fraction)))
        if k < len(nodes):  # in client order, so that a seed samples the same clients
            names = [(self.clients_.get(n, {}).get("client"), n) for n in nodes]
            if any(name is None for name, _ in names):
                names = [(n, n) for n in nodes]
            ordered = [n for _, n, _ in _sorted_by_client([(c, n, None) for c, n in names])]
            picked = self._rng.choice(len(ordered), size=k, replace=False)
            nodes = sorted(ordered[i] for i in picked)
        if not nodes:
            raise ClientError("no client is connected.")
        return [int(n) for n in nodes]

    def _exchange(self, grid, stage, nodes, message_type, content, timeout):
        """Send one query to ``nodes``; the replies that arrived and have no error."""
        out = [Message(content, dst_node_id=node, message_type=message_type)
               for node in nodes]
        replies = list(grid.send_and_receive(out, timeout=timeout))
        good = {}
        for reply in replies:
            node = reply.metadata.src_node_id
            if reply.has_error():
                self._fail(0, stage, node, _error_text(reply))
            else:
                good[node] = reply
        for node in sorted(set(nodes) - {r.metadata.src_node_id for r in replies}):
            self._fail(0, stage, node, f"no reply within {timeout:g} s")
        if not good:
            raise ClientError(f"no client answered the {stage} exchange.")
        return good

    def _census(self, grid, timeout):
        est = self.estimator
        nodes = self._connected(grid, timeout)
        content = RecordDict({"config": ConfigRecord({"estimator": type(est).__name__})})
        replies = self._exchange(grid, "census", nodes, CENSUS, content, timeout)
        rows = []
        for node, reply in replies.items():
            try:
                row = _flat(reply.content["arrays"])
                row["client"] = row["client"].item()
                n, d = int(row["n_samples"]), int(row["n_features"])
                if n < 1 or d < 1:
                    raise ValueError(f"n_samples={n}, n_features={d}")
            except Exception as exc:  # a malformed census reply
                self._fail(0, "census", node, f"invalid census reply: {exc}")
                continue
            rows.append((row["client"], node, row))
        if not rows:
            raise ClientError("no valid census reply.")
        rows = _sorted_by_client(rows)
        n_features = {int(row["n_features"]) for _, _, row in rows}
        if len(n_features) > 1:
            counts = {node: int(row["n_features"]) for _, node, row in rows}
            raise ValueError(f"The clients' data have different numbers of features: "
                             f"{counts} (node id: n_features).")
        self._members = {node for _, node, _ in rows}
        self.clients_ = {node: {"client": client, "n_samples": int(row["n_samples"])}
                         for client, node, row in rows}
        n_samples = sum(int(row["n_samples"]) for _, _, row in rows)
        kwargs = {}
        if isinstance(est, EMTDAMPClassifier):
            kwargs["classes"] = np.unique(np.concatenate([row["classes"]
                                                          for _, _, row in rows]))
        else:
            kwargs["y_mean"], kwargs["y_scale"] = _pooled_moments(
                [row for _, _, row in rows])
        logger.info("census: %d clients, %d samples, %d features", len(rows), n_samples,
                    n_features.pop() if n_features else 0)
        message = initial_message(est, n_features=int(rows[0][2]["n_features"]),
                                  n_samples=n_samples, **kwargs)
        if not isinstance(est, EMTDAMPClassifier):
            ndims = {int(row["y_ndim"]) for _, _, row in rows}
            if ndims == {2} and message.target["y_mean"].size == 1:
                message.target["y_ndim"] = np.asarray(2)  # y of shape (n, 1)
        return message

    def _shift(self, grid, message, timeout):
        nodes = self._sample(grid, 1.0, 1) if self._members is None else sorted(
            self._members)
        content = RecordDict({"arrays": to_arrays(message)})
        replies = self._exchange(grid, "shift", nodes, SHIFT, content, timeout)
        layer = message.pending_shift
        n_in = message.state.layers[layer].n_in
        rows = []
        for node, reply in replies.items():
            try:
                sums = reply.content["arrays"]["sums"].numpy()
                n = reply.content["metrics"]["num-examples"]
                if sums.shape != (n_in,):
                    raise ValueError(f"sums of shape {sums.shape}, layer {layer} has "
                                     f"{n_in} inputs")
                if (problem := _finite("sums", sums)) is not None:
                    raise ValueError(problem)
                if not (isinstance(n, numbers.Integral) and n >= 1):
                    raise ValueError(f"num-examples={n!r}")
            except Exception as exc:
                self._fail(0, "shift", node, f"invalid shift reply: {exc}")
                continue
            client = self.clients_.get(node, {}).get("client", node)
            rows.append((client, node, (int(n), sums)))
        if not rows:
            raise ClientError(f"no valid reply to the input shift of layer {layer}.")
        logger.info("shift: layer %d pooled over %d clients", layer, len(rows))
        return server_shift_step(message, [s for _, _, s in _sorted_by_client(rows)])

    def _decode_train(self, server_round, replies, nodes, message):
        """The aggregable replies as ``(client, node, LocalMessage)`` and upload bytes."""
        up, decoded = [], []
        answered = set()
        for reply in replies:
            node = reply.metadata.src_node_id
            answered.add(node)
            if reply.has_error():
                self._fail(server_round, "train", node, _error_text(reply))
                continue
            try:
                arrays = reply.content["arrays"]
                up.append(_nbytes(arrays))
                local = from_arrays(arrays, LocalMessage)
            except Exception as exc:
                self._fail(server_round, "train", node,
                           f"reply rejected: malformed ({type(exc).__name__}: {exc})")
                continue
            if (problem := _reply_problem(message, local)) is not None:
                self._fail(server_round, "train", node, f"reply rejected: {problem}",
                           client=local.client)
                continue
            decoded.append((local.client, node, local))
        for node in sorted(set(nodes) - answered):
            self._fail(server_round, "train", node,
                       f"no reply within {self._timeout:g} s")
        return decoded, up

    def _fail(self, server_round, stage, node, reason, client=None, skip_only=False):
        if client is None:
            client = self.clients_.get(node, {}).get("client")
        who = f"node {node}" + ("" if client is None else f" (client {client!r})")
        when = "before the first round" if server_round == 0 else f"in round {server_round}"
        text = f"{who} failed in the {stage} step {when}: {reason}"
        self.failures_.append({"server_round": int(server_round), "stage": stage,
                               "node_id": int(node), "client": client, "reason": reason})
        if self.on_client_error == "raise" and not skip_only:
            raise ClientError(text, client=node if client is None else client)
        logger.warning("%s (skipped)", text)
        warnings.warn(text + " (skipped)", ClientSkippedWarning, stacklevel=3)


def _error_text(reply):
    """The client's error in a few words: Flower's reason holds a whole traceback."""
    reason = str(reply.error.reason or "").strip().strip("'\">")
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    for line in reversed(lines):  # Flower: "... ClientAppException occurred. Message: <str>"
        if "Message:" in line:
            return "the client raised: " + line.split("Message:", 1)[1].strip()
    return lines[-1] if lines else f"error code {reply.error.code}"


def _nbytes(arrays):
    return int(sum(len(array.data) for array in arrays.values()))


def _last(history, key):
    values = history.get(key, [])
    return float(values[-1]) if len(values) else float("nan")


def _pooled_moments(rows):
    """Mean and standard deviation of y over all clients (Chan et al.'s pooling)."""
    n = np.array([float(row["n_samples"]) for row in rows])
    means = np.array([np.atleast_1d(row["y_mean"]) for row in rows])
    m2 = np.array([np.atleast_1d(row["y_m2"]) for row in rows])
    if len({means.shape[1:]} | {m2.shape[1:]}) > 1:
        raise ValueError("The clients' targets have different numbers of outputs.")
    total = n.sum()
    mean = (n @ means) / total
    var = (m2.sum(axis=0) + n @ (means - mean) ** 2) / total
    scale = np.sqrt(var)
    return mean, np.where(scale > 0, scale, 1.0)


# ------------------------------------------------------------------- apps, runs
def make_server_app(strategy, *, num_rounds=3, timeout=3600.0, evaluate_fn=None,
                    save=None):
    """A Flower ``ServerApp`` that runs ``strategy.start`` for ``num_rounds`` rounds.

    Parameters
    ----------
    strategy : EMTDAMPStrategy or callable
        The strategy, or ``strategy(context) -> EMTDAMPStrategy`` to build it from the
        run configuration (``context.run_config``) of a deployment.
    num_rounds : int or callable, default=3
        Number of rounds, or ``num_rounds(context) -> int``.
    timeout : float, default=3600.0
        Seconds to wait for the replies of each exchange.
    evaluate_fn : callable, default=None
        Centralized evaluation, as in :meth:`EMTDAMPStrategy.start`.
    save : str, path or callable, default=None
        Where to write the final global message
        (:meth:`~sk_tdamp.federated.GlobalMessage.to_npz`), or ``save(context)`` giving
        the path (e.g. from ``context.run_config``); None writes nothing.

    Returns
    -------
    app : flwr.serverapp.ServerApp
        Its main function leaves the strategy's ``result_`` and ``global_message_``
        set (in a simulation the caller can read them afterwards).

    Examples
    --------
    A ``server_app.py`` of a deployment, its settings read from the run configuration
    (``[tool.flwr.app.config]`` of the app's ``pyproject.toml``)::

        from sk_tdamp import EMTDAMPClassifier
        from sk_tdamp.federated.flower import EMTDAMPStrategy, make_server_app

        app = make_server_app(
            lambda context: EMTDAMPStrategy(
                EMTDAMPClassifier(hidden_layer_sizes=(100,), random_state=0),
                min_available_nodes=context.run_config["min-clients"]),
            num_rounds=lambda context: context.run_config["num-server-rounds"],
            save=lambda context: context.run_config["output"])
    """
    app = ServerApp()

    @app.main()
    def main(grid, context):
        strat = strategy(context) if callable(strategy) else strategy
        rounds = num_rounds(context) if callable(num_rounds) else num_rounds
        strat.start(grid, num_rounds=int(rounds), timeout=timeout,
                    evaluate_fn=evaluate_fn)
        path = save(context) if callable(save) else save
        if path:
            strat.global_message_.to_npz(path)

    return app


def simulate(strategy, client_app, num_supernodes, *, num_rounds=3, timeout=3600.0,
             evaluate_fn=None, backend_config=None):
    """Run a Flower simulation (Ray) of ``num_supernodes`` clients on this machine.

    Parameters
    ----------
    strategy : EMTDAMPStrategy
        The server's strategy; its ``min_available_nodes`` should be
        ``num_supernodes`` so that every client joins the census.
    client_app : flwr.clientapp.ClientApp
        From :func:`make_client_app`; node ``k`` has ``partition-id`` ``k``.
    num_supernodes : int
        Number of virtual SuperNodes (clients).
    num_rounds : int, default=3
        Number of communication rounds.
    timeout : float, default=3600.0
        Seconds to wait for the replies of each exchange.
    evaluate_fn : callable, default=None
        Centralized evaluation, as in :meth:`EMTDAMPStrategy.start`.
    backend_config : dict, default=None
        Flower's ``backend_config`` (``{"client_resources": {"num_cpus": 1}}`` by
        default: as many clients run at once as the machine has cores).

    Returns
    -------
    result : flwr.serverapp.strategy.Result
        ``from_arrays(result.arrays)`` is the final global message, also at
        ``strategy.global_message_``.

    Notes
    -----
    Flower's telemetry and update check, and Ray's usage statistics, are network calls:
    set ``FLWR_TELEMETRY_ENABLED=0``, ``FLWR_DISABLE_UPDATE_CHECK=1`` and
    ``RAY_USAGE_STATS_ENABLED=0`` in the environment (before importing this module) to
    run offline.
    """
    try:
        from flwr.simulation import run_simulation
    except ImportError as exc:
        raise ImportError('The Flower simulation needs Ray: pip install "sk-tdamp[flower]"'
                          ) from exc
    if backend_config is None:
        backend_config = {"client_resources": {"num_cpus": 1}}
    strategy.result_ = None
    server = make_server_app(strategy, num_rounds=num_rounds, timeout=timeout,
                             evaluate_fn=evaluate_fn)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="ray")
        run_simulation(server_app=server, client_app=client_app,
                       num_supernodes=num_supernodes, backend_config=backend_config)
    return strategy.result_

