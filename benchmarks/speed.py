"""Cost of EM-TDAMP against scikit-learn's MLP, measured in the same run (issue 17).

Every time is CPU time (``time.process_time``) with BLAS on one thread, and every
EM-TDAMP figure has the MLP's beside it from the same process, interleaved epoch by epoch
(the machine is shared: ratios are what to read). Parts (``--parts``):

``epochs``
    MNIST-5k (``sk_tdamp.datasets.load_mnist_5k``, stratified 4000/1000, pixels / 255)
    and Fashion-MNIST (60k/10k from ``--fashion-path``, skipped when absent), network
    784-300-100-10: ``EMTDAMPClassifier.partial_fit`` and ``MLPClassifier.partial_fit``
    (adam) in lockstep on the same permutation per epoch, for each batch size
    (``--batch-sizes``, default 32 128) and each EM-TDAMP dtype (float64, float32); the
    MLP runs in float64. Reported: the first epoch's cost, the median of the later
    epochs, the ratio to the MLP's epoch of the same batch size, test accuracy after 10
    and after the last epoch (``--epochs``, default 30; ``--fashion-epochs`` 10).
``profile``
    One later MNIST-5k epoch (batch 32, float64) under cProfile, time split into
    products (the matrix products with the weights), activations (the tilted moments,
    their special functions and the likelihood), weight passes (elementwise work on
    weight-sized arrays: evidence, module B and the denoiser, damping, PasP, the
    posterior average) and glue (the rest). Run it on another commit's package with
    ``PYTHONPATH`` to get the "before" table; the mapping knows the older names too.
``uci``
    Default fits (``EMTDAMPRegressor`` and ``MLPRegressor`` with their defaults, one
    hidden layer of the protocol's width) on the first ``--uci-splits`` splits of the
    UCI data sets (``benchmarks/uci.py``'s loader and preprocessing; protein is left out
    unless named) and 5-fold CV defaults of ``EMTDAMPClassifier`` / ``MLPClassifier`` on
    scikit-learn's breast_cancer and wine (StandardScaler): median fit time per split and
    its ratio, with test RMSE / log-likelihood or accuracy / log loss.
``memory``
    Peak traced memory (``tracemalloc``) of one ``fit`` epoch on n and 4n rows of
    synthetic data (the data excluded): flat means nothing grows with the rows.

Usage::

    python benchmarks/speed.py                         # everything (about an hour)
    python benchmarks/speed.py --parts profile
    python benchmarks/speed.py --parts epochs --epochs 10 --batch-sizes 32
    PYTHONPATH=/path/to/old/checkout python benchmarks/speed.py --parts profile \\
        --out benchmarks/results/speed_before.md

Writes ``--out`` (Markdown, default ``benchmarks/results/speed.md``) and the same path
with ``.json``.
"""

import argparse
import cProfile
import json
import platform
import pstats
import shlex
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import sk_tdamp
from sk_tdamp import EMTDAMPClassifier
from sk_tdamp.datasets import load_fashion_mnist, load_mnist_5k

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import uci  # noqa: E402  (the UCI loader and preprocessing of benchmarks/uci.py)

HIDDEN = (300, 100)
UCI_DEFAULT = ["boston", "concrete", "energy", "kin8nm", "naval", "power", "wine", "yacht"]

# cProfile entries (file or function names) per category; older names included so that
# the table can be made on earlier commits
CATEGORIES = {
    "products": ("_gemm_tn", "forward_layer", "backward_message", "layer_input_sums"),
    "activations": ("_activations.py", "_special.py", "hidden_g_gam", "_likelihoods.py"),
    "weight passes": ("weight_evidence", "gaussian_denoiser", "group_posterior", "module_b",
                      "add_scaled", "_add_scaled", "pasp_update", "PosteriorAverage",
                      "_pasp.py", "_turbo.py:update", "init_llr_offset", "_slab_terms",
                      "_slab_moments", "weight_llr", "_update_weights", "weight_posterior",
                      "one_pass_variance"),
}


def environment():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(
            sk_tdamp.__file__).parent, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return dict(python=platform.python_version(), numpy=np.__version__,
                sklearn=sklearn.__version__, machine=platform.machine(),
                sk_tdamp=str(Path(sk_tdamp.__file__).parent), commit=commit)


def quiet():
    warnings.simplefilter("ignore", ConvergenceWarning)


# ------------------------------------------------------------------------------ epochs
def mnist5k():
    X, y = load_mnist_5k(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 255.0, y, train_size=4000, stratify=y,
                                          random_state=0)
    return Xtr, Xte, ytr, yte


def fashion(path):
    try:
        Xtr, ytr = load_fashion_mnist(path, kind="train")
        Xte, yte = load_fashion_mnist(path, kind="test")
    except (OSError, ValueError) as exc:
        print(f"Fashion-MNIST skipped: {exc}", flush=True)
        return None
    return Xtr / 255.0, Xte / 255.0, ytr, yte


def lockstep(data, batch_size, dtype, n_epochs, seed=0):
    """Per-epoch CPU seconds and test accuracy of EM-TDAMP and the MLP, in lockstep."""
    Xtr, Xte, ytr, yte = data
    classes = np.unique(ytr)
    em = EMTDAMPClassifier(hidden_layer_sizes=HIDDEN, batch_size=batch_size, shuffle=False,
                           random_state=seed, dtype=dtype)
    mlp = MLPClassifier(hidden_layer_sizes=HIDDEN, batch_size=batch_size, shuffle=False,
                        random_state=seed)
    rng = np.random.default_rng(seed)
    out = {"em": dict(time=[], acc=[]), "mlp": dict(time=[], acc=[])}
    for _ in range(n_epochs):
        perm = rng.permutation(len(ytr))
        for name, model in (("em", em), ("mlp", mlp)):
            t0 = time.process_time()
            model.partial_fit(Xtr[perm], ytr[perm], classes=classes)
            out[name]["time"].append(time.process_time() - t0)
            out[name]["acc"].append(float(model.score(Xte, yte)))
    return out


def epoch_row(data_name, batch_size, dtype, res):
    em, mlp = res["em"], res["mlp"]
    later_em, later_mlp = np.median(em["time"][1:]), np.median(mlp["time"][1:])
    ratios = np.asarray(em["time"]) / np.asarray(mlp["time"])
    k = min(10, len(em["acc"])) - 1
    return dict(data=data_name, batch=batch_size, dtype=dtype,
                em_first=em["time"][0], mlp_first=mlp["time"][0],
                first_ratio=em["time"][0] / mlp["time"][0],
                em_later=float(later_em), mlp_later=float(later_mlp),
                later_ratio=float(later_em / later_mlp), max_ratio=float(ratios.max()),
                em_acc10=em["acc"][k], mlp_acc10=mlp["acc"][k],
                em_acc_last=em["acc"][-1], mlp_acc_last=mlp["acc"][-1],
                epochs=len(em["acc"]), curves=res)


def part_epochs(args):
    rows = []
    datasets = [("MNIST-5k", mnist5k(), args.epochs)]
    fash = fashion(args.fashion_path)
    if fash is not None:
        datasets.append(("Fashion-MNIST", fash, args.fashion_epochs))
    for name, data, n_epochs in datasets:
        for batch_size in args.batch_sizes:
            for dtype in ("float64", "float32"):
                res = lockstep(data, batch_size, dtype, n_epochs)
                rows.append(epoch_row(name, batch_size, dtype, res))
                r = rows[-1]
                print(f"{name} batch {batch_size} {dtype}: first {r['em_first']:.2f} s "
                      f"({r['first_ratio']:.2f}x), later {r['em_later']:.2f} s "
                      f"({r['later_ratio']:.2f}x), acc {r['em_acc_last']:.4f} vs MLP "
                      f"{r['mlp_acc_last']:.4f}", flush=True)
    return rows


# ----------------------------------------------------------------------------- profile
def categorize(stats):
    totals = dict.fromkeys([*CATEGORIES, "glue"], 0.0)
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():
        key = f"{filename}:{name}"
        for cat, patterns in CATEGORIES.items():
            if any(p in key for p in patterns):
                totals[cat] += tottime
                break
        else:
            totals["glue"] += tottime
    return totals


def part_profile(args):
    Xtr, _, ytr, _ = mnist5k()
    est = EMTDAMPClassifier(hidden_layer_sizes=HIDDEN, batch_size=32, shuffle=False,
                            random_state=0)
    est.partial_fit(Xtr, ytr, classes=np.unique(ytr))
    est.partial_fit(Xtr, ytr)
    t0 = time.process_time()
    est.partial_fit(Xtr, ytr)
    plain = time.process_time() - t0
    prof = cProfile.Profile()
    prof.enable()
    est.partial_fit(Xtr, ytr)
    prof.disable()
    totals = categorize(pstats.Stats(prof))
    total = sum(totals.values())
    print(f"profile: one later epoch {plain:.2f} s (unprofiled)", flush=True)
    for cat, t in totals.items():
        print(f"  {cat:14s} {t / total:6.1%}", flush=True)
    return dict(epoch_s=plain, share={k: v / total for k, v in totals.items()})


# --------------------------------------------------------------------------------- uci
def part_uci(args):
    rows = []
    data_dir = Path(args.data_dir)
    for name in args.uci_datasets:
        X, y, meta = uci.load_dataset(name, data_dir)
        for key in ("em", "mlp"):
            times, rmse, ll = [], [], []
            for i in uci.select_splits(args.uci_splits, len(meta["splits"])):
                split = meta["splits"][i]
                train, test = np.asarray(split["train"]), np.asarray(split["test"])
                Xtr, Xte, ytr, my, sy = uci.standardize(X, y, train, test)
                fit = uci.fit_em if key == "em" else uci.fit_mlp
                t0 = time.process_time()
                fitted = fit(Xtr, ytr, meta["n_hidden"], 0, {})
                times.append(time.process_time() - t0)
                mean, std = fitted.predict(Xte)
                m = uci.split_metrics(y[test], np.asarray(mean) * sy + my,
                                      np.asarray(std) * sy)
                rmse.append(m["rmse"])
                ll.append(m["ll"])
            rows.append(dict(data=name, method=key, fit_s=float(np.median(times)),
                             rmse=float(np.mean(rmse)), ll=float(np.mean(ll)),
                             n_splits=len(times)))
        em, mlp = rows[-2], rows[-1]
        em["ratio"] = em["fit_s"] / mlp["fit_s"]
        print(f"UCI {name}: EM {em['fit_s']:.2f} s, MLP {mlp['fit_s']:.2f} s "
              f"({em['ratio']:.2f}x); RMSE {em['rmse']:.4g} vs {mlp['rmse']:.4g}", flush=True)
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine (sklearn)", load_wine)):
        X, y = loader(return_X_y=True)
        for key in ("em", "mlp"):
            times, acc, nll = [], [], []
            for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
                scaler = StandardScaler().fit(X[train])
                Xtr, Xte = scaler.transform(X[train]), scaler.transform(X[test])
                model = (EMTDAMPClassifier(random_state=0) if key == "em"
                         else MLPClassifier(random_state=0))
                t0 = time.process_time()
                model.fit(Xtr, y[train])
                times.append(time.process_time() - t0)
                acc.append(model.score(Xte, y[test]))
                nll.append(log_loss(y[test], model.predict_proba(Xte), labels=np.unique(y)))
            rows.append(dict(data=name, method=key, fit_s=float(np.median(times)),
                             acc=float(np.mean(acc)), log_loss=float(np.mean(nll)),
                             n_splits=5))
        em, mlp = rows[-2], rows[-1]
        em["ratio"] = em["fit_s"] / mlp["fit_s"]
        print(f"{name}: EM {em['fit_s']:.2f} s, MLP {mlp['fit_s']:.2f} s "
              f"({em['ratio']:.2f}x); acc {em['acc']:.4f} vs {mlp['acc']:.4f}", flush=True)
    return rows


# ------------------------------------------------------------------------------ memory
def part_memory(args):
    rng = np.random.default_rng(0)
    out = []
    for n in (args.memory_rows, 4 * args.memory_rows):
        X = rng.normal(size=(n, 50))
        y = (X[:, 0] > 0).astype(int)
        est = EMTDAMPClassifier(hidden_layer_sizes=(100, 50), max_iter=1, random_state=0)
        tracemalloc.start()
        est.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out.append(dict(rows=n, data_mb=X.nbytes / 2**20, peak_mb=peak / 2**20))
        print(f"memory: {n} rows (data {X.nbytes / 2**20:.1f} MB): peak {peak / 2**20:.1f} "
              "MB while fitting", flush=True)
    return out


# ------------------------------------------------------------------------------ output
def render(results):
    lines = ["# Speed: EM-TDAMP against scikit-learn's MLP", "",
             f"Command: `{results['command']}`", "",
             f"Environment: {json.dumps(results['environment'])}", ""]
    if "epochs" in results:
        lines += ["## Cost per epoch (784-300-100-10, CPU s, MLP float64 in the same run)",
                  "", "| data | batch | dtype | first epoch | MLP first | ratio | later "
                  "epochs (median) | MLP later | ratio | max ratio | acc @10 (MLP) | "
                  "acc last (MLP) | epochs |", "|" + "---|" * 13]
        for r in results["epochs"]:
            lines.append(
                f"| {r['data']} | {r['batch']} | {r['dtype']} | {r['em_first']:.2f} | "
                f"{r['mlp_first']:.2f} | {r['first_ratio']:.2f} | {r['em_later']:.2f} | "
                f"{r['mlp_later']:.2f} | {r['later_ratio']:.2f} | {r['max_ratio']:.2f} | "
                f"{r['em_acc10']:.4f} ({r['mlp_acc10']:.4f}) | {r['em_acc_last']:.4f} "
                f"({r['mlp_acc_last']:.4f}) | {r['epochs']} |")
        lines.append("")
    if "profile" in results:
        p = results["profile"]
        lines += ["## Profile of one later MNIST-5k epoch (batch 32, float64)", "",
                  f"Unprofiled epoch: {p['epoch_s']:.2f} s", "", "| part | share |",
                  "|---|---|"]
        lines += [f"| {k} | {v:.1%} |" for k, v in p["share"].items()]
        lines.append("")
    if "uci" in results:
        lines += ["## Default fits (median CPU s per split; UCI: first splits, "
                  "classification: 5-fold CV)", "",
                  "| data | EM-TDAMP s | MLP s | ratio | EM-TDAMP | MLP |",
                  "|---|---|---|---|---|---|"]
        rows = results["uci"]
        for em, mlp in zip(rows[::2], rows[1::2]):
            if "rmse" in em:
                score = (f"RMSE {em['rmse']:.4g}, LL {em['ll']:.3f}",
                         f"RMSE {mlp['rmse']:.4g}, LL {mlp['ll']:.3f}")
            else:
                score = (f"acc {em['acc']:.4f}, log loss {em['log_loss']:.3f}",
                         f"acc {mlp['acc']:.4f}, log loss {mlp['log_loss']:.3f}")
            lines.append(f"| {em['data']} | {em['fit_s']:.2f} | {mlp['fit_s']:.2f} | "
                         f"{em['ratio']:.2f} | {score[0]} | {score[1]} |")
        ratios = [em["ratio"] for em in rows[::2]]
        lines += ["", f"Median ratio: {np.median(ratios):.2f}", ""]
    if "memory" in results:
        lines += ["## Peak traced memory while fitting (the data excluded)", "",
                  "| rows | data MB | peak MB |", "|---|---|---|"]
        lines += [f"| {m['rows']} | {m['data_mb']:.1f} | {m['peak_mb']:.1f} |"
                  for m in results["memory"]]
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", nargs="+", default=["epochs", "profile", "uci", "memory"],
                   choices=["epochs", "profile", "uci", "memory"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--fashion-epochs", type=int, default=10)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    p.add_argument("--fashion-path", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "uci"))
    p.add_argument("--uci-datasets", nargs="+", default=UCI_DEFAULT)
    p.add_argument("--uci-splits", default="5")
    p.add_argument("--memory-rows", type=int, default=2000)
    p.add_argument("--out", default=str(HERE / "results" / "speed.md"))
    args = p.parse_args(argv)
    quiet()
    command = " ".join(["python benchmarks/speed.py", *map(shlex.quote, argv or sys.argv[1:])])
    results = dict(command=command, environment=environment())
    with threadpool_limits(1):
        for part in args.parts:
            results[part] = globals()[f"part_{part}"](args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(results))
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
