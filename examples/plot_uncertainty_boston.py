"""
=========================================
Predictive uncertainty on Boston housing
=========================================

Each test house gets a predictive mean and a standard deviation from
:class:`~sk_tdamp.EMTDAMPRegressor`. The left panel sorts the test houses by predicted
price and draws each prediction with its 95% interval, the true price on top: a useful
interval is narrow where it can be and still contains the truth about 95% of the time.

The right panel checks this at every level at once: for each nominal level (50%, 80%,
95%, ...) it plots the fraction of test prices that fall inside the central interval of
that level. A calibrated model lies on the diagonal. scikit-learn's
:class:`~sklearn.neural_network.MLPRegressor` has no predictive variance; it is given
the usual plug-in, one standard deviation of its training residuals for every house.

The Boston data are shipped for comparison with published benchmarks only; read the
data set's ``DESCR`` about its known problems.
"""

# %%
# Fit EM-TDAMP and an MLP on the same split
# -----------------------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_tdamp import EMTDAMPRegressor
from sk_tdamp.datasets import load_boston_housing

X, y = load_boston_housing(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=1)

em = make_pipeline(StandardScaler(),
                   EMTDAMPRegressor(hidden_layer_sizes=(50,), max_iter=100, random_state=0))
mlp = make_pipeline(StandardScaler(),
                    MLPRegressor(hidden_layer_sizes=(50,), max_iter=2000, random_state=0))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    em.fit(X_train, y_train)
    mlp.fit(X_train, y_train)

mean, std = em.predict(X_test, return_std=True)
mlp_mean = mlp.predict(X_test)
mlp_std = np.full_like(mlp_mean, np.std(y_train - mlp.predict(X_train)))


def summary(name, m, s):
    rmse = np.sqrt(np.mean((y_test - m) ** 2))
    loglik = norm.logpdf(y_test, m, s).mean()
    inside = np.mean(np.abs(y_test - m) <= 1.96 * s)
    print(f"{name:9s} RMSE {rmse:.2f}  mean log-lik. {loglik:.2f}  "
          f"inside 95% interval {inside:.0%}")


summary("EM-TDAMP", mean, std)
summary("MLP", mlp_mean, mlp_std)
reg = em[-1]
print(f"EM-TDAMP kept {reg.n_neurons_kept_[0]} of 50 hidden neurons; "
      f"noise std {np.sqrt(reg.noise_variance_):.2f} (in $1000s)")

# %%
# Plot
# ----
order = np.argsort(mean)
idx = np.arange(order.size)
inside = np.abs(y_test - mean) <= 1.96 * std

fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.8),
                              gridspec_kw={"width_ratios": [2, 1]})
ax.errorbar(idx, mean[order], yerr=1.96 * std[order], fmt="none", ecolor="tab:blue",
            alpha=0.35, lw=2, label="95% predictive interval")
ax.plot(idx, mean[order], "_", color="tab:blue", ms=6, mew=2, label="predictive mean")
ax.plot(idx[inside[order]], y_test[order][inside[order]], "o", ms=3.5, color="k",
        label="true price (inside)")
ax.plot(idx[~inside[order]], y_test[order][~inside[order]], "o", ms=5, color="tab:red",
        label="true price (outside)")
ax.set_xlabel("test houses, sorted by predicted price")
ax.set_ylabel("median value ($1000s)")
ax.set_title(f"EM-TDAMP on Boston test houses: {inside.mean():.0%} inside the 95% interval")
ax.legend(loc="upper left", fontsize=8)

levels = np.linspace(0.05, 0.99, 40)
z = norm.ppf(0.5 + levels / 2)
for name, m, s, color in [("EM-TDAMP", mean, std, "tab:blue"),
                          ("MLP + residual std", mlp_mean, mlp_std, "tab:gray")]:
    covered = [(np.abs(y_test - m) <= zi * s).mean() for zi in z]
    ax2.plot(levels, covered, lw=2, color=color, label=name)
ax2.plot([0, 1], [0, 1], "k:", lw=1, label="calibrated")
ax2.set_xlabel("nominal level of the central interval")
ax2.set_ylabel("fraction of test prices inside")
ax2.set_title("Interval coverage")
ax2.set_aspect("equal")
ax2.legend(loc="upper left", fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Most of the interval width is the learned noise level, the same for every house; the
# weights' uncertainty adds to it, most for the houses least like the training data.
# A coverage curve below the diagonal means intervals that are too narrow
# (over-confident), above it too wide. With about 100 test houses the curve is noisy,
# and it moves with the split: over six random 80/20 splits we measured between about
# 80% and 95% of the test prices inside EM-TDAMP's 95% interval (90% on average), so its
# intervals tend to be slightly too narrow (see :doc:`/user_guide/uncertainty`). The benchmark page
# reports the mean test log-likelihood over the 20 standard splits, where EM-TDAMP
# scores higher than the MLP with the plug-in standard deviation.
