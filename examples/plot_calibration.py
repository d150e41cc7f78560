"""
===========================================================
Calibration of predicted probabilities: reliability diagram
===========================================================

A classifier's probabilities are *calibrated* when, among the predictions made with
confidence 0.8, about 80% are right. This example trains
:class:`~sk_tdamp.EMTDAMPClassifier` and scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier` (the same 64-100-10 architecture) on 500
digits and evaluates them on the remaining 1,297, a setting with enough errors for
calibration to matter.

For a multi-class problem the reliability diagram is drawn for the *top label*: each
test image contributes its highest predicted probability (the confidence) and whether
that prediction was right. :class:`sklearn.calibration.CalibrationDisplay` bins the
confidences and plots the accuracy in each bin against the mean confidence; the
diagonal is perfect calibration, points above it mean under-confidence, below it
over-confidence. The lower panel shows how the confidences are distributed.
"""

# %%
# Fit both models
# ---------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import CalibrationDisplay
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_tdamp import EMTDAMPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=500, stratify=y,
                                                    random_state=0)
models = {
    "EM-TDAMP": make_pipeline(StandardScaler(), EMTDAMPClassifier(
        hidden_layer_sizes=(100,), max_iter=15, random_state=0)),
    "MLPClassifier": make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(100,), max_iter=200, random_state=0)),
}


def expected_calibration_error(correct, confidence, n_bins=10):
    """Average |accuracy - confidence| over equal-width bins, weighted by bin size."""
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return sum(abs(correct[bins == b].mean() - confidence[bins == b].mean())
               * np.mean(bins == b) for b in np.unique(bins))


results = {}
for name, model in models.items():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    confidence = proba.max(axis=1)
    correct = model.classes_[proba.argmax(axis=1)] == y_test
    results[name] = (correct, confidence)
    print(f"{name:14s} accuracy {correct.mean():.3f}  log loss "
          f"{log_loss(y_test, proba):.3f}  ECE "
          f"{expected_calibration_error(correct, confidence):.3f}")

# %%
# Reliability diagram
# -------------------
fig, (ax, ax_hist) = plt.subplots(2, 1, figsize=(6.5, 8),
                                  gridspec_kw={"height_ratios": [2.2, 1]})
colors = {"EM-TDAMP": "tab:blue", "MLPClassifier": "tab:gray"}
for name, (correct, confidence) in results.items():
    ece = expected_calibration_error(correct, confidence)
    CalibrationDisplay.from_predictions(
        correct, confidence, n_bins=10, strategy="uniform", ax=ax,
        name=f"{name} (ECE {ece:.3f})", color=colors[name], marker="o")
    ax_hist.hist(confidence, bins=np.linspace(0, 1, 21), histtype="step", lw=2,
                 color=colors[name], label=name)
ax.set_xlabel("mean confidence in the bin (top-label probability)")
ax.set_ylabel("accuracy in the bin")
ax.set_title("Digits, 500 training images: top-label reliability")
ax.legend(loc="upper left", fontsize=9)
ax_hist.set_yscale("log")
ax_hist.set_xlabel("confidence")
ax_hist.set_ylabel("test images")
ax_hist.legend(loc="upper left", fontsize=9)
fig.tight_layout()
plt.show()

# %%
# Reading the diagram
# -------------------
# Each point is one bin of confidence; the bins hold very different numbers of images,
# so read the diagram together with the histogram: most predictions of both models are
# made with a confidence close to 1 and are right. The interesting part is the spread
# below: EM-TDAMP gives many more predictions an intermediate confidence, and its points
# lie on or above the diagonal, so where it errs it errs on the side of
# under-confidence (right more often than it claims), which is the safer
# failure. The MLP trained to convergence puts more of its predictions near 1; on this
# split its expected calibration error (ECE, in the legend) is the lower of the two, and
# its points in the sparsely populated bins scatter on both sides of the diagonal. Bins
# with a handful of images are noisy: read them with the histogram. The classification
# benchmark reports log loss and ECE for larger networks and data sets.
