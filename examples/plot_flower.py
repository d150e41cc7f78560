"""
=====================================================
Federated learning on Flower: a Bayesian strategy
=====================================================

`Flower <https://flower.ai>`_ runs federated learning across machines: a ServerApp sends
messages to the ClientApps of the SuperNodes and aggregates their replies with a
*strategy*. Flower's own strategies (FedAvg, FedProx, FedAdam, ...) average weights;
EM-TDAMP's clients send posteriors (natural parameters and output statistics), which
:class:`~sk_tdamp.federated.flower.EMTDAMPStrategy` aggregates as
:func:`~sk_tdamp.federated.server_step` does: a weighted geometric average of the local
posteriors, then the M-step on the server.

Here Flower's simulation runtime runs 10 virtual SuperNodes on this machine, each the
:func:`~sk_tdamp.federated.flower.make_client_app` of one client of the digits training
set, split with a Dirichlet(0.5) label skew (most clients see few classes). The global
model's test accuracy after each round is compared with the same federation simulated by
``EMTDAMPClassifier.fit(X, y, client_ids=...)``, and with FedAvg of scikit-learn MLPs of
the same 64-100-10 architecture. Nothing leaves this machine: Flower's telemetry and
Ray's usage statistics are switched off before Flower is imported.

Running the same apps on real SuperLink and SuperNode processes is described in
:doc:`/user_guide/federated`.
"""

# %%
# Data and clients
# ----------------
import copy
import logging
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from sk_tdamp import EMTDAMPClassifier
from sk_tdamp.federated import partition_clients, to_estimator

for name, value in (("FLWR_TELEMETRY_ENABLED", "0"), ("FLWR_DISABLE_UPDATE_CHECK", "1"),
                    ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(name, value)  # offline: set before Flower is imported

from flwr.app import MetricRecord  # noqa: E402

from sk_tdamp.federated.flower import (  # noqa: E402
    EMTDAMPStrategy,
    from_arrays,
    make_client_app,
    simulate,
)

logging.getLogger("flwr").setLevel(logging.WARNING)  # Flower logs every step at INFO

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)  # agreed by the federation
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
n_clients, n_rounds = 10, 15
client_ids = partition_clients(y_train, n_clients, iid=False, concentration=0.5,
                               random_state=0)
model = EMTDAMPClassifier(hidden_layer_sizes=(100,), batch_size=32, random_state=0)

# %%
# The Flower apps
# ---------------
# Every virtual SuperNode runs the same ClientApp; ``data`` picks its client's rows from
# the ``partition-id`` Flower gives it. In a deployment, ``data`` would read the
# node's own files instead. The server evaluates the global posterior on the test set
# after every round (``evaluate_fn``; the clients could evaluate on their own data too,
# with ``fraction_evaluate``).


def data(context):
    k = context.node_config["partition-id"]
    return X_train[client_ids == k], y_train[client_ids == k]


def test_accuracy(server_round, arrays):
    accuracy = to_estimator(from_arrays(arrays)).score(X_test, y_test)
    return MetricRecord({"accuracy": accuracy})


strategy = EMTDAMPStrategy(model, min_available_nodes=n_clients, random_state=0)
start = time.perf_counter()
result = simulate(strategy, make_client_app(data), num_supernodes=n_clients,
                  num_rounds=n_rounds, evaluate_fn=test_accuracy)
flower_seconds = time.perf_counter() - start
flower_curve = [result.evaluate_metrics_serverapp[r]["accuracy"]
                for r in range(1, n_rounds + 1)]
upload = np.mean([h["upload_bytes"] for h in strategy.history_]) / n_clients
print(f"Flower: {n_rounds} rounds in {flower_seconds:.1f} s (Ray start included); "
      f"upload per client and round {upload / 1e3:.0f} kB")
print("seconds per round:", np.round([h["wall_time"] for h in strategy.history_], 2))

# %%
# The same federation simulated by ``fit``
# ----------------------------------------
# ``warm_start`` and one round per call give the model after every round. With
# ``shuffle=False`` the two runs agree number for number (the test suite checks it);
# here the clients shuffle their minibatches, ``fit`` from the estimator's generator and
# the Flower clients from the seeds the strategy sends, so the curves agree only up to
# that randomness.

own = EMTDAMPClassifier(**{**model.get_params(), "max_iter": 1, "warm_start": True})
own_curve = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for _ in range(n_rounds):
        own.fit(X_train, y_train, client_ids=client_ids)
        own_curve.append(own.score(X_test, y_test))

# %%
# FedAvg of scikit-learn MLPs
# ---------------------------
# Each client starts from the global weights, runs one epoch of Adam (``partial_fit``)
# on its data, and the server averages the weights in proportion to the clients' sizes.

sizes = np.bincount(client_ids, minlength=n_clients)
classes = np.unique(y_train)
clients = []
for k in range(n_clients):
    mlp = MLPClassifier(hidden_layer_sizes=(100,), batch_size=32, random_state=0)
    with warnings.catch_warnings():  # one sample sets up the network (batch_size clipped)
        warnings.simplefilter("ignore", UserWarning)
        mlp.partial_fit(X_train[client_ids == k][:1], y_train[client_ids == k][:1],
                        classes=classes)  # its weights are replaced below
    clients.append(mlp)
global_mlp = copy.deepcopy(clients[0])
fedavg_curve = []
for _ in range(n_rounds):
    for k, mlp in enumerate(clients):
        mlp.coefs_ = [w.copy() for w in global_mlp.coefs_]
        mlp.intercepts_ = [b.copy() for b in global_mlp.intercepts_]
        mlp.partial_fit(X_train[client_ids == k], y_train[client_ids == k])
    weights = sizes / sizes.sum()
    global_mlp.coefs_ = [sum(a * c.coefs_[l] for a, c in zip(weights, clients))
                         for l in range(len(global_mlp.coefs_))]
    global_mlp.intercepts_ = [sum(a * c.intercepts_[l] for a, c in zip(weights, clients))
                              for l in range(len(global_mlp.intercepts_))]
    fedavg_curve.append(global_mlp.score(X_test, y_test))

for name, curve in (("EM-TDAMP on Flower", flower_curve),
                    ("EM-TDAMP fit(client_ids=...)", own_curve),
                    ("FedAvg (MLP, Adam)", fedavg_curve)):
    print(f"{name:30s} accuracy after rounds 1 / 5 / {n_rounds}: "
          f"{curve[0]:.3f} / {curve[4]:.3f} / {curve[-1]:.3f}")

# %%
# Accuracy per round
# ------------------
rounds = np.arange(1, n_rounds + 1)
fig, ax = plt.subplots(figsize=(7, 4.2))
ax.plot(rounds, flower_curve, "o-", label="EM-TDAMP on Flower (EMTDAMPStrategy)")
ax.plot(rounds, own_curve, "s--", mfc="none", label="EM-TDAMP, fit(client_ids=...)")
ax.plot(rounds, fedavg_curve, "^-", label="FedAvg of MLPs (Adam)")
ax.set_xlabel("communication round")
ax.set_ylabel("test accuracy")
ax.set_title(f"digits, {n_clients} clients, Dirichlet(0.5) label skew")
ax.set_ylim(0.0, 1.0)
ax.grid(alpha=0.3)
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
