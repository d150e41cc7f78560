"""Boston housing benchmark on the 20 standard splits (Hernandez-Lobato & Adams, 2015).

One hidden layer of 50 units; inputs and target standardized on each training part.
EM-TDAMP (dense, and with ``target_density=0.5``, and two hidden layers) against
scikit-learn's MLPRegressor (adam), BayesianRidge and GaussianProcessRegressor, all on the
same splits in the same run. Prints the table and writes ``results/boston.md``.

Usage::

    python benchmarks/boston.py                 # all 20 splits
    python benchmarks/boston.py --splits 5      # the first 5 (quick check)
    python benchmarks/boston.py --seeds 0 1 2   # every split with three model seeds

With several seeds, each split's figures are the mean over the seeds and the standard
errors are over the splits.
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import BayesianRidge
from sklearn.neural_network import MLPRegressor

from sk_tdamp import EMTDAMPRegressor
from sk_tdamp.datasets import load_boston_housing

HERE = Path(__file__).resolve().parent
SPLITS = HERE / "data" / "boston_hl_splits.json"


def gaussian_ll(y, mean, std):
    return float(np.mean(-0.5 * np.log(2 * np.pi * std ** 2) - 0.5 * ((y - mean) / std) ** 2))


def make_models(seed):
    """name -> (factory, supports return_std)."""
    common = dict(hidden_layer_sizes=(50,), max_iter=100, random_state=seed)
    return {
        "EM-TDAMP (50)": (lambda: EMTDAMPRegressor(**common), True),
        "EM-TDAMP (50), target_density=0.5": (
            lambda: EMTDAMPRegressor(**common, target_density=0.5), True),
        "EM-TDAMP (50, 50)": (
            lambda: EMTDAMPRegressor(**{**common, "hidden_layer_sizes": (50, 50)}), True),
        "MLPRegressor adam (50)": (
            lambda: MLPRegressor(hidden_layer_sizes=(50,), max_iter=1000,
                                 early_stopping=False, random_state=seed), False),
        "BayesianRidge": (lambda: BayesianRidge(), True),
        "GaussianProcessRegressor": (
            lambda: GaussianProcessRegressor(
                ConstantKernel() * RBF(np.ones(13)) + WhiteKernel(), normalize_y=False,
                random_state=seed), True),
    }


def run_split(model_name, factory, has_std, X, y, split):
    tr, te = np.asarray(split["train"]), np.asarray(split["test"])
    mx, sx = X[tr].mean(0), X[tr].std(0)
    my, sy = y[tr].mean(), y[tr].std()
    Xtr, Xte = (X[tr] - mx) / sx, (X[te] - mx) / sx
    ytr = (y[tr] - my) / sy
    model = factory()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xtr, ytr)
    fit_s = time.perf_counter() - t0
    if has_std:
        mean, std = model.predict(Xte, return_std=True)
    else:
        mean = model.predict(Xte)
        resid = ytr - model.predict(Xtr)
        std = np.full_like(mean, resid.std())  # homoscedastic plug-in
    mean, std = mean * sy + my, std * sy
    rmse = float(np.sqrt(np.mean((y[te] - mean) ** 2)))
    row = dict(rmse=rmse, ll=gaussian_ll(y[te], mean, std),
               nmse=rmse ** 2 / float(np.var(y[te])), fit_s=fit_s, kept=np.nan)
    if hasattr(model, "density_"):
        row["kept"] = float(np.mean(np.concatenate(model.neuron_masks_[1:])))
    return row


def summarize(rows):
    out = {}
    for key in rows[0]:
        vals = np.array([r[key] for r in rows], dtype=float)
        out[key] = (np.mean(vals), np.std(vals, ddof=1) / np.sqrt(len(vals))
                    if len(vals) > 1 else 0.0)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--models", nargs="*", default=None,
                        help="substrings of the model names to run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="random_state of the models; several average per split")
    parser.add_argument("--out", default=str(HERE / "results" / "boston.md"))
    args = parser.parse_args()
    X, y = load_boston_housing(return_X_y=True)
    splits = json.loads(SPLITS.read_text())["splits"][: args.splits]
    results = {}
    for name in make_models(0):
        if args.models and not any(s in name for s in args.models):
            continue
        per_seed = []
        for seed in args.seeds:
            factory, has_std = make_models(seed)[name]
            per_seed.append([run_split(name, factory, has_std, X, y, s) for s in splits])
        rows = [{key: float(np.mean([runs[i][key] for runs in per_seed]))
                 for key in per_seed[0][i]} for i in range(len(splits))]
        results[name] = summarize(rows)
        r = results[name]
        print(f"{name:40s} RMSE {r['rmse'][0]:.3f}±{r['rmse'][1]:.3f}  "
              f"LL {r['ll'][0]:.3f}±{r['ll'][1]:.3f}  NMSE {r['nmse'][0]:.3f}  "
              f"kept {r['kept'][0]:.2f}±{r['kept'][1]:.2f}  fit {r['fit_s'][0]:.2f}s",
              flush=True)
    write_table(results, len(splits), Path(args.out), args.seeds)


def write_table(results, n_splits, path, seeds=(0,)):
    mlp = results.get("MLPRegressor adam (50)")
    lines = [
        f"# Boston housing, {n_splits} standard splits (mean ± standard error)", "",
        "Produced by `python benchmarks/boston.py"
        + ("" if n_splits == 20 else f" --splits {n_splits}")
        + ("" if list(seeds) == [0] else " --seeds " + " ".join(map(str, seeds)))
        + "`" + ("" if len(seeds) == 1 else
                 f": every split fitted with {len(seeds)} model seeds, its figures "
                 "averaged over them, standard errors over the splits")
        + ". Inputs and target "
        "standardized on each training part. The MLP has no predictive variance: its "
        "log-likelihood uses the training residual standard deviation.", "",
        "| model | test RMSE | test log-lik. | NMSE | hidden neurons kept | fit s "
        "| fit time / MLP |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ratio = r["fit_s"][0] / mlp["fit_s"][0] if mlp else np.nan
        kept = "-" if np.isnan(r["kept"][0]) else f"{r['kept'][0]:.2f} ± {r['kept'][1]:.2f}"
        lines.append(
            f"| {name} | {r['rmse'][0]:.3f} ± {r['rmse'][1]:.3f} | {r['ll'][0]:.3f} ± "
            f"{r['ll'][1]:.3f} | {r['nmse'][0]:.3f} | {kept} | {r['fit_s'][0]:.2f} | "
            f"{ratio:.2f} |")
    lines += ["", "Published on the same splits: PBP 2.99 / -2.56 (RMSE / log-lik.)."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
