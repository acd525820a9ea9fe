"""The benchmark peers (plain PyTorch SqueezeNet 1.1 and LeNet-5) compute what jaxviz computes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from bench_loader import load  # noqa: E402
from skimage import data as skdata  # noqa: E402
from skimage.transform import resize  # noqa: E402

from jaxviz.models.zoo import lenet  # noqa: E402

peers = load("peers/torch_models.py", "_jaxviz_bench_torch_peers")


def _max_rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


@pytest.fixture(scope="module")
def photos():
    """skimage's chelsea (a tabby cat) and coffee (an espresso), resized to (2, 227, 227, 3) RGB in [0, 1]."""
    imgs = [resize(f(), (227, 227), anti_aliasing=True) for f in (skdata.chelsea, skdata.coffee)]
    return np.stack(imgs).astype(np.float32)


@pytest.fixture(scope="module")
def squeeze(squeezenet_model):
    return squeezenet_model  # the suite's shared instance (tests/conftest.py), loaded once


_logits = jax.jit(lambda model, x: model(x))


def test_squeezenet_peer_logits_match_on_photos(squeeze, photos):
    ours = np.asarray(_logits(squeeze, photos))
    net = peers.squeezenet_from_jaxviz(squeeze)
    with torch.inference_mode():
        theirs = net(peers.nhwc_to_nchw(photos)).numpy()
    assert theirs.shape == ours.shape == (2, 1000)
    assert _max_rel_err(theirs, ours) < 1e-4
    assert np.array_equal(theirs.argmax(-1), ours.argmax(-1))
    # Real photos, real weights: the cat is a cat, so the comparison is not between two wrong nets.
    assert 281 <= ours[0].argmax() <= 285 and ours[1].argmax() == 967  # a domestic cat; espresso


def test_squeezenet_peer_input_gradient_matches(squeeze, photos):
    targets = np.array([281, 967])  # tabby cat, espresso
    x = photos[:1, ::2, ::2]  # a smaller input keeps the test fast (the net is fully convolutional)
    t = targets[:1]
    ours = jax.jit(jax.grad(lambda x: jnp.take_along_axis(squeeze(x), t[:, None], 1).sum()))(x)
    net = peers.squeezenet_from_jaxviz(squeeze).requires_grad_(False)
    xt = peers.nhwc_to_nchw(x).requires_grad_(True)
    net(xt).gather(1, torch.from_numpy(t)[:, None]).sum().backward()
    theirs = xt.grad.numpy().transpose(0, 2, 3, 1)
    assert _max_rel_err(theirs, ours) < 1e-3


def test_ceil_mode_pooling_matches_jaxviz():
    from jaxviz.models.squeezenet import max_pool_ceil

    x = np.random.default_rng(0).normal(size=(2, 113, 113, 4)).astype(np.float32)  # odd size: windows overhang
    ours = np.asarray(max_pool_ceil(jnp.asarray(x)))
    theirs = torch.nn.MaxPool2d(3, 2, ceil_mode=True)(peers.nhwc_to_nchw(x)).numpy().transpose(0, 2, 3, 1)
    assert ours.shape == theirs.shape == (2, 56, 56, 4)
    np.testing.assert_array_equal(ours, theirs)


@pytest.fixture(scope="module")
def lenet28():
    return lenet((28, 28, 1), key=jax.random.key(3))


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_lenet_peer_logits_match(shape, lenet28):
    model = lenet28 if shape == (28, 28, 1) else lenet(shape, key=jax.random.key(3))
    x = np.random.default_rng(1).uniform(size=(8, *shape)).astype(np.float32)
    ours = np.asarray(_logits(model, x))
    net = peers.lenet_from_jaxviz(model)
    with torch.inference_mode():
        theirs = net(peers.nhwc_to_nchw(x)).numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5 * np.abs(ours).max())


def test_lenet_peer_gradients_match(lenet28):
    """Same loss and same parameter gradients: the training-step benchmark compares like with like."""
    import optax
    from flax import nnx

    model = lenet28
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(16, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=16)

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

    ours_loss, grads = jax.jit(jax.value_and_grad(loss))(model.params)
    g = peers.pure_params(nnx.to_pure_dict(grads))
    net = peers.lenet_from_jaxviz(model)
    theirs_loss = torch.nn.functional.cross_entropy(net(peers.nhwc_to_nchw(x)), torch.from_numpy(y))
    theirs_loss.backward()
    np.testing.assert_allclose(theirs_loss.item(), float(ours_loss), rtol=1e-5)
    np.testing.assert_allclose(net.conv1.weight.grad.numpy(), g["conv1"]["kernel"].transpose(3, 2, 0, 1), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(net.fc3.weight.grad.numpy(), g["fc3"]["kernel"].T, rtol=1e-3, atol=1e-6)
