"""Classification benchmark: EM-TDAMP against scikit-learn's MLPClassifier (issue 3).

Every method runs in the same process, on the same split, with the same architecture
(784-300-100-10; 64-300-100-10 for digits), the same preprocessing and the same batch
size. Data sets:

- ``digits``: scikit-learn's 8x8 digits, stratified 80/20 split;
- ``mnist5k``: ``sk_tdamp.datasets.load_mnist_5k`` (sorted by class), stratified
  4000/1000 split;
- ``fashion``: Fashion-MNIST 60k/10k read from ``--fashion-path`` (skipped with a message
  when the files are absent); ``--fashion-train-size`` takes a stratified subset of the
  training set.

Preprocessing (``--preprocessing``): ``unit`` = pixels / 255 only (the default: both
methods are more accurate with it on MNIST-5k, rare border pixels otherwise get
standardized values in the tens); ``standard`` = pixels / 255 then a StandardScaler fitted
on the training part.
``--compare-preprocessing`` adds both methods with the other choice as extra rows.

Training. EM-TDAMP (``EMTDAMPClassifier.partial_fit``: one PasP pass) and the MLP (adam,
``MLPClassifier.partial_fit``: one epoch) are trained epoch by epoch in lockstep, both with
``shuffle=False`` and fed the same permutation of the training set, drawn from one seeded
generator per epoch; the test set is scored after every epoch (scoring time is not
counted as fitting time). Interleaving the two methods epoch by epoch makes them share the
machine's load, so the time ratios are fairer than two sequential runs. A third method,
"MLP early stopping" (``fit`` with ``early_stopping=True, max_iter=200``), is the best-MLP
reference.

Metrics per method: test accuracy, log loss, expected calibration error (15 equal-width
confidence bins, :func:`expected_calibration_error`), fraction of hidden neurons kept
(EM-TDAMP: mean of ``neuron_masks_[1:]``; MLP: 1), fit seconds, seconds per epoch, test
error after epochs 1, 5, 10 and 30, the per-epoch cost ratio EM-TDAMP / MLP and the time
to reach the MLP's final test accuracy as a ratio.

Also: a density sweep on MNIST-5k (``target_density`` against magnitude-pruned MLPs, with
and without a masked fine-tuning) and a memory check (tracemalloc peak while fitting
EM-TDAMP on n rows vs 4n rows).

Usage::

    python benchmarks/classification.py --quick                 # smoke run, a few minutes
    python benchmarks/classification.py --datasets digits mnist5k
    python benchmarks/classification.py --datasets fashion --fashion-train-size 10000
    python benchmarks/classification.py --em-param n_turbo_iter=3 --em-param damping=0.9

EM-TDAMP hyperparameters that are not given keep the estimator's defaults, so the script
follows changes of those defaults. Results go to ``--out`` (Markdown) and the same path with
``.json`` (raw numbers, per-epoch curves included).
"""

import argparse
import ast
import copy
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sk_tdamp import EMTDAMPClassifier
from sk_tdamp.datasets import load_fashion_mnist, load_mnist_5k

HERE = Path(__file__).resolve().parent
HIDDEN = (300, 100)
CHECKPOINTS = (1, 5, 10, 30)
KAPPAS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
EM = "EM-TDAMP"
MLP = "MLP adam"
MLP_ES = "MLP early stopping"


# ----------------------------------------------------------------------------- metrics
def expected_calibration_error(proba, y_true, n_bins=15):
    """Expected calibration error of the top-class confidence.

    The confidence of a prediction is its largest class probability. The interval
    [0, 1] is cut into ``n_bins`` equal-width bins, right-closed ((0, 1/15], (1/15, 2/15],
    ..., a confidence of exactly 0 falls in the first bin); in each bin b the accuracy
    acc_b and the mean confidence conf_b of its predictions are compared, and

        ECE = sum_b (n_b / n) |acc_b - conf_b|

    with n_b the number of predictions in bin b. Empty bins contribute nothing.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Predicted class probabilities, columns in the order of the class indices.
    y_true : ndarray of shape (n_samples,)
        True class indices (0 to n_classes - 1).
    n_bins : int, default=15
        Number of equal-width confidence bins.

    Returns
    -------
    ece : float
        In [0, 1]; 0 for a perfectly calibrated classifier.
    """
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    # (n_b / n) |acc_b - conf_b| = |sum of correct - sum of confidences in b| / n
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    return float(np.abs(acc_sum - conf_sum).sum() / len(y_true))


def scores(model, X, y):
    """Accuracy, log loss and ECE of a fitted classifier (y holds class indices)."""
    proba = model.predict_proba(X)
    n_classes = proba.shape[1]
    return dict(
        accuracy=float(np.mean(proba.argmax(axis=1) == y)),
        log_loss=float(log_loss(y, proba, labels=np.arange(n_classes))),
        ece=expected_calibration_error(proba, y),
    )


def kept_fraction(model):
    """Fraction of hidden neurons kept, pooled over the hidden layers (MLP: 1)."""
    if hasattr(model, "neuron_masks_"):
        return float(np.mean(np.concatenate(model.neuron_masks_[1:])))
    return 1.0


# -------------------------------------------------------------------------------- data
def load_split(name, args):
    """Return (X_train, X_test, y_train, y_test) with raw pixels in [0, 255], or None."""
    seed = args.seed
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = X * (255.0 / 16.0)  # digits pixels are 0..16: bring them to the 0..255 scale
        return train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    if name == "mnist5k":
        X, y = load_mnist_5k(return_X_y=True)
        n_test = args.mnist_test_size
        return train_test_split(X, y, test_size=n_test, train_size=len(y) - n_test,
                                stratify=y, random_state=seed)
    if name == "fashion":
        try:
            X_tr, y_tr = load_fashion_mnist(args.fashion_path, kind="train")
            X_te, y_te = load_fashion_mnist(args.fashion_path, kind="test")
        except FileNotFoundError as exc:
            print(f"[fashion] skipped: {exc}", flush=True)
            return None
        if args.fashion_train_size and args.fashion_train_size < len(y_tr):
            X_tr, _, y_tr, _ = train_test_split(
                X_tr, y_tr, train_size=args.fashion_train_size, stratify=y_tr,
                random_state=seed)
        if args.fashion_test_size and args.fashion_test_size < len(y_te):
            X_te, _, y_te, _ = train_test_split(
                X_te, y_te, train_size=args.fashion_test_size, stratify=y_te,
                random_state=seed)
        return X_tr, X_te, y_tr, y_te
    raise ValueError(f"unknown data set {name!r}")


def preprocess(X_train, X_test, kind):
    """``unit``: pixels / 255; ``standard``: then a StandardScaler fitted on train."""
    X_train, X_test = X_train / 255.0, X_test / 255.0
    if kind == "standard":
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return np.ascontiguousarray(X_train), np.ascontiguousarray(X_test)


# ------------------------------------------------------------------------------ models
def make_em(args, **overrides):
    params = dict(hidden_layer_sizes=HIDDEN, batch_size=args.batch_size,
                  random_state=args.seed)
    params.update(args.em_params)
    params.update(overrides)
    params["shuffle"] = False  # the benchmark feeds its own permutation every epoch
    return EMTDAMPClassifier(**params)


def make_mlp(args, **overrides):
    params = dict(hidden_layer_sizes=HIDDEN, solver="adam", batch_size=args.batch_size,
                  random_state=args.seed, shuffle=False)
    params.update(args.mlp_params)
    params.update(overrides)
    return MLPClassifier(**params)


def epoch_permutations(n_samples, seed):
    """The same sequence of permutations for every method trained with ``seed``."""
    rng = np.random.default_rng(seed)
    while True:
        yield rng.permutation(n_samples)


def train_lockstep(models, X, y, X_test, y_test, n_epochs, seed, on_step=None):
    """Train ``models`` (name -> estimator) one epoch each in turn, scoring after each.

    Returns name -> dict(curve=[per-epoch scores], epoch_s=[...], error=str or None,
    model=fitted estimator). A model that raises stops; the others go on.
    """
    classes = np.unique(y)
    runs = {name: dict(curve=[], epoch_s=[], error=None, model=model)
            for name, model in models.items()}
    perms = epoch_permutations(len(y), seed)
    for epoch in range(1, n_epochs + 1):
        perm = next(perms)
        X_e, y_e = X[perm], y[perm]
        for name, run in runs.items():
            if run["error"]:
                continue
            t0 = time.perf_counter()
            try:
                run["model"].partial_fit(X_e, y_e, classes=classes)
            except (ValueError, FloatingPointError) as exc:
                run["error"] = f"epoch {epoch}: {type(exc).__name__}: {exc}"
                print(f"    {name}: FAILED {run['error']}", flush=True)
                continue
            run["epoch_s"].append(time.perf_counter() - t0)
            if on_step is not None:
                on_step(name, run["model"])
            s = scores(run["model"], X_test, y_test)
            s["kept"] = kept_fraction(run["model"])
            run["curve"].append(s)
        line = "  ".join(
            f"{name} err {1 - r['curve'][-1]['accuracy']:.4f} ({r['epoch_s'][-1]:.1f}s)"
            for name, r in runs.items() if r["curve"] and len(r["curve"]) == epoch)
        print(f"    epoch {epoch:3d}: {line}", flush=True)
    return runs


def summarize_run(run):
    """Final metrics, timing and checkpoints of one ``train_lockstep`` run."""
    out = dict(error=run["error"], epochs=len(run["curve"]))
    if not run["curve"]:
        return out
    out.update(run["curve"][-1])
    out["fit_s"] = float(np.sum(run["epoch_s"]))
    out["s_per_epoch"] = float(np.mean(run["epoch_s"]))
    out["epoch_s"] = [float(t) for t in run["epoch_s"]]
    out["test_error_curve"] = [1 - c["accuracy"] for c in run["curve"]]
    out["curve"] = run["curve"]
    if hasattr(run["model"], "noise_variance_"):
        out["noise_variance"] = float(run["model"].noise_variance_)
        out["n_neurons_kept"] = list(run["model"].n_neurons_kept_)
    return out


def time_to_reach(summary, target_acc):
    """Cumulative fit seconds until the test accuracy first reaches ``target_acc``."""
    if "test_error_curve" not in summary:
        return None
    cum = np.cumsum(summary["epoch_s"])
    for t, err in zip(cum, summary["test_error_curve"]):
        if 1 - err >= target_acc - 1e-12:
            return float(t)
    return None


def fit_mlp_early_stopping(args, X, y, X_test, y_test):
    model = make_mlp(args, early_stopping=True, max_iter=args.es_max_iter, shuffle=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    fit_s = time.perf_counter() - t0
    out = scores(model, X_test, y_test)
    out.update(kept=1.0, fit_s=fit_s, epochs=int(model.n_iter_),
               s_per_epoch=fit_s / model.n_iter_, error=None)
    return out


# ------------------------------------------------------------------------ one data set
def run_dataset(name, args):
    split = load_split(name, args)
    if split is None:
        return None
    X_tr_raw, X_te_raw, y_tr, y_te = split
    n_features = X_tr_raw.shape[1]
    print(f"[{name}] train {X_tr_raw.shape}, test {X_te_raw.shape}", flush=True)
    kinds = [args.preprocessing]
    if args.compare_preprocessing:
        kinds.append("unit" if args.preprocessing == "standard" else "standard")
    result = dict(n_train=len(y_tr), n_test=len(y_te),
                  architecture="-".join(map(str, (n_features, *HIDDEN, 10))),
                  preprocessing=args.preprocessing, methods={})
    for kind in kinds:
        X_tr, X_te = preprocess(X_tr_raw, X_te_raw, kind)
        tag = "" if kind == args.preprocessing else f" [{kind}]"
        print(f"  preprocessing {kind}: EM-TDAMP and MLP, {args.epochs} epochs", flush=True)
        runs = train_lockstep({EM + tag: make_em(args), MLP + tag: make_mlp(args)},
                              X_tr, y_tr, X_te, y_te, args.epochs, args.seed)
        for method, run in runs.items():
            result["methods"][method] = summarize_run(run)
            if method == MLP + tag and kind == args.preprocessing:
                result["_dense_mlp"] = run["model"]
        print(f"  preprocessing {kind}: MLP early stopping", flush=True)
        result["methods"][MLP_ES + tag] = fit_mlp_early_stopping(args, X_tr, y_tr, X_te, y_te)
        add_ratios(result, tag)
    return result


def add_ratios(result, tag):
    """Per-epoch cost ratio and time-to-reach ratios for one preprocessing choice."""
    em, mlp, es = (result["methods"].get(k + tag) for k in (EM, MLP, MLP_ES))
    ratios = {}
    if em.get("epoch_s") and mlp.get("epoch_s"):
        n = min(len(em["epoch_s"]), len(mlp["epoch_s"]))
        per_epoch = np.array(em["epoch_s"][:n]) / np.array(mlp["epoch_s"][:n])
        ratios["epoch_cost_ratio_mean"] = em["s_per_epoch"] / mlp["s_per_epoch"]
        ratios["epoch_cost_ratio_median"] = float(np.median(per_epoch))
        target = mlp["accuracy"]
        ratios["target_mlp_final_acc"] = target
        ratios["em_s_to_mlp_final"] = time_to_reach(em, target)
        ratios["mlp_s_to_mlp_final"] = time_to_reach(mlp, target)
        if ratios["em_s_to_mlp_final"] is not None:
            ratios["reach_ratio"] = ratios["em_s_to_mlp_final"] / ratios["mlp_s_to_mlp_final"]
        ratios["target_best_mlp_acc"] = es["accuracy"]
        ratios["em_s_to_best_mlp"] = time_to_reach(em, es["accuracy"])
        ratios["best_mlp_fit_s"] = es["fit_s"]
        if ratios["em_s_to_best_mlp"] is not None:
            ratios["reach_best_ratio"] = ratios["em_s_to_best_mlp"] / es["fit_s"]
    result.setdefault("ratios", {})[tag or "main"] = ratios


# ---------------------------------------------------------------------- density sweep
def prune_by_magnitude(mlp, kappa):
    """Copy of ``mlp`` keeping, per hidden layer, the ceil(kappa * width) neurons whose
    outgoing weights (rows of ``coefs_[l]``) have the largest L2 norm; the others' rows
    are zeroed. Returns (pruned copy, list of boolean masks per hidden layer)."""
    pruned = copy.deepcopy(mlp)
    masks = []
    for layer in range(1, len(pruned.coefs_)):
        W = pruned.coefs_[layer]
        n_keep = math.ceil(kappa * W.shape[0])
        keep = np.zeros(W.shape[0], dtype=bool)
        keep[np.argsort(-np.linalg.norm(W, axis=1))[:n_keep]] = True
        W[~keep] = 0.0
        masks.append(keep)
    return pruned, masks


def apply_masks(mlp, masks):
    for layer, keep in zip(range(1, len(mlp.coefs_)), masks):
        mlp.coefs_[layer][~keep] = 0.0


def finetune_masked(mlp, masks, X, y, n_epochs, seed, batch_size):
    """Adam steps through ``partial_fit`` on one minibatch at a time, re-zeroing the pruned
    rows after every step, so the mask holds throughout (the optimizer state carries over
    between calls). Permutations come from a generator seeded apart from training."""
    perms = epoch_permutations(len(y), seed + 1)
    for _ in range(n_epochs):
        perm = next(perms)
        for start in range(0, len(y), batch_size):
            idx = perm[start:start + batch_size]
            with warnings.catch_warnings():  # the last batch is short: clipping is fine
                warnings.simplefilter("ignore", UserWarning)
                mlp.partial_fit(X[idx], y[idx])
            apply_masks(mlp, masks)
    return mlp


def density_sweep(args, dense_mlp):
    X_tr_raw, X_te_raw, y_tr, y_te = load_split("mnist5k", args)
    X_tr, X_te = preprocess(X_tr_raw, X_te_raw, args.sweep_preprocessing)
    if (dense_mlp is None or args.sweep_preprocessing != args.preprocessing
            or args.sweep_epochs != args.epochs):
        print(f"  sweep: training the dense MLP ({args.sweep_epochs} epochs)", flush=True)
        dense_mlp = train_lockstep({MLP: make_mlp(args)}, X_tr, y_tr, X_te, y_te,
                                   args.sweep_epochs, args.seed)[MLP]["model"]
    rows = []
    for kappa in args.kappas:
        print(f"  sweep kappa={kappa}", flush=True)
        run = train_lockstep({EM: make_em(args, target_density=kappa)}, X_tr, y_tr, X_te,
                             y_te, args.sweep_epochs, args.seed)[EM]
        em = summarize_run(run)
        em.pop("curve", None)
        pruned, masks = prune_by_magnitude(dense_mlp, kappa)
        mlp_pruned = scores(pruned, X_te, y_te)
        mlp_pruned["kept"] = float(np.mean(np.concatenate(masks)))
        t0 = time.perf_counter()
        tuned = finetune_masked(pruned, masks, X_tr, y_tr, args.finetune_epochs, args.seed,
                                args.batch_size)
        mlp_tuned = scores(tuned, X_te, y_te)
        mlp_tuned["fit_s"] = time.perf_counter() - t0
        rows.append(dict(kappa=kappa, em=em, mlp_pruned=mlp_pruned, mlp_finetuned=mlp_tuned))
        print(f"    EM-TDAMP acc {em.get('accuracy', float('nan')):.4f} kept "
              f"{em.get('kept', float('nan')):.3f} | pruned MLP {mlp_pruned['accuracy']:.4f}"
              f" | fine-tuned {mlp_tuned['accuracy']:.4f}", flush=True)
    return dict(preprocessing=args.sweep_preprocessing, epochs=args.sweep_epochs,
                finetune_epochs=args.finetune_epochs,
                dense_mlp=scores(dense_mlp, X_te, y_te), rows=rows)


# ----------------------------------------------------------------------------- memory
def traced_peak(make_model, X, y, n_epochs):
    """Peak bytes allocated (tracemalloc) while ``fit`` runs ``n_epochs`` epochs, over
    what was allocated before (the data are created before tracing starts)."""
    model = make_model(n_epochs)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


def memory_check(args):
    X_tr_raw, X_te_raw, y_tr, _ = load_split("mnist5k", args)
    X_tr, _ = preprocess(X_tr_raw, X_te_raw, args.sweep_preprocessing)
    n = args.memory_rows
    X_small, y_small = np.ascontiguousarray(X_tr[:n]), y_tr[:n]
    X_big, y_big = np.ascontiguousarray(X_tr[:4 * n]), y_tr[:4 * n]
    if len(y_big) < 4 * n:
        raise ValueError(f"--memory-rows {n}: need {4 * n} training rows, have {len(y_tr)}")
    extra_data = X_big.nbytes + y_big.nbytes - X_small.nbytes - y_small.nbytes
    makers = {
        EM: lambda e: EMTDAMPClassifier(**{**make_em(args).get_params(), "max_iter": e,
                                           "shuffle": True}),
        MLP: lambda e: make_mlp(args, max_iter=e, shuffle=True),
    }
    out = dict(rows=n, epochs=args.memory_epochs, extra_data_bytes=int(extra_data),
               methods={})
    for name, make in makers.items():
        print(f"  memory: {name} on {n} and {4 * n} rows", flush=True)
        try:
            small = traced_peak(make, X_small, y_small, args.memory_epochs)
            big = traced_peak(make, X_big, y_big, args.memory_epochs)
        except (ValueError, FloatingPointError) as exc:
            out["methods"][name] = dict(error=f"{type(exc).__name__}: {exc}")
            continue
        out["methods"][name] = dict(peak_n=int(small), peak_4n=int(big),
                                    extra=int(big - small),
                                    extra_over_data=(big - small) / extra_data)
    return out


# ----------------------------------------------------------------------------- report
def fmt(x, spec=".4f"):
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def checkpoints(n_epochs):
    pts = [c for c in CHECKPOINTS if c <= n_epochs]
    return pts if n_epochs in pts else [*pts, n_epochs]


def dataset_tables(name, res, args):
    pts = checkpoints(args.epochs)
    lines = [f"## {name}: {res['architecture']}, {res['n_train']} train / {res['n_test']} test",
             "", f"Preprocessing `{res['preprocessing']}` unless the method name says "
             "otherwise; batch size " f"{args.batch_size} for every method.", "",
             "The last column is a diagnostic picked on the test set, not a result.", "",
             "| method | test acc. | log loss | ECE (15 bins) | hidden kept | epochs | fit s "
             "| s / epoch | " + " | ".join(f"err@{p}" for p in pts)
             + " | best test acc. (epoch) |",
             "|---" * (9 + len(pts)) + "|"]
    for method, m in res["methods"].items():
        if "accuracy" not in m:
            lines.append(f"| {method} | failed: {m['error']} |" + " |" * (8 + len(pts)))
            continue
        curve = m.get("test_error_curve")
        errs = [fmt(curve[p - 1]) if curve and p <= len(curve) else "-" for p in pts]
        note = f" (stopped: {m['error']})" if m.get("error") else ""
        best = (f"{1 - min(curve):.4f} ({int(np.argmin(curve)) + 1})" if curve else "-")
        lines.append(
            f"| {method}{note} | {m['accuracy']:.4f} | {m['log_loss']:.4f} | {m['ece']:.4f} | "
            f"{m['kept']:.3f} | {m['epochs']} | {m['fit_s']:.1f} | {m['s_per_epoch']:.2f} | "
            + " | ".join(errs) + f" | {best} |")
    extra = [(k, m) for k, m in res["methods"].items() if "n_neurons_kept" in m]
    if extra:
        lines += ["", "EM-TDAMP learned noise variance v and neurons kept per hidden layer: "
                  + "; ".join(f"{k}: v = {m['noise_variance']:.3g}, kept "
                              f"{m['n_neurons_kept']}" for k, m in extra) + "."]
    lines += ["", "| preprocessing | EM / MLP s per epoch (ratio of means) | median of "
              "per-epoch ratios | MLP final acc. | EM s to reach it | MLP s to reach it | "
              "ratio | best-MLP acc. | EM s to reach it | best-MLP fit s | ratio |",
              "|---" * 11 + "|"]
    for tag, r in res.get("ratios", {}).items():
        if not r:
            continue
        lines.append(
            f"| {args.preprocessing if tag == 'main' else tag.strip(' []')} | "
            f"{fmt(r['epoch_cost_ratio_mean'], '.2f')} | "
            f"{fmt(r['epoch_cost_ratio_median'], '.2f')} | {r['target_mlp_final_acc']:.4f} | "
            f"{fmt(r['em_s_to_mlp_final'], '.1f') if r['em_s_to_mlp_final'] else 'not reached'}"
            f" | {fmt(r['mlp_s_to_mlp_final'], '.1f')} | {fmt(r.get('reach_ratio'), '.2f')} | "
            f"{r['target_best_mlp_acc']:.4f} | "
            f"{fmt(r['em_s_to_best_mlp'], '.1f') if r['em_s_to_best_mlp'] else 'not reached'}"
            f" | {r['best_mlp_fit_s']:.1f} | {fmt(r.get('reach_best_ratio'), '.2f')} |")
    return lines


def sweep_tables(sweep):
    d = sweep["dense_mlp"]
    lines = ["## Density sweep, MNIST-5k (784-300-100-10)", "",
             f"Preprocessing `{sweep['preprocessing']}`; EM-TDAMP trained "
             f"{sweep['epochs']} epochs with `target_density=kappa`; the MLP trained once "
             f"({sweep['epochs']} epochs, test acc. {d['accuracy']:.4f}), then for each kappa "
             "the ceil(kappa * width) hidden neurons of each layer with the largest L2 norm "
             "of outgoing weights kept, the other rows of `coefs_` zeroed; "
             f"\"fine-tuned\" = {sweep['finetune_epochs']} more adam epochs with the mask "
             "re-applied after every step.", "",
             "| kappa | EM-TDAMP acc. | log loss | ECE | kept | EM drop vs kappa=1 (points) | "
             "pruned MLP acc. | log loss | ECE | fine-tuned MLP acc. | log loss | ECE |",
             "|---" * 12 + "|"]
    dense_em = [r["em"].get("accuracy") for r in sweep["rows"] if r["kappa"] == 1.0]
    dense_em = dense_em[0] if dense_em else None
    for r in sweep["rows"]:
        e, p, f = r["em"], r["mlp_pruned"], r["mlp_finetuned"]
        drop = (fmt(100 * (dense_em - e["accuracy"]), ".1f")
                if dense_em is not None and "accuracy" in e else "-")
        em_cells = (f"{e['accuracy']:.4f} | {e['log_loss']:.4f} | {e['ece']:.4f} | "
                    f"{e['kept']:.3f} | {drop}" if "accuracy" in e
                    else f"failed: {e['error']} | | | |")
        lines.append(f"| {r['kappa']} | {em_cells} | {p['accuracy']:.4f} | "
                     f"{p['log_loss']:.4f} | {p['ece']:.4f} | {f['accuracy']:.4f} | "
                     f"{f['log_loss']:.4f} | {f['ece']:.4f} |")
    return lines


def memory_tables(mem):
    mb = 1 / 2 ** 20
    lines = ["## Memory while fitting (MNIST-5k rows, tracemalloc)", "",
             f"Peak bytes allocated during `fit` ({mem['epochs']} epochs, `shuffle=True`) on "
             f"n = {mem['rows']} rows and 4n = {4 * mem['rows']} rows; the data are allocated "
             f"before tracing. Extra data (3n rows of X and y): "
             f"{mem['extra_data_bytes'] * mb:.1f} MiB.", "",
             "| method | peak on n (MiB) | peak on 4n (MiB) | extra (MiB) | extra / extra data |",
             "|---|---|---|---|---|"]
    for name, m in mem["methods"].items():
        if "error" in m:
            lines.append(f"| {name} | failed: {m['error']} | | | |")
            continue
        lines.append(f"| {name} | {m['peak_n'] * mb:.1f} | {m['peak_4n'] * mb:.1f} | "
                     f"{m['extra'] * mb:.1f} | {m['extra_over_data']:.2f} |")
    return lines


def environment(args):
    """Versions, and the code actually imported: the git state of the tree holding the
    imported ``sk_tdamp``; for an exported snapshot (no .git) the commit comes from the
    environment variable ``SK_TDAMP_COMMIT``."""
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
    return dict(sk_tdamp_path=str(root / "sk_tdamp"),
                commit=commit or os.environ.get("SK_TDAMP_COMMIT", "unknown"),
                snapshot=commit is None, sk_tdamp_dirty=bool(diff),
                sk_tdamp_diff_sha1=hashlib.sha1((diff or "").encode()).hexdigest()[:10],
                python=platform.python_version(), numpy=np.__version__,
                sklearn=sklearn.__version__, cpus=os.cpu_count(), threads=args.threads)


def write_report(results, args, command, path):
    env = results["environment"]
    lines = ["# Classification: EM-TDAMP vs scikit-learn MLPClassifier", "",
             f"Produced by `{command}`", "",
             f"sk_tdamp imported from `{env['sk_tdamp_path']}`: "
             + (f"an exported snapshot of commit {env['commit']}" if env["snapshot"]
                else f"commit {env['commit']}")
             + (f" with uncommitted changes under sk_tdamp/ (`git diff HEAD -- sk_tdamp` "
                f"sha1 {env['sk_tdamp_diff_sha1']})" if env["sk_tdamp_dirty"] else "")
             + f"; Python {env['python']}, NumPy {env['numpy']}, scikit-learn "
             f"{env['sklearn']}; {env['cpus']} CPUs shared with other jobs, BLAS limited to "
             f"{env['threads']} thread(s). Seconds are wall-clock fit time only (scoring "
             "excluded); EM-TDAMP and the MLP were trained epoch by epoch in lockstep so they "
             "share the machine's load.", "",
             "EM-TDAMP parameters: " + ", ".join(
                 f"{k}={v!r}" for k, v in sorted(results["em_params"].items()))
             + _turbo_text(results.get("em_turbo"))
             + ". MLP parameters: " + ", ".join(
                 f"{k}={v!r}" for k, v in sorted(results["mlp_params"].items())) + ".", ""]
    for name, res in results["datasets"].items():
        lines += dataset_tables(name, res, args) + [""]
    for name in results.get("skipped", []):
        lines += [f"## {name}: skipped (files not found under {args.fashion_path})", ""]
    if results.get("sweep"):
        lines += sweep_tables(results["sweep"]) + [""]
    if results.get("memory"):
        lines += memory_tables(results["memory"]) + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


# ------------------------------------------------------------------------------- main
def parse_params(items):
    """``NAME=VALUE`` strings to a dict; VALUE is a Python literal or a bare string."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=VALUE, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "mnist5k", "fashion"],
                   choices=["digits", "mnist5k", "fashion"])
    p.add_argument("--epochs", type=int, default=30, help="partial_fit epochs per method")
    p.add_argument("--batch-size", type=int, default=32,
                   help="minibatch size of EM-TDAMP and of the MLP (default 32, "
                        "EMTDAMPClassifier's default: at commit f78de0a batch 64 sent v to "
                        "its cap and a 300-100 network did not train on digits)")
    p.add_argument("--preprocessing", choices=["standard", "unit"], default="unit")
    p.add_argument("--compare-preprocessing", action="store_true",
                   help="also run both methods with the other preprocessing")
    p.add_argument("--em-param", action="append", metavar="NAME=VALUE",
                   help="EMTDAMPClassifier parameter (repeatable), e.g. damping=0.9")
    p.add_argument("--mlp-param", action="append", metavar="NAME=VALUE",
                   help="MLPClassifier parameter (repeatable), e.g. learning_rate_init=1e-3")
    p.add_argument("--es-max-iter", type=int, default=200,
                   help="max_iter of the early-stopping MLP")
    p.add_argument("--seed", type=int, default=0, help="split, initialization and shuffling")
    p.add_argument("--mnist-test-size", type=int, default=1000)
    p.add_argument("--fashion-path", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--fashion-train-size", type=int, default=None,
                   help="stratified subset of the 60k training images")
    p.add_argument("--fashion-test-size", type=int, default=None,
                   help="stratified subset of the 10k test images")
    p.add_argument("--no-sweep", dest="sweep", action="store_false",
                   help="skip the MNIST-5k density sweep")
    p.add_argument("--kappas", type=float, nargs="+", default=list(KAPPAS))
    p.add_argument("--sweep-epochs", type=int, default=None, help="default: --epochs")
    p.add_argument("--sweep-preprocessing", choices=["standard", "unit"], default=None,
                   help="default: --preprocessing")
    p.add_argument("--finetune-epochs", type=int, default=3,
                   help="masked fine-tuning epochs of the pruned MLPs")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip the memory check")
    p.add_argument("--memory-rows", type=int, default=1000, help="n (4n must fit in train)")
    p.add_argument("--memory-epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (threadpoolctl)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 epochs, kappas 0.3 and 1.0, 2,000 Fashion-MNIST "
                        "training images, small memory check")
    p.add_argument("--render", metavar="JSON",
                   help="only rewrite the Markdown (--out) from the JSON of an earlier run")
    p.add_argument("--out", default=str(HERE / "results" / "classification.md"))
    return p


def complete_args(args):
    """Apply --quick and the defaults that depend on other flags."""
    if args.quick:
        args.epochs = min(args.epochs, 2)
        args.kappas = [0.3, 1.0]
        args.finetune_epochs = 1
        args.es_max_iter = min(args.es_max_iter, 20)
        args.fashion_train_size = args.fashion_train_size or 2000
        args.fashion_test_size = args.fashion_test_size or 2000
        args.memory_rows = min(args.memory_rows, 250)
        args.memory_epochs = 1
    args.sweep_epochs = args.sweep_epochs or args.epochs
    args.sweep_preprocessing = args.sweep_preprocessing or args.preprocessing
    args.em_params = parse_params(args.em_param)
    args.mlp_params = parse_params(args.mlp_param)
    return args


def render(json_path, out):
    """Rewrite the Markdown report from a JSON file of an earlier run."""
    results = json.loads(Path(json_path).read_text())
    prefix = "python benchmarks/classification.py"
    args = complete_args(build_parser().parse_args(
        shlex.split(results["command"][len(prefix):])))
    write_report(results, args, results["command"], Path(out))


def _turbo_text(turbo):
    """The resolved turbo settings ``[[n, damping] first epoch, [n, damping] after]``."""
    if not turbo:
        return ""
    (n1, d1), (n, d) = turbo
    return (f" ('auto' resolved: n_turbo_iter={n1}, damping={d1} in the first epoch, "
            f"{n}, {d} after)")


def _em_settings(args):
    """``(n_turbo_iter, damping)`` per pass (first, later) of the EM-TDAMP settings used,
    read from a fitted estimator's ``settings_``."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    est = make_em(args)
    depth = len(est.get_params()["hidden_layer_sizes"])  # the "auto" values may use it
    est.set_params(hidden_layer_sizes=(2,) * depth, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        settings = est.fit(X, y).settings_
    return settings.n_turbo_iter, settings.damping


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = complete_args(build_parser().parse_args(argv))
    if args.render:
        render(args.render, args.out)
        return
    command = " ".join(["python benchmarks/classification.py", *map(shlex.quote, argv)])
    results = dict(command=command, environment=environment(args), datasets={},
                   skipped=[], em_params=make_em(args).get_params(),
                   em_turbo=[[n, d] for n, d in zip(*_em_settings(args))],
                   mlp_params=make_mlp(args).get_params())
    out = Path(args.out)
    dense_mlp = None
    with threadpool_limits(args.threads):
        for name in args.datasets:
            res = run_dataset(name, args)
            if res is None:
                results["skipped"].append(name)
                continue
            if name == "mnist5k":
                dense_mlp = res.get("_dense_mlp")
            res.pop("_dense_mlp", None)
            results["datasets"][name] = res
            write_report(results, args, command, out)  # partial results survive a crash
        if args.sweep:
            print("[density sweep] MNIST-5k", flush=True)
            results["sweep"] = density_sweep(args, dense_mlp)
            write_report(results, args, command, out)
        if args.memory:
            print("[memory] MNIST-5k", flush=True)
            results["memory"] = memory_check(args)
    write_report(results, args, command, out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
