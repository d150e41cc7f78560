"""Pinned reference predictions: a few fits whose outputs must not move when code moves.

Each case fits estimators through the public API only and returns a dict of arrays
(predictions, standard deviations, probabilities, curves). ``python tests/reference_cases.py``
writes them to ``tests/data/reference_predictions.npz``; ``tests/test_reference.py``
refits every case and compares. Regenerate the file only with a change that is meant to
move the numbers, and say so in that commit (with the benchmarks it reruns).
"""

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sk_tdamp import EMTDAMPClassifier, EMTDAMPRegressor
from sk_tdamp.datasets import load_boston_housing
from sk_tdamp.federated import client_step, initial_message, server_step, to_estimator

PATH = Path(__file__).resolve().parent / "data" / "reference_predictions.npz"


def _boston(n_train=200, n_test=40):
    X, y = load_boston_housing(return_X_y=True)
    rng = np.random.RandomState(0)
    idx = rng.permutation(X.shape[0])
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    tr, te = idx[:n_train], idx[n_train:n_train + n_test]
    return X[tr], y[tr], X[te]


def _digits(n_train=300, n_test=60):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:n_train], y[:n_train], X[n_train:n_train + n_test]


def _regressor_outputs(est, X_test, prefix):
    mean, std = est.predict(X_test, return_std=True)
    return {f"{prefix}.mean": mean, f"{prefix}.std": std,
            f"{prefix}.loss": np.asarray(est.loss_curve_),
            f"{prefix}.density": np.asarray(est.density_curve_),
            f"{prefix}.noise": np.asarray(est.noise_variance_curve_)}


def _classifier_outputs(est, X_test, prefix):
    return {f"{prefix}.proba": est.predict_proba(X_test),
            f"{prefix}.loss": np.asarray(est.loss_curve_),
            f"{prefix}.noise": np.asarray(est.noise_variance_curve_)}


def _quiet(fn):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return fn()
    run.__name__ = fn.__name__
    return run


@_quiet
def regressor_default():
    X, y, Xt = _boston()
    est = EMTDAMPRegressor(max_iter=4, random_state=0).fit(X, y)
    return _regressor_outputs(est, Xt, "reg")


@_quiet
def regressor_two_layers_pruned():
    X, y, Xt = _boston()
    est = EMTDAMPRegressor(hidden_layer_sizes=(12, 10), max_iter=4, random_state=1,
                           input_rho_init=0.5, target_density=0.5,
                           learn_prior_variance=True, batch_size=16).fit(X, y)
    out = _regressor_outputs(est, Xt, "reg2")
    out["reg2.mask0"] = est.neuron_masks_[0]
    return out


@_quiet
def regressor_restarts():
    rng = np.random.RandomState(3)
    X = rng.randn(80, 4)
    y = rng.randn(80)  # no signal: "auto" runs every initialization
    est = EMTDAMPRegressor(hidden_layer_sizes=(6,), max_iter=3, random_state=2).fit(X, y)
    out = _regressor_outputs(est, X[:10], "restart")
    est3 = EMTDAMPRegressor(hidden_layer_sizes=(6,), max_iter=3, n_init=3,
                            random_state=2).fit(X, y)
    out.update(_regressor_outputs(est3, X[:10], "ninit3"))
    return out


@_quiet
def regressor_incremental():
    X, y, Xt = _boston()
    est = EMTDAMPRegressor(hidden_layer_sizes=(10,), random_state=0)
    for start in range(0, 200, 70):
        est.partial_fit(X[start:start + 70], y[start:start + 70])
    out = _regressor_outputs(est, Xt, "partial")
    warm = EMTDAMPRegressor(hidden_layer_sizes=(10,), max_iter=2, warm_start=True,
                            random_state=0, posterior_average=0.0, activation="identity")
    warm.fit(X, y)
    warm.fit(X, y)
    out.update(_regressor_outputs(warm, Xt, "warm"))
    linear = EMTDAMPRegressor(hidden_layer_sizes=(), max_iter=3, random_state=0).fit(X, y)
    out.update(_regressor_outputs(linear, Xt, "linear"))
    return out


@_quiet
def classifier_default():
    X, y, Xt = _digits()
    est = EMTDAMPClassifier(hidden_layer_sizes=(30,), max_iter=3, random_state=0).fit(X, y)
    out = _classifier_outputs(est, Xt, "clf")
    deep = EMTDAMPClassifier(hidden_layer_sizes=(16, 16, 16), max_iter=3,
                             random_state=0).fit(X, y)
    out.update(_classifier_outputs(deep, Xt, "deep"))
    part = EMTDAMPClassifier(hidden_layer_sizes=(20,), random_state=0)
    for start in range(0, 300, 100):
        part.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(10))
    out.update(_classifier_outputs(part, Xt, "cpartial"))
    return out


@_quiet
def federated_simulation():
    X, y, Xt = _boston(n_train=150)
    ids = np.arange(150) % 3
    reg = EMTDAMPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    reg.fit(X, y, client_ids=ids)
    out = _regressor_outputs(reg, Xt, "fedreg")
    Xd, yd, Xdt = _digits(n_train=240)
    clf = EMTDAMPClassifier(hidden_layer_sizes=(12,), max_iter=3, random_state=0)
    clf.fit(Xd, yd, client_ids=np.arange(240) % 4)
    out.update(_classifier_outputs(clf, Xdt, "fedclf"))
    return out


@_quiet
def federated_primitives():
    X, y, Xt = _boston(n_train=120)
    msg = initial_message(EMTDAMPRegressor(hidden_layer_sizes=(6,), random_state=0),
                          n_features=X.shape[1], n_samples=120,
                          y_mean=[y.mean()], y_scale=[y.std()])
    for r in range(3):
        local = [client_step(msg, X[k::2], y[k::2], random_state=r, client=k)
                 for k in range(2)]
        msg = server_step(msg, local)
    est = to_estimator(msg)
    mean, std = est.predict(Xt, return_std=True)
    return {"prim.mean": mean, "prim.std": std, "prim.loss": np.asarray(est.loss_curve_)}


CASES = [regressor_default, regressor_two_layers_pruned, regressor_restarts,
         regressor_incremental, classifier_default, federated_simulation,
         federated_primitives]


def compute():
    out = {}
    for case in CASES:
        out.update(case())
    return out


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    arrays = compute()
    np.savez_compressed(PATH, **arrays)
    print(f"wrote {len(arrays)} arrays to {PATH}", file=sys.stderr)
