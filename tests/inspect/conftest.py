"""A LeNet-5 trained briefly on MNIST-5k (one epoch, cached for the session) and its data."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def mnist():
    from jaxviz.data import load_dataset

    return load_dataset("mnist5k")


@pytest.fixture(scope="session")
def trained(mnist, tmp_path_factory):
    """(TrainResult, untrained LeNet) -- LeNet after one epoch of MNIST-5k (62 steps)."""
    from jaxviz.models import lenet
    from jaxviz.train import TrainConfig, train

    model = lenet(class_names=mnist.class_names)
    result = train(model, mnist, TrainConfig(epochs=1, batch_size=64, learning_rate=3e-3), cache=tmp_path_factory.mktemp("cache"), progress=False)
    return result, model


@pytest.fixture(scope="session")
def lenet_trained(trained):
    return trained[0].model


@pytest.fixture(scope="session")
def lenet_untrained(trained):
    return trained[1]


@pytest.fixture(scope="session")
def small_train(mnist):
    """The first 700 training images and labels (not a multiple of the batch sizes used)."""
    return np.asarray(mnist.x_train[:700]), np.asarray(mnist.y_train[:700])
