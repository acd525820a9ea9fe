"""The shape-chosen lowerings of jaxviz.models.ops equal XLA's operations, forward and backward."""

import contextlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from jaxviz.errors import JaxvizError
from jaxviz.models import ops

NHWC = ("NHWC", "HWIO", "NHWC")


def _close(a, b, rtol=2e-5):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = max(float(np.abs(b).max()), 1e-30)
    assert float(np.abs(a - b).max()) <= rtol * scale, float(np.abs(a - b).max()) / scale


def _equations(closed_jaxpr) -> list:
    """Every equation of a jaxpr, also inside the calls (jit, custom_jvp) it makes."""
    found = []

    def visit(eqns):
        for e in eqns:
            found.append(e)
            for sub in ("jaxpr", "call_jaxpr"):
                if sub in e.params:
                    visit(getattr(e.params[sub], "jaxpr", e.params[sub]).eqns)

    visit(closed_jaxpr.jaxpr.eqns)
    return found


def _primitive_names(closed_jaxpr) -> list[str]:
    return [e.primitive.name for e in _equations(closed_jaxpr)]


def _conv_case(key, b, hw, cin, cout, k):
    kx, kk = jax.random.split(key)
    return jax.random.normal(kx, (b, hw, hw, cin)), jax.random.normal(kk, (k, k, cin, cout)) / np.sqrt(k * k * cin)


@pytest.mark.parametrize(
    "lowering, hw, cin, cout, k, strides, padding",
    [
        ("dot", 9, 20, 7, 1, (1, 1), "VALID"),
        ("im2col", 9, 16, 12, 3, (1, 1), "SAME"),
        ("im2col", 11, 5, 6, 3, (2, 2), ((1, 2), (0, 3))),  # asymmetric padding, strides
        ("im2col", 10, 3, 4, 3, (2, 1), "VALID"),
        ("xla", 8, 3, 4, 3, (1, 1), "SAME"),
        ("taps", 12, 1, 6, 5, (1, 1), ((2, 2), (2, 2))),  # LeNet's first layer
        ("taps", 11, 3, 5, 3, (2, 1), ((1, 0), (2, 1))),
        ("winograd", 9, 5, 7, 3, (1, 1), "SAME"),  # tiles overhang the far edge
        ("winograd", 13, 4, 3, 3, (1, 1), ((0, 2), (1, 0))),  # asymmetric padding
        ("winograd", 8, 16, 32, 3, (1, 1), "VALID"),
    ],
)
def test_conv_lowerings_equal_xla_forward_and_both_gradients(lowering, hw, cin, cout, k, strides, padding):
    x, w = _conv_case(jax.random.key(hw * cin + k), 2, hw, cin, cout, k)
    ref = lambda x, w: lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)
    new = lambda x, w: ops.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC, lowering=lowering)
    _close(jax.jit(new)(x, w), jax.jit(ref)(x, w))
    # a non-uniform cotangent so that every output position weighs differently
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
    gn, gr = jax.jit(jax.grad(loss(new), (0, 1)))(x, w), jax.jit(jax.grad(loss(ref), (0, 1)))(x, w)
    _close(gn[0], gr[0])
    _close(gn[1], gr[1])


def test_choose_lowering_follows_shape_and_backend():
    sq = dict(dimension_numbers=NHWC)
    assert ops.choose_lowering((16, 56, 56, 128), (1, 1, 128, 16), (1, 1), "VALID", backend="cpu", **sq) == "dot"
    assert ops.choose_lowering((256, 16, 16, 128), (3, 3, 128, 128), (1, 1), "SAME", backend="cpu", **sq) == "im2col"
    assert ops.choose_lowerings((16, 27, 27, 32), (3, 3, 32, 128), (1, 1), "SAME", backend="cpu", **sq) == ("winograd", "im2col", "xla", 0)
    assert ops.choose_lowering((16, 13, 13, 64), (3, 3, 64, 256), (1, 1), "SAME", backend="cpu", **sq) == "winograd"
    assert ops.choose_lowering((16, 56, 56, 32), (3, 3, 32, 32), (1, 1), "SAME", backend="cpu", **sq) == "xla"  # too large
    assert ops.choose_lowering((16, 56, 56, 16), (3, 3, 16, 64), (1, 1), "SAME", backend="cpu", **sq) == "xla"
    assert ops.choose_lowering((256, 28, 28, 1), (5, 5, 1, 6), (1, 1), "SAME", backend="cpu", **sq) == "taps"
    # LeNet's few-channel layers take their gradients in chunks of the batch; larger layers do not
    assert ops.choose_lowerings((256, 28, 28, 1), (5, 5, 1, 6), (1, 1), "SAME", backend="cpu", **sq) == ("taps", "xla", "xla", 16)
    assert ops.choose_lowerings((256, 14, 14, 6), (5, 5, 6, 16), (1, 1), "VALID", backend="cpu", **sq) == ("xla", "xla", "xla", 16)
    assert ops.choose_lowerings((16, 14, 14, 6), (5, 5, 6, 16), (1, 1), "VALID", backend="cpu", **sq) == ("xla", "xla", "xla", 0)
    assert ops.choose_lowering((256, 28, 28, 1), (3, 3, 1, 128), (1, 1), "SAME", backend="cpu", **sq) == "xla"
    assert ops.choose_lowerings((16, 227, 227, 3), (3, 3, 3, 64), (2, 2), "VALID", backend="cpu", **sq) == ("xla", "xla", "xla", 0)
    assert ops.choose_lowerings((256, 14, 14, 6), (5, 5, 6, 16), (1, 1), "VALID", backend="gpu", **sq) == ("xla", "xla", "xla", 0)
    assert ops.choose_lowering((256, 16, 16, 128), (3, 3, 128, 128), (1, 1), "SAME", backend="gpu", **sq) == "xla"
    assert ops.choose_lowering((16, 56, 56, 128), (1, 1, 128, 16), (1, 1), "VALID", backend="tpu", **sq) == "xla"
    # grouped, dilated or other layouts keep XLA's convolution
    assert ops.choose_lowering((2, 9, 9, 32), (1, 1, 16, 32), (1, 1), feature_group_count=2, backend="cpu", **sq) == "xla"
    assert ops.choose_lowering((2, 9, 9, 32), (3, 3, 32, 8), (1, 1), rhs_dilation=(2, 2), backend="cpu", **sq) == "xla"
    assert ops.choose_lowering((2, 32, 9, 9), (8, 32, 1, 1), (1, 1), dimension_numbers=("NCHW", "OIHW", "NCHW"), backend="cpu") == "xla"


@pytest.mark.parametrize("cin, cout, hw, padding, batch", [(1, 6, 12, ((2, 2), (2, 2)), 2), (6, 16, 9, "VALID", 2),
                                                           (1, 6, 12, ((2, 2), (2, 2)), 5), (6, 16, 9, "VALID", 5)])
def test_split_lowerings_equal_xla_in_every_mode(cin, cout, hw, padding, batch, monkeypatch):
    """LeNet's layers (a tap sum forward with XLA's gradients; XLA's throughout, its gradients in the
    canonical layout and, for 5 images, in chunks of 2, 2 and 1) through the custom_jvp: equal to
    XLA's in reverse and forward mode and to second order (dataset distillation differentiates
    through gradient steps)."""
    monkeypatch.setattr(ops, "GRAD_CHUNK", 2)
    if jax.default_backend() == "cpu":
        assert ops.choose_lowerings((batch, hw, hw, cin), (5, 5, cin, cout), (1, 1), padding,
                                     dimension_numbers=NHWC).grad_chunk == (2 if batch > 2 else 0)
    x, w = _conv_case(jax.random.key(cin), batch, hw, cin, cout, 5)
    ref = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=NHWC)
    new = lambda x, w: ops.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=NHWC)
    tx, tw = jax.random.normal(jax.random.key(7), x.shape), jax.random.normal(jax.random.key(8), w.shape)

    @jax.jit
    def run(x, w):
        out = []
        for f in (new, ref):
            loss = lambda x, w, f=f: jnp.sum(jnp.sin(f(x, w)))
            step = lambda x, w, f=f: jnp.sum(jnp.cos(f(x, w - 0.1 * jax.grad(loss, 1)(x, w))))  # one inner SGD step
            out.append((f(x, w), *jax.grad(loss, (0, 1))(x, w), jax.jvp(f, (x, w), (tx, tw))[1], jax.grad(step)(x, w)))
        return out

    if jax.default_backend() == "cpu":
        assert str(jax.make_jaxpr(new)(x, w)).count("custom_jvp_call") == 1
    for a, b in zip(*run(x, w)):
        _close(a, b, rtol=5e-5)


@pytest.mark.parametrize("reverse_only", [False, True])
def test_winograd_forward_with_xla_gradients_equals_xla_to_second_order(reverse_only):
    """A SqueezeNet-like 3x3 layer (32 channels in at 7 px: Winograd's forward, XLA's gradients) equals
    XLA's forward, in both gradients, in forward mode (not under reverse_only) and through an SGD step."""
    if jax.default_backend() == "cpu":
        assert ops.choose_lowerings((2, 7, 7, 32), (3, 3, 32, 8), (1, 1), "SAME", dimension_numbers=NHWC).forward == "winograd"
    x, w = _conv_case(jax.random.key(3), 2, 7, 32, 8, 3)
    ref = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
    new = lambda x, w: ops.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)

    def outputs(f):
        loss = lambda x, w: jnp.sum(jnp.sin(f(x, w)))
        step = lambda x, w: jnp.sum(jnp.cos(f(x, w - 0.1 * jax.grad(loss, 1)(x, w))))  # one inner SGD step
        jvp = [] if reverse_only else [jax.jvp(f, (x, w), (x[::-1], w[::-1]))[1]]
        return f(x, w), *jax.grad(loss, (0, 1))(x, w), *jvp, *jax.grad(step, (0, 1))(x, w)

    with ops.reverse_only() if reverse_only else contextlib.nullcontext():
        fast = jax.jit(lambda: outputs(new))()
    for a, b in zip(fast, jax.jit(lambda: outputs(ref))()):
        _close(a, b, rtol=5e-5)


def test_gradient_convolutions_are_in_xlas_canonical_layout(monkeypatch):
    """Inside loops XLA's CPU compiler runs a convolution in another layout up to 68x slower, so every
    convolution of the gradient is NHWC x HWIO -> NHWC (and any kernel flip an explicit reverse)."""
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    x, w = _conv_case(jax.random.key(5), 2, 9, 16, 12, 3)

    def loss(x, w):
        h = ops.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
        return jnp.sum(jnp.sin(ops.conv_general_dilated(h, w[:, :, :12], (2, 2), "VALID", dimension_numbers=NHWC)))

    layouts = [tuple(map(tuple, e.params["dimension_numbers"])) for e in _equations(jax.make_jaxpr(jax.grad(loss, (0, 1)))(x, w))
               if e.primitive.name == "conv_general_dilated"]
    assert len(layouts) == 6  # 2 forward, 2 input and 2 kernel gradients
    assert set(layouts) == {((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))}


@pytest.mark.parametrize("cin, cout, hw, k, strides, padding, batch", [
    (1, 6, 12, 5, (1, 1), ((2, 2), (2, 2)), 5),  # LeNet's conv1: a tap sum forward, gradients in chunks of 2, 2, 1
    (6, 16, 9, 5, (1, 1), "VALID", 5),  # LeNet's conv2, chunked
    (4, 5, 9, 3, (1, 1), "SAME", 2),
    (4, 5, 9, 3, (2, 2), "SAME", 2),  # strided: the gradients are the custom_jvp's
    (8, 4, 6, 1, (1, 1), "VALID", 2),  # a dot
])
def test_reverse_only_convolutions_equal_xla_to_the_third_order(cin, cout, hw, k, strides, padding, batch, monkeypatch):
    monkeypatch.setattr(ops, "GRAD_CHUNK", 2)
    x, w = _conv_case(jax.random.key(cin + k), batch, hw, cin, cout, k)

    def orders(conv):
        loss = lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
        step = lambda x, w: jnp.sum(jnp.cos(conv(x, w - 0.1 * jax.grad(loss, 1)(x, w))))  # one inner SGD step
        third = lambda x, w: jnp.sum(jax.grad(lambda w: jnp.sum(jax.grad(step, 1)(x, w) ** 2))(w))
        return conv(x, w), *jax.grad(loss, (0, 1))(x, w), *jax.grad(step, (0, 1))(x, w), *jax.grad(third, (0, 1))(x, w)

    with ops.reverse_only():
        new = jax.jit(lambda x, w: orders(lambda x, w: ops.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)))(x, w)
    ref = jax.jit(lambda x, w: orders(lambda x, w: lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)))(x, w)
    for a, b in zip(new, ref):
        _close(a, b, rtol=1e-4)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU lowerings")
def test_reverse_only_keeps_second_order_gradients_canonical_inside_loops():
    """The gradient of unrolled SGD steps (dataset distillation's outer step) inside a ``lax.scan``:
    with the custom_jvp XLA compiled some of its convolutions in another layout (LeNet's step with 4
    random inits 2.2x as long, ``benchmarks/distill.py``); with ``reverse_only`` every convolution
    XLA runs is NHWC x HWIO -> NHWC."""
    x, w = _conv_case(jax.random.key(3), 4, 12, 6, 16, 5)
    conv = lambda x, w: ops.conv_general_dilated(x, w, (1, 1), ((2, 2), (2, 2)), dimension_numbers=NHWC)
    loss = lambda w, x: jnp.sum(jnp.sin(conv(x, w)))

    def outer(x, w):
        def body(w, _):
            return w - 0.1 * jax.grad(loss)(w, x), None
        return jnp.sum(jnp.cos(conv(x, jax.lax.scan(body, w, None, length=3)[0])))

    def layouts(reverse_only):
        with ops.reverse_only() if reverse_only else contextlib.nullcontext():
            hlo = jax.jit(jax.grad(outer)).lower(x, w).compile().as_text()
        return set(re.findall(r"dim_labels=([^,]*)", hlo))

    assert layouts(reverse_only=True) == {"b01f_01io->b01f"}
    assert len(layouts(reverse_only=False)) > 1  # what the context is for: gone when XLA no longer needs it


def test_forcing_an_inapplicable_lowering_is_an_error():
    x, w = _conv_case(jax.random.key(0), 1, 8, 4, 4, 3)
    with pytest.raises(JaxvizError, match="does not apply"):
        ops.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC, lowering="dot")
    with pytest.raises(JaxvizError, match="unknown convolution lowering"):
        ops.conv_with("fft")
    with pytest.raises(JaxvizError, match="does not apply"):  # Winograd's F(4x4, 3x3): 3x3 kernels, unit strides
        ops.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=NHWC, lowering="winograd")


def _reference_pool(x, window, strides, pads):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0)))


@pytest.mark.parametrize(
    "window, strides, padding, pads, hw",
    [
        ((3, 3), (2, 2), "CEIL", ((0, 1), (0, 1)), 12),  # SqueezeNet's ceil-mode pooling
        ((3, 3), (2, 2), "VALID", ((0, 0), (0, 0)), 13),
        ((2, 2), (2, 2), "SAME", ((0, 1), (0, 1)), 7),  # HED's odd sizes
        ((2, 2), (2, 2), "VALID", ((0, 0), (0, 0)), 8),  # the reshape path on CPU
        ((3, 2), (1, 2), ((1, 1), (0, 1)), ((1, 1), (0, 1)), 7),
    ],
)
def test_max_pool_equals_reduce_window_with_gradients(window, strides, padding, pads, hw):
    x = jax.random.normal(jax.random.key(hw), (2, hw, hw, 3))  # continuous values: no ties
    new = lambda x: ops.max_pool(x, window, strides, padding)
    ref = lambda x: _reference_pool(x, window, strides, pads)
    loss = lambda f: lambda x: jnp.sum(jnp.sin(3 * f(x)))
    t = jax.random.normal(jax.random.key(1), x.shape)

    @jax.jit
    def run(x, t):  # value, gradient, and forward mode (the rule is a custom_jvp)
        return [(f(x), jax.grad(loss(f))(x), jax.jvp(f, (x,), (t,))[1]) for f in (new, ref)]

    for a, b in zip(*run(x, t)):
        _close(a, b, rtol=0)


@pytest.mark.parametrize(
    "hw, cin, cout, k, padding",
    [
        (28, 1, 6, 5, ((2, 2), (2, 2))),  # LeNet's conv1
        (14, 6, 16, 5, "VALID"),  # LeNet's conv2
        (9, 2, 3, 4, "VALID"),  # an even kernel: a block row more on the far side
        (10, 3, 4, 3, "SAME"),
        (8, 2, 5, 2, ((1, 0), (0, 1))),  # asymmetric padding
    ],
)
def test_conv_blocks_equal_xla_to_the_second_order(hw, cin, cout, k, padding):
    x, w = _conv_case(jax.random.key(hw + 7 * k), 2, hw, cin, cout, k)
    ref = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=NHWC)
    new = lambda x, w: ops.unblock(ops.conv_blocks(x, w, padding))
    _close(jax.jit(new)(x, w), jax.jit(ref)(x, w))
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
    gn, gr = jax.jit(jax.grad(loss(new), (0, 1)))(x, w), jax.jit(jax.grad(loss(ref), (0, 1)))(x, w)
    _close(gn[0], gr[0])
    _close(gn[1], gr[1])
    # the gradient of an input-gradient norm in the kernel, as dataset distillation takes through training steps
    second = lambda f: lambda x, w: jnp.sum(jax.grad(loss(f))(x, w) ** 2)
    _close(jax.jit(jax.grad(second(new), 1))(x, w), jax.jit(jax.grad(second(ref), 1))(x, w), rtol=1e-4)


def test_conv_blocks_apply_where_the_tap_sum_would_on_cpu_with_even_outputs(monkeypatch):
    x, w = jnp.zeros((2, 9, 9, 1)), jnp.zeros((5, 5, 1, 6))
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")  # the rules are shapes and the backend: no device runs here
    assert ops.conv_blocks_apply(x, w, ((2, 1), (2, 1)))  # 8 x 8 out
    assert not ops.conv_blocks_apply(x, w, "VALID")  # 5 x 5 out: no whole 2x2 blocks
    assert not ops.conv_blocks_apply(jnp.zeros((2, 14, 14, 6)), jnp.zeros((5, 5, 6, 16)))  # LeNet's conv2: XLA's
    with ops.plain_xla():
        assert not ops.conv_blocks_apply(x, w, ((2, 1), (2, 1)))
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not ops.conv_blocks_apply(x, w, ((2, 1), (2, 1)))


def test_max_pool_sends_a_tied_window_gradient_to_its_first_maximum():
    x = jnp.zeros((1, 5, 5, 1))  # every window tied: its first (top-left) element takes the cotangent, as in XLA
    g = jax.jit(jax.grad(lambda x: ops.max_pool(x, 3, 2, "VALID").sum()))(x)[0, :, :, 0]
    expected = np.zeros((5, 5))
    expected[::2, ::2][:2, :2] = 1.0
    np.testing.assert_array_equal(g, expected)


def test_max_pool_is_xlas_own_off_cpu(monkeypatch):
    x = jnp.zeros((2, 9, 9, 4))

    def primitives(backend):
        monkeypatch.setattr(jax, "default_backend", lambda: backend)
        return str(jax.make_jaxpr(jax.grad(lambda x: ops.max_pool(x, 3, 2, "CEIL").sum()))(x))

    assert "select_and_scatter" not in primitives("cpu")  # CPU: the phase-plane gather derivative
    assert "select_and_scatter" in primitives("gpu")  # XLA's derivative on accelerators


def test_avg_pool_is_the_window_mean():
    x = jax.random.normal(jax.random.key(2), (2, 9, 8, 3))
    _close(ops.avg_pool(x, 2), nnx.avg_pool(x, (2, 2), strides=(2, 2)))


def test_with_fast_ops_rewrites_any_function_and_keeps_its_gradient():
    x, w = _conv_case(jax.random.key(3), 2, 8, 128, 16, 3)
    w1 = jax.random.normal(jax.random.key(4), (1, 1, 16, 8)) / 4.0

    def net(x, params):
        h = jax.nn.relu(lax.conv_general_dilated(x, params["w"], (1, 1), "SAME", dimension_numbers=NHWC))
        h = jax.jit(lambda h: nnx.max_pool(h, (3, 3), strides=(2, 2)))(h)
        return jnp.sum(jnp.cos(lax.conv_general_dilated(h, params["w1"], (1, 1), "VALID", dimension_numbers=NHWC)))

    params = {"w": w, "w1": w1}
    fast = ops.with_fast_ops(net)
    prims = set(_primitive_names(jax.make_jaxpr(fast)(x, params)))
    if jax.default_backend() == "cpu":
        assert "conv_general_dilated" not in prims and "dot_general" in prims
    _close(jax.jit(fast)(x, params), jax.jit(net)(x, params))
    g_fast, g_ref = jax.jit(jax.grad(fast, (0, 1)))(x, params), jax.jit(jax.grad(net, (0, 1)))(x, params)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
        _close(a, b)


def test_zoo_models_use_the_chosen_lowerings(squeezenet_model):
    from jaxviz.models import convnet, lenet

    if jax.default_backend() != "cpu":
        pytest.skip("on accelerators every convolution stays XLA's")

    def count(model, x):
        return _primitive_names(jax.make_jaxpr(lambda x: model(x))(x)).count("conv_general_dilated")

    # SqueezeNet at 99 px: its 1x1 convolutions are dots, fire4-9's 3x3 (32-64 channels in, at 12 and 6 px)
    # Winograd's; conv1 and fire2-3's 3x3 (16 channels in) stay XLA's
    assert count(squeezenet_model, jnp.zeros((1, 99, 99, 3))) == 3
    assert count(lenet(), jnp.zeros((1, 28, 28, 1))) == 1  # conv1 (one channel in) comes in 2x2 blocks (ops.conv_blocks)
    assert count(convnet(), jnp.zeros((1, 32, 32, 3))) == 1  # only block 1 (3 channels in); 128 -> 128 is im2col


def test_lenet_in_blocks_equals_its_plain_layers():
    """LeNet's first convolution and pooling in 2x2 blocks (a one-channel image, on CPU) give the
    logits, activations and gradients of the plain layers, which it runs when a delta is added at a
    convolution."""
    from jaxviz.models import lenet

    model = lenet((28, 28, 1), key=jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (4, 28, 28, 1))  # no tied pooling windows
    shapes = model.layer_shapes(x)
    plain = {"conv1": jnp.zeros(shapes["conv1"]), "conv2": jnp.zeros(shapes["conv2"])}
    y = jnp.arange(4)

    def loss(deltas):
        return lambda p, x: -jnp.sum(jax.nn.log_softmax(model.probe(x, deltas, params=p)[0])[jnp.arange(4), y])

    blocked, reference = model.activations(x), model.probe(x, plain)[1]
    for name in model.layers:
        _close(blocked[name], reference[name])
    g_blocked, g_plain = jax.jit(jax.grad(loss({}), (0, 1)))(model.params, x), jax.jit(jax.grad(loss(plain), (0, 1)))(model.params, x)
    for a, b in zip(jax.tree.leaves(g_blocked), jax.tree.leaves(g_plain)):
        _close(a, b)


def test_squeezenet_with_chosen_lowerings_matches_plain_xla(squeezenet_model, photos227):
    """Logits and input gradient of the zoo SqueezeNet equal the same net traced with XLA's own ops."""
    x = jnp.asarray(photos227[:, :99, :99])  # small (49, 24 and 11 px maps)
    t = jnp.array([281, 967])

    def target_sum(x):
        return jnp.take_along_axis(squeezenet_model(x), t[:, None], axis=1).sum()

    def ref_logits(x):  # distinct functions: jit's trace cache must not reuse the other lowering
        return squeezenet_model(x)

    def ref_target_sum(x):
        return target_sum(x)

    fast_jaxpr = str(jax.make_jaxpr(jax.grad(target_sum))(x))
    if jax.default_backend() == "cpu":  # XLA's: 3 of the 3x3 forward convolutions and their input gradients (6 Winograd layers: im2col's)
        assert fast_jaxpr.count("conv_general_dilated[") == 3 + 3 and "select_and_scatter_add" not in fast_jaxpr
    logits, grad = jax.jit(squeezenet_model)(x), jax.jit(jax.grad(target_sum))(x)
    with ops.plain_xla():
        ref_jaxpr = str(jax.make_jaxpr(jax.grad(ref_target_sum))(x))
        ref = jax.jit(ref_logits)(x), jax.jit(jax.grad(ref_target_sum))(x)
    assert "select_and_scatter_add" in ref_jaxpr and ref_jaxpr.count("conv_general_dilated[") == 2 * 26  # forward and input gradient of each
    _close(logits, ref[0], rtol=1e-5)
    _close(grad, ref[1], rtol=1e-4)
