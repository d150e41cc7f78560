"""Reader for the IDX files of MNIST and Fashion-MNIST."""

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE_CODE = 0x08
_IDX_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_IMAGES_NDIM = 3
_LABELS_NDIM = 1
_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_FASHION_MNIST_PREFIX = {"train": "train", "test": "t10k"}


def _read_bytes(path):
    """Return the content of ``path``, gunzipped when it starts with the gzip magic."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(
            f"IDX file {os.fspath(path)!r} starts with the gzip magic bytes but "
            f"cannot be decompressed ({exc}); the file is corrupt or truncated."
        ) from exc


def _parse_idx(path, expected_ndim, what):
    """Parse an IDX file holding unsigned bytes and return it as a uint8 array.

    Parameters
    ----------
    path : str or os.PathLike
        File to read, gzip-compressed or not.
    expected_ndim : int
        Number of dimensions the header must declare (3 for images, 1 for labels).
    what : str
        "images" or "labels", used in error messages.

    Returns
    -------
    array : ndarray of uint8
        The data with the shape declared by the header.
    """
    name = os.fspath(path)
    buf = _read_bytes(path)
    expected_magic = (_UBYTE_CODE << 8) | expected_ndim
    if len(buf) < 4:
        raise ValueError(
            f"IDX file {name!r} is truncated: {len(buf)} bytes, too short for the "
            "4-byte magic number."
        )
    magic = int.from_bytes(buf[:4], "big")
    if buf[0] != 0 or buf[1] != 0 or buf[3] != expected_ndim:
        raise ValueError(
            f"IDX file {name!r} has magic number 0x{magic:08X}, expected "
            f"0x{expected_magic:08X} for {what} (unsigned bytes, {expected_ndim} "
            f"dimension{'s' if expected_ndim > 1 else ''}). Is it an IDX {what} file?"
        )
    if buf[2] != _UBYTE_CODE:
        type_name = _IDX_TYPE_NAMES.get(buf[2], "unknown")
        raise ValueError(
            f"IDX file {name!r} has data type code 0x{buf[2]:02X} ({type_name}); "
            f"only 0x{_UBYTE_CODE:02X} (unsigned byte), as used by MNIST and "
            "Fashion-MNIST, is supported."
        )
    header_size = 4 + 4 * expected_ndim
    if len(buf) < header_size:
        raise ValueError(
            f"IDX file {name!r} is truncated: the header needs {header_size} bytes "
            f"but the file has {len(buf)}."
        )
    dims = tuple(int.from_bytes(buf[4 + 4 * k : 8 + 4 * k], "big") for k in range(expected_ndim))
    n_expected = int(np.prod(dims, dtype=np.int64))
    n_found = len(buf) - header_size
    if n_found != n_expected:
        problem = "is truncated" if n_found < n_expected else "has trailing bytes"
        raise ValueError(
            f"IDX file {name!r} {problem}: the header declares dimensions {dims}, "
            f"i.e. {n_expected} values, but the file holds {n_found} data bytes."
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=header_size).reshape(dims)


def load_idx(images, labels=None):
    """Read MNIST-style IDX files of images and, optionally, labels.

    IDX is the binary format of the MNIST and Fashion-MNIST distributions: a
    big-endian header (magic number ``0x00000803`` for a 3-dimensional array of
    unsigned bytes, ``0x00000801`` for a 1-dimensional one, then one int32 per
    dimension) followed by the raw bytes. Files may be gzip-compressed or not;
    compression is detected from the gzip magic bytes, not from the file name.
    Nothing is downloaded: the files must already be on disk.

    Parameters
    ----------
    images : str or os.PathLike
        Path of an images file (``*-images-idx3-ubyte`` or its ``.gz``),
        holding ``n`` images of ``rows x cols`` pixels.
    labels : str or os.PathLike, default=None
        Path of the matching labels file (``*-labels-idx1-ubyte`` or its
        ``.gz``). When None only the images are read.

    Returns
    -------
    X : ndarray of shape (n, rows * cols), dtype float64
        One flattened image per row (row-major pixel order), raw intensities
        from 0 to 255, not rescaled. float64 is what scikit-learn estimators
        work in; it takes 8 bytes per pixel (about 376 MB for 60,000 MNIST
        images).
    y : ndarray of shape (n,), dtype int64
        The labels. Returned only when ``labels`` is given.

    Raises
    ------
    ValueError
        If a file is not a valid IDX file of unsigned bytes with the expected
        number of dimensions (bad magic number, wrong data type code,
        truncated header or data, trailing bytes, corrupt gzip stream), or if
        the number of labels differs from the number of images. The message
        names the file and the problem.

    See Also
    --------
    load_fashion_mnist : Read the Fashion-MNIST files by their standard names.

    Examples
    --------
    >>> import gzip, os, struct, tempfile
    >>> import numpy as np
    >>> from sk_tdamp.datasets import load_idx
    >>> tmp = tempfile.mkdtemp()
    >>> pixels = np.arange(12, dtype=np.uint8)  # two images of 2 x 3 pixels
    >>> with gzip.open(os.path.join(tmp, "img.gz"), "wb") as f:
    ...     _ = f.write(struct.pack(">4i", 0x803, 2, 2, 3) + pixels.tobytes())
    >>> with open(os.path.join(tmp, "lab"), "wb") as f:
    ...     _ = f.write(struct.pack(">2i", 0x801, 2) + bytes([7, 1]))
    >>> X, y = load_idx(os.path.join(tmp, "img.gz"), os.path.join(tmp, "lab"))
    >>> X.shape, X.dtype, y.tolist()
    ((2, 6), dtype('float64'), [7, 1])
    >>> X[1].tolist()
    [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    """
    images_u8 = _parse_idx(images, _IMAGES_NDIM, "images")
    X = images_u8.reshape(images_u8.shape[0], -1).astype(np.float64)
    if labels is None:
        return X
    y = _parse_idx(labels, _LABELS_NDIM, "labels").astype(np.int64)
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"Label count mismatch: IDX file {os.fspath(labels)!r} holds {y.shape[0]} "
            f"labels but IDX file {os.fspath(images)!r} holds {X.shape[0]} images."
        )
    return X, y


def _find_idx_file(directory, stem):
    """Return the first existing file among the usual spellings of ``stem``, else None."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in (".gz", ""):
            candidate = directory / (name + suffix)
            if candidate.is_file():
                return candidate
    return None


def load_fashion_mnist(path=_FASHION_MNIST_DIR, kind="train"):
    """Read the Fashion-MNIST training or test set from a local directory.

    Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) has 60,000 training and
    10,000 test grayscale images of 28 x 28 pixels of clothing articles in 10
    classes. It is not shipped with sk_tdamp; on Debian and Ubuntu the package
    ``dataset-fashion-mnist`` installs it in the default ``path``. The function
    looks in ``path`` for the standard file names
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each with or
    without ``.gz`` (the spelling ``train-images.idx3-ubyte`` is also
    accepted), and reads them with :func:`load_idx`.

    Parameters
    ----------
    path : str or os.PathLike, default="/usr/share/datasets/fashion-mnist"
        Directory holding the IDX files.
    kind : {"train", "test"}, default="train"
        Which set to read: ``"train"`` (60,000 images, files ``train-*``) or
        ``"test"`` (10,000 images, files ``t10k-*``).

    Returns
    -------
    X : ndarray of shape (n, 784), dtype float64
        Raw pixel intensities from 0 to 255, not rescaled.
    y : ndarray of shape (n,), dtype int64
        Class labels 0-9: T-shirt/top, trouser, pullover, dress, coat,
        sandal, shirt, sneaker, bag, ankle boot.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not hold the files; the message explains how to
        install them.
    ValueError
        If ``kind`` is not "train" or "test", or a file is malformed (see
        :func:`load_idx`).

    See Also
    --------
    load_idx : Read IDX files from explicit paths.

    Examples
    --------
    >>> import os
    >>> from sk_tdamp.datasets import load_fashion_mnist
    >>> if os.path.isdir("/usr/share/datasets/fashion-mnist"):  # doctest: +SKIP
    ...     X, y = load_fashion_mnist(kind="test")
    ...     print(X.shape, X.max(), sorted(set(y.tolist())) == list(range(10)))
    (10000, 784) 255.0 True
    """
    if kind not in _FASHION_MNIST_PREFIX:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}.")
    directory = Path(path)
    prefix = _FASHION_MNIST_PREFIX[kind]
    found = {}
    for part, ndim in (("images", _IMAGES_NDIM), ("labels", _LABELS_NDIM)):
        stem = f"{prefix}-{part}-idx{ndim}-ubyte"
        found[part] = _find_idx_file(directory, stem)
        if found[part] is None:
            raise FileNotFoundError(
                f"Fashion-MNIST {kind} {part} not found: no file {stem}[.gz] in "
                f"{os.fspath(path)!r}. Install the data with "
                "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu, files go to "
                f"{_FASHION_MNIST_DIR}) or pass path= the directory that holds the "
                "Fashion-MNIST IDX files. sk_tdamp does not download data."
            )
    return load_idx(found["images"], found["labels"])
