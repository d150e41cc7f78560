"""Teacher-student support recovery: teachers with 1 and 2 hidden layers, seeds 0-4.

Each teacher is a random group-sparse ReLU network on 8 features (half of the input
features and half of the hidden neurons active, noise standard deviation 0.1); the
student has the teacher's architecture, ``input_rho_init=0.5`` and is fitted on 1000
samples, tested on 500, with ``n_init=1`` (one initialization), the default
``n_init="auto"`` (up to three, while the fits end collapsed) and ``n_init=3`` (the
initialization with the lowest training objective kept). Prints and writes
``results/teacher_student.md``.

Usage: python benchmarks/teacher_student.py
"""

import warnings
from itertools import product
from pathlib import Path

import numpy as np

from sk_tdamp import EMTDAMPRegressor
from sk_tdamp.datasets import make_teacher_student

HERE = Path(__file__).resolve().parent


def main():
    lines = ["# Teacher-student support recovery", "",
             "Produced by `python benchmarks/teacher_student.py`. Test MSE is relative to "
             "the teacher's noise variance (1.0 = noise floor).", "",
             "| n_init | hidden layers | seed | teacher inputs | student inputs "
             "| input support exact | teacher active hidden neurons "
             "| student kept hidden neurons | test MSE / noise |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n_init, hl, seed in product((1, "auto", 3), [(8,), (8, 6)], range(5)):
        X, y, teacher = make_teacher_student(
            n_samples=1500, n_features=8, hidden_layer_sizes=hl, density=0.5,
            input_density=0.5, noise_std=0.1, random_state=seed, return_teacher=True)
        reg = EMTDAMPRegressor(hidden_layer_sizes=hl, input_rho_init=0.5, max_iter=40,
                               batch_size=64, random_state=0, n_init=n_init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg.fit(X[:1000], y[:1000])
        mse = np.mean((reg.predict(X[1000:]) - y[1000:]) ** 2)
        t, s = teacher.active_masks[0].astype(int), reg.neuron_masks_[0].astype(int)
        t_hid = [int(m.sum()) for m in teacher.active_masks[1:]]
        s_hid = [int(m.sum()) for m in reg.neuron_masks_[1:]]
        row = (f"| {n_init} | {hl} | {seed} | {''.join(map(str, t))} | "
               f"{''.join(map(str, s))} | {'yes' if (t == s).all() else 'no'} | {t_hid} | "
               f"{s_hid} | {mse / teacher.noise_variance:.2f} |")
        print(row, flush=True)
        lines.append(row)
    out = HERE / "results" / "teacher_student.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
