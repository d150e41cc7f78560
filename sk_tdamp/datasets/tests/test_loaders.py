"""Tests of the loaders of the data sets shipped with the package."""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sk_tdamp.datasets import load_boston_housing, load_mnist_5k

BOSTON_NAMES = [
    "CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE",
    "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT",
]  # fmt: skip

# Column sums (13 features, then MEDV) of the original 506-row file, computed once when
# the data were vendored; they catch a dropped, duplicated or altered row.
BOSTON_COLUMN_SUMS = [
    1828.44292, 5750.0, 5635.21, 35.0, 280.6757, 3180.025, 34698.9,
    1920.2916, 4832.0, 206568.0, 9338.5, 180477.06, 6402.45, 11401.6,
]  # fmt: skip


def test_boston_shapes_dtypes_and_names():
    bunch = load_boston_housing()
    assert bunch.data.shape == (506, 13)
    assert bunch.target.shape == (506,)
    assert bunch.data.dtype == np.float64
    assert bunch.target.dtype == np.float64
    assert bunch.feature_names == BOSTON_NAMES
    assert bunch.target_names == ["MEDV"]
    assert bunch.frame is None
    assert Path(bunch.filename).is_file()


def test_boston_known_values():
    bunch = load_boston_housing()
    first = [
        0.00632,
        18.0,
        2.31,
        0.0,
        0.538,
        6.575,
        65.2,
        4.09,
        1.0,
        296.0,
        15.3,
        396.9,
        4.98,
    ]
    assert_array_equal(bunch.data[0], first)
    assert bunch.target[0] == 24.0
    assert bunch.target[-1] == 11.9
    sums = np.concatenate([bunch.data.sum(axis=0), [bunch.target.sum()]])
    assert_allclose(sums, BOSTON_COLUMN_SUMS, rtol=1e-10)
    assert (bunch.target.min(), bunch.target.max()) == (5.0, 50.0)
    assert int(np.sum(bunch.target == 50.0)) == 16  # top-coded tracts, as DESCR says
    assert_array_equal(np.unique(bunch.data[:, BOSTON_NAMES.index("CHAS")]), [0.0, 1.0])


def test_boston_return_X_y_matches_bunch():
    X, y = load_boston_housing(return_X_y=True)
    bunch = load_boston_housing()
    assert_array_equal(X, bunch.data)
    assert_array_equal(y, bunch.target)


def test_boston_as_frame_holds_same_values():
    pd = pytest.importorskip("pandas")
    bunch = load_boston_housing(as_frame=True)
    assert isinstance(bunch.frame, pd.DataFrame)
    assert bunch.frame.shape == (506, 14)
    assert list(bunch.frame.columns) == BOSTON_NAMES + ["MEDV"]
    assert isinstance(bunch.target, pd.Series) and bunch.target.name == "MEDV"
    X, y = load_boston_housing(return_X_y=True)
    assert_array_equal(bunch.data.to_numpy(), X)
    assert_array_equal(bunch.frame["MEDV"].to_numpy(), y)
    X_df, y_s = load_boston_housing(return_X_y=True, as_frame=True)
    assert list(X_df.columns) == BOSTON_NAMES and y_s.shape == (506,)


def test_boston_descr_states_provenance_and_caveats():
    descr = load_boston_housing().DESCR
    for fact in (
        "Harrison and Rubinfeld (1978)",
        "StatLib",
        "UCI",
        "self-segregation",
        "1000 (Bk - 0.63)^2",
        "California housing",
        "Ames housing",
        *BOSTON_NAMES,
    ):
        assert fact in descr, fact


def test_mnist_shapes_dtypes_and_range():
    bunch = load_mnist_5k()
    assert bunch.data.shape == (5000, 784)
    assert bunch.data.dtype == np.float64
    assert bunch.target.shape == (5000,)
    assert bunch.target.dtype == np.int64
    assert (bunch.data.min(), bunch.data.max()) == (0.0, 255.0)
    assert_array_equal(bunch.data, np.round(bunch.data))  # raw integer intensities
    assert bunch.images.shape == (5000, 28, 28)
    assert_array_equal(bunch.images[7], bunch.data[7].reshape(28, 28))
    assert len(bunch.feature_names) == 784
    assert bunch.feature_names[29] == "pixel_1_1"
    assert_array_equal(bunch.target_names, np.arange(10))
    assert bunch.frame is None
    assert Path(bunch.filename).is_file()


def test_mnist_classes_balanced_and_sorted():
    _, y = load_mnist_5k(return_X_y=True)
    assert_array_equal(np.bincount(y), np.full(10, 500))
    assert_array_equal(y, np.repeat(np.arange(10), 500))


def test_mnist_known_pixel_sums():
    # Sums computed from the original CSV when the data were vendored.
    X, _ = load_mnist_5k(return_X_y=True)
    assert X.sum() == 131267102.0
    assert X[0].sum() == 31095.0
    assert X[-1].sum() == 33540.0
    assert (X**2).sum() == 28662803326.0


def test_mnist_as_frame_has_label_column():
    pd = pytest.importorskip("pandas")
    bunch = load_mnist_5k(as_frame=True)
    assert isinstance(bunch.frame, pd.DataFrame)
    assert bunch.frame.shape == (5000, 785)
    assert bunch.frame.columns[-1] == "label"
    assert_array_equal(bunch.frame["label"].to_numpy(), np.repeat(np.arange(10), 500))
    assert bunch.data.shape == (5000, 784)


def test_mnist_descr_warns_rows_sorted_by_class():
    descr = load_mnist_5k().DESCR
    assert "sorted by class" in descr
    assert "stratify=y" in descr
    assert "without rescaling" in descr
