"""Attribution benchmark: every jaxviz.attribution method against Captum on the same SqueezeNet weights.

SqueezeNet 1.1 (``jaxviz.models.squeezenet()``), a batch of real photos (skimage's colour photos,
centre-cropped to 227 px and tiled to the batch), targets = the predicted classes. Captum runs on
``benchmarks/peers/torch_models.py`` (the plain-torch peer, built from ``nn.ReLU`` modules so that
Captum's guided backprop / deconvolution hooks apply). Same settings on both sides:

  gradient         jaxviz gradient (signed)              Captum Saliency(abs=False)
  smoothgrad       25 samples, sigma 0.15 (absolute)     NoiseTunnel(Saliency) nt_samples=25, stdevs=0.15
  integrated_grad  50 Gauss-Legendre steps, black base   IntegratedGradients n_steps=50, "gausslegendre"
  guided_backprop                                        GuidedBackprop
  deconvnet                                              Deconvolution
  occlusion        window 32, stride 8, fill 0.5, logit  Occlusion (3,32,32)/(3,8,8), baselines 0.5
  grad_cam         layer fire9, ReLU, bilinear resize    LayerGradCam(fire9) + interpolate("bilinear")
  fullgrad         jaxviz only (Captum has no FullGrad)

Chunking (memory bound): jaxviz ``chunk_size`` and Captum's ``nt_samples_batch_size`` /
``internal_batch_size`` / ``perturbations_per_eval`` are set so both evaluate the same number of
images per pass. Besides the time ratio jaxviz/Captum, each method's *overhead* is its time divided
by (number of passes x one raw pass of the same batch, timed in the same run): a plain input
gradient for the gradient methods, a plain forward for occlusion.

Usage::

    python benchmarks/attribution.py                 # full run: results/attribution.json + RESULTS.md
    python benchmarks/attribution.py --quick         # smoke test (batch 4, few steps timed)
    XLA_FLAGS=--xla_force_host_platform_device_count=4 \\
        python benchmarks/attribution.py --quick --sharded   # + sharded-vs-unsharded equality check
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxviz.attribution as A
from benchmarks.common import (
    RESULTS_DIR,
    Timing,
    describe,
    jax_row,
    machine_description,
    parser,
    settings,
    table,
    time_jax,
    time_pair,
    time_torch,
    torch_row,
    use_gpu_peer,
    write_results,
)
from benchmarks.peers.torch_models import nhwc_to_nchw, peer_tensor, squeezenet_from_jaxviz
from jaxviz.attribution.occlusion import window_starts
from jaxviz.data import photo, resize
from jaxviz.models import squeezenet

NAME = "attribution"
TORCH_THREADS = 2
SIZE = 227
FULL_BATCH, QUICK_BATCH = 8, 4
COLOUR_PHOTOS = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "colorwheel",
)
SAMPLES, SIGMA, STEPS, WINDOW, STRIDE, FILL = 25, 0.15, 50, 32, 8, 0.5
LAYER = "fire9"
# Images per pass = chunk x batch on both sides.
SG_CHUNK = 5  # noise samples per pass (jaxviz chunk_size, Captum nt_samples_batch_size)
IG_CHUNK = 5  # path points per pass (jaxviz chunk_size; Captum internal_batch_size = IG_CHUNK x batch)
OCC_CHUNK = 8  # windows per pass (jaxviz chunk_size, Captum perturbations_per_eval)
FAST = {"warmup": 1, "iters": 3, "min_time": 0.0, "rounds": 1}  # calls of a few seconds
SLOW = {
    "warmup": 0,
    "iters": 1,
    "min_time": 0.0,
    "rounds": 1,
}  # calls of > 10 s: one timed call after the first
ONCE = "once"  # Captum occlusion (minutes per call): its single (first) call is the measurement; jaxviz as SLOW
JAXVIZ_CHUNK = None  # --jaxviz-chunk: jaxviz's chunk_size for all chunked methods (e.g. "auto", its default)
QUICK_FAST = {"warmup": 0, "iters": 2, "min_time": 0.0, "rounds": 2}


def photos(batch: int) -> np.ndarray:
    imgs = np.stack([resize(photo(n), SIZE) for n in COLOUR_PHOTOS]).astype(np.float32)
    return np.ascontiguousarray(imgs[np.arange(batch) % len(imgs)])


def windows(size: int, window: int, stride: int) -> int:
    """Occlusion windows per image, both sides: ceil((size - window) / stride) + 1 per axis, the last cropped."""
    return len(window_starts(size, window, stride)) ** 2


# -- jaxviz sides (the model is a jit argument: its weights are inputs, not folded constants) ------------
def raw_forward(m, x, t):
    return jnp.take_along_axis(m(x), t[:, None], axis=1)[:, 0]


def raw_gradient(m, x, t):
    return jax.grad(lambda xx: jnp.take_along_axis(m(xx), t[:, None], axis=1).sum())(x)


def raw_loop(raw, m, x, t, passes, chunk):
    """``passes`` raw passes (``raw_gradient`` or ``raw_forward``) of the batch in one compiled ``lax.scan``.

    The compute skeleton of the chunked methods without their own work (noise, paths, masks, weights):
    each step runs ``raw`` once on ``chunk`` copies of the batch (shifted by the step index, so XLA cannot
    hoist it out of the loop) and adds the result to a running sum.
    """
    tiled, tt = jnp.tile(x, (chunk, 1, 1, 1)), jnp.tile(t, chunk)

    def step(acc, i):
        out = raw(m, tiled + 1e-6 * i, tt)
        return acc + out.reshape(chunk, -1, *out.shape[1:]).sum(0), None

    init = jax.eval_shape(lambda: raw(m, x, t))
    return jax.lax.scan(step, jnp.zeros(init.shape, init.dtype), jnp.arange(passes // chunk, dtype=x.dtype))[0]


LOOP_PASSES = {"grad": (SAMPLES, SG_CHUNK), "fwd": (5 * OCC_CHUNK, OCC_CHUNK)}  # (passes, per step), same chunks as the methods'



def j_gradient(m, x, t):
    return A.gradient(m, x, t)


def j_smoothgrad(m, x, t, key, samples=None, chunk=None):  # None: the settings of this run (globals)
    samples, chunk = samples or SAMPLES, chunk or JAXVIZ_CHUNK or SG_CHUNK
    return A.smoothgrad(
        A.gradient, m, x, t, key=key, samples=samples, sigma=SIGMA, chunk_size=chunk
    )


def j_ig(m, x, t, steps=None, chunk=None):
    steps, chunk = steps or STEPS, chunk or JAXVIZ_CHUNK or IG_CHUNK
    return A.integrated_gradients(
        m,
        x,
        t,
        baseline="black",
        steps=steps,
        method="gauss_legendre",
        chunk_size=chunk,
    )


def j_guided(m, x, t):
    return A.guided_backprop(m, x, t)


def j_deconv(m, x, t):
    return A.deconvnet(m, x, t)


def j_occlusion(m, x, t, chunk=None, stride=STRIDE):
    chunk = chunk or JAXVIZ_CHUNK or OCC_CHUNK
    maps = A.occlusion(
        m,
        x,
        t,
        window=WINDOW,
        stride=stride,
        fill=FILL,
        output="logit",
        chunk_size=chunk,
    )
    return maps.prob, maps.reference


def j_gradcam(m, x, t):
    return A.grad_cam(m, x, t, layer=LAYER)


def j_fullgrad(m, x, t):
    return A.fullgrad(m, x, t)


# -- Captum sides ----------------------------------------------------------------------------------------
def captum_methods(net, batch: int) -> dict:
    from captum.attr import (
        Deconvolution,
        GuidedBackprop,
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        NoiseTunnel,
        Occlusion,
        Saliency,
    )

    sal, gbp, dec = Saliency(net), GuidedBackprop(net), Deconvolution(net)
    nt, ig, occ = NoiseTunnel(Saliency(net)), IntegratedGradients(net), Occlusion(net)
    cam = LayerGradCam(net, net.fires[LAYER])

    def raw_fwd(x, t):
        with torch.no_grad():
            return net(x).gather(1, t[:, None])

    def raw_grad(x, t):
        return torch.autograd.grad(net(x).gather(1, t[:, None]).sum(), x)[0]

    def gradcam(x, t):
        a = cam.attribute(x, target=t, relu_attributions=True)
        return LayerAttribution.interpolate(
            a, (SIZE, SIZE), interpolate_mode="bilinear"
        )

    return {
        "forward": raw_fwd,
        "raw_gradient": raw_grad,
        "gradient": lambda x, t: sal.attribute(x, target=t, abs=False),
        "smoothgrad": lambda x, t: nt.attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=SAMPLES,
            nt_samples_batch_size=SG_CHUNK,
            stdevs=SIGMA,
            target=t,
            abs=False,
        ),
        "smoothgrad_captum_defaults": lambda x, t: nt.attribute(
            x, nt_type="smoothgrad", nt_samples=SAMPLES, stdevs=SIGMA, target=t, abs=False
        ),
        "integrated_gradients": lambda x, t: ig.attribute(
            x,
            baselines=0.0,
            target=t,
            n_steps=STEPS,
            method="gausslegendre",
            internal_batch_size=IG_CHUNK * batch,
        ),
        "guided_backprop": lambda x, t: gbp.attribute(x, target=t),
        "deconvnet": lambda x, t: dec.attribute(x, target=t),
        "occlusion": lambda x, t: occ.attribute(
            x,
            sliding_window_shapes=(3, WINDOW, WINDOW),
            strides=(3, STRIDE, STRIDE),
            baselines=FILL,
            target=t,
            perturbations_per_eval=OCC_CHUNK,
        ),
        "grad_cam": gradcam,
    }


def _rel_diff(ours, theirs) -> float:
    if isinstance(theirs, torch.Tensor):
        theirs = theirs.detach().cpu().numpy()
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def temp_mib(fn, *args) -> float:
    """XLA's temporary-buffer size (MiB) of ``jax.jit(fn)(*args)`` from the compiled executable."""
    mem = jax.jit(fn).lower(*args).compile().memory_analysis()
    return mem.temp_size_in_bytes / 2**20


def memory_rows(model, xj, tj, key) -> list[tuple[str, str, float]]:
    """Compile-time temp memory for a few (work, chunk) settings: bounded by the chunk, not the work."""
    out = []
    for label, fn, args in [
        (f"smoothgrad {SAMPLES} samples, chunk {SG_CHUNK}", functools.partial(j_smoothgrad), (model, xj, tj, key)),
        (f"smoothgrad {2 * SAMPLES} samples, chunk {SG_CHUNK}", functools.partial(j_smoothgrad, samples=2 * SAMPLES), (model, xj, tj, key)),
        (f"smoothgrad {SAMPLES} samples, chunk {SAMPLES} (one vmap)", functools.partial(j_smoothgrad, chunk=SAMPLES), (model, xj, tj, key)),
        (f"IG {STEPS} steps, chunk {IG_CHUNK}", j_ig, (model, xj, tj)),
        (f"IG {2 * STEPS} steps, chunk {IG_CHUNK}", functools.partial(j_ig, steps=2 * STEPS), (model, xj, tj)),
        (f"occlusion stride {STRIDE} ({windows(SIZE, WINDOW, STRIDE)} windows), chunk {OCC_CHUNK}", j_occlusion, (model, xj, tj)),
        (f"occlusion stride {STRIDE // 2} ({windows(SIZE, WINDOW, STRIDE // 2)} windows), chunk {OCC_CHUNK}",
         functools.partial(j_occlusion, stride=STRIDE // 2), (model, xj, tj)),
    ]:  # fmt: skip
        t0 = time.perf_counter()
        mib = temp_mib(fn, *args)
        out.append((label, f"{mib:,.0f}", time.perf_counter() - t0))
        print(
            f"  memory: {label}: {mib:,.0f} MiB temp ({time.perf_counter() - t0:.0f} s compile)",
            flush=True,
        )
    return out


SHARDED_METHODS = {  # smaller settings than the timed runs: this checks layout and equality, not speed
    "gradient": lambda m, x, t, k: A.gradient(m, x, t),
    "smoothgrad": lambda m, x, t, k: A.smoothgrad(A.gradient, m, x, t, key=k, samples=8, sigma=SIGMA, chunk_size=4),
    "integrated_gradients": lambda m, x, t, k: A.integrated_gradients(m, x, t, steps=8, chunk_size=4),
    "occlusion": lambda m, x, t, k: A.occlusion(m, x, t, window=WINDOW, stride=4 * STRIDE, fill=FILL, chunk_size=8).prob,
    "grad_cam": lambda m, x, t, k: A.grad_cam(m, x, t, layer=LAYER),
    "fullgrad": lambda m, x, t, k: A.fullgrad(m, x, t),
}
COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter")


def sharded_check(model, x, t, key) -> dict:
    """Methods on a batch sharded over all devices (1-D mesh on the batch axis) vs unsharded.

    Both mesh kinds are tried: ``AxisType.Auto`` (GSPMD propagation) and ``AxisType.Explicit`` (sharding
    in types, ``jax.make_mesh``'s default). Records the largest difference, the output sharding and the
    number of cross-device collectives in the compiled program (0: each device works on its own examples).
    """
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    n = jax.device_count()
    if n < 2:
        raise SystemExit("--sharded needs several devices: XLA_FLAGS=--xla_force_host_platform_device_count=4")
    if x.shape[0] % n:
        raise SystemExit(f"--sharded: batch {x.shape[0]} does not split over {n} devices")
    result = {"devices": n, "batch": int(x.shape[0]), "methods": {}}
    for name, fn in SHARDED_METHODS.items():
        f = jax.jit(fn)
        ref = np.asarray(f(model, jnp.asarray(x), jnp.asarray(t), key))
        for axis_type in (AxisType.Auto, AxisType.Explicit):
            mesh = jax.make_mesh((n,), ("batch",), axis_types=(axis_type,))
            xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
            ts = jax.device_put(t, NamedSharding(mesh, P("batch")))
            label = f"{name} ({axis_type.name})"
            try:
                with jax.set_mesh(mesh):
                    got = f(model, xs, ts, key)
                    hlo = f.lower(model, xs, ts, key).compile().as_text()
            except Exception as e:  # noqa: BLE001 - recorded, reported
                msg = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                result["methods"][label] = {"error": msg}
                print(f"  sharded {label}: FAILED {msg}", flush=True)
                continue
            d = float(np.abs(np.asarray(got) - ref).max())
            rec = {
                "max_abs_diff": d,
                "rel_diff": d / float(np.abs(ref).max()),
                "output_sharding": str(got.sharding.spec),
                "collectives": sum(hlo.count(f"{c}(") + hlo.count(f"{c}-start(") for c in COLLECTIVES),
            }
            result["methods"][label] = rec
            print(f"  sharded {label} over {n} devices: max |sharded - unsharded| = {d:.3g}; output {rec['output_sharding']}, "
                  f"{rec['collectives']} collectives", flush=True)  # fmt: skip
    return result


def run(args) -> None:
    timer_common, out, md = settings(args, NAME)
    batch = args.batch or (QUICK_BATCH if args.quick else FULL_BATCH)
    fast = QUICK_FAST if args.quick else FAST
    torch.set_num_threads(TORCH_THREADS)
    use_gpu_peer()
    print(describe(machine_description()), flush=True)
    load_start = os.getloadavg()[0]
    t_start = time.perf_counter()

    model = squeezenet()
    x = photos(batch)
    xj = jnp.asarray(x)
    tj = jnp.argmax(jax.jit(lambda m, x: m(x))(model, xj), axis=1).astype(jnp.int32)
    key = jax.random.key(0)
    net = squeezenet_from_jaxviz(model).requires_grad_(False)  # attributions need input gradients only
    xt = nhwc_to_nchw(x).requires_grad_(True)
    tt = peer_tensor(np.asarray(tj).astype(np.int64))
    peers = captum_methods(net, batch)
    with torch.no_grad():
        peer_logit_err = _rel_diff(jax.jit(lambda m, x: m(x))(model, xj), net(xt))
    print(
        f"batch {batch} at {SIZE}px, targets {np.asarray(tj).tolist()}; peer logits rel. diff {peer_logit_err:.1e}",
        flush=True,
    )

    sharded = sharded_check(model, x, np.asarray(tj), key) if args.sharded else None

    nw = windows(SIZE, WINDOW, STRIDE)
    case = f"SqueezeNet 1.1, batch {batch}, {SIZE}px"
    # name, jaxviz fn, jaxviz args, captum key, passes (jaxviz, captum), raw kind, timer, settings
    plan = [
        ("forward", raw_forward, (model, xj, tj), "forward", None, None, fast, "raw forward (target logit)"),
        ("raw_gradient", raw_gradient, (model, xj, tj), "raw_gradient", None, None, fast, "raw input gradient of target logits"),
        *[(f"raw_{what}_loop", functools.partial(raw_loop, raw, passes=LOOP_PASSES[kind][0], chunk=LOOP_PASSES[kind][1]),
           (model, xj, tj), None, None, None, SLOW,
           f"{LOOP_PASSES[kind][0]} raw {what}s in one compiled lax.scan, {LOOP_PASSES[kind][1]} x batch images per step (no peer)")
          for kind, what, raw in (("grad", "gradient", raw_gradient), ("fwd", "forward", raw_forward))],
        ("gradient", j_gradient, (model, xj, tj), "gradient", (1, 1), "grad", fast, "signed; Captum Saliency(abs=False)"),
        ("smoothgrad", j_smoothgrad, (model, xj, tj, key), "smoothgrad", (SAMPLES, SAMPLES), "grad", SLOW,
         f"{SAMPLES} samples, sigma {SIGMA}; jaxviz chunk_size={JAXVIZ_CHUNK or SG_CHUNK}, Captum nt_samples_batch_size={SG_CHUNK}"),
        ("integrated_gradients", j_ig, (model, xj, tj), "integrated_gradients", (STEPS, STEPS), "grad", SLOW,
         f"{STEPS} Gauss-Legendre steps, black baseline; jaxviz chunk_size={JAXVIZ_CHUNK or IG_CHUNK}, Captum internal_batch_size={IG_CHUNK * batch}"),
        ("guided_backprop", j_guided, (model, xj, tj), "guided_backprop", (1, 1), "grad", fast, "Captum GuidedBackprop (ReLU module hooks)"),
        ("deconvnet", j_deconv, (model, xj, tj), "deconvnet", (1, 1), "grad", fast, "Captum Deconvolution"),
        ("occlusion", j_occlusion, (model, xj, tj), "occlusion", (nw + 1, nw + 1), "fwd", ONCE,
         (f"window {WINDOW} stride {STRIDE} fill {FILL}, logits; {nw} windows per image on both sides (border ones cropped); "
         f"jaxviz chunk_size={JAXVIZ_CHUNK or OCC_CHUNK}, Captum perturbations_per_eval={OCC_CHUNK}")),
        ("grad_cam", j_gradcam, (model, xj, tj), "grad_cam", (1, 1), "grad", fast, f"layer {LAYER}, ReLU, bilinear upsampling"),
        ("fullgrad", j_fullgrad, (model, xj, tj), None, (1, None), "grad", fast, "no FullGrad in Captum: peer n/a"),
    ]  # fmt: skip
    if (
        args.methods
    ):  # "none": only the raw passes (with --sharded: just the sharded check)
        keep = set(args.methods.split(",")) | {"forward", "raw_gradient"}
        if keep & {"smoothgrad", "integrated_gradients"}:
            keep.add("raw_gradient_loop")
        if "occlusion" in keep:
            keep.add("raw_forward_loop")
        plan = [p for p in plan if p[0] in keep]

    rows, timings, agreement = [], {}, {}
    for name, jfn, jargs, ckey, passes, raw, timer, note in plan:
        t0 = time.perf_counter()
        slow_note = (
            "one timed call after the first (calls > 10 s)"
            if timer in (SLOW, ONCE)
            else ""
        )
        stash = {}
        if timer == ONCE:
            jt = time_jax(jfn, *jargs, warmup=0, iters=1, min_time=0.0)
            t1 = time.perf_counter()
            stash["out"] = peers[ckey](xt, tt)
            if torch.get_default_device().type == "cuda":
                torch.cuda.synchronize()
            once = time.perf_counter() - t1
            tt_ = Timing(once, (once,), first_call_s=once)
            peer_impl, peer_note = "captum", "a single call (eager torch: the first call is the steady state at minutes per call)"
        elif ckey is None:
            jt = time_jax(jfn, *jargs, warmup=timer["warmup"], iters=timer["iters"], min_time=timer["min_time"])
            tt_ = None
        else:

            def peer(x, t, _f=peers[ckey], _s=stash):
                _s["out"] = _f(x, t)
                return _s["out"]

            jt, tt_ = time_pair(jfn, jargs, peer, (xt, tt), inference=False, **timer)
            peer_impl, peer_note = ("captum" if passes else "torch peer"), slow_note
        rows.append(jax_row(name, case, jt, tt_, impl="jaxviz", items=batch, notes="; ".join(filter(None, [note, slow_note]))))
        if tt_ is not None:
            rows.append(torch_row(name, case, tt_, impl=peer_impl, items=batch, notes=peer_note))
        if ckey is not None and timer != ONCE:
            if name in ("gradient", "guided_backprop", "deconvnet", "grad_cam"):  # cheap: one more jaxviz call
                ours = np.asarray(jax.jit(jfn)(*jargs))
                theirs = stash["out"].detach().cpu().numpy()
                theirs = theirs[:, 0] if name == "grad_cam" else theirs.transpose(0, 2, 3, 1)
                agreement[name] = _rel_diff(ours, theirs)
        timings[name] = (jt, tt_, passes, raw)
        print(f"  {name}: jaxviz {jt.steady_s:.3f}s" + (f", peer {tt_.steady_s:.3f}s (ratio {jt.steady_s / tt_.steady_s:.2f})" if tt_ else "")
              + f"  [{time.perf_counter() - t0:.0f}s]", flush=True)  # fmt: skip

    if "smoothgrad" in timings:  # Captum's own chunking: all draws in one pass of samples x batch images
        t0 = time.perf_counter()
        defaults = time_torch(peers["smoothgrad_captum_defaults"], xt, tt, warmup=0, iters=1, min_time=0.0, inference=False)
        rows.append(torch_row("smoothgrad", case, defaults, impl="captum (its defaults)", items=batch,
                              notes=f"nt_samples_batch_size=None: {SAMPLES} x {batch} images in one pass; one timed call after the first"))
        timings["smoothgrad (vs Captum defaults)"] = (timings["smoothgrad"][0], defaults, (SAMPLES, SAMPLES), "grad")
        print(f"  smoothgrad, Captum defaults: {defaults.steady_s:.3f}s  [{time.perf_counter() - t0:.0f}s]", flush=True)

    mem = memory_rows(model, xj, tj, key) if args.memory else []

    # -- overheads over the raw compute limit --------------------------------------------------------------
    fwd_j, fwd_t = timings["forward"][0].steady_s, timings["forward"][1].steady_s
    grad_j, grad_t = (
        timings["raw_gradient"][0].steady_s,
        timings["raw_gradient"][1].steady_s,
    )
    loops = {kind: timings[f"raw_{name}_loop"][0].steady_s for kind, name in (("grad", "gradient"), ("fwd", "forward"))
             if f"raw_{name}_loop" in timings}  # fmt: skip
    loop_pass = {kind: t / LOOP_PASSES[kind][0] for kind, t in loops.items()}
    over_lines = [
        "| method | passes jaxviz / Captum | jaxviz s | Captum s | ratio | jaxviz overhead | jaxviz overhead vs compiled loop | Captum overhead |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    overheads = {}
    for name, (jt, tt_, passes, raw) in timings.items():
        if passes is None:
            continue
        unit_j, unit_t = (grad_j, grad_t) if raw == "grad" else (fwd_j, fwd_t)
        kind = "grad" if raw == "grad" else "fwd"
        oj = jt.steady_s / (passes[0] * unit_j)
        ot = None if tt_ is None else tt_.steady_s / (passes[1] * unit_t)
        ol = jt.steady_s / (passes[0] * loop_pass[kind]) if kind in loop_pass and passes[0] > 1 else None
        overheads[name] = {"jaxviz": oj, "jaxviz_vs_loop": ol, "captum": ot, "passes": passes, "pass": kind}
        over_lines.append(
            f"| {name} | {passes[0]} / {passes[1] if passes[1] else 'n/a'} {kind} | {jt.steady_s:.3f} | "
            f"{'n/a' if tt_ is None else f'{tt_.steady_s:.3f}'} | {'n/a' if tt_ is None else f'{jt.steady_s / tt_.steady_s:.2f}'} | "
            f"{oj:.2f} | {'' if ol is None else f'{ol:.2f}'} | {'n/a' if ot is None else f'{ot:.2f}'} |"
        )  # fmt: skip
    print("\n".join(over_lines))
    print(table(rows))

    seconds = time.perf_counter() - t_start
    load_end = os.getloadavg()[0]
    extra = [
        (
            f"Batch {batch} of real photos ({', '.join(COLOUR_PHOTOS)}, centre-cropped to {SIZE}px, tiled), "
            f"targets = predicted classes; Captum peer `benchmarks/peers/torch_models.py` (same weights; logits "
            f"relative difference {peer_logit_err:.1e}). torch {TORCH_THREADS} threads. Whole run {seconds:.0f} s."
        ),
        "",
        (
            f"**Raw compute limit** (timed in this run): one input gradient of the batch takes {grad_j:.3f} s in "
            f"XLA and {grad_t:.3f} s in PyTorch; one forward {fwd_j:.3f} s / {fwd_t:.3f} s. Overhead = method time / "
            "(passes x one raw pass): gradient methods count gradient passes, occlusion counts forward passes "
            "(windows + the unoccluded reference). Chunked passes evaluate chunk x batch images at once, so an "
            "overhead below 1 means the larger per-call batch ran more efficiently than batch-size passes."
            + "".join(
                f" The **compiled loop** row ({kind}) times the chunked methods' skeleton alone ({LOOP_PASSES[kind][0]} raw "
                f"{'gradients' if kind == 'grad' else 'forwards'}, {LOOP_PASSES[kind][1]} x batch images per `lax.scan` step): "
                f"{loops[kind]:.3f} s, i.e. {loop_pass[kind]:.3f} s per pass, {loop_pass[kind] / unit:.2f}x the same pass compiled on its own."
                for kind, unit in (("grad", grad_j), ("fwd", fwd_j)) if kind in loops
            )
            + ("" if not loops else
               " That factor is what XLA's runtime charges for running the passes inside one compiled loop (a `while` "
               "body over chunked batches); the column 'vs compiled loop' is what the method adds on top of it "
               "(noise, path points, masks, weighted sums).")
        ),
        "",
        *over_lines,
    ]
    if agreement:
        extra += ["", "Agreement of the timed outputs with Captum's (max |jaxviz - Captum| / max |Captum|, float32): "
                  + ", ".join(f"{k} {v:.1e}" for k, v in agreement.items())
                  + ". The exact cross-check is `tests/attribution/test_captum_crosscheck.py` (1e-4 on a small CNN)."]  # fmt: skip
    if mem:
        extra += ["", "**Memory bounded by the chunk size** (XLA temp buffers of the compiled call, from "
                  "`compiled.memory_analysis()`, batch " + str(batch) + "):", "",
                  "| setting | temp MiB |", "|---|---:|", *[f"| {label} | {mib} |" for label, mib, _ in mem]]  # fmt: skip
    extra += [
        "",
        NOTES.format(
            sg=SG_CHUNK, ig=IG_CHUNK, occ=OCC_CHUNK, igb=IG_CHUNK * batch
        ) + ("\n" + CPU_NOTE if jax.default_backend() == "cpu" else ""),
    ]
    if batch != 16:
        extra += ["", (f"Batch {batch}, not the reference batch of 16: on 2 shared CPU cores the full run at 16 (Captum's occlusion alone "
                  "is ~200 s per call on an idle machine, more under load) does not fit a ~25 minute run. "
                  "Overheads and ratios are per-batch and comparable; absolute times scale with the batch.")]  # fmt: skip
    command = (
        "python benchmarks/attribution.py"
        + (" --quick" if args.quick else "")
        + (" --sharded" if args.sharded else "")
    )
    if args.sharded:
        command = "XLA_FLAGS=--xla_force_host_platform_device_count=4 " + command
    if args.batch:
        command += f" --batch {args.batch}"
    if args.methods:
        command += f" --methods {args.methods}"
    for flag in ("samples", "steps", "chunk", "jaxviz_chunk"):
        if getattr(args, flag) is not None:
            command += f" --{flag.replace('_', '-')} {getattr(args, flag)}"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    shard_rec = (  # the last CPU check of sharding, kept in the CPU section only
        dict(sharded, date=now, command=command) if sharded else _previous_sharded() if jax.default_backend() == "cpu" else None
    )
    if shard_rec:
        extra += ["", shard_note(shard_rec)]
    extra += [
        "",
        f"1-min load average {load_start:.2f} at the start of the run, {load_end:.2f} at the end.",
    ]
    if max(load_start, load_end) > len(os.sched_getaffinity(0)):
        extra += [
            "",
            OVERSUBSCRIBED.format(
                load=max(load_start, load_end), cores=len(os.sched_getaffinity(0))
            ),
        ]
    config = {
        "batch": batch, "size": SIZE, "samples": SAMPLES, "sigma": SIGMA, "steps": STEPS, "window": WINDOW, "stride": STRIDE, "fill": FILL, "layer": LAYER,
        "sg_chunk": SG_CHUNK, "ig_chunk": IG_CHUNK, "occ_chunk": OCC_CHUNK, "windows": nw, "fast_timer": fast,
        "slow_timer": SLOW, "torch_threads": TORCH_THREADS, "quick": args.quick, "load_avg_start": load_start, "load_avg_end": load_end,
        "seconds": round(seconds, 1), "raw_gradient_s": {"jaxviz": grad_j, "captum": grad_t}, "raw_forward_s": {"jaxviz": fwd_j, "captum": fwd_t},
        "overheads": overheads, "agreement": agreement, "memory_temp_mib": {label: mib for label, mib, _ in mem}, "sharded": sharded,
    }  # fmt: skip
    del timer_common
    write_results(
        NAME, rows, out, md, command=command, extra="\n".join(extra), config=config
    )
    print(
        f"wrote {out}"
        + (f" and section '## {NAME}' of {md}" if md else "")
        + f" ({seconds:.0f} s)"
    )


def _previous_sharded() -> dict | None:
    """The sharded check of the last ``--quick --sharded`` run (stored in attribution-quick.json), if any."""
    path = RESULTS_DIR / f"{NAME}-quick.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    s = rec.get("config", {}).get("sharded")
    return None if not s or "methods" not in s else dict(s, date=rec.get("date"), command=rec.get("command"))


NOTES = """\
Notes. Same settings on both sides; chunking: SmoothGrad {sg} samples per pass (Captum
`nt_samples_batch_size={sg}`), IG {ig} path points per pass (Captum `internal_batch_size={igb}`),
occlusion {occ} windows per pass (Captum `perturbations_per_eval={occ}`), so both evaluate the same
number of images per call and memory is bounded by chunk x batch images, not samples x batch.
Slow methods (SmoothGrad, IG, jaxviz occlusion: many passes per call) are timed once after a first
call (`iters=1`: a median of one); Captum's occlusion is a single call, which for eager torch is the
steady state; fast methods take the median of 3 calls after a warm-up."""

CPU_NOTE = """\
XLA's CPU convolutions are slower than PyTorch's oneDNN kernels on this machine, so where the raw gradient is
slower in XLA than in PyTorch, that, not the method, limits the jaxviz/Captum ratio; the overhead
column isolates the method's own cost."""

def shard_note(rec: dict) -> str:
    lines = [
        f"**Sharded run** (`{rec['command']}`, {rec['date']}): a batch of {rec['batch']} split over {rec['devices']} "
        "CPU devices (`NamedSharding` on the batch axis of a 1-D mesh) against the same call unsharded; collectives "
        "counted in the compiled program (0: each device works on its own examples).",
        "",
        "| method (mesh) | max abs diff | relative | output sharding | collectives |",
        "|---|---:|---:|---|---:|",
    ]
    for label, r in rec["methods"].items():
        if "error" in r:
            lines.append(f"| {label} | fails: {r['error']} | | | |")
        else:
            lines.append(f"| {label} | {r['max_abs_diff']:.2g} | {r['rel_diff']:.2g} | `{r['output_sharding']}` | {r['collectives']} |")
    return "\n".join(lines)


OVERSUBSCRIBED = """\
**Caution: the machine was oversubscribed during this run** (1-min load average {load:.1f} on
{cores} cores, from other processes); absolute times are inflated and ratios indicative only."""


def main(argv=None) -> None:
    global SAMPLES, STEPS, SG_CHUNK, IG_CHUNK, JAXVIZ_CHUNK, LOOP_PASSES
    p = parser(__doc__.splitlines()[0], NAME)
    p.add_argument(
        "--sharded",
        action="store_true",
        help="also check the methods on a batch sharded over all devices",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help=f"batch size (default {FULL_BATCH}, --quick {QUICK_BATCH})",
    )
    p.add_argument(
        "--methods", default=None, help="comma-separated subset of methods to time"
    )
    p.add_argument("--samples", type=int, default=None, help=f"SmoothGrad samples (default {SAMPLES})")
    p.add_argument("--steps", type=int, default=None, help=f"IG steps (default {STEPS})")
    p.add_argument("--chunk", type=int, default=None, help=f"SmoothGrad/IG copies per pass on both sides (default {SG_CHUNK})")
    p.add_argument("--jaxviz-chunk", default=None, help="jaxviz chunk_size of every chunked method instead ('auto': the library default)")
    p.add_argument(
        "--no-memory",
        dest="memory",
        action="store_false",
        help="skip the compile-time memory analysis",
    )
    args = p.parse_args(argv)
    SAMPLES, STEPS = args.samples or SAMPLES, args.steps or STEPS
    SG_CHUNK = IG_CHUNK = args.chunk or SG_CHUNK
    JAXVIZ_CHUNK = None if args.jaxviz_chunk is None else (args.jaxviz_chunk if args.jaxviz_chunk == "auto" else int(args.jaxviz_chunk))
    LOOP_PASSES = {"grad": (SAMPLES, SG_CHUNK), "fwd": (5 * OCC_CHUNK, OCC_CHUNK)}
    run(args)


if __name__ == "__main__":
    main()
