import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.featureviz import transforms as T


@pytest.fixture(scope="module")
def x():
    return jax.random.uniform(jax.random.key(0), (3, 20, 20, 3))


def test_identity_affine_and_exact_quarter_turn(x):
    b = x.shape[0]
    same = T.affine(x, jnp.ones(b), jnp.zeros(b), jnp.zeros((b, 2)))
    np.testing.assert_allclose(same, x, atol=1e-6)
    quarter = T.affine(x, jnp.ones(b), jnp.full((b,), np.pi / 2), jnp.zeros((b, 2)))
    np.testing.assert_allclose(quarter, np.rot90(np.asarray(x), k=-1, axes=(1, 2)), atol=1e-5)
    shifted = T.affine(x, jnp.ones(b), jnp.zeros(b), jnp.tile(jnp.array([[2.0, 3.0]]), (b, 1)))
    np.testing.assert_allclose(shifted[:, 2:, 3:], x[:, :-2, :-3], atol=1e-6)


def test_pad_and_jitter_sizes_and_values(x):
    padded = T.pad(4, value=0.25)(None, x)
    assert padded.shape == (3, 28, 28, 3) and np.all(np.asarray(padded[:, :4]) == 0.25)
    j = T.jitter(5)(jax.random.key(1), x)
    assert j.shape == (3, 15, 15, 3)
    offsets = [next((dy, dx) for dy in range(6) for dx in range(6) if np.allclose(j[i], x[i, dy:dy + 15, dx:dx + 15])) for i in range(3)]
    assert len(set(offsets)) > 1  # each image gets its own draw (3 images, 36 offsets)


def test_standard_set_is_deterministic_per_key_and_differentiable(x):
    a = T.STANDARD(jax.random.key(3), x)
    b = T.STANDARD(jax.random.key(3), x)
    c = T.STANDARD(jax.random.key(4), x)
    assert a.shape == (3, *T.STANDARD.out_size(20, 20), 3) == (3, 32, 32, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    g = jax.grad(lambda x: T.STANDARD(jax.random.key(3), x).sum())(x)
    assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


def test_too_small_image_for_the_jitter():
    with pytest.raises(ShapeError, match="jitter"):
        T.compose(T.jitter(8), T.jitter(4)).out_size(10, 10)


def test_bad_transform_arguments():
    with pytest.raises(JaxvizError):
        T.jitter(-1)
    with pytest.raises(JaxvizError):
        T.random_scale([0.0])
    with pytest.raises(JaxvizError):
        T.pad(2, mode="wrap")


def test_consecutive_warps_are_one_resampling_equal_to_applying_them_in_turn():
    yy, xx = np.meshgrid(np.arange(40.0), np.arange(40.0), indexing="ij")
    smooth = np.stack([np.sin(yy / 7) * np.cos(xx / 9), np.cos((yy + xx) / 11), np.sin(xx / 6)], -1)
    x = jnp.asarray(np.stack([smooth, smooth[::-1]]), jnp.float32)  # smooth: one bilinear pass ~ two
    chain = T.compose(T.random_scale([0.9, 1.1]), T.RandomShiftScale(3.0, (0.95, 1.05)), T.random_rotate([-10, 10]))
    u = jax.random.uniform(jax.random.key(0), (2, chain.draws))
    fused = chain.apply(u, x)
    one_by_one, i = x, 0
    for t in chain.transforms:
        one_by_one, i = t.apply(u[:, i:i + t.draws], one_by_one), i + t.draws
    inner = (slice(None), slice(8, 32), slice(8, 32))  # away from the clamped borders
    np.testing.assert_allclose(fused[inner], one_by_one[inner], atol=0.02)
    assert float(jnp.abs(fused - x).max()) > 0.2  # the warp moved the image
