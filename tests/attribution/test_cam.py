import jax
import jax.numpy as jnp
import numpy as np

import jaxviz.attribution as A
from jaxviz.models.contract import Model, Taps


def feature_head_model():
    """features A = relu(x @ P) (a 1x1 conv), head = mean_ij(A) @ W; dy_t/dA = W[:, t] / (h w)."""
    p = jnp.array([[1.0, -0.5, 0.2, 0.0], [0.3, 1.0, -1.0, 0.5], [0.0, 0.4, 0.6, -1.0]])
    w = jnp.array([[1.0, -1.0], [2.0, 0.5], [-0.5, 1.0], [0.3, 0.3]])

    def forward(params, x, d):
        taps = Taps(d)
        a = taps("features", jax.nn.relu(jnp.einsum("bhwc,ck->bhwk", x, params["p"])))
        return taps("logits", a.mean(axis=(1, 2)) @ params["w"]), taps.acts

    return Model(params={"p": p, "w": w}, forward=forward, layers=("features", "logits")), p, w


def test_grad_cam_hand_computation(x8):
    m, p, w = feature_head_model()
    a = np.maximum(np.einsum("bhwc,ck->bhwk", np.asarray(x8), np.asarray(p)), 0)
    for t in (0, 1):
        alpha = np.asarray(w)[:, t] / 64.0
        expect = np.maximum((a * alpha).sum(-1), 0)
        np.testing.assert_allclose(A.grad_cam(m, x8, t, layer="features"), expect, rtol=1e-5, atol=1e-7)
        raw = A.grad_cam(m, x8, t, layer="features", relu=False, resize=False)
        np.testing.assert_allclose(raw, (a * alpha).sum(-1), rtol=1e-5, atol=1e-7)


def test_cams_shapes_and_upsampling(cnn, x8):
    gc = jax.jit(A.grad_cam, static_argnames="layer")(cnn, x8, jnp.array([0, 3]), layer="conv2")
    assert gc.shape == (2, 8, 8) and float(gc.min()) >= 0
    small = A.grad_cam(cnn, x8, jnp.array([0, 3]), layer="conv2", resize=False)
    assert small.shape == (2, 4, 4)
    np.testing.assert_allclose(gc, jax.image.resize(small, (2, 8, 8), "linear"), rtol=1e-5, atol=1e-7)
    pp = A.grad_cam_plus_plus(cnn, x8, 1, layer="conv2")
    sc = A.score_cam(cnn, x8, 1, layer="conv2", chunk_size=2)
    gg = A.guided_grad_cam(cnn, x8, 1, layer="conv2")
    assert pp.shape == sc.shape == (2, 8, 8) and gg.shape == x8.shape
    assert float(pp.min()) >= 0 and float(sc.min()) >= 0
    np.testing.assert_allclose(gg, A.guided_backprop(cnn, x8, 1) * A.grad_cam(cnn, x8, 1, layer="conv2")[..., None], rtol=1e-5)


def test_score_cam_chunking_invariant(cnn, x8):
    a = A.score_cam(cnn, x8, 2, layer="conv1", chunk_size=3)
    b = A.score_cam(cnn, x8, 2, layer="conv1", chunk_size=None)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_score_cam_baseline_term(cnn, x8):
    """The paper's weights p(x * mask_k) - p(black) shift the map by p(black) times the summed activations."""
    plain = A.score_cam(cnn, x8, 2, layer="conv2", resize=False)  # >= 0 before its ReLU: activations and probabilities are
    paper = A.score_cam(cnn, x8, 2, layer="conv2", resize=False, subtract_baseline=True)
    p_black = jax.nn.softmax(cnn(jnp.zeros_like(x8)))[:, 2]
    a = cnn.probe(x8)[1]["conv2"]
    np.testing.assert_allclose(paper, jax.nn.relu(plain - p_black[:, None, None] * a.sum(-1)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(paper, plain)


def test_grad_cam_on_split_functions(x8):
    """A model given as features(x) -> A and head(A) -> logits (via the adapter) gives the same map."""
    from jaxviz.models.adapters import from_functions

    m, p, w = feature_head_model()
    split = from_functions(
        lambda x: jax.nn.relu(jnp.einsum("bhwc,ck->bhwk", x, p)), lambda a: a.mean(axis=(1, 2)) @ w, (8, 8, 3)
    )
    np.testing.assert_allclose(A.grad_cam(split, x8, 1, layer="features"), A.grad_cam(m, x8, 1, layer="features"), rtol=1e-6)
