"""Federated benchmark: EM-TDAMP (ALGORITHM.md 8) against FedAvg of scikit-learn MLPs (issue 4).

Data sets, each over ``--clients`` clients (default 10), IID and Dirichlet(0.5) label skew
(``sk_tdamp.federated.partition_clients``; Boston is skewed on quantile bins of y):

- ``digits``: scikit-learn's 8x8 digits, stratified 80/20 split, 64-100-10;
- ``mnist5k``: ``sk_tdamp.datasets.load_mnist_5k``, stratified 4000/1000 split,
  784-100-10 (``--mnist-hidden 300 100`` for the deep network);
- ``boston``: split 0 of the 20 standard splits (``data/boston_hl_splits.json``), 13-50-1,
  test RMSE.

Inputs: pixels / 255 then a StandardScaler fitted on the training part (digits, MNIST);
Boston features standardized on the training part. The regressors see y standardized with
the training mean and standard deviation (EM-TDAMP does it internally; the MLP gets the
same scaling explicitly); RMSE is in the original units.

Methods, every one with the same architecture, batch size 32 and ``--local-epochs`` local
epochs per round (default 1):

- *EM-TDAMP federated*: the deployment primitives of ``sk_tdamp.federated``
  (``initial_message``, ``client_step`` per client, ``server_step``), so the bytes are
  those of the real messages: per round every client downloads the global message and
  uploads its local message (``nbytes`` of their ``np.savez`` encoding).
- *FedAvg*: one ``MLPClassifier`` / ``MLPRegressor`` (adam, learning rate 1e-3) per client;
  round 1 starts every client from the same initialization (same ``random_state``); each
  round a client loads the global ``coefs_`` / ``intercepts_``, runs ``partial_fit``
  epochs on its data (its adam moments persist across rounds) and the server averages
  the weights with weights ``N_k / N``. Bytes: the float64 weights, down and up.
- *Centralized* references, trained epoch by epoch for as many epochs as there are
  rounds: ``EMTDAMPClassifier`` / ``EMTDAMPRegressor`` (``fit`` with ``warm_start``,
  one epoch per call) and the MLP (``partial_fit``).

- *EM-TDAMP on Flower* (``--flower``, needs the ``flower`` extra): the same federation
  run by Flower's simulation runtime (Ray, one virtual SuperNode per client, each a
  ``sk_tdamp.federated.flower.make_client_app`` reading its client's rows from a file)
  under ``EMTDAMPStrategy``. Its clients seed their minibatch orders from the strategy's
  round seed (``client_seed``), not from the generator of the *EM-TDAMP federated* loop,
  so the two curves agree in distribution; to check that Flower changes nothing else,
  the deployment primitives are run once more in this process with the seeds of the
  Flower run ("replay"), which must give the same global posterior bit for bit. Bytes:
  the Flower ``ArrayRecord`` payloads (compact encoding), down and up; seconds per
  round: from sending the round's messages to aggregating the replies (the Ray start
  is reported apart).

Reported: test accuracy (RMSE) per round, rounds to reach 95% of the method's own
centralized accuracy after the same number of epochs (for RMSE: to come within
RMSE_central / 0.95), the same against a common target (the better centralized method),
bytes per round and seconds per round.

Usage::

    python benchmarks/federated.py                         # everything (~20 minutes)
    python benchmarks/federated.py --datasets digits --rounds 15
    python benchmarks/federated.py --quick                 # smoke run
    python benchmarks/federated.py --datasets mnist5k --flower \
        --out benchmarks/results/federated_flower.md      # with Flower (~15 minutes)
"""

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sk_tdamp import EMTDAMPClassifier, EMTDAMPRegressor
from sk_tdamp.datasets import load_boston_housing, load_mnist_5k
from sk_tdamp.federated import (
    client_shift_sums,
    client_step,
    initial_message,
    partition_clients,
    server_shift_step,
    server_step,
    to_estimator,
)

HERE = Path(__file__).resolve().parent
EM_FED, EM_CEN, FA_FED, FA_CEN = ("EM-TDAMP federated", "EM-TDAMP centralized",
                                  "FedAvg (MLP adam)", "MLP centralized")
EM_FLOWER = "EM-TDAMP on Flower"
# Flower's telemetry and update check, Ray's usage statistics: off (no network calls).
for _name, _value in (("FLWR_TELEMETRY_ENABLED", "0"), ("FLWR_DISABLE_UPDATE_CHECK", "1"),
                      ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_name, _value)
SHOW_ROUNDS = (1, 2, 3, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200)


# -------------------------------------------------------------------------------- data
def load_task(name, args):
    """(X_train, X_test, y_train, y_test, hidden, is_classification)."""
    if name == "boston":
        X, y = load_boston_housing(return_X_y=True)
        split = json.loads((HERE / "data" / "boston_hl_splits.json").read_text())
        split = split["splits"][0]
        tr, te = np.asarray(split["train"]), np.asarray(split["test"])
        scaler = StandardScaler().fit(X[tr])
        return scaler.transform(X[tr]), scaler.transform(X[te]), y[tr], y[te], (50,), False
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = X * (255.0 / 16.0)
        parts = train_test_split(X, y, test_size=0.2, stratify=y, random_state=args.seed)
        hidden = (100,)
    else:
        X, y = load_mnist_5k(return_X_y=True)
        parts = train_test_split(X, y, test_size=1000, train_size=len(y) - 1000,
                                 stratify=y, random_state=args.seed)
        hidden = tuple(args.mnist_hidden)
    X_tr, X_te, y_tr, y_te = parts
    scaler = StandardScaler().fit(X_tr / 255.0)
    return (scaler.transform(X_tr / 255.0), scaler.transform(X_te / 255.0), y_tr, y_te,
            hidden, True)


# ----------------------------------------------------------------------------- scoring
def score(model, X, y, is_clf, y_shift=0.0, y_scale=1.0):
    """Accuracy and log loss (classification) or RMSE (regression, original units)."""
    if is_clf:
        proba = model.predict_proba(X)
        return dict(accuracy=float(np.mean(model.classes_[proba.argmax(1)] == y)),
                    log_loss=float(log_loss(y, proba, labels=model.classes_)))
    pred = model.predict(X) * y_scale + y_shift
    return dict(rmse=float(np.sqrt(np.mean((pred - y) ** 2))))


def metric(is_clf):
    return "accuracy" if is_clf else "rmse"


def reached(curve, target, is_clf):
    """First round (1-based) whose score reaches ``target`` (None if never)."""
    for r, s in enumerate(curve, start=1):
        if (s >= target - 1e-12) if is_clf else (s <= target + 1e-12):
            return r
    return None


def target_of(central, is_clf):
    """95% of a centralized accuracy; for RMSE, within RMSE / 0.95."""
    return 0.95 * central if is_clf else central / 0.95


# ------------------------------------------------------------------------------ methods
def em_params(hidden, args):
    return dict(hidden_layer_sizes=hidden, batch_size=32, random_state=args.seed,
                local_epochs=args.local_epochs)


def run_em_federated(task, ids, args):
    X, X_te, y, y_te, hidden, is_clf = task
    est = (EMTDAMPClassifier if is_clf else EMTDAMPRegressor)(**em_params(hidden, args))
    kwargs = dict(classes=np.unique(y)) if is_clf else dict(
        y_mean=[y.mean()], y_scale=[y.std()])
    msg = initial_message(est, X.shape[1], X.shape[0], **kwargs)
    clients = np.unique(ids)
    rng = np.random.default_rng(args.seed)
    out = dict(curve=[], seconds=[], down=[], up=[], compact_down=[], compact_up=[])
    # Centered layer inputs (the classifier's default): before round 1 the clients pool
    # each layer's input mean, one layer at a time (a count and a vector per layer).
    t0 = time.perf_counter()
    out["shift_exchanges"] = 0
    while msg.pending_shift is not None:
        msg = server_shift_step(msg, [client_shift_sums(msg, X[ids == k]) for k in clients])
        out["shift_exchanges"] += 1
    out["shift_seconds"] = time.perf_counter() - t0
    for _ in range(args.rounds):
        seeds = rng.integers(np.iinfo(np.int32).max, size=clients.size)
        t0 = time.perf_counter()
        local = [client_step(msg, X[ids == k], y[ids == k], random_state=int(s), client=k)
                 for k, s in zip(clients, seeds)]
        new = server_step(msg, local)
        out["seconds"].append(time.perf_counter() - t0)
        out["down"].append(clients.size * msg.nbytes)
        out["up"].append(sum(lm.nbytes for lm in local))
        out["compact_down"].append(clients.size * msg.compact_nbytes())
        out["compact_up"].append(sum(lm.compact_nbytes() for lm in local))
        msg = new
        model = to_estimator(msg)
        out["curve"].append(score(model, X_te, y_te, is_clf))
    out["kept"] = [int(k) for k in model.n_neurons_kept_]
    out["noise_variance"] = float(model.noise_variance_)
    return out


def run_em_flower(task, ids, args):
    """EMTDAMPStrategy in Flower's simulation runtime, then the primitives replaying it."""
    import logging
    import tempfile

    from sk_tdamp.federated.flower import (
        EMTDAMPStrategy,
        client_seed,
        from_arrays,
        make_client_app,
        simulate,
    )

    logging.getLogger("flwr").setLevel(logging.WARNING)
    X, X_te, y, y_te, hidden, is_clf = task
    est = (EMTDAMPClassifier if is_clf else EMTDAMPRegressor)(**em_params(hidden, args))
    clients = np.unique(ids)
    curve = {}

    def evaluate(server_round, arrays):  # server side, after every round
        if server_round > 0:
            curve[server_round] = score(to_estimator(from_arrays(arrays)), X_te, y_te,
                                        is_clf)

    with tempfile.TemporaryDirectory() as tmp:
        for k in clients:  # each SuperNode reads its own client's file
            np.savez(Path(tmp) / f"client{k}.npz", X=X[ids == k], y=y[ids == k])

        def data(context):
            with np.load(Path(tmp) / f"client{context.node_config['partition-id']}.npz") as f:
                return f["X"], f["y"]

        strategy = EMTDAMPStrategy(est, min_available_nodes=clients.size,
                                   random_state=args.seed)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)  # inherited by the Ray worker
        # One Ray actor: the clients run one after the other, as in the other methods.
        backend = {"init_args": {"num_cpus": 1}, "client_resources": {"num_cpus": 1}}
        t0, c0 = time.perf_counter(), time.process_time()
        simulate(strategy, make_client_app(data), clients.size, num_rounds=args.rounds,
                 evaluate_fn=evaluate, backend_config=backend)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    hist = strategy.history_
    out = dict(curve=[curve[r] for r in range(1, args.rounds + 1)],
               seconds=[h["wall_time"] for h in hist],
               down=[h["download_bytes"] for h in hist], up=[h["upload_bytes"] for h in hist],
               compact_down=[h["download_bytes"] for h in hist],
               compact_up=[h["upload_bytes"] for h in hist], total_seconds=total,
               server_cpu_seconds=cpu, failures=len(strategy.failures_))
    out["setup_seconds"] = total - sum(out["seconds"])
    # Replay: the deployment primitives in this process, with the Flower run's seeds.
    msg = strategy.initial_message_
    for h in hist:
        msg = server_step(msg, [client_step(msg, X[ids == k], y[ids == k],
                                            random_state=client_seed(h["seed"], int(k)),
                                            client=int(k)) for k in clients])
        # (clients are numbered 0 .. K-1 = the partition ids of the SuperNodes)
    final, replay = strategy.global_message_.to_dict(), msg.to_dict()
    out["replay_identical"] = sorted(final) == sorted(replay) and all(
        np.array_equal(final[key], replay[key]) for key in final)
    model = to_estimator(strategy.global_message_)
    out["replay_max_abs_diff"] = float(np.max(np.abs(
        model.predict_proba(X_te) - to_estimator(msg).predict_proba(X_te)))) if is_clf \
        else float(np.max(np.abs(model.predict(X_te) - to_estimator(msg).predict(X_te))))
    out["kept"] = [int(k) for k in model.n_neurons_kept_]
    return out


def run_em_centralized(task, args):
    X, X_te, y, y_te, hidden, is_clf = task
    cls = EMTDAMPClassifier if is_clf else EMTDAMPRegressor
    est = cls(**em_params(hidden, args), max_iter=1, warm_start=True)
    out = dict(curve=[], seconds=[])
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        est.fit(X, y)
        out["seconds"].append(time.perf_counter() - t0)
        out["curve"].append(score(est, X_te, y_te, is_clf))
    out["kept"] = [int(k) for k in est.n_neurons_kept_]
    return out


def make_mlp(hidden, is_clf, args):
    cls = MLPClassifier if is_clf else MLPRegressor
    return cls(hidden_layer_sizes=hidden, solver="adam", batch_size=32,
               learning_rate_init=args.mlp_lr, random_state=args.seed)


def mlp_bytes(model):
    return int(sum(a.nbytes for a in model.coefs_ + model.intercepts_))


def run_fedavg(task, ids, args):
    X, X_te, y, y_te, hidden, is_clf = task
    shift, scale = (0.0, 1.0) if is_clf else (y.mean(), y.std())
    yt = y if is_clf else (y - shift) / scale
    classes = np.unique(y) if is_clf else None
    clients = np.unique(ids)
    models = [make_mlp(hidden, is_clf, args) for _ in clients]
    weights = np.array([np.sum(ids == k) for k in clients], dtype=float)
    weights /= weights.sum()
    coefs = intercepts = None
    out = dict(curve=[], seconds=[], down=[], up=[])
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for k, model in zip(clients, models):
            if coefs is not None:  # load the global weights
                model.coefs_ = [c.copy() for c in coefs]
                model.intercepts_ = [b.copy() for b in intercepts]
            for _ in range(args.local_epochs):
                fit = dict(classes=classes) if is_clf else {}
                model.partial_fit(X[ids == k], yt[ids == k], **fit)
        coefs = [sum(a * m.coefs_[i] for a, m in zip(weights, models))
                 for i in range(len(models[0].coefs_))]
        intercepts = [sum(a * m.intercepts_[i] for a, m in zip(weights, models))
                      for i in range(len(models[0].intercepts_))]
        out["seconds"].append(time.perf_counter() - t0)
        out["down"].append(clients.size * mlp_bytes(models[0]))
        out["up"].append(clients.size * mlp_bytes(models[0]))
        server = models[0]  # score the averaged weights
        saved = server.coefs_, server.intercepts_
        server.coefs_, server.intercepts_ = coefs, intercepts
        out["curve"].append(score(server, X_te, y_te, is_clf, shift, scale))
        server.coefs_, server.intercepts_ = saved
    return out


def run_mlp_centralized(task, args):
    X, X_te, y, y_te, hidden, is_clf = task
    shift, scale = (0.0, 1.0) if is_clf else (y.mean(), y.std())
    yt = y if is_clf else (y - shift) / scale
    model = make_mlp(hidden, is_clf, args)
    out = dict(curve=[], seconds=[])
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        model.partial_fit(X, yt, **(dict(classes=np.unique(y)) if is_clf else {}))
        out["seconds"].append(time.perf_counter() - t0)
        out["curve"].append(score(model, X_te, y_te, is_clf, shift, scale))
    return out


# ---------------------------------------------------------------------------- one task
def run_dataset(name, args):
    task = load_task(name, args)
    X, X_te, y, y_te, hidden, is_clf = task
    arch = "-".join(map(str, (X.shape[1], *hidden, len(np.unique(y)) if is_clf else 1)))
    print(f"[{name}] {arch}, train {X.shape[0]}, test {X_te.shape[0]}", flush=True)
    res = dict(architecture=arch, n_train=int(X.shape[0]), n_test=int(X_te.shape[0]),
               metric=metric(is_clf), central={}, partitions={})
    res["central"][EM_CEN] = run_em_centralized(task, args)
    res["central"][FA_CEN] = run_mlp_centralized(task, args)
    for label, iid in (("IID", True), (f"Dirichlet({args.concentration})", False)):
        ids = partition_clients(y, args.clients, iid=iid, concentration=args.concentration,
                                random_state=args.seed)
        sizes = np.bincount(ids)
        runs = {EM_FED: run_em_federated(task, ids, args), FA_FED: run_fedavg(task, ids, args)}
        if args.flower:
            runs[EM_FLOWER] = run_em_flower(task, ids, args)
        res["partitions"][label] = dict(client_sizes=sizes.tolist(), runs=runs)
        m = metric(is_clf)
        print(f"  {label}: " + "  ".join(
            f"{k} {r['curve'][-1][m]:.4f} ({np.mean(r['seconds']):.2f}s/round)"
            for k, r in runs.items()), flush=True)
    for k, r in res["central"].items():
        print(f"  {k}: {r['curve'][-1][metric(is_clf)]:.4f}", flush=True)
    return res


# ------------------------------------------------------------------------------ report
def fmt(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def human(n):
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def curve_of(run, m):
    return [s[m] for s in run["curve"]]


def dataset_tables(name, res, args):
    m, is_clf, rounds = res["metric"], res["metric"] == "accuracy", res["rounds"]
    cen_em, cen_fa = (curve_of(res["central"][k], m) for k in (EM_CEN, FA_CEN))
    best_central = max(cen_em[-1], cen_fa[-1]) if is_clf else min(cen_em[-1], cen_fa[-1])
    lines = [f"## {name}: {res['architecture']}, {res['n_train']} train / {res['n_test']} "
             f"test, {args.clients} clients", "",
             f"Centralized after {rounds} epochs: EM-TDAMP {m} {cen_em[-1]:.4f} "
             f"({np.mean(res['central'][EM_CEN]['seconds']):.2f} s / epoch), MLP "
             f"{cen_fa[-1]:.4f} ({np.mean(res['central'][FA_CEN]['seconds']):.2f} s / "
             "epoch)" + (f"; after 15 epochs: EM-TDAMP {cen_em[14]:.4f}, MLP "
                         f"{cen_fa[14]:.4f}" if len(cen_em) >= 15 else "")
             + ".", "",
             f"| partition | method | {m} round {rounds} | {m} round 15 | "
             f"rounds to 95% of own centralized | MB sent until then | rounds to 95% of "
             f"best centralized ({fmt(target_of(best_central, is_clf))}) | bytes down / "
             "round | bytes up / round | compact up / round | s / round |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, part in res["partitions"].items():
        for method, run in part["runs"].items():
            curve = curve_of(run, m)
            own = cen_em[-1] if method in (EM_FED, EM_FLOWER) else cen_fa[-1]
            at15 = curve[14] if len(curve) >= 15 else None
            r_own = reached(curve, target_of(own, is_clf), is_clf)
            sent = None if r_own is None else (
                np.sum(run["down"][:r_own]) + np.sum(run["up"][:r_own])) / 1e6
            lines.append(
                f"| {label} | {method} | {curve[-1]:.4f} | {fmt(at15)} | "
                f"{fmt(r_own, 'd')} | {fmt(sent, '.1f')} | "
                f"{fmt(reached(curve, target_of(best_central, is_clf), is_clf), 'd')} | "
                f"{human(np.mean(run['down']))} | {human(np.mean(run['up']))} | "
                + (human(np.mean(run["compact_up"])) if "compact_up" in run else "-")
                + f" | {np.mean(run['seconds']):.2f} |")
    lines += [""]
    sizes = "; ".join(f"{label}: {part['client_sizes']}"
                      for label, part in res["partitions"].items())
    lines += [f"Client sizes: {sizes}.", ""]
    shown = [r for r in SHOW_ROUNDS if r <= rounds]
    if rounds not in shown:
        shown.append(rounds)
    header = ["round", EM_CEN + " (epoch)", FA_CEN + " (epoch)"]
    cols = [cen_em, cen_fa]
    for label, part in res["partitions"].items():
        for method, run in part["runs"].items():
            header.append(f"{method}, {label}")
            cols.append(curve_of(run, m))
    lines += [f"Test {m} per round:", "", "| " + " | ".join(header) + " |",
              "|" + "---|" * len(header)]
    for r in shown:
        lines.append(f"| {r} | " + " | ".join(f"{c[r - 1]:.4f}" for c in cols) + " |")
    if is_clf:
        ll = [res["central"][EM_CEN]["curve"][-1]["log_loss"]] + [
            part["runs"][EM_FED]["curve"][-1]["log_loss"]
            for part in res["partitions"].values()]
        lines += ["", "EM-TDAMP test log loss at the last round: centralized "
                  f"{ll[0]:.4f}; federated " + ", ".join(
                      f"{label} {v:.4f}" for label, v in zip(res["partitions"], ll[1:]))
                  + "."]
    kept = "; ".join(f"{label}: {part['runs'][EM_FED]['kept']}"
                     for label, part in res["partitions"].items())
    lines += ["", f"EM-TDAMP hidden neurons kept: centralized "
              f"{res['central'][EM_CEN]['kept']}; federated {kept}."]
    flower = [(label, part["runs"][EM_FLOWER]) for label, part in res["partitions"].items()
              if EM_FLOWER in part["runs"]]
    if flower:
        lines += ["", f"{EM_FLOWER} (Flower's simulation runtime, Ray, {args.clients} "
                  "virtual SuperNodes):", "",
                  f"| partition | {m} round {rounds} | max abs. {m} difference to "
                  f"{EM_FED}, over rounds | mean abs. difference | replay by the "
                  "primitives with Flower's seeds | outside the rounds: Ray start and stop, "
                  "census, input shifts, evaluation (s) | s / round | total (s) | failed "
                  "clients |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for label, run in flower:
            diff = np.abs(np.array(curve_of(run, m)) -
                          np.array(curve_of(res["partitions"][label]["runs"][EM_FED], m)))
            replay = ("bit-identical posterior" if run["replay_identical"] else
                      f"differs (max {run['replay_max_abs_diff']:.2e})")
            lines.append(f"| {label} | {curve_of(run, m)[-1]:.4f} | {diff.max():.4f} | "
                         f"{diff.mean():.4f} | {replay} | {run['setup_seconds']:.1f} | "
                         f"{np.mean(run['seconds']):.2f} | {run['total_seconds']:.1f} | "
                         f"{run['failures']} |")
    return lines


def environment(args):
    import sk_tdamp

    root = Path(sk_tdamp.__file__).resolve().parent.parent

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = git("rev-parse", "--short", "HEAD")
    diff = git("diff", "HEAD", "--", "sk_tdamp") if commit else None
    return dict(commit=commit or os.environ.get("SK_TDAMP_COMMIT", "unknown"),
                sk_tdamp_dirty=bool(diff),
                sk_tdamp_diff_sha1=hashlib.sha1((diff or "").encode()).hexdigest()[:10],
                python=platform.python_version(), numpy=np.__version__,
                sklearn=sklearn.__version__, cpus=os.cpu_count(), threads=args.threads)


def write_report(results, args, command, path):
    env = results["environment"]
    lines = ["# Federated learning: EM-TDAMP vs FedAvg of scikit-learn MLPs", "",
             f"Produced by `{command}`", "",
             f"sk_tdamp commit {env['commit']}"
             + (f" with uncommitted changes under sk_tdamp/ (diff sha1 "
                f"{env['sk_tdamp_diff_sha1']})" if env["sk_tdamp_dirty"] else "")
             + f"; Python {env['python']}, NumPy {env['numpy']}, scikit-learn "
             f"{env['sklearn']}; {env['cpus']} CPUs shared with other jobs, BLAS limited to "
             f"{env['threads']} thread(s); clients run one after the other.", "",
             f"{args.clients} clients, {args.local_epochs} local "
             f"epoch(s) per round, batch size 32, seed {args.seed}; FedAvg learning rate "
             f"{args.mlp_lr}. Bytes: what all clients download (the global message, or the "
             "global weights) and upload (local messages, or local weights) in one round; "
             "'compact' is the lossless encoding that leaves out all-zero weight columns. "
             "EM-TDAMP messages carry per weight the moments (m, c) and the evidence "
             "(Hp, Gp) up, plus the initialization pseudo-evidence (H0, G0) down; FedAvg "
             "sends one float64 per weight each way.", ""]
    for name, res in results["datasets"].items():
        lines += dataset_tables(name, res, args) + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "mnist5k", "boston"],
                   choices=["digits", "mnist5k", "boston"])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--boston-rounds", type=int, default=100,
                   help="rounds for Boston (small clients: more rounds)")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--concentration", type=float, default=0.5)
    p.add_argument("--local-epochs", type=int, default=1)
    p.add_argument("--mnist-hidden", type=int, nargs="+", default=[100])
    p.add_argument("--mlp-lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.add_argument("--quick", action="store_true", help="digits and boston, 5 rounds")
    p.add_argument("--flower", action="store_true",
                   help="add EM-TDAMP on Flower's simulation runtime (flower extra)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "federated.md")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick:
        args.datasets, args.rounds, args.boston_rounds = ["digits", "boston"], 5, 5
    command = "python benchmarks/federated.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    results = dict(environment=environment(args), datasets={})
    rounds = args.rounds
    with threadpool_limits(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # MLP partial_fit on a client smaller than the batch: "batch_size ... clipped".
        warnings.filterwarnings("ignore", message="Got `batch_size`", category=UserWarning)
        for name in args.datasets:
            args.rounds = args.boston_rounds if name == "boston" else rounds
            results["datasets"][name] = run_dataset(name, args)
            results["datasets"][name]["rounds"] = args.rounds
            write_report(results, args, command.strip(), args.out)
            args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
