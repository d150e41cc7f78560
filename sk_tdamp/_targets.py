"""Target codecs: between the user's y and the likelihood's format.

The regressor standardizes y (the core works with a unit-variance target); the classifier
encodes labels as class indices. A codec is fitted once, on the first pass over the data,
and shared by every later call and every federated client.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import LabelEncoder


@dataclass(frozen=True)
class RegressionTarget:
    """Standardization ``(y - mean) / scale`` of a (multi-output) target.

    Attributes
    ----------
    mean, scale : ndarray of shape (n_outputs,)
    ndim : int
        1 when the model was fitted on a 1-D y (predictions are then 1-D).
    """

    mean: np.ndarray
    scale: np.ndarray
    ndim: int

    @classmethod
    def fit(cls, y):
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        scale = Y.std(axis=0)
        return cls(Y.mean(axis=0), np.where(scale > 0, scale, 1.0), y.ndim)

    @property
    def n_outputs(self):
        return self.mean.shape[0]

    @property
    def v_scale(self):
        """Factor from the core's noise variance to the target's units (mean over outputs)."""
        return float(np.mean(self.scale ** 2))

    def encode(self, y):
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if Y.shape[1] != self.n_outputs:
            raise ValueError(f"y has {Y.shape[1]} outputs but the model was fitted with "
                             f"{self.n_outputs}.")
        return (Y - self.mean) / self.scale

    def to_arrays(self):
        return {"y_mean": self.mean, "y_scale": self.scale, "y_ndim": np.asarray(self.ndim)}


@dataclass(frozen=True)
class ClassTarget:
    """Class labels as indices into ``classes`` (sorted, at least two).

    Attributes
    ----------
    encoder : LabelEncoder
        Fitted on the classes.
    """

    encoder: LabelEncoder

    @classmethod
    def fit(cls, y, classes=None):
        encoder = LabelEncoder().fit(np.unique(y) if classes is None else classes)
        if encoder.classes_.size < 2:
            raise ValueError(
                "EMTDAMPClassifier needs samples of at least 2 classes in the data, "
                f"got only one class: {encoder.classes_[0]!r}.")
        return cls(encoder)

    @property
    def classes(self):
        return self.encoder.classes_

    @property
    def n_outputs(self):
        return self.classes.size

    v_scale = 1.0

    def encode(self, y):
        unknown = np.setdiff1d(y, self.classes)
        if unknown.size:
            raise ValueError(f"y contains labels not in classes_: {unknown[:5]!r}.")
        return self.encoder.transform(y)

    def to_arrays(self):
        return {"classes": self.classes.copy()}


def target_from_arrays(data):
    """The codec whose :meth:`to_arrays` gave ``data``."""
    if "classes" in data:
        return ClassTarget.fit(np.asarray(data["classes"]))
    return RegressionTarget(np.atleast_1d(np.asarray(data["y_mean"], dtype=np.float64)),
                            np.atleast_1d(np.asarray(data["y_scale"], dtype=np.float64)),
                            int(data["y_ndim"]))
