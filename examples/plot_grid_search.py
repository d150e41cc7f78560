"""
=========================================================
Choosing the prior by cross-validation in a Pipeline
=========================================================

The estimators are ordinary scikit-learn estimators, so their prior settings can be
tuned like any hyperparameter. Here a :class:`~sklearn.pipeline.Pipeline` standardizes
the Boston housing features and fits :class:`~sk_tdamp.EMTDAMPRegressor`;
:class:`~sklearn.model_selection.GridSearchCV` crosses two settings of the group-sparse
prior:

- ``rho_init``, the prior probability that a hidden neuron is needed (EM then learns
  it, but the starting point shapes where it ends);
- ``prior_variance``, the scale of the slab: how large the weights of an active neuron
  are expected to be.

Two scores are recorded for every setting: the cross-validated root mean squared error,
and, through a scorer that reads the fitted pipeline, the fraction of hidden neurons the
model kept. The grid search refits the best setting by RMSE.
"""

# %%
# The search
# ----------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sk_tdamp import EMTDAMPRegressor
from sk_tdamp.datasets import load_boston_housing

X, y = load_boston_housing(return_X_y=True)
pipe = Pipeline([
    ("scale", StandardScaler()),
    ("bnn", EMTDAMPRegressor(hidden_layer_sizes=(30,), max_iter=20, random_state=0)),
])
grid = {
    "bnn__rho_init": [0.1, 0.5, 0.9],
    "bnn__prior_variance": [0.3, 1.0, 3.0],
}


def fraction_kept(estimator, X, y):
    """Fraction of hidden neurons kept by the fitted regressor (X and y unused)."""
    return estimator[-1].density_[0]


search = GridSearchCV(
    pipe, grid, cv=KFold(3, shuffle=True, random_state=0),
    scoring={"rmse": "neg_root_mean_squared_error", "kept": fraction_kept},
    refit="rmse")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X, y)

print("best setting:", search.best_params_)
print(f"cross-validated RMSE of the best setting: {-search.best_score_:.2f} ($1000s)")
print("neurons kept by the refitted model:", search.best_estimator_[-1].n_neurons_kept_)

# %%
# Plot the two scores over the grid
# ---------------------------------
rhos, variances = grid["bnn__rho_init"], grid["bnn__prior_variance"]
results = search.cv_results_


def as_grid(key):
    table = np.empty((len(rhos), len(variances)))
    for params, value in zip(results["params"], results[key]):
        i = rhos.index(params["bnn__rho_init"])
        j = variances.index(params["bnn__prior_variance"])
        table[i, j] = value
    return table


rmse = -as_grid("mean_test_rmse")
kept = as_grid("mean_test_kept")
best = (rhos.index(search.best_params_["bnn__rho_init"]),
        variances.index(search.best_params_["bnn__prior_variance"]))

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, table, title, cmap, fmt in [
        (axes[0], rmse, "cross-validated RMSE ($1000s)", "viridis_r", "{:.2f}"),
        (axes[1], kept, "fraction of hidden neurons kept", "Blues", "{:.0%}")]:
    image = ax.imshow(table, cmap=cmap, origin="lower")
    for i in range(len(rhos)):
        for j in range(len(variances)):
            dark = image.norm(table[i, j]) > 0.55
            ax.text(j, i, fmt.format(table[i, j]), ha="center", va="center",
                    color="white" if dark else "black", fontsize=11)
    ax.add_patch(plt.Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False,
                               ec="tab:red", lw=3))
    ax.set_xticks(range(len(variances)), [f"{v:g}" for v in variances])
    ax.set_yticks(range(len(rhos)), [f"{r:g}" for r in rhos])
    ax.set_xlabel("prior_variance")
    ax.set_ylabel("rho_init")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
fig.suptitle("GridSearchCV over the prior (red: best RMSE)")
fig.tight_layout()
plt.show()

# %%
# The red square is the setting the search refits. Reading the two panels together
# shows what the prior trades: a smaller ``rho_init`` or a wider slab leaves fewer
# neurons alive, and the search tells you what each size costs in cross-validated error.
# Here the most accurate settings keep most of the 30 neurons, while some keep a third of
# them or less for a moderate loss. For an exact size, grid over ``target_density``
# instead.
