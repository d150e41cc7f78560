"""
===================================================
Predictive uncertainty on a one-dimensional problem
===================================================

A noisy sine is observed on two intervals, with a gap between them and nothing beyond
them. :class:`~sk_tdamp.EMTDAMPRegressor` returns, for every input, a Gaussian predictive
distribution whose variance has two parts (see :doc:`/user_guide/uncertainty`):

- the learned noise variance ``noise_variance_``, the same everywhere: how far the
  targets scatter around the function (*aleatoric* uncertainty);
- the variance that comes from not knowing the weights exactly, which depends on the
  input and grows where the data say little (*epistemic* uncertainty).

The top panel shows the predictive mean with the 95% band of the whole predictive
distribution and, inside it, the band due to the weights alone. The bottom panel plots
the epistemic standard deviation for the default group-sparse prior and for a dense
network (``rho_init=1``, ``learn_rho=False``): a network that keeps more neurons is less
sure of itself away from the data.
"""

# %%
# Data: a noisy sine with a gap
# -----------------------------
import matplotlib.pyplot as plt
import numpy as np

from sk_tdamp import EMTDAMPRegressor

rng = np.random.default_rng(0)
x = np.concatenate([rng.uniform(-4, -1, 60), rng.uniform(1, 4, 60)])


def truth(x):
    return np.sin(x) + 0.1 * x


noise_std = 0.15
y = truth(x) + noise_std * rng.standard_normal(x.size)
X = x[:, None]  # one feature, already on a unit scale

# %%
# Two fits: group-sparse (default) and dense
# ------------------------------------------
sparse = EMTDAMPRegressor(hidden_layer_sizes=(50,), max_iter=200, random_state=0)
sparse.fit(X, y)
dense = EMTDAMPRegressor(hidden_layer_sizes=(50,), max_iter=200, rho_init=1.0,
                         learn_rho=False, random_state=0)
dense.fit(X, y)

grid = np.linspace(-6.5, 6.5, 400)
mean, std = sparse.predict(grid[:, None], return_std=True)
# predictive variance = weight (epistemic) part + learned noise variance
epistemic = np.sqrt(np.maximum(std**2 - sparse.noise_variance_, 0.0))
_, std_dense = dense.predict(grid[:, None], return_std=True)
epistemic_dense = np.sqrt(np.maximum(std_dense**2 - dense.noise_variance_, 0.0))

print(f"learned noise std: {np.sqrt(sparse.noise_variance_):.3f} (true {noise_std})")
print(f"hidden neurons kept: sparse {sparse.n_neurons_kept_[0]} / 50, "
      f"dense {dense.n_neurons_kept_[0]} / 50")

# %%
# Plot
# ----
fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 7), sharex=True,
                              gridspec_kw={"height_ratios": [2.2, 1]})
ax.fill_between(grid, mean - 1.96 * std, mean + 1.96 * std, color="tab:blue",
                alpha=0.18, label="95% predictive interval")
ax.fill_between(grid, mean - 1.96 * epistemic, mean + 1.96 * epistemic,
                color="tab:blue", alpha=0.45, label="95% band from the weights alone")
ax.plot(grid, truth(grid), "k--", lw=1, label="true function")
ax.plot(grid, mean, color="tab:blue", lw=2, label="predictive mean")
ax.plot(x, y, "o", ms=3, color="tab:orange", label="training data")
for lo, hi in [(-6.5, -4), (-1, 1), (4, 6.5)]:
    ax.axvspan(lo, hi, color="0.93", zorder=0)
ax.set_ylabel("y")
ax.set_ylim(-3, 3)
ax.legend(loc="upper left", fontsize=8, ncol=2)
ax.set_title("EM-TDAMP regression: mean and uncertainty (grey: no training data)")

ax2.plot(grid, epistemic, color="tab:blue", lw=2,
         label=f"group-sparse prior ({sparse.n_neurons_kept_[0]} neurons kept)")
ax2.plot(grid, epistemic_dense, color="tab:red", lw=2,
         label=f"dense prior ({dense.n_neurons_kept_[0]} neurons)")
ax2.axhline(np.sqrt(sparse.noise_variance_), color="0.4", ls=":",
            label="learned noise std")
for lo, hi in [(-6.5, -4), (-1, 1), (4, 6.5)]:
    ax2.axvspan(lo, hi, color="0.93", zorder=0)
ax2.set_xlabel("x")
ax2.set_ylabel("epistemic std")
ax2.legend(loc="upper center", fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Reading the figure
# ------------------
# Inside the data the predictive interval is mostly the learned noise: the weights are
# pinned down and the epistemic band is thin. It widens in the gap and,
# more, beyond the data, where the fit is an extrapolation. There the ReLU network
# continues in a straight line while the true function bends back, and the band, though
# wider, does not cover the truth: mean-field posteriors such as EM-TDAMP's are known to
# be over-confident far from the data. Treat the epistemic band as a lower bound on how
# little the model knows there; it is most useful to rank inputs from familiar to
# unfamiliar. The dense network, with more neurons left to disagree, is markedly less
# sure of itself outside the data than the pruned one.
