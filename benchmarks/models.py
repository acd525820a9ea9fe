"""Model zoo benchmark: jaxviz against plain PyTorch with the same weights, in one process.

Cases (each jaxviz case twice: with the zoo's shape-chosen lowerings of ``jaxviz.models.ops``,
and traced under ``ops.plain_xla()``, i.e. XLA's own convolution and pooling as before them):
  forward     SqueezeNet 1.1, batch 16 at 227x227, ``jax.jit(lambda m, x: m(x))`` vs the torch peer
              (``benchmarks/peers/torch_models.py``) under ``torch.inference_mode``.
  input-grad  gradient of the sum of the target-class logits with respect to the input pixels,
              same batch and nets (per-example targets).
  train-step  LeNet-5 (batch 256 of 28x28x1) and ConvNet (batch 256 of 32x32x3) training steps,
              Adam(1e-3) on softmax cross-entropy: ``jaxviz.train.make_train_step`` vs
              ``loss.backward(); opt.step()`` in torch.
  layer-fwd / layer-grad
              every SqueezeNet layer type at its size in the 227 px net (batch 16): forward, and
              forward with the gradient with respect to the input of ``<r, layer(x)>`` for a fixed
              random ``r`` (both sides compute both; a network's backward pass needs the forward).
  eager       calls as a user types them, no ``jit`` of their own: ``jaxviz.attribution.gradient``
              on the SqueezeNet batch and ``jaxviz.train.predict`` of LeNet on 10,000 images
              (batches of 1000), each called twice; the second call is timed (the first is in the
              compile column).

Both sides take their native layout (NHWC for jaxviz, NCHW for torch), converted once outside the
timed region; both apply the Caffe preprocessing inside the forward pass. torch runs with 2
threads. Usage::

    python benchmarks/models.py            # full run: writes results/models.json and RESULTS.md
    python benchmarks/models.py --quick    # a smoke test: results/models-quick.json only
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch.nn import functional as F

from benchmarks.common import (
    Row,
    Timing,
    describe,
    jax_row,
    machine_description,
    parser,
    settings,
    table,
    time_group,
    torch_row,
    use_gpu_peer,
    write_results,
)
from benchmarks.peers.torch_models import (
    convnet_from_jaxviz,
    lenet_from_jaxviz,
    nhwc_to_nchw,
    peer_tensor,
    squeezenet_from_jaxviz,
)
from jaxviz import attribution
from jaxviz.data import photo, resize
from jaxviz.models import ops
from jaxviz.models.squeezenet import squeezenet
from jaxviz.models.zoo import convnet, lenet
from jaxviz.train import make_train_step, predict

NAME = "models"
TORCH_THREADS = 2
SQUEEZE_BATCH, SQUEEZE_SIZE = 16, 227
STEP_BATCH = 256
PREDICT_N, PREDICT_BATCH = 10_000, 1000
AFTER, BEFORE, PEER = "jaxviz", "jaxviz, XLA ops (before)", "torch"


def traced_under(context, fn):
    """``fn`` traced (``jit``-compiled at its first call) inside ``context()``, e.g. ``ops.reverse_only``."""

    def traced(*args):
        with context():
            return fn(*args)

    return traced


def xla(fn):
    """``fn`` traced under ``ops.plain_xla()``: XLA's own convolution and pooling (the zoo before ops)."""
    return traced_under(ops.plain_xla, fn)


def three_rows(benchmark, case, timings, *, items, unit="img", impls=("", "", "")) -> list[Row]:
    peer = timings[PEER]
    return [
        jax_row(benchmark, case, timings[AFTER], peer, impl=AFTER + impls[0], items=items, unit=unit),
        jax_row(benchmark, case, timings[BEFORE], peer, impl=BEFORE + impls[1], items=items, unit=unit),
        torch_row(benchmark, case, peer, impl=PEER + impls[2], items=items, unit=unit),
    ]


def squeezenet_rows(timer) -> tuple[list, Timing]:
    model = squeezenet()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(SQUEEZE_BATCH, SQUEEZE_SIZE, SQUEEZE_SIZE, 3)).astype(np.float32)
    targets = rng.integers(0, 1000, size=SQUEEZE_BATCH).astype(np.int32)
    xj, tj = jnp.asarray(x), jnp.asarray(targets)
    xt, tt = nhwc_to_nchw(x), peer_tensor(targets.astype(np.int64))[:, None]
    net = squeezenet_from_jaxviz(model)
    rows = []

    # (a) forward. The model is passed to jit as a pytree argument, so its weights are inputs of the
    # compiled function rather than constants folded into it.
    def forward(m, x):
        return m(x)

    tm = time_group({AFTER: (forward, (model, xj)), BEFORE: (xla(lambda m, x: m(x)), (model, xj))}, {PEER: (net, (xt,))}, **timer)
    rows += three_rows("forward", f"SqueezeNet 1.1 forward, batch {SQUEEZE_BATCH}, {SQUEEZE_SIZE}px", tm,
                       items=SQUEEZE_BATCH, impls=(" jit(model(x))", "", " peer (inference_mode)"))

    # (b) input gradient of the target-class logits
    def input_grad(m, x, t):
        return jax.grad(lambda x: jnp.take_along_axis(m(x), t[:, None], axis=1).sum())(x)

    net_g = squeezenet_from_jaxviz(model).requires_grad_(False)  # gradients for the input only, as in JAX
    xg = xt.clone().requires_grad_(True)

    def torch_input_grad(x, t):
        return torch.autograd.grad(net_g(x).gather(1, t).sum(), x)[0]

    tm = time_group({AFTER: (input_grad, (model, xj, tj)), BEFORE: (xla(lambda m, x, t: input_grad(m, x, t)), (model, xj, tj))},
                    {PEER: (torch_input_grad, (xg, tt))}, inference=False, **timer)
    case = f"SqueezeNet 1.1 input gradient of target logits, batch {SQUEEZE_BATCH}, {SQUEEZE_SIZE}px"
    rows += three_rows("input-grad", case, tm, items=SQUEEZE_BATCH, impls=(" jit(grad)", "", " peer (autograd.grad)"))
    peer_grad = tm[PEER]

    # (c) eager attribution call: compiled on the first call, cached for the second
    t0 = time.perf_counter()
    jax.block_until_ready(attribution.gradient(model, x, targets))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(attribution.gradient(model, x, targets))
    second = time.perf_counter() - t0
    rows.append(Row("eager", f"jaxviz.attribution.gradient(model, x, t), SqueezeNet batch {SQUEEZE_BATCH}, {SQUEEZE_SIZE}px",
                    "jaxviz (eager call, no user jit)", first, second, second / peer_grad.steady_s,
                    f"second call timed (n=1); first call in the compile column; peer: the torch input-grad row ({peer_grad.steady_s:.4f} s)",
                    items=SQUEEZE_BATCH))
    return rows, peer_grad


def step_rows(timer, name, model, shape) -> list:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(STEP_BATCH, *shape)).astype(np.float32)
    y = rng.integers(0, 10, size=STEP_BATCH).astype(np.int32)
    optimizer = optax.adam(1e-3)
    params = model.params
    opt_state = optimizer.init(params)
    peer = {"lenet": lenet_from_jaxviz, "convnet": convnet_from_jaxviz}[name](model).train()
    xt, yt = nhwc_to_nchw(x), peer_tensor(y.astype(np.int64))
    np.testing.assert_allclose(peer(xt).detach().cpu().numpy(), np.asarray(model(x)), rtol=1e-4, atol=1e-5)  # same function
    opt = torch.optim.Adam(peer.parameters(), lr=1e-3)

    def torch_step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(peer(x), y)
        loss.backward()
        opt.step()
        return loss

    args = ((params, model.state, opt_state), (jnp.asarray(x), jnp.asarray(y), jnp.int32(0)))
    step_after, step_before = make_train_step(model, optimizer), make_train_step(model, optimizer)  # two jit caches
    tm = time_group({AFTER: (step_after, args), BEFORE: (xla(step_before), args)}, {PEER: (torch_step, (xt, yt))},
                    inference=False, **timer)
    label = {"lenet": "LeNet-5", "convnet": "ConvNet (width 128, instance norm)"}[name]
    case = f"{label} train step, Adam, batch {STEP_BATCH}, {'x'.join(map(str, shape))}"
    return three_rows("train-step", case, tm, items=STEP_BATCH, unit="ex", impls=(" make_train_step", "", " (backward + Adam.step)"))


def predict_rows() -> list:
    model = lenet((28, 28, 1), 10, key=jax.random.key(0))
    x = np.random.default_rng(2).uniform(size=(PREDICT_N, 28, 28, 1)).astype(np.float32)
    net = lenet_from_jaxviz(model).eval()
    xt = nhwc_to_nchw(x)

    def torch_predict():
        with torch.inference_mode():
            return np.concatenate([net(xt[i : i + PREDICT_BATCH]).argmax(1).cpu().numpy() for i in range(0, PREDICT_N, PREDICT_BATCH)])

    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        labels = predict(model, x, batch_size=PREDICT_BATCH)
        times.append(time.perf_counter() - t0)
    torch_predict()
    peer = []
    for _ in range(3):
        t0 = time.perf_counter()
        peer_labels = torch_predict()
        peer.append(time.perf_counter() - t0)
    agree = float((labels == peer_labels).mean())
    case = f"jaxviz.train.predict, LeNet-5, {PREDICT_N} images in batches of {PREDICT_BATCH}"
    peer_t = statistics.median(peer)
    return [
        Row("eager", case, "jaxviz predict (second call)", times[0], times[1], times[1] / peer_t,
            f"second call timed (n=1); first call in the compile column; labels agree with torch on {agree:.1%}", items=PREDICT_N),
        Row("eager", case, "torch (eval, argmax per batch)", peer[0], peer_t, None, f"n={len(peer)}", items=PREDICT_N),
    ]


# Every SqueezeNet layer type at its size in the 227 px net: (label, input HWC, kernel, cout, stride, padding)
LAYERS = [
    ("conv1 3x3/2, 3->64", (227, 227, 3), 3, 64, 2, "VALID"),
    ("squeeze1x1 64->16", (56, 56, 64), 1, 16, 1, "VALID"),
    ("expand1x1 16->64", (56, 56, 16), 1, 64, 1, "VALID"),
    ("expand3x3 16->64", (56, 56, 16), 3, 64, 1, "SAME"),
    ("squeeze1x1 256->32", (28, 28, 256), 1, 32, 1, "VALID"),
    ("expand3x3 32->128", (28, 28, 32), 3, 128, 1, "SAME"),
    ("expand3x3 64->256", (14, 14, 64), 3, 256, 1, "SAME"),
    ("conv10 1x1 512->1000", (14, 14, 512), 1, 1000, 1, "VALID"),
]
POOLS = [(113, 64), (56, 128), (28, 256)]  # max pool 3x3/2 ceil mode inputs


def layer_rows(timer) -> list:
    rng = np.random.default_rng(3)
    rows = []
    cases = []
    for label, hwc, k, cout, stride, pad in LAYERS:
        w = (rng.standard_normal((k, k, hwc[2], cout)) / np.sqrt(k * k * hwc[2])).astype(np.float32)
        wt = peer_tensor(w.transpose(3, 2, 0, 1))
        padding = (k // 2) if pad == "SAME" else 0

        def jfn(x, w=w, stride=stride, pad=pad):
            return ops.conv_general_dilated(x, w, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"))

        def tfn(x, wt=wt, stride=stride, padding=padding):
            return F.conv2d(x, wt, stride=stride, padding=padding)

        lowerings = ops.choose_lowerings((SQUEEZE_BATCH, *hwc), w.shape, (stride, stride), pad,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        cases.append((f"{label} at {hwc[0]}px", hwc, jfn, tfn, lowerings[:2]))  # forward, input gradient
    for size, c in POOLS:
        cases.append((f"max pool 3x3/2 ceil, {c} ch", (size, size, c), lambda x: ops.max_pool(x, 3, 2, "CEIL"),
                      lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True), ("reduce_window", "phase-plane derivative")))
    for label, hwc, jfn, tfn, (forward, gradient) in cases:
        x = rng.standard_normal((SQUEEZE_BATCH, *hwc)).astype(np.float32)
        out = jax.eval_shape(jfn, jax.ShapeDtypeStruct(x.shape, jnp.float32)).shape
        r = rng.standard_normal(out).astype(np.float32)
        xj, rj, xt = jnp.asarray(x), jnp.asarray(r), nhwc_to_nchw(x)
        rt = nhwc_to_nchw(r)

        def jgrad(x, r, jfn=jfn):  # the output too: without it XLA drops a linear layer's forward
            out, vjp = jax.vjp(jfn, x)
            return out, vjp(r)[0]

        xg = xt.clone().requires_grad_(True)

        def tgrad(x, r, tfn=tfn):
            out = tfn(x)
            return out, torch.autograd.grad(out, x, r)[0]

        tm = time_group({AFTER: (lambda x, jfn=jfn: jfn(x), (xj,)), BEFORE: (xla(lambda x, jfn=jfn: jfn(x)), (xj,))},
                        {PEER: (tfn, (xt,))}, **timer)
        rows += three_rows("layer-fwd", label, tm, items=SQUEEZE_BATCH, impls=(f" ({forward})", "", ""))
        tm = time_group({AFTER: (jgrad, (xj, rj)), BEFORE: (xla(lambda x, r, jgrad=jgrad: jgrad(x, r)), (xj, rj))},
                        {PEER: (tgrad, (xg, rt))}, inference=False, **timer)
        rows += three_rows("layer-grad", label, tm, items=SQUEEZE_BATCH, impls=(f" ({gradient})", "", ""))
    return rows


def with_rules(fn, **constants):
    """``fn`` traced with some of ``jaxviz.models.ops``'s rule constants (e.g. ``IM2COL_MIN_CHANNELS=32``) or
    functions changed."""

    def traced(*args):
        old = {name: getattr(ops, name) for name in constants}
        for name, value in constants.items():
            setattr(ops, name, value)
        try:
            return fn(*args)
        finally:
            for name, value in old.items():
                setattr(ops, name, value)

    return traced


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def strided_pad_max_pool(x, window, strides, pads):
    """``ops._max_pool`` with its earlier derivative, for the probes: the tangent gathered window by
    window with the first-maximum test chained over the offsets, each offset a strided slice of the
    padded image (reverse mode: one image-sized strided pad per offset)."""
    return ops._reduce_window_max(x, window, strides, pads)


@strided_pad_max_pool.defjvp
def _strided_pad_max_pool_jvp(window, strides, pads, primals, tangents):
    (x,), (t,) = primals, tangents
    y = ops._reduce_window_max(x, window, strides, pads)
    _, ho, wo, _ = y.shape
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    tp = jnp.pad(t, ((0, 0), *pads, (0, 0)))
    found = jnp.zeros(y.shape, bool)
    out = jnp.zeros(y.shape, t.dtype)
    for i in range(window[0]):
        for j in range(window[1]):
            hit = (ops._window(xp, i, j, ho, wo, strides) == y) & ~found
            found = found | hit
            out = out + jnp.where(hit, ops._window(tp, i, j, ho, wo, strides), jnp.zeros((), t.dtype))
    return y, out


def probe_rows(timer) -> list:
    """Why the shipped choices: whole-network variants of the lowering and of the chunking, interleaved."""
    rows = []
    shipped = "shipped rules"

    def variant_rows(benchmark, case, tm, items, unit="img"):
        ref = tm[shipped]
        return [jax_row(benchmark, case, t, ref, impl=name, items=items, unit=unit, notes="ratio vs the shipped variant")
                for name, t in tm.items()]

    model = squeezenet()
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(SQUEEZE_BATCH, SQUEEZE_SIZE, SQUEEZE_SIZE, 3)).astype(np.float32))
    t = jnp.arange(SQUEEZE_BATCH, dtype=jnp.int32)

    def input_grad(m, x, t):
        return jax.grad(lambda x: jnp.take_along_axis(m(x), t[:, None], axis=1).sum())(x)

    fns = {shipped: (input_grad, (model, x, t)),
           "im2col from 32 ch": (with_rules(lambda *a: input_grad(*a), IM2COL_MIN_CHANNELS=32), (model, x, t)),
           "no im2col": (with_rules(lambda *a: input_grad(*a), IM2COL_MIN_CHANNELS=1 << 30), (model, x, t)),
           "no Winograd (3x3 forward XLA's)": (with_rules(lambda *a: input_grad(*a), WINOGRAD_MIN_CHANNELS=1 << 30), (model, x, t)),
           "max pool: strided-pad derivative (before)": (with_rules(lambda *a: input_grad(*a), _max_pool=strided_pad_max_pool),
                                                         (model, x, t)),
           "reverse_only": (traced_under(ops.reverse_only, lambda *a: input_grad(*a)), (model, x, t)),
           "plain XLA": (xla(lambda *a: input_grad(*a)), (model, x, t))}
    rows += variant_rows("probe-lowering", f"SqueezeNet input gradient, batch {SQUEEZE_BATCH}, {SQUEEZE_SIZE}px",
                         time_group(fns, {}, **timer), SQUEEZE_BATCH)

    optimizer = optax.adam(1e-3)
    rng = np.random.default_rng(1)

    def step_args(net, shape):
        return ((net.params, net.state, optimizer.init(net.params)), (jnp.asarray(rng.uniform(size=(STEP_BATCH, *shape)).astype(np.float32)),
                jnp.asarray(rng.integers(0, 10, STEP_BATCH).astype(np.int32)), jnp.int32(0)))

    net = convnet((32, 32, 3), 10, key=jax.random.key(0))
    args = step_args(net, (32, 32, 3))
    fns = {shipped: (make_train_step(net, optimizer), args),
           "no im2col": (with_rules(make_train_step(net, optimizer), IM2COL_MIN_CHANNELS=1 << 30), args),
           "reverse_only": (traced_under(ops.reverse_only, make_train_step(net, optimizer)), args),
           "plain XLA": (xla(make_train_step(net, optimizer)), args)}
    rows += variant_rows("probe-lowering", f"ConvNet Adam step, batch {STEP_BATCH}", time_group(fns, {}, **timer), STEP_BATCH, "ex")

    net = lenet((28, 28, 1), 10, key=jax.random.key(0))
    args = step_args(net, (28, 28, 1))
    fns = {shipped: (make_train_step(net, optimizer), args),
           "conv1 XLA (no taps)": (with_rules(make_train_step(net, optimizer), TAPS_MAX_OUT_CHANNELS=0), args),
           "gradients unchunked": (with_rules(make_train_step(net, optimizer), GRAD_CHUNK=0), args),
           "gradients in chunks of 32": (with_rules(make_train_step(net, optimizer), GRAD_CHUNK=32), args),
           "gradients in chunks of 64": (with_rules(make_train_step(net, optimizer), GRAD_CHUNK=64), args),
           "reverse_only": (traced_under(ops.reverse_only, make_train_step(net, optimizer)), args),
           "plain XLA": (xla(make_train_step(net, optimizer)), args)}
    rows += variant_rows("probe-lowering", f"LeNet-5 Adam step, batch {STEP_BATCH}", time_group(fns, {}, **timer), STEP_BATCH, "ex")

    x1000 = jnp.asarray(rng.uniform(size=(1000, 28, 28, 1)).astype(np.float32))
    fns = {shipped: (lambda m, x: m(x), (net, x1000)), "conv1 XLA (no taps)": (with_rules(lambda m, x: m(x), TAPS_MAX_OUT_CHANNELS=0), (net, x1000))}
    rows += variant_rows("probe-lowering", "LeNet-5 forward, batch 1000", time_group(fns, {}, **timer), 1000)

    net = convnet((28, 28, 1), 10, key=jax.random.key(0))
    args = step_args(net, (28, 28, 1))
    fns = {shipped: (make_train_step(net, optimizer), args),
           "conv1 1 -> 128 as taps": (with_rules(make_train_step(net, optimizer), TAPS_MAX_OUT_CHANNELS=128), args)}
    rows += variant_rows("probe-lowering", f"ConvNet Adam step, batch {STEP_BATCH}, 28x28x1", time_group(fns, {}, **timer), STEP_BATCH, "ex")

    photos_ = jnp.asarray(np.stack([resize(photo(n), SQUEEZE_SIZE) for n in ("chelsea", "coffee", "astronaut", "rocket")] * (SQUEEZE_BATCH // 4)))
    targets = jnp.argmax(jax.jit(lambda m, x: m(x))(model, photos_), axis=1).astype(jnp.int32)
    key = jax.random.key(0)
    samples = 10
    slow = dict(warmup=0, iters=2, min_time=0.0, rounds=2)
    for method, call in (("smoothgrad", lambda c: lambda m, x, t: attribution.smoothgrad(attribution.gradient, m, x, t, key=key, samples=samples, sigma=0.15, chunk_size=c)),
                         ("integrated_gradients", lambda c: lambda m, x, t: attribution.integrated_gradients(m, x, t, steps=samples, chunk_size=c))):
        fns = {'chunk_size="auto" (shipped)': (call("auto"), (model, photos_, targets)), "chunk_size=5": (call(5), (model, photos_, targets)),
               "one raw gradient": (input_grad, (model, photos_, targets))}
        tm = time_group(fns, {}, **slow)
        raw = tm.pop("one raw gradient")
        ref = tm['chunk_size="auto" (shipped)']
        case = f"{method}, {samples} passes, SqueezeNet batch {SQUEEZE_BATCH} of photos"
        rows += [jax_row("probe-chunking", case, t_, ref, impl=name, items=SQUEEZE_BATCH,
                         notes=f"ratio vs auto; {t_.steady_s / (samples * raw.steady_s):.2f}x {samples} raw gradients ({raw.steady_s:.3f} s each)")
                 for name, t_ in tm.items()]
    return rows


NOTES = """\
Notes. "jaxviz" rows use the zoo as shipped: convolutions and pooling of `jaxviz.models.ops`,
lowered by shape on CPU (in brackets: the forward lowering in layer-fwd rows, the input gradient's in
layer-grad rows); "XLA ops (before)" rows trace
the same code under `ops.plain_xla()`, i.e. XLA's own convolution, `reduce_window` pooling and its
`select_and_scatter` derivative, as the zoo was before. Their ratio to each other is the speed-up of
the lowerings. All variants share the process and the cores and are timed in alternating rounds,
so load from other processes falls on all alike; absolute times mean something only on the machine
described above. The eager rows time one call (the second) and are noisier.
"""

OVERSUBSCRIBED = """\
**Caution: the machine was oversubscribed during this run** (1-min load average {load:.1f} on
{cores} cores, from other processes). PyTorch's OpenMP threads lose much more than XLA's thread
pool when cores are oversubscribed, so ratios below 1 here should not be read as jaxviz being
faster than PyTorch on an idle CPU; rerun on an idle machine for that comparison.
"""


LOOP_CASES = (  # (case, input shape, kernel shape, padding)
    ("LeNet conv1 1->6 5x5 at 28px, batch 256", (256, 28, 28, 1), (5, 5, 1, 6), ((2, 2), (2, 2))),
    ("LeNet conv2 6->16 5x5 at 14px, batch 256", (256, 14, 14, 6), (5, 5, 6, 16), ((0, 0), (0, 0))),
    ("SqueezeNet expand3x3 16->64 at 56px, batch 16", (16, 56, 56, 16), (3, 3, 16, 64), ((1, 1), (1, 1))),
    ("ConvNet 128->128 3x3 at 16px, batch 64", (64, 16, 16, 128), (3, 3, 128, 128), ((1, 1), (1, 1))),
)
LOOP_LENGTH = 3


def loop_rows(timer) -> list:
    """The gradients of one convolution inside a ``lax.scan`` of ``LOOP_LENGTH`` steps and unrolled,
    with the layout JAX derives (plain ``lax.conv_general_dilated``) and with ``jaxviz.models.ops``'s
    (gradient convolutions in XLA's canonical layout); seconds per gradient."""
    rows = []
    rng = np.random.default_rng(0)
    dn = ("NHWC", "HWIO", "NHWC")
    convs = {"JAX's layout": lambda x, w, pad: jax.lax.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=dn),
             "jaxviz ops": lambda x, w, pad: ops.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=dn)}
    for case, xs, ws, pad in LOOP_CASES:
        x = jnp.asarray(rng.normal(size=xs).astype(np.float32))
        w = jnp.asarray(rng.normal(size=ws).astype(np.float32))
        for grad_of, argnum in (("kernel gradient", 1), ("input gradient", 0)):
            fns = {}
            for layout, conv in convs.items():
                def one(x, w, c, conv=conv, argnum=argnum):  # c couples the steps so none is hoisted or merged
                    return jax.grad(lambda *a: jnp.sum(jnp.sin(conv(*a, pad) + c)), argnum)(x, w).mean()

                def looped(x, w, one=one):
                    return jax.lax.scan(lambda c, _: (c + one(x, w, c), None), jnp.zeros(()), None, length=LOOP_LENGTH)[0]

                def unrolled(x, w, one=one):
                    c = jnp.zeros(())
                    for _ in range(LOOP_LENGTH):
                        c = c + one(x, w, c)
                    return c

                fns[f"{layout}, lax.scan"] = (looped, (x, w))
                fns[f"{layout}, unrolled"] = (unrolled, (x, w))
            tm = time_group(fns, {}, **timer)
            ref = tm["jaxviz ops, unrolled"]
            rows += [jax_row("loop", f"{case}: {grad_of}", t, ref, impl=name, items=LOOP_LENGTH, unit="grad",
                             notes=f"ratio vs jaxviz ops unrolled; {t.steady_s / LOOP_LENGTH:.4f} s per gradient")
                     for name, t in tm.items()]
    return rows


def main(argv=None) -> list:
    p = parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer rows")
    p.add_argument("--rounds", type=int, default=4, help="alternating timing rounds per case")
    p.add_argument("--iters", type=int, default=None, help="timed calls per variant (default 20, --quick 3)")
    p.add_argument("--loops", action="store_true",
                   help="only the gradients of single convolutions inside lax.scan vs unrolled; JSON results/models-loops.json")
    p.add_argument("--probes", action="store_true",
                   help="only the lowering and chunking probes (jaxviz variants, no peer); JSON results/models-probes.json")
    args = p.parse_args(argv)
    timer, out, md = settings(args, NAME)
    timer["rounds"] = args.rounds
    if args.iters:
        timer["iters"] = args.iters
    torch.set_num_threads(TORCH_THREADS)
    use_gpu_peer()
    print(describe(machine_description()), flush=True)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    if args.probes or args.loops:
        rows = probe_rows(timer) if args.probes else loop_rows(timer)
        print(table(rows))
        suffix = "-probes" if args.probes else "-loops"
        out = args.out or out.with_name(f"models{suffix}.json")
        write_results(NAME + suffix, rows, out, args.results_md, command="python benchmarks/models.py" + "".join(" " + a for a in (argv if argv is not None else sys.argv[1:])),
                      config=dict(timer, load_avg_start=load_start, load_avg_end=os.getloadavg()[0], seconds=round(time.perf_counter() - t0, 1)))
        print(f"wrote {out}")
        return rows
    rows, _ = squeezenet_rows(timer)
    rows += step_rows(timer, "lenet", lenet((28, 28, 1), 10, key=jax.random.key(0)), (28, 28, 1))
    rows += step_rows(timer, "convnet", convnet((32, 32, 3), 10, key=jax.random.key(0)), (32, 32, 3))
    rows += predict_rows()
    if not args.no_layers:
        layer_timer = dict(timer, iters=min(timer["iters"], 8), min_time=min(timer["min_time"], 0.5))
        rows += layer_rows(layer_timer)
    print(table(rows))
    print(f"({time.perf_counter() - t0:.0f} s)")
    command = "python benchmarks/models.py" + "".join(" " + a for a in (argv if argv is not None else sys.argv[1:]))
    load_end = os.getloadavg()[0]
    load = f"1-min load average {load_start:.2f} at the start of the run, {load_end:.2f} at the end."
    cores = len(os.sched_getaffinity(0))
    if max(load_start, load_end) > cores:
        load += "\n\n" + OVERSUBSCRIBED.format(load=max(load_start, load_end), cores=cores)
    config = dict(timer, torch_threads=TORCH_THREADS, quick=args.quick, load_avg_start=load_start, seconds=round(time.perf_counter() - t0, 1))
    write_results(NAME, rows, out, md, command=command, extra=NOTES + load, config=config)
    print(f"wrote {out}" + (f" and section '## {NAME}' of {md}" if md else ""))
    return rows


if __name__ == "__main__":
    main()
