"""EM-TDAMP on Flower: strategy, ClientApp, simulation and a loopback deployment.

Three kinds of runs:

- ``LocalGrid``, a Grid test double that hands each message to the ClientApp in this
  process (no Ray, no network): the strategy's bookkeeping, fault handling and reply
  checks, compared with the deployment primitives of :mod:`sk_tdamp.federated` run by
  hand on the same clients;
- Flower's simulation runtime (Ray), compared with ``fit(X, y, client_ids=...)``;
- a deployment on 127.0.0.1: ``flower-superlink``, two ``flower-supernode`` processes and
  ``flwr run``, compared with the simulation.

Every model here has ``shuffle=False``: ``fit`` draws the clients' minibatch orders from
the estimator's generator, the Flower clients from the strategy's seeds, so only
unshuffled runs can be compared number for number.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, Context, Error, Message, RecordDict
from flwr.serverapp import Grid
from sklearn.datasets import load_digits

from sk_tdamp import EMTDAMPClassifier, EMTDAMPRegressor
from sk_tdamp.federated import (
    ClientError,
    ClientSkippedWarning,
    GlobalMessage,
    LocalMessage,
    client_step,
    initial_message,
    partition_clients,
    server_step,
    to_estimator,
)
from sk_tdamp.federated.flower import (
    EMTDAMPStrategy,
    _pooled_moments,
    client_seed,
    from_arrays,
    make_client_app,
    simulate,
    to_arrays,
)


# ------------------------------------------------------------------------ data
def regression_data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 3.0 + 0.1 * rng.standard_normal(n)
    return X, y


def classification_data(n=240):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


def regressor(**kw):
    return EMTDAMPRegressor(**{"hidden_layer_sizes": (6,), "shuffle": False, "n_init": 1,
                               "random_state": 0, **kw})


def classifier(**kw):
    return EMTDAMPClassifier(**{"hidden_layer_sizes": (12,), "shuffle": False,
                                "n_init": 1, "random_state": 0, **kw})


def partition_data(X, y, ids):
    """``data(context)`` for make_client_app: the rows of client ``partition-id``."""
    def data(context):
        k = int(context.node_config["partition-id"])
        if k not in set(ids.tolist()):
            raise OSError(f"no data for client {k}")
        return X[ids == k], y[ids == k]
    return data


def fit_reference(est, X, y, ids):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after max_iter rounds
        return est.fit(X, y, client_ids=ids)


def manual_rounds(message, X, y, ids, clients, n_rounds):
    """The deployment primitives by hand: ``client_step`` on ``clients``, ``server_step``."""
    for _ in range(n_rounds):
        local = [client_step(message, X[ids == k], y[ids == k], client=k) for k in clients]
        message = server_step(message, local)
    return message


def assert_same_message(a, b):
    """Every array of the two messages' encodings is equal (bit for bit)."""
    da, db = a.to_dict(), b.to_dict()
    assert sorted(da) == sorted(db)
    for key in da:
        assert_array_equal(da[key], db[key], err_msg=key)


# ------------------------------------------------------------ in-process grid
class LocalGrid(Grid):
    """A Grid whose nodes run ``app`` in this process, one after the other.

    Node ``node_ids[k]`` (default ``1000 + k``) has ``partition-id`` ``k``. A ClientApp
    that raises gets an error reply, as from Flower's runtimes; the nodes in ``silent``
    never reply (a timeout).
    """

    def __init__(self, app, n_nodes, silent=(), node_ids=None):
        self.app = app
        node_ids = [1000 + k for k in range(n_nodes)] if node_ids is None else node_ids
        self.nodes = {node: k for k, node in enumerate(node_ids)}
        self.silent = set(silent)
        self.sent = []  # message types, in order
        self._run = None

    def set_run(self, run):
        self._run = run

    @property
    def run(self):
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return Message(content, dst_node_id=dst_node_id, message_type=message_type,
                       group_id=group_id)

    def get_node_ids(self):
        return list(self.nodes)

    def push_messages(self, messages):
        raise NotImplementedError("LocalGrid only implements send_and_receive")

    def pull_messages(self, message_ids):
        raise NotImplementedError("LocalGrid only implements send_and_receive")

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for message in messages:
            node = message.metadata.dst_node_id
            self.sent.append(message.metadata.message_type)
            if self.nodes[node] in self.silent:
                continue
            context = Context(run_id=1, node_id=node,
                              node_config={"partition-id": self.nodes[node],
                                           "num-partitions": len(self.nodes)},
                              state=RecordDict(), run_config={})
            try:
                replies.append(self.app(message, context))
            except Exception:
                replies.append(Message(Error(code=2, reason=traceback.format_exc()),
                                       reply_to=message))
        return replies


@pytest.fixture
def task_identity(monkeypatch):
    """The run, task and node ids that Flower's runtimes set in a ServerApp process (new
    Messages read them); LocalGrid runs without a runtime, so they are set here."""
    from flwr.supercore.task_identity import TaskIdentity

    for name in ("_run_id", "_task_id", "_node_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)


local_grid = pytest.mark.usefixtures("task_identity")


def raising_mod(partition, stage="train"):
    """A Flower mod: client ``partition`` raises on ``stage`` messages."""
    def mod(message, context, call_next):
        if (context.node_config["partition-id"] == partition
                and message.metadata.message_type == stage):
            raise RuntimeError(f"client {partition} crashed")
        return call_next(message, context)
    return mod


def corrupting_mod(partition, corrupt):
    """A Flower mod: client ``partition`` replies ``corrupt(flat arrays)`` to train."""
    def mod(message, context, call_next):
        reply = call_next(message, context)
        if (context.node_config["partition-id"] == partition
                and message.metadata.message_type == "train"):
            flat = {k: a.numpy() for k, a in reply.content["arrays"].items()}
            flat = corrupt(flat)
            reply.content["arrays"] = ArrayRecord({k: Array(np.asarray(v))
                                                   for k, v in flat.items()})
        return reply
    return mod


def _nan_means(flat):
    flat["layers.0.m"] = np.full_like(flat["layers.0.m"], np.nan)
    return flat


def _inf_evidence(flat):
    flat["layers.1.Gp"] = flat["layers.1.Gp"] + np.inf
    return flat


def _wrong_shape(flat):
    flat["layers.0.Hp"] = flat["layers.0.Hp"][:, :-1]
    flat.pop("layers.0.Hp.columns", None)
    flat.pop("layers.0.Hp.n_columns", None)
    return flat


def _stale_round(flat):
    flat["round"] = np.asarray(int(flat["round"]) + 5)
    return flat


def _not_a_message(flat):
    return {"weights": np.zeros(3)}


def run_local(strategy, app, n_nodes, n_rounds, silent=(), node_ids=None):
    grid = LocalGrid(app, n_nodes, silent, node_ids)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = strategy.start(grid, num_rounds=n_rounds, timeout=5.0)
    return result, grid, [w for w in caught if issubclass(w.category, ClientSkippedWarning)]


# --------------------------------------------------------------------- encoding
def test_to_arrays_round_trips_global_and_local_messages():
    X, y = classification_data(60)
    msg = initial_message(classifier(), n_features=64, n_samples=60, classes=range(10))
    msg.state.layers[0].mu = X.mean(axis=0)  # the input shifts, as if pooled
    msg.state.layers[1].mu = np.full(12, 0.25)
    back = from_arrays(to_arrays(msg))
    assert_same_message(back, msg)
    assert isinstance(back.round, int) and back.estimator == "EMTDAMPClassifier"
    local = client_step(msg, X, y, client=3)
    back = from_arrays(to_arrays(local), LocalMessage)
    assert (back.client, back.round, back.n_samples) == (3, 0, 60)
    for name in ("m", "c", "Hp", "Gp", "Lam", "init_scale"):
        assert_array_equal(getattr(back.layers[1], name), getattr(local.layers[1], name))
    with pytest.raises(ValueError, match="empty"):
        from_arrays(ArrayRecord())


def test_pooled_moments_match_the_pooled_data():
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((90, 2)) * [3.0, 0.5] + [10.0, -2.0]
    parts = np.split(Y, [7, 50])
    rows = [{"n_samples": len(p), "y_mean": p.mean(axis=0),
             "y_m2": ((p - p.mean(axis=0)) ** 2).sum(axis=0)} for p in parts]
    mean, scale = _pooled_moments(rows)
    assert_allclose(mean, Y.mean(axis=0), rtol=1e-14)
    assert_allclose(scale, Y.std(axis=0), rtol=1e-14)


def test_eachclient_seeds_its_minibatches_differently():
    seeds = [client_seed(12345, client) for client in (0, 1, 2, "site-a")]
    assert len(set(seeds)) == 4 and all(0 <= s < 2**32 for s in seeds)
    assert client_seed(12345, 1) == seeds[1] and client_seed(54321, 1) != seeds[1]
    assert client_seed(None, 1) is None


@pytest.mark.parametrize("kwargs, match", [
    ({"fraction_train": 0.0}, "fraction_train must be positive"),
    ({"fraction_evaluate": 1.5}, r"fraction_evaluate must be in \[0, 1\]"),
    ({"min_available_nodes": 0}, "min_available_nodes must be a positive integer"),
    ({"on_client_error": "ignore"}, "on_client_error must be one of"),
])
def test_strategy_rejects_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EMTDAMPStrategy(regressor(), **kwargs)
    with pytest.raises(TypeError, match="EMTDAMPRegressor, an EMTDAMPClassifier"):
        EMTDAMPStrategy("model")


@local_grid
# ---------------------------------------------------------- in-process rounds
@pytest.mark.parametrize("make, data", [(regressor, regression_data),
                                        (classifier, classification_data)],
                         ids=["regressor", "classifier"])
def test_local_grid_matches_the_deployment_primitives(make, data):
    X, y = data()
    ids = partition_clients(y, 3, iid=False, random_state=0)  # clients of unequal sizes
    strategy = EMTDAMPStrategy(make(), min_available_nodes=3, fraction_evaluate=1.0)
    result, grid, skipped = run_local(strategy, make_client_app(partition_data(X, y, ids)),
                                      3, n_rounds=3)
    assert not skipped and strategy.failures_ == []
    # the census: what the server would set up knowing the pooled data
    census = strategy.initial_message_
    assert (census.round, census.n_samples, census.n_features) == (0, len(y), X.shape[1])
    if make is classifier:
        assert_array_equal(census.target["classes"], np.unique(y))
        assert_allclose(census.state.layers[0].mu, X.mean(axis=0), rtol=1e-13)
    else:
        assert_allclose(census.target["y_mean"], [y.mean()], rtol=1e-14)
        assert_allclose(census.target["y_scale"], [y.std()], rtol=1e-14)
    expected = manual_rounds(census, X, y, ids, range(3), 3)
    assert_same_message(strategy.global_message_, expected)
    assert_same_message(from_arrays(result.arrays), expected)
    assert [h["round"] for h in strategy.history_] == [1, 2, 3]
    assert all(h["num_replies"] == 3 and h["upload_bytes"] > 0 for h in strategy.history_)
    assert result.train_metrics_clientapp[3]["loss"] == expected.history["loss"][-1]
    # federated evaluation on the clients' training data: pooled over all samples
    metrics = result.evaluate_metrics_clientapp[3]
    model = to_estimator(expected)
    assert metrics["num-examples"] == len(y)
    if make is classifier:
        assert_allclose(metrics["accuracy"], model.score(X, y), rtol=1e-12)
        assert grid.sent[:3] == ["query.sk_tdamp_census"] * 3
        assert grid.sent.count("query.sk_tdamp_shift") == 3 * 2  # one per layer
    else:
        assert_allclose(metrics["mse"], np.mean((model.predict(X) - y) ** 2), rtol=1e-12)
        assert "query.sk_tdamp_shift" not in grid.sent  # the regressor does not center


@local_grid
@pytest.mark.parametrize("make, data", [(regressor, regression_data),
                                        (classifier, classification_data)],
                         ids=["regressor", "classifier"])
def test_failed_and_nan_clients_are_dropped_and_never_aggregated(make, data):
    # clients 0 and 1 are sound; 2 raises in training, 3 replies NaN means, 4 is silent
    X, y = data()
    ids = partition_clients(y, 5, random_state=0)
    app = make_client_app(partition_data(X, y, ids),
                          mods=[raising_mod(2), corrupting_mod(3, _nan_means)])
    strategy = EMTDAMPStrategy(make(), min_available_nodes=5)
    strategy.setup(LocalGrid(app, 5))  # the census, before node 4 falls silent
    census = strategy.initial_message_
    strategy = EMTDAMPStrategy(census, min_available_nodes=4)
    _, _, skipped = run_local(strategy, app, 5, n_rounds=2, silent={4})
    expected = manual_rounds(census, X, y, ids, [0, 1], 2)
    assert_same_message(strategy.global_message_, expected)
    reasons = {(f["server_round"], f["node_id"]): f["reason"] for f in strategy.failures_}
    for round_ in (1, 2):
        assert "client 2 crashed" in reasons[round_, 1002]
        assert reasons[round_, 1003] == ("reply rejected: local message of client 3 holds "
                                         "non-finite values (layer 0, m).")
        assert reasons[round_, 1004] == "no reply within 5 s"
    assert len(reasons) == 6 and len(skipped) == 6
    assert "node 1003 (client 3) failed in the train step in round 1" in str(
        skipped[1].message)
    assert [h["num_failures"] for h in strategy.history_] == [3, 3]


@local_grid
@pytest.mark.parametrize("corrupt, reason", [
    (_inf_evidence, "non-finite values (layer 1, Gp)"),
    (_wrong_shape, "layer 0, Hp of shape"),
    (_stale_round, "answers round 5, the global message is at round 0"),
    (_not_a_message, "malformed"),
], ids=["inf", "shape", "round", "malformed"])
def test_invalid_replies_are_rejected_naming_the_node(corrupt, reason):
    X, y = regression_data()
    ids = partition_clients(y, 3, random_state=0)
    msg = initial_message(regressor(), n_features=4, n_samples=len(y),
                          y_mean=[y.mean()], y_scale=[y.std()])
    app = make_client_app(partition_data(X, y, ids), mods=[corrupting_mod(1, corrupt)])
    strategy = EMTDAMPStrategy(msg)
    _, _, skipped = run_local(strategy, app, 3, n_rounds=1)
    assert_same_message(strategy.global_message_, manual_rounds(msg, X, y, ids, [0, 2], 1))
    [failure] = strategy.failures_
    assert failure["node_id"] == 1001 and reason in failure["reason"]
    assert re.match(r"node 1001( \(client 1\))? failed in the train step in round 1",
                    str(skipped[0].message))


@local_grid
def test_shuffled_runs_are_reproducible_whatever_the_node_ids():
    # the clients seed their minibatch orders with the round's seed and their own
    # identifier, and the server samples clients in identifier order: Flower's node ids,
    # random in a simulation, do not matter
    X, y = regression_data()
    ids = partition_clients(y, 4, random_state=0)
    app = make_client_app(partition_data(X, y, ids))
    runs = {}
    for seed, node_ids in ((0, None), (0, [93, 12, 57, 40]), (1, None)):
        strategy = EMTDAMPStrategy(regressor(shuffle=True), min_available_nodes=4,
                                   fraction_train=0.5, random_state=seed)
        run_local(strategy, app, 4, n_rounds=3, node_ids=node_ids)
        runs[seed, node_ids is None] = strategy
    assert_same_message(runs[0, True].global_message_, runs[0, False].global_message_)
    assert runs[0, True].history_[-1]["loss"] != runs[1, True].history_[-1]["loss"]
    assert all(h["num_replies"] == 2 for h in runs[0, True].history_)
    # every client of every round: the primitives with client_seed replay the run
    strategy = EMTDAMPStrategy(regressor(shuffle=True), min_available_nodes=4,
                               random_state=3)
    run_local(strategy, app, 4, n_rounds=2, node_ids=[93, 12, 57, 40])
    message = strategy.initial_message_
    for h in strategy.history_:
        message = server_step(message, [
            client_step(message, X[ids == k], y[ids == k],
                        random_state=client_seed(h["seed"], k), client=k)
            for k in range(4)])
    assert_same_message(strategy.global_message_, message)


@local_grid
def test_raise_policy_raises_client_error_naming_the_node():
    X, y = regression_data()
    ids = partition_clients(y, 2, random_state=0)
    msg = initial_message(regressor(), n_features=4, n_samples=len(y))
    app = make_client_app(partition_data(X, y, ids), mods=[corrupting_mod(0, _nan_means)])
    strategy = EMTDAMPStrategy(msg, on_client_error="raise")
    with pytest.raises(ClientError, match=r"node 1000 .* non-finite values \(layer 0, m\)"):
        strategy.start(LocalGrid(app, 2), num_rounds=1)


@local_grid
def test_round_without_valid_reply_leaves_the_posterior_unchanged():
    X, y = regression_data()
    ids = partition_clients(y, 2, random_state=0)
    msg = initial_message(regressor(), n_features=4, n_samples=len(y))
    app = make_client_app(partition_data(X, y, ids),
                          mods=[raising_mod(0), raising_mod(1)])
    strategy = EMTDAMPStrategy(msg)
    result, _, skipped = run_local(strategy, app, 2, n_rounds=2)
    assert_same_message(strategy.global_message_, msg)
    assert_same_message(from_arrays(result.arrays), msg)
    assert [h["num_replies"] for h in strategy.history_] == [0, 0]
    assert len(skipped) == 4


@local_grid
def test_failed_evaluation_is_left_out_of_the_evaluation_metrics():
    X, y = classification_data()
    ids = partition_clients(y, 3, random_state=0)
    app = make_client_app(partition_data(X, y, ids), mods=[raising_mod(1, "evaluate")])
    strategy = EMTDAMPStrategy(classifier(), min_available_nodes=3, fraction_evaluate=1.0)
    result, _, skipped = run_local(strategy, app, 3, n_rounds=1)
    [failure] = strategy.failures_
    assert (failure["stage"], failure["node_id"]) == ("evaluate", 1001)
    model, keep = to_estimator(strategy.global_message_), ids != 1
    metrics = result.evaluate_metrics_clientapp[1]
    assert metrics["num-examples"] == keep.sum()
    assert_allclose(metrics["accuracy"], model.score(X[keep], y[keep]), rtol=1e-12)
    assert strategy.history_[0]["num_replies"] == 3 and len(skipped) == 1


@local_grid
def test_census_rejects_clients_with_different_feature_counts():
    X, y = regression_data()

    def data(context):
        k = context.node_config["partition-id"]
        return X[k::2, : 3 + k], y[k::2]

    strategy = EMTDAMPStrategy(regressor())
    with pytest.raises(ValueError, match="different numbers of features"):
        strategy.start(LocalGrid(make_client_app(data), 2), num_rounds=1)


# ------------------------------------------------------------- Ray simulation
BACKEND = {"client_resources": {"num_cpus": 2}}  # one actor: the quickest start here


@pytest.fixture(scope="module")
def regressor_simulation():
    """Two clients with data and a third whose data cannot be read (drops out at the
    census), two rounds of Flower's simulation runtime."""
    X, y = regression_data()
    ids = partition_clients(y, 2, iid=False, random_state=0)
    strategy = EMTDAMPStrategy(regressor(), min_available_nodes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClientSkippedWarning)
        result = simulate(strategy, make_client_app(partition_data(X, y, ids)), 3,
                          num_rounds=2, timeout=120, backend_config=BACKEND)
    return strategy, result, (X, y, ids)


def test_simulation_matches_fit_regressor(regressor_simulation):
    strategy, result, (X, y, ids) = regressor_simulation
    ref = fit_reference(regressor(max_iter=2), X, y, ids)
    model = to_estimator(from_arrays(result.arrays))
    [failure] = strategy.failures_
    assert failure["stage"] == "census" and "no data for client 2" in failure["reason"]
    assert sorted(c["client"] for c in strategy.clients_.values()) == [0, 1]
    # The census pools the clients' target means and squared deviations; fit takes
    # np.mean / np.std of the pooled y: equal up to rounding, which is all that differs.
    assert_allclose(model.y_mean_, ref.y_mean_, rtol=1e-15)
    assert_allclose(model.y_scale_, ref.y_scale_, rtol=1e-15)
    mean, std = model.predict(X, return_std=True)
    ref_mean, ref_std = ref.predict(X, return_std=True)
    assert_allclose(mean, ref_mean, rtol=1e-12)
    assert_allclose(std, ref_std, rtol=1e-12)
    assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-12)
    for a, b in zip(model.coefs_, ref.coefs_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # with fit's own target standardization the simulation is fit, bit for bit
    expected = manual_rounds(strategy.initial_message_, X, y, ids, [0, 1], 2)
    assert_same_message(strategy.global_message_, expected)


def test_simulation_matches_fit_classifier():
    X, y = classification_data()
    ids = partition_clients(y, 3, iid=False, random_state=0)
    strategy = EMTDAMPStrategy(classifier(), min_available_nodes=3)
    result = simulate(strategy, make_client_app(partition_data(X, y, ids)), 3,
                      num_rounds=3, timeout=120, backend_config=BACKEND)
    ref = fit_reference(classifier(max_iter=3), X, y, ids)
    model = to_estimator(from_arrays(result.arrays))
    assert strategy.failures_ == []
    assert_array_equal(model.predict_proba(X), ref.predict_proba(X))
    assert_array_equal(model.loss_curve_, ref.loss_curve_)
    for a, b in zip(model.coefs_ + model.input_shifts_, ref.coefs_ + ref.input_shifts_):
        assert_array_equal(a, b)
    assert sorted(result.train_metrics_clientapp) == [1, 2, 3]
    assert result.train_metrics_clientapp[3]["num-replies"] == 3


# ------------------------------------------------------- loopback deployment
def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait_for_port(port, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited with status {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


def _flower_command(name):
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable}")
    return str(path)


def _stop(process):
    """Stop a process started here and everything it started (its process group)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:  # its children (SuperExec, app processes) may outlive it
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


APP = '''
import numpy as np

from sk_tdamp.federated import GlobalMessage
from sk_tdamp.federated.flower import EMTDAMPStrategy, make_client_app, make_server_app


def data(context):
    with np.load(context.node_config["data"]) as f:
        return f["X"], f["y"]


client = make_client_app(data)
server = make_server_app(
    lambda context: EMTDAMPStrategy(GlobalMessage.from_npz(context.run_config["initial"])),
    num_rounds=lambda context: context.run_config["num-server-rounds"],
    timeout=60.0, save=lambda context: context.run_config["output"])
'''

PYPROJECT = '''
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "sk-tdamp-loopback"
version = "1.0.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "sk-tdamp"

[tool.flwr.app.components]
serverapp = "loopback_app:server"
clientapp = "loopback_app:client"

[tool.flwr.app.config]
num-server-rounds = 2
initial = ""
output = ""
'''


def test_loopback_deployment_matches_the_simulation(regressor_simulation, tmp_path):
    """SuperLink and two SuperNodes on 127.0.0.1 (insecure), ``flwr run`` of a Flower app
    starting from the simulation's round-0 message: the same two rounds."""
    strategy, _, (X, y, ids) = regressor_simulation
    app_dir, home = tmp_path / "app", tmp_path / "flwr_home"
    app_dir.mkdir()
    home.mkdir()
    (app_dir / "pyproject.toml").write_text(PYPROJECT)
    (app_dir / "loopback_app.py").write_text(APP)
    strategy.initial_message_.to_npz(tmp_path / "initial.npz")
    for k in (0, 1):
        np.savez(tmp_path / f"client{k}.npz", X=X[ids == k], y=y[ids == k])
    link, node0, node1 = _free_ports(3)
    (home / "config.toml").write_text(textwrap.dedent(f'''
        [superlink]
        default = "loopback"

        [superlink.loopback]
        address = "127.0.0.1:{link}"
        insecure = true
        '''))
    env = dict(os.environ, FLWR_HOME=str(home), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[3]), env.get("PYTHONPATH", "")])
    commands = [[_flower_command("flower-superlink"), "--insecure", "--host", "127.0.0.1",
                 "--port", str(link), "--disable-runtime-dependency-installation"]]
    for k, port in enumerate((node0, node1)):
        commands.append([
            _flower_command("flower-supernode"), "--insecure",
            "--superlink", f"127.0.0.1:{link}", "--host", "127.0.0.1", "--port", str(port),
            "--node-config", f'partition-id={k} data="{tmp_path / f"client{k}.npz"}"'])
    logs, processes = [], []
    try:
        for i, command in enumerate(commands):
            logs.append(open(tmp_path / f"process{i}.log", "wb"))
            processes.append(subprocess.Popen(command, env=env, stdout=logs[-1],
                                              stderr=subprocess.STDOUT,
                                              start_new_session=True))
            if i == 0:  # the SuperLink listens before the SuperNodes dial it
                _wait_for_port(link, processes[0], timeout=30.0)
        run = subprocess.run(
            [_flower_command("flwr"), "run", str(app_dir), "loopback", "--stream",
             "--run-config", f'initial="{tmp_path / "initial.npz"}" '
                             f'output="{tmp_path / "final.npz"}"'],
            env=env, capture_output=True, text=True, timeout=150)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        for process in processes:
            _stop(process)
        for log in logs:
            log.close()
    final = GlobalMessage.from_npz(tmp_path / "final.npz")
    assert final.round == 2
    assert_same_message(final, strategy.global_message_)
