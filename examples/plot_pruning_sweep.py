"""
=============================================================
Pruning sweep: accuracy against the fraction of neurons kept
=============================================================

:class:`~sk_tdamp.EMTDAMPClassifier` with ``target_density=kappa`` keeps exactly
``ceil(kappa * 100)`` of the 100 hidden neurons of a 64-100-10 network on the digits
data, those the posterior finds most likely to be needed, and trains the network with
that constraint. The left panel sweeps ``kappa`` and compares with the usual baseline:
train scikit-learn's :class:`~sklearn.neural_network.MLPClassifier` densely, then
remove the hidden neurons with the smallest outgoing weights (magnitude pruning, no
retraining).

The other two panels show *which* units survive. The middle panel gives, for the
``kappa = 0.2`` fit, the posterior probability that each hidden neuron is needed,
sorted, with the 20 kept neurons in colour. The right panel prunes input pixels instead:
with ``input_rho_init=0.5`` EM decides for each of the 64 pixels whether it is worth
keeping, and the map shows that probability in place.
"""

# %%
# Data and the sweep
# ------------------
import copy
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from sk_tdamp import EMTDAMPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

densities = [1.0, 0.5, 0.2, 0.1, 0.05, 0.03]
em_accuracy, fits = [], {}
for kappa in densities:
    clf = EMTDAMPClassifier(hidden_layer_sizes=(100,), max_iter=8, target_density=kappa,
                            random_state=0).fit(X_train, y_train)
    em_accuracy.append(clf.score(X_test, y_test))
    fits[kappa] = clf
    print(f"target_density={kappa:<4}  neurons kept {clf.n_neurons_kept_[0]:3d}  "
          f"test accuracy {em_accuracy[-1]:.3f}")

# %%
# Magnitude pruning of a dense MLP
# --------------------------------
# A hidden neuron's importance is the norm of its outgoing weights; pruning keeps the
# largest and zeroes the others' outgoing weights, which removes them from the network.
mlp = MLPClassifier(hidden_layer_sizes=(100,), max_iter=100, random_state=0)
mlp.fit(X_train, y_train)
importance = np.linalg.norm(mlp.coefs_[1], axis=1)
mlp_accuracy = []
for kappa in densities:
    keep = np.argsort(-importance)[: int(np.ceil(kappa * 100))]
    pruned = copy.deepcopy(mlp)
    mask = np.zeros(100, dtype=bool)
    mask[keep] = True
    pruned.coefs_[1] = np.where(mask[:, None], mlp.coefs_[1], 0.0)
    mlp_accuracy.append(pruned.score(X_test, y_test))

# %%
# Feature (pixel) pruning
# -----------------------
pixels = EMTDAMPClassifier(hidden_layer_sizes=(100,), max_iter=8, input_rho_init=0.5,
                           random_state=0).fit(X_train, y_train)
print(f"pixels kept: {pixels.n_features_kept_} of 64, "
      f"test accuracy {pixels.score(X_test, y_test):.3f}")
# This fit has no target density: EM also learns how many hidden neurons to keep.
print(f"hidden neurons kept with a learned rho: {pixels.n_neurons_kept_[0]} of 100")

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2),
                         gridspec_kw={"width_ratios": [1.25, 1.1, 0.8]})
ax = axes[0]
ax.plot(densities, em_accuracy, "o-", lw=2, color="tab:blue",
        label="EM-TDAMP, target_density")
ax.plot(densities, mlp_accuracy, "s--", lw=2, color="tab:gray",
        label="MLP + magnitude pruning")
ax.set_xscale("log")
ax.set_xticks(densities, [f"{d:g}" for d in densities])
ax.minorticks_off()
ax.set_xlabel("fraction of hidden neurons kept")
ax.set_ylabel("test accuracy")
ax.set_ylim(0, 1.02)
ax.set_title("Digits, 64-100-10")
ax.legend(loc="lower right", fontsize=9)

ax = axes[1]
kept_fit = fits[0.2]
proba = kept_fit.support_probas_[1]
order = np.argsort(-proba)
colors = np.where(kept_fit.neuron_masks_[1][order], "tab:blue", "0.75")
ax.bar(np.arange(proba.size), proba[order], width=1.0, color=colors)
ax.set_xlabel("hidden neurons, sorted")
ax.set_ylabel("posterior probability the neuron is needed")
ax.set_title("Which neurons survive (target_density=0.2)")
ax.text(0.97, 0.95, "blue: the 20 kept", transform=ax.transAxes, ha="right", va="top",
        fontsize=9)

ax = axes[2]
image = ax.imshow(pixels.support_probas_[0].reshape(8, 8), cmap="viridis", vmin=0,
                  vmax=1)
ax.set_xticks([])
ax.set_yticks([])
ax.set_title(f"Pixels kept: {pixels.n_features_kept_} of 64")
fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="support probability")
fig.tight_layout()
plt.show()

# %%
# EM-TDAMP loses little down to about 10% of the neurons, because the network is trained
# knowing which neurons it has; removing neurons from a network trained dense costs
# accuracy quickly (fine-tuning after pruning would recover part of it, at the cost of
# more training). Without a target density EM decides the size on its own; the printout
# above shows how many hidden neurons the pixel-pruning fit kept with a learned ``rho``:
# on these data and in a few epochs, most or all of them, so an explicit
# ``target_density`` is the way to get a small network here. The pixel map shows the
# prior dropping much of the mostly blank border of the 8x8 images, and some interior
# pixels whose information their neighbours already carry.
