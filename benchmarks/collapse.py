"""Collapsed fits of two-hidden-layer regressors, counted over initializations.

Teacher-student problems of ``teacher_student.py`` (8 features, teacher (8, 6), half of
the inputs and hidden neurons active, noise standard deviation 0.1, 1000 training and
500 test samples), students of the teacher's architecture fitted from ``random_state``
0-9. A fit is *constant* when a layer keeps no group (the structural test of
``n_init="auto"``), *poor* when it is not constant but its test error is more than
twice the noise variance, *fitted* otherwise. Settings: grouped inputs
(``input_rho_init=0.5``, as in ``teacher_student.py``) and ungrouped ones (the default),
each with ``n_init=1``, the default ``n_init="auto"`` and ``noise_variance_init=0.1``.
scikit-learn's ``MLPRegressor`` (adam, same architecture, standardized target,
``max_iter=1000``) runs in the same script as the peer. Prints and writes
``results/collapse.md``.

Usage: python benchmarks/collapse.py
"""

import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.neural_network import MLPRegressor

from sk_tdamp import EMTDAMPRegressor
from sk_tdamp.datasets import make_teacher_student

HERE = Path(__file__).resolve().parent
SEEDS = range(5)  # teachers
STATES = range(10)  # initializations
SETTINGS = {
    "grouped inputs, n_init=1": dict(input_rho_init=0.5, n_init=1),
    "grouped inputs, n_init='auto' (default)": dict(input_rho_init=0.5),
    "grouped inputs, noise_variance_init=0.1": dict(input_rho_init=0.5, n_init=1,
                                                    noise_variance_init=0.1),
    "ungrouped inputs, n_init=1": dict(n_init=1),
    "ungrouped inputs, defaults": dict(),
    "ungrouped inputs, noise_variance_init=0.1": dict(n_init=1, noise_variance_init=0.1),
}


def teacher(seed):
    X, y, t = make_teacher_student(
        n_samples=1500, n_features=8, hidden_layer_sizes=(8, 6), density=0.5,
        input_density=0.5, noise_std=0.1, random_state=seed, return_teacher=True)
    return X[:1000], y[:1000], X[1000:], y[1000:], t.noise_variance


def classify(constant, relative_mse):
    if constant:
        return "constant"
    return "poor" if relative_mse > 2.0 else "fitted"


def em_outcome(params, data, state):
    Xtr, ytr, Xte, yte, noise = data
    reg = EMTDAMPRegressor(hidden_layer_sizes=(8, 6), max_iter=40, batch_size=64,
                           random_state=state, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(Xtr, ytr)
    mse = np.mean((reg.predict(Xte) - yte) ** 2) / noise
    constant = not all(mask.any() for mask in reg.neuron_masks_)
    return classify(constant, mse), mse


def mlp_outcome(data, state):
    Xtr, ytr, Xte, yte, noise = data
    mean, scale = ytr.mean(), ytr.std()
    mlp = MLPRegressor(hidden_layer_sizes=(8, 6), max_iter=1000, random_state=state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(Xtr, (ytr - mean) / scale)
    pred = mlp.predict(Xte) * scale + mean
    mse = np.mean((pred - yte) ** 2) / noise
    return classify(np.ptp(pred) == 0.0, mse), mse


def main():
    lines = ["# Collapsed fits of two-hidden-layer regressors", "",
             "Produced by `python benchmarks/collapse.py`: teacher-student problems with a "
             f"(8, 6) teacher, seeds {SEEDS.start}-{SEEDS.stop - 1}, students fitted from "
             f"random_state {STATES.start}-{STATES.stop - 1} ({len(SEEDS) * len(STATES)} "
             "fits per row). Constant: a layer keeps no group; poor: not constant, test "
             "error above twice the noise variance; fitted: the rest. Median test error "
             "over the noise variance of the fitted ones.", "",
             "| setting | constant | poor | fitted | median fitted error / noise "
             "| per teacher (constant+poor of 10) | fit s |",
             "|---|---|---|---|---|---|---|"]
    data = {seed: teacher(seed) for seed in SEEDS}
    runs = {name: (lambda d, s, p=params: em_outcome(p, d, s))
            for name, params in SETTINGS.items()}
    runs["MLPRegressor adam (peer)"] = mlp_outcome
    for name, run in runs.items():
        t0 = time.perf_counter()
        outcomes = {seed: [run(data[seed], state) for state in STATES] for seed in SEEDS}
        seconds = (time.perf_counter() - t0) / (len(SEEDS) * len(STATES))
        flat = [o for seed in SEEDS for o in outcomes[seed]]
        count = {k: sum(o[0] == k for o in flat) for k in ("constant", "poor", "fitted")}
        fitted = [o[1] for o in flat if o[0] == "fitted"]
        median = f"{np.median(fitted):.2f}" if fitted else "-"
        per_teacher = " / ".join(
            str(sum(o[0] != "fitted" for o in outcomes[seed])) for seed in SEEDS)
        row = (f"| {name} | {count['constant']} | {count['poor']} | {count['fitted']} | "
               f"{median} | {per_teacher} | {seconds:.2f} |")
        print(row, flush=True)
        lines.append(row)
    out = HERE / "results" / "collapse.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
