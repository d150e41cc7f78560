"""Loaders for the data sets shipped inside the package."""

from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._descr import BOSTON_HOUSING_DESCR, MNIST_5K_DESCR
from ._idx import load_idx

DATA_DIR = Path(__file__).resolve().parent / "data"

BOSTON_FEATURE_NAMES = [
    "CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE",
    "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT",
]  # fmt: skip
BOSTON_TARGET_NAME = "MEDV"
_MNIST_SIDE = 28
_MNIST_IMAGES_FILE = "mnist_5k-images-idx3-ubyte.gz"
_MNIST_LABELS_FILE = "mnist_5k-labels-idx1-ubyte.gz"


def _as_frame(data, target, feature_names, target_name):
    """Return (frame, data_frame, target_series); pandas is imported only here."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "as_frame=True needs pandas; install it with `pip install pandas`."
        ) from exc
    data_frame = pd.DataFrame(data, columns=feature_names)
    target_series = pd.Series(target, name=target_name)
    frame = pd.concat([data_frame, target_series], axis=1)
    return frame, data_frame, target_series


def load_boston_housing(*, return_X_y=False, as_frame=False):
    """Load the Boston housing regression data (506 samples, 13 features).

    Shipped only for comparison with published benchmarks of Bayesian neural
    networks. Read the ``DESCR`` before using it: the feature ``B`` encodes a
    racial-composition term built on the premise that racial self-segregation
    raised house prices, and the data have other known defects. For new work
    use the California or Ames housing data instead.

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a pandas DataFrame, ``target`` a pandas Series
        and ``frame`` a DataFrame holding both (pandas is needed only then).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields

        data : ndarray of shape (506, 13), dtype float64, or DataFrame
            The features, in the order of ``feature_names``.
        target : ndarray of shape (506,), dtype float64, or Series
            ``MEDV``, the median value of owner-occupied homes in thousands
            of US dollars, top-coded at 50.0.
        feature_names : list of str
            ``CRIM``, ``ZN``, ``INDUS``, ``CHAS``, ``NOX``, ``RM``, ``AGE``,
            ``DIS``, ``RAD``, ``TAX``, ``PTRATIO``, ``B``, ``LSTAT``.
        target_names : list of str
            ``["MEDV"]``.
        frame : DataFrame of shape (506, 14) or None
            Features and target together when ``as_frame=True``, else None.
        DESCR : str
            Description of the data, its provenance and its problems.
        filename : str
            Path of the shipped CSV file (header line, then one row per
            sample, target in the last column).

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays (or DataFrame and Series) described above.

    See Also
    --------
    load_mnist_5k : Small classification data set shipped with the package.

    Examples
    --------
    >>> from sk_tdamp.datasets import load_boston_housing
    >>> bunch = load_boston_housing()
    >>> bunch.data.shape, bunch.target.shape
    ((506, 13), (506,))
    >>> bunch.feature_names[:3], float(bunch.data[0, 0]), float(bunch.target[0])
    (['CRIM', 'ZN', 'INDUS'], 0.00632, 24.0)
    >>> X, y = load_boston_housing(return_X_y=True)
    >>> print(f"{y.min():.1f} <= MEDV <= {y.max():.1f}")
    5.0 <= MEDV <= 50.0
    """
    filename = DATA_DIR / "boston_housing.csv"
    table = np.loadtxt(filename, delimiter=",", skiprows=1, dtype=np.float64)
    data, target = table[:, :-1], table[:, -1].copy()
    data = np.ascontiguousarray(data)
    feature_names = list(BOSTON_FEATURE_NAMES)
    frame = None
    if as_frame:
        frame, data, target = _as_frame(data, target, feature_names, BOSTON_TARGET_NAME)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        feature_names=feature_names,
        target_names=[BOSTON_TARGET_NAME],
        frame=frame,
        DESCR=BOSTON_HOUSING_DESCR,
        filename=str(filename),
    )


def load_mnist_5k(*, return_X_y=False, as_frame=False):
    """Load a 5,000-image subset of MNIST (500 images per digit).

    The rows are **sorted by class** (500 zeros, then 500 ones, ...): shuffle
    before use and split with ``stratify=y``. Pixel values are the raw
    intensities 0-255 as float64; they are not rescaled.

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a pandas DataFrame, ``target`` a pandas Series
        and ``frame`` a DataFrame holding both (pandas is needed only then).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields

        data : ndarray of shape (5000, 784), dtype float64, or DataFrame
            Flattened 28 x 28 images in row-major order, values in [0, 255].
        target : ndarray of shape (5000,), dtype int64, or Series
            The digit shown, 0 to 9; sorted in increasing order.
        images : ndarray of shape (5000, 28, 28), dtype float64
            The same pixels as ``data`` (before any DataFrame conversion)
            as images.
        feature_names : list of str
            ``pixel_r_c`` for row ``r`` and column ``c`` (0-based).
        target_names : ndarray of shape (10,)
            The class labels 0 to 9.
        frame : DataFrame of shape (5000, 785) or None
            Pixels and a ``label`` column when ``as_frame=True``, else None.
        DESCR : str
            Description of the data and its ordering.
        filename : str
            Path of the shipped gzip-compressed IDX images file; the labels
            are in the ``labels`` file next to it.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays (or DataFrame and Series) described above.

    See Also
    --------
    load_idx : The reader used for the shipped files.
    load_fashion_mnist : A larger image data set read from a local install.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import train_test_split
    >>> from sk_tdamp.datasets import load_mnist_5k
    >>> X, y = load_mnist_5k(return_X_y=True)
    >>> X.shape, X.dtype, float(X.max())
    ((5000, 784), dtype('float64'), 255.0)
    >>> y[:3].tolist(), y[-3:].tolist()  # sorted by class: never slice off a test set
    ([0, 0, 0], [9, 9, 9])
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X / 255.0, y, test_size=0.2, stratify=y, random_state=0)
    >>> np.bincount(y_test).tolist()
    [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    """
    images_file = DATA_DIR / _MNIST_IMAGES_FILE
    data, target = load_idx(images_file, DATA_DIR / _MNIST_LABELS_FILE)
    images = data.reshape(-1, _MNIST_SIDE, _MNIST_SIDE)
    feature_names = [f"pixel_{r}_{c}" for r in range(_MNIST_SIDE) for c in range(_MNIST_SIDE)]
    frame = None
    if as_frame:
        frame, data, target = _as_frame(data, target, feature_names, "label")
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=images,
        feature_names=feature_names,
        target_names=np.arange(10),
        frame=frame,
        DESCR=MNIST_5K_DESCR,
        filename=str(images_file),
    )
