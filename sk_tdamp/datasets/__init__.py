"""Offline data sets: shipped loaders, an IDX reader and a synthetic teacher network.

Nothing here downloads data. Boston housing and a 5,000-image MNIST subset ship
with the package; Fashion-MNIST is read from a local directory (for example the
Debian package ``dataset-fashion-mnist``) and any MNIST-style IDX files from
paths the user gives.
"""

from ._base import load_boston_housing, load_mnist_5k
from ._idx import load_fashion_mnist, load_idx
from ._synthetic import make_teacher_student

__all__ = [
    "load_boston_housing",
    "load_fashion_mnist",
    "load_idx",
    "load_mnist_5k",
    "make_teacher_student",
]
