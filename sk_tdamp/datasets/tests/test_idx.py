"""Tests of the IDX reader and the Fashion-MNIST convenience loader."""

import gzip
import os
import re
import struct

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sk_tdamp.datasets import load_fashion_mnist, load_idx

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def _write(path, magic, dims, payload, compress):
    content = struct.pack(f">{1 + len(dims)}I", magic, *dims) + bytes(payload)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(content)
    return path


def _small_set(rng, n=5, rows=3, cols=4):
    images = rng.randint(0, 256, size=(n, rows, cols)).astype(np.uint8)
    labels = rng.randint(0, 10, size=n).astype(np.uint8)
    return images, labels


@pytest.mark.parametrize(
    "image_name, label_name, compress",
    [
        ("img-idx3-ubyte", "lab-idx1-ubyte", False),
        ("img-idx3-ubyte.gz", "lab-idx1-ubyte.gz", True),
        # compression is detected from the content, not from the file name
        ("img.gz", "lab.gz", False),
        ("img.raw", "lab.raw", True),
    ],
)
def test_load_idx_round_trip(tmp_path, image_name, label_name, compress):
    images, labels = _small_set(np.random.RandomState(0))
    img = _write(tmp_path / image_name, 0x803, images.shape, images.tobytes(), compress)
    lab = _write(tmp_path / label_name, 0x801, labels.shape, labels.tobytes(), compress)
    X, y = load_idx(img, lab)
    assert X.shape == (5, 12) and X.dtype == np.float64
    assert y.shape == (5,) and y.dtype == np.int64
    assert_array_equal(X, images.reshape(5, 12).astype(np.float64))
    assert_array_equal(y, labels)
    # row-major flattening: pixel (row 1, column 2) of image 3 is feature 1 * 4 + 2
    assert X[3, 6] == images[3, 1, 2]


def test_load_idx_without_labels_returns_images_only(tmp_path):
    images, _ = _small_set(np.random.RandomState(1))
    img = _write(tmp_path / "img", 0x803, images.shape, images.tobytes(), True)
    X = load_idx(str(img))
    assert isinstance(X, np.ndarray)
    assert_array_equal(X, images.reshape(5, -1))


def test_load_idx_reads_full_byte_range(tmp_path):
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    img = _write(tmp_path / "img", 0x803, pixels.shape, pixels.tobytes(), False)
    X = load_idx(img)
    assert (X.min(), X.max()) == (0.0, 255.0)  # unsigned, not wrapped to negative


def _malformed_cases():
    good = bytes(range(24))  # 2 images of 3 x 4
    return {
        "bad magic": (
            0x12345678,
            (2, 3, 4),
            good,
            "magic number 0x12345678, expected 0x00000803",
        ),
        "labels as images": (0x801, (2,), b"\x01\x02", "magic number 0x00000801"),
        "wrong type code": (
            0xD03,
            (2, 3, 4),
            good * 4,
            r"data type code 0x0D \(float32\)",
        ),
        "truncated data": (
            0x803,
            (2, 3, 4),
            good[:-1],
            "is truncated.*24 values.*23 data bytes",
        ),
        "trailing bytes": (0x803, (2, 3, 4), good + b"\x00", "has trailing bytes"),
        "truncated header": (
            0x803,
            (2,),
            b"",
            "is truncated: the header needs 16 bytes",
        ),
    }


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("case", list(_malformed_cases()))
def test_load_idx_malformed_images_raise_clear_error(tmp_path, case, compress):
    magic, dims, payload, message = _malformed_cases()[case]
    path = _write(tmp_path / "broken-images", magic, dims, payload, compress)
    with pytest.raises(ValueError, match=message) as info:
        load_idx(path)
    assert os.fspath(path) in str(info.value)


def test_load_idx_malformed_labels_raise_clear_error(tmp_path):
    images, labels = _small_set(np.random.RandomState(2))
    img = _write(tmp_path / "img", 0x803, images.shape, images.tobytes(), False)
    lab = _write(tmp_path / "lab", 0x803, (5, 1, 1), labels.tobytes(), False)
    with pytest.raises(ValueError, match="expected 0x00000801 for labels"):
        load_idx(img, lab)


def test_load_idx_label_count_mismatch(tmp_path):
    images, labels = _small_set(np.random.RandomState(3))
    img = _write(tmp_path / "img", 0x803, images.shape, images.tobytes(), False)
    lab = _write(tmp_path / "lab", 0x801, (4,), labels[:4].tobytes(), True)
    expected = f"'{lab}' holds 4 labels but IDX file '{img}' holds 5 images"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_idx(img, lab)


@pytest.mark.parametrize("content", [b"", b"\x00\x00"])
def test_load_idx_empty_or_tiny_file(tmp_path, content):
    path = tmp_path / "tiny"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="too short for the 4-byte magic number"):
        load_idx(path)


def test_load_idx_corrupt_gzip(tmp_path):
    images, _ = _small_set(np.random.RandomState(4))
    packed = gzip.compress(struct.pack(">4I", 0x803, *images.shape) + images.tobytes())
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match="cannot be decompressed") as info:
        load_idx(path)
    assert "cut.gz" in str(info.value)


def _fake_fashion_dir(directory, rng):
    sizes = {"train": 6, "t10k": 3}
    for prefix, n in sizes.items():
        images, labels = _small_set(rng, n=n, rows=28, cols=28)
        compress = prefix == "train"  # one set gzipped, the other not
        suffix = ".gz" if compress else ""
        _write(directory / f"{prefix}-images-idx3-ubyte{suffix}", 0x803, images.shape,
               images.tobytes(), compress)  # fmt: skip
        _write(directory / f"{prefix}-labels-idx1-ubyte{suffix}", 0x801, labels.shape,
               labels.tobytes(), compress)  # fmt: skip
    return sizes


@pytest.mark.parametrize("kind, prefix", [("train", "train"), ("test", "t10k")])
def test_load_fashion_mnist_finds_standard_names(tmp_path, kind, prefix):
    sizes = _fake_fashion_dir(tmp_path, np.random.RandomState(5))
    X, y = load_fashion_mnist(tmp_path, kind=kind)
    assert X.shape == (sizes[prefix], 784)
    suffix = ".gz" if prefix == "train" else ""
    X_ref, y_ref = load_idx(
        tmp_path / f"{prefix}-images-idx3-ubyte{suffix}",
        tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}",
    )
    assert_array_equal(X, X_ref)
    assert_array_equal(y, y_ref)


def test_load_fashion_mnist_accepts_dotted_names(tmp_path):
    images, labels = _small_set(np.random.RandomState(6), n=2, rows=28, cols=28)
    _write(
        tmp_path / "t10k-images.idx3-ubyte",
        0x803,
        images.shape,
        images.tobytes(),
        False,
    )
    _write(
        tmp_path / "t10k-labels.idx1-ubyte",
        0x801,
        labels.shape,
        labels.tobytes(),
        False,
    )
    X, y = load_fashion_mnist(str(tmp_path), kind="test")
    assert X.shape == (2, 784)
    assert_array_equal(y, labels)


def test_load_fashion_mnist_missing_files_explains_install(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(tmp_path / "nowhere")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte" in message
    assert "nowhere" in message


def test_load_fashion_mnist_missing_labels_only(tmp_path):
    images, _ = _small_set(np.random.RandomState(7), n=2, rows=28, cols=28)
    _write(
        tmp_path / "t10k-images-idx3-ubyte",
        0x803,
        images.shape,
        images.tobytes(),
        False,
    )
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path, kind="test")


def test_load_fashion_mnist_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="kind must be 'train' or 'test', got 'valid'"):
        load_fashion_mnist(tmp_path, kind="valid")


@pytest.mark.skipif(
    not os.path.isdir(FASHION_DIR),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_load_fashion_mnist_installed_test_set():
    X, y = load_fashion_mnist(kind="test")
    assert X.shape == (10000, 784)
    assert_array_equal(np.bincount(y), np.full(10, 1000))
    assert (X.min(), X.max()) == (0.0, 255.0)
