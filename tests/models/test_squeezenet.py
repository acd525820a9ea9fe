import pickle

import numpy as np
import pytest

from jaxviz.errors import WeightsError
from jaxviz.models import squeezenet
from jaxviz.models.imagenet import caffe_deprocess, caffe_preprocess
from jaxviz.models.squeezenet import default_weights_path, max_pool_ceil
from jaxviz.models.weights import load_array_pickle


def test_real_weights_classify_bundled_photos(squeezenet_model, photos227):
    probs = np.asarray(__import__("jax").nn.softmax(squeezenet_model(photos227)))
    cat, coffee = probs.argmax(-1)
    assert 281 <= cat <= 285, squeezenet_model.class_names[cat]
    assert coffee == 967 and squeezenet_model.class_names[967] == "espresso"
    assert probs[1, 967] > 0.9


def test_layers_and_class_names(squeezenet_model):
    assert squeezenet_model.layers[:3] == ("conv1", "pool1", "fire2")
    assert squeezenet_model.layers[-2:] == ("conv10", "logits")
    assert len(squeezenet_model.class_names) == 1000
    shapes = squeezenet_model.layer_shapes()
    assert shapes["fire9"] == (1, 14, 14, 512) and shapes["pool1"] == (1, 56, 56, 64)


def test_caffe_preprocessing_round_trips():
    x = np.random.default_rng(0).random((2, 5, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(caffe_deprocess(caffe_preprocess(x)), x, atol=1e-5)
    # blue channel of the input becomes the first (B) channel, minus the Caffe mean
    np.testing.assert_allclose(caffe_preprocess(x)[..., 0], x[..., 2] * 255 - 104.006, rtol=1e-5)


def test_ceil_mode_pooling_size():
    x = np.arange(56 * 56, dtype=np.float32).reshape(1, 56, 56, 1)
    y = max_pool_ceil(x)
    assert y.shape == (1, 28, 28, 1)  # floor mode would give 27
    assert y[0, -1, -1, 0] == x.max()


def _write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_code_is_refused(tmp_path):
    path = _write_pickle(tmp_path / "evil.pkl", {"conv1": [Evil()]})
    with pytest.raises(WeightsError, match="builtins.print.*only hold numpy arrays"):
        load_array_pickle(path)


def test_truncated_pickle_is_reported(tmp_path):
    data = default_weights_path().read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="not a readable weight pickle"):
        squeezenet(path)


def test_wrong_shape_names_layer_and_shapes(tmp_path):
    weights = load_array_pickle(default_weights_path())
    weights["fire4/expand3x3"] = [np.zeros((3, 3, 32, 64), np.float32), weights["fire4/expand3x3"][1]]
    path = _write_pickle(tmp_path / "bad.pkl", weights)
    with pytest.raises(WeightsError, match=r"'fire4/expand3x3' expected shape \(3, 3, 32, 128\), found \(3, 3, 32, 64\)"):
        squeezenet(path)


def test_missing_layers_and_wrong_container(tmp_path):
    weights = load_array_pickle(default_weights_path())
    del weights["conv10"]
    with pytest.raises(WeightsError, match="lacks layer.*conv10"):
        squeezenet(_write_pickle(tmp_path / "missing.pkl", weights))
    with pytest.raises(WeightsError, match="expected a dict"):
        squeezenet(_write_pickle(tmp_path / "list.pkl", [1, 2]))
    with pytest.raises(WeightsError, match="not found"):
        squeezenet(tmp_path / "nope.pkl")
