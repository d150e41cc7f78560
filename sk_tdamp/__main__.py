"""Main demo: ``python -m sk_tdamp``.

Fits EMTDAMPRegressor on the bundled Boston housing data (a fixed 90/10 split, inputs
standardized), then prints the test RMSE, a few predictions with their standard
deviations and how many neurons the group-sparse prior kept.
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_tdamp import EMTDAMPRegressor
from sk_tdamp.datasets import load_boston_housing


def main():
    X, y = load_boston_housing(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)
    model = make_pipeline(
        StandardScaler(), EMTDAMPRegressor(hidden_layer_sizes=(50,), random_state=0))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    reg = model[-1]
    mean, std = model.predict(X_test, return_std=True)
    rmse = np.sqrt(np.mean((mean - y_test) ** 2))
    print("EM-TDAMP on Boston housing (455 train / 51 test rows, 1 hidden layer of 50)")
    print(f"fitted in {seconds:.1f} s, {reg.n_iter_} epochs")
    print(f"test RMSE: {rmse:.3f} (target in $1000s; std of y_test {y_test.std():.2f})")
    print("first predictions (mean ± std vs truth):")
    for m, s, t in zip(mean[:5], std[:5], y_test[:5]):
        print(f"  {m:6.2f} ± {s:5.2f}   truth {t:5.1f}")
    inside = np.mean(np.abs(mean - y_test) <= 1.96 * std)
    print(f"test points inside the 95% predictive interval: {inside:.0%}")
    print(f"hidden neurons kept: {reg.n_neurons_kept_[0]} of 50; "
          f"input features kept: {reg.n_features_kept_} of {X.shape[1]}")
    print(f"learned noise variance: {reg.noise_variance_:.3f}")


if __name__ == "__main__":
    main()
