import jax
import jax.numpy as jnp
import numpy as np
from tiny_nets import tiny_cnn

import jaxviz.attribution as A
from jaxviz.models.contract import Model, Taps


def test_relu_free_model_equals_gradient(x8):
    m = tiny_cnn(relu=False, pool=False)
    g = A.gradient(m, x8, 1)
    np.testing.assert_allclose(A.guided_backprop(m, x8, 1), g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(A.deconvnet(m, x8, 1), g, rtol=1e-5, atol=1e-6)


def test_guided_differs_from_gradient_on_relu_net(cnn, x8):
    g, gb = A.gradient(cnn, x8, 1), A.guided_backprop(cnn, x8, 1)
    assert not np.allclose(g, gb)
    np.testing.assert_allclose(A.replace_relu_grad(cnn, "gradient")(x8), cnn(x8), rtol=1e-6)  # forward unchanged
    np.testing.assert_allclose(jax.grad(lambda x: A.replace_relu_grad(cnn, "gradient")(x)[:, 1].sum())(x8), g, rtol=1e-5, atol=1e-6)


def _two_layer():
    w1 = jnp.array([[1.0, -2.0, 0.5], [-1.0, 1.0, 2.0]])  # (2 in, 3 hidden)
    w2 = jnp.array([[1.0], [-1.0], [3.0]])  # (3 hidden, 1 out) ... plus a second class
    w2 = jnp.concatenate([w2, -w2], axis=1)

    def f(x):  # x (B, 1, 1, 2)
        h = jax.nn.relu(x.reshape(x.shape[0], 2) @ w1)
        return h @ w2

    return f, np.asarray(w1), np.asarray(w2)


def test_two_layer_hand_rules():
    f, w1, w2 = _two_layer()
    x = jnp.array([[[[1.0, 0.2]]], [[[-0.5, 1.0]]]])
    for t in (0, 1):
        g = w2[:, t]
        z = np.asarray(x).reshape(2, 2) @ w1
        guided = ((z > 0) & (g[None] > 0)) * g[None]
        deconv = np.maximum(g, 0)[None].repeat(2, 0)
        plain = (z > 0) * g[None]
        np.testing.assert_allclose(A.guided_backprop(f, x, t).reshape(2, 2), guided @ w1.T, rtol=1e-6)
        np.testing.assert_allclose(A.deconvnet(f, x, t).reshape(2, 2), deconv @ w1.T, rtol=1e-6)
        np.testing.assert_allclose(A.gradient(f, x, t).reshape(2, 2), plain @ w1.T, rtol=1e-6)


def test_relu_patterns_are_found():
    """jnp.maximum either order, zeros_like operand, nested jit, custom_vjp wrappers: all are ReLUs."""

    @jax.custom_vjp
    def cv(x):
        return jnp.maximum(jnp.zeros_like(x), x)

    cv.defvjp(lambda x: (cv(x), x), lambda x, g: (g,))  # a (wrong) straight-through rule we must override

    def f(x):
        a = jnp.maximum(x - 0.5, 0.0) * jnp.array([1.0, -1.0, 1.0])
        b = jax.jit(lambda u: jnp.maximum(0.0, u))(-x + 0.2)
        return a.sum() + cv(x - 0.9).sum() * -1.0 + b.sum() * -2.0

    x = jnp.array([0.1, 0.7, 1.0])
    plain = jax.grad(A.replace_relu_grad(f, "gradient"))(x)
    guided = jax.grad(A.replace_relu_grad(f, "guided"))(x)
    # hand: a: x>0.5 -> [0, -1, 1]; cv: x>0.9 -> [0, 0, -1]; b: -x+0.2>0 -> d/dx = 2 at x=0.1
    np.testing.assert_allclose(plain, [2.0, -1.0, 0.0], atol=1e-6)
    # guided: a gives [0, 0, 1]; cv gradient -1 blocked; b: upstream -2 blocked
    np.testing.assert_allclose(guided, [0.0, 0.0, 1.0], atol=1e-6)


def test_not_relus_untouched():
    f = lambda x: jnp.maximum(x, 0.3).sum() + jnp.where(x > 0, x, 0.0).sum() + jax.nn.leaky_relu(x).sum()  # noqa: E731
    x = jnp.array([-0.2, 0.5])
    np.testing.assert_allclose(jax.grad(A.replace_relu_grad(f, "guided"))(x), jax.grad(f)(x), rtol=1e-6)


def test_jit_and_pytree_args(cnn, x8):
    a = jax.jit(A.guided_backprop)(cnn, x8, jnp.array([0, 2]))
    np.testing.assert_allclose(a, A.guided_backprop(cnn, x8, jnp.array([0, 2])), rtol=1e-5, atol=1e-6)
    g = A.replace_relu_grad(lambda p, x: cnn.apply(p, x)[:, 0].sum(), "deconvnet")
    gp = jax.grad(g)(cnn.params, x8)
    assert jax.tree.structure(gp) == jax.tree.structure(cnn.params)


def test_unit_projection(cnn, x8):
    p = A.unit_projection(cnn, x8, "conv2", 3)
    assert p.shape == x8.shape
    q = A.unit_projection(cnn, x8, "conv2", (3, 1, 2), method="gradient")
    acts = cnn.activations(x8)["conv2"]
    # "gradient" projection is the vjp of the single unit scaled by its activation
    ref = jax.grad(lambda x: (cnn.probe(x)[1]["conv2"][:, 1, 2, 3] * acts[:, 1, 2, 3]).sum())(x8)
    np.testing.assert_allclose(q, ref, rtol=1e-5, atol=1e-7)
    # a dense-layer unit works too
    assert A.unit_projection(cnn, x8, "logits", 1, method="guided").shape == x8.shape


def test_unit_projection_zero_activation_gives_zero():
    def forward(p, x, d):
        taps = Taps(d)
        h = taps("feat", jax.nn.relu(x * p.reshape(1, 1, 1, 2)))
        return taps("logits", h.sum(axis=(1, 2))), taps.acts

    m = Model(params=jnp.array([1.0, -1.0]), forward=forward, layers=("feat", "logits"))
    x = jnp.ones((1, 3, 3, 2))
    np.testing.assert_allclose(A.unit_projection(m, x, "feat", 1), 0.0)
    p = A.unit_projection(m, x, "feat", (0, 2, 1))
    expect = np.zeros((1, 3, 3, 2))
    expect[0, 2, 1, 0] = 1.0
    np.testing.assert_allclose(p, expect)


def test_redirected_rule_passes_upward_gradient_only_for_examples_whose_relus_are_all_dead():
    x = jnp.array([[-1.0, -2.0, -0.5], [-1.0, 2.0, -0.5]])  # example 0: every unit dead; example 1: one alive
    g = jnp.array([[-1.0, 3.0, -2.0], [-1.0, 3.0, -2.0]])  # cotangent of a loss being minimised
    got = A.redirected_rule(x, g)
    np.testing.assert_array_equal(got[0], [-1.0, 0.0, -2.0])  # dead: pass what pushes x up (g < 0), stop what pushes it down
    np.testing.assert_array_equal(got[1], [0.0, 3.0, 0.0])  # alive somewhere: the plain ReLU gradient
