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
    assert gc.shape == (2, 8, 8)
    small = A.grad_cam(cnn, x8, jnp.array([0, 3]), layer="conv2", resize=False)
    raw = A.grad_cam(cnn, x8, jnp.array([0, 3]), layer="conv2", resize=False, relu=False)
    assert small.shape == (2, 4, 4) and float(raw.min()) < 0 < float(raw.max())  # the ReLU has work to do
    np.testing.assert_array_equal(small, np.maximum(raw, 0))
    np.testing.assert_allclose(gc, jax.image.resize(small, (2, 8, 8), "linear"), rtol=1e-5, atol=1e-7)
    gg = A.guided_grad_cam(cnn, x8, 1, layer="conv2")
    assert gg.shape == x8.shape
    np.testing.assert_allclose(gg, A.guided_backprop(cnn, x8, 1) * A.grad_cam(cnn, x8, 1, layer="conv2")[..., None], rtol=1e-5)


def test_grad_cam_plus_plus_and_score_cam_hand_computation(x8):
    """On features A -> mean_ij(A) @ W the gradient is g_k = W[k, t] / (h w) everywhere, so the closed forms reduce
    to per-channel weights: Grad-CAM++ w_k = hw g_k^2 relu(g_k) / (2 g_k^2 + S_k g_k^3) with S_k = sum_ij A_k,
    Score-CAM w_k = softmax(f(x * norm(A_k)))_t."""
    m, p, w = feature_head_model()
    a = np.maximum(np.einsum("bhwc,ck->bhwk", np.asarray(x8, np.float64), np.asarray(p, np.float64)), 0)
    t = 1
    g = np.asarray(w, np.float64)[:, t] / 64.0
    s_k = a.sum(axis=(1, 2))  # (B, K)
    denom = 2 * g**2 + s_k * g**3
    weights = np.where(g != 0, 64 * g**2 / np.where(denom != 0, denom, 1) * np.maximum(g, 0), 0)
    expect_pp = np.maximum(np.einsum("bhwk,bk->bhw", a, weights), 0)
    np.testing.assert_allclose(A.grad_cam_plus_plus(m, x8, t, layer="features"), expect_pp, rtol=1e-4, atol=1e-7)
    lo, hi = a.min(axis=(1, 2), keepdims=True), a.max(axis=(1, 2), keepdims=True)
    masks = np.where(hi > lo, (a - lo) / np.where(hi > lo, hi - lo, 1), 0)
    scores = np.stack([np.asarray(jax.nn.softmax(m(np.asarray(x8) * masks[..., k : k + 1])))[:, t] for k in range(4)], axis=1)
    expect_sc = np.maximum(np.einsum("bhwk,bk->bhw", a, scores), 0)
    np.testing.assert_allclose(A.score_cam(m, x8, t, layer="features", chunk_size=3), expect_sc, rtol=1e-4, atol=1e-7)


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
