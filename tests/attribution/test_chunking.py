"""Backend-aware default chunking of the multi-sample methods (``chunk_size="auto"``)."""

import jax
import numpy as np
import pytest

from jaxviz.attribution import _common as C
from jaxviz.errors import JaxvizError


def test_auto_chunk_keeps_about_one_batch_per_step_on_cpu(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert C.auto_chunk("auto", 16, 25, 8) == 1  # a batch of 16: one noisy copy per step
    assert C.auto_chunk("auto", 32, 50, 16) == 1
    assert C.auto_chunk("auto", 1, 25, 8) == 13  # one image: 25 copies in two even steps, not 16 + 9 padded
    assert C.auto_chunk("auto", 4, 50, 16) == 4  # 13 steps of 4 copies x 4 images
    assert C.auto_chunk(5, 16, 25, 8) == 5 and C.auto_chunk(None, 16, 25, 8) is None  # explicit values pass through


def test_auto_chunk_keeps_accelerator_defaults(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert C.auto_chunk("auto", 16, 25, 8) == 8
    assert C.auto_chunk("auto", 1, 677, 32) == 32


def test_a_bad_chunk_size_is_still_an_error():
    with pytest.raises(JaxvizError, match="chunk_size must be a positive integer"):
        C.chunked_sum(lambda a: a[None], np.ones((4, 2)), C.auto_chunk("big", 2, 4, 8))


def _dense_net(x):  # per-example logits from every pixel
    w = jax.numpy.linspace(-1.0, 1.0, x[0].size * 3).reshape(-1, 3)
    return jax.numpy.tanh(x.reshape(x.shape[0], -1) @ w)


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_input_gradients_run_in_pieces_of_the_batch_on_cpu(monkeypatch, backend):
    import jax.numpy as jnp

    from jaxviz import attribution as A

    x = jnp.asarray(np.random.default_rng(0).uniform(size=(5, 6, 6, 1)), jnp.float32)
    t = jnp.array([0, 1, 2, 0, 1])
    whole = C.target_grad(_dense_net, x, t)
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    monkeypatch.setattr(C, "CPU_PIXELS_PER_PASS", 2 * 6 * 6)  # pieces of 2 images: 3 pieces, the last padded
    jaxpr = str(jax.make_jaxpr(lambda x, t: C.target_grad(_dense_net, x, t))(x, t))  # a fresh function: no cached trace
    assert ("scan" in jaxpr) == (backend == "cpu")
    pieces = C.target_grad(_dense_net, x, t)
    assert pieces.shape == x.shape
    np.testing.assert_allclose(pieces, whole, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(A.smoothgrad(A.gradient, _dense_net, x, t, key=jax.random.key(0), samples=3, sigma=0.0),
                               whole, rtol=1e-5, atol=1e-6)
