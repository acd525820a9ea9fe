import jax
import numpy as np
import pytest

from jaxviz.data import Dataset, load_dataset
from jaxviz.errors import CheckpointError, ShapeError
from jaxviz.models import convnet, from_function, lenet
from jaxviz.train import Checkpointer, TrainConfig, train


@pytest.fixture(scope="module")
def digits28():
    """A 600-image slice of MNIST-5k: enough to see learning, fast enough for a unit test."""
    d = load_dataset("mnist5k")
    return d._replace(x_train=d.x_train[:512], y_train=d.y_train[:512], x_test=d.x_test[:200], y_test=d.y_test[:200])


CONFIG = TrainConfig(epochs=3, batch_size=64, learning_rate=2e-3, checkpoint_every=4)


def _leaves(model):
    return [np.asarray(x) for x in jax.tree.leaves(model.params)]


def test_training_learns(digits28, tmp_path):
    result = train(lenet(), digits28, CONFIG, cache=tmp_path, progress=False)
    assert result.steps == 3 * 8
    assert result.losses[-1] < result.losses[0]
    assert result.test_accuracy > 0.6  # 24 steps on 512 digits; chance is 0.1


def test_interrupted_run_resumes_to_identical_parameters(digits28, tmp_path):
    straight = train(lenet(), digits28, CONFIG, cache=tmp_path / "a", progress=False)
    first = train(lenet(), digits28, CONFIG, cache=tmp_path / "b", progress=False, stop_after_steps=11)
    assert first.steps == 11
    resumed = train(lenet(), digits28, CONFIG, cache=tmp_path / "b", progress=False)
    assert resumed.resumed_from == 11 and resumed.steps == 24
    for a, b in zip(_leaves(straight.model), _leaves(resumed.model)):
        np.testing.assert_array_equal(a, b)
    assert resumed.test_accuracy == straight.test_accuracy
    np.testing.assert_array_equal(resumed.losses, straight.losses)  # the epochs before the stop come from the checkpoint
    # a finished run is a cache hit: nothing retrained, the same losses
    again = train(lenet(), digits28, CONFIG, cache=tmp_path / "b", progress=False)
    assert again.resumed_from == 24 and again.steps == 24
    np.testing.assert_array_equal(again.losses, straight.losses)


def test_checkpoint_from_another_model_is_refused(digits28, tmp_path):
    result = train(lenet(), digits28, CONFIG._replace(epochs=1), cache=tmp_path, progress=False)
    ckpt = Checkpointer(result.checkpoint_dir)
    other = convnet((28, 28, 1), width=8)
    with pytest.raises(CheckpointError, match="model='lenet', not 'convnet'"):
        ckpt.restore(other.params, expect={"model": "convnet"})
    with pytest.raises(CheckpointError, match="another shape"):
        ckpt.restore(other.params)
    ckpt.close()


def test_bad_training_requests(digits28, tmp_path):
    with pytest.raises(ShapeError, match="expects inputs"):
        train(convnet((32, 32, 3)), digits28, CONFIG, cache=tmp_path, progress=False)
    with pytest.raises(ShapeError, match="batch_size 4096 exceeds"):
        train(lenet(), digits28, CONFIG._replace(batch_size=4096), cache=tmp_path, progress=False)
    with pytest.raises(ShapeError, match="no init function.*from_nnx"):
        train(from_function(lambda x: x.mean((1, 2))), Dataset("x", np.zeros((2, 8, 8, 3)), np.zeros(2), np.zeros((1, 8, 8, 3)), np.zeros(1), ("a",), "test"), CONFIG, cache=tmp_path)


@pytest.mark.slow
def test_lenet_on_mnist5k_reaches_95_percent(tmp_path):
    """The accuracy bar of the tour's quick mode, with the tour's own recipe."""
    from jaxviz.tour.core import CLASSIFIER_QUICK

    name, config = CLASSIFIER_QUICK
    data = load_dataset(name)
    result = train(lenet(class_names=data.class_names), data, config, cache=tmp_path, progress=False)
    assert result.test_accuracy >= 0.95, result.test_accuracy
