"""Dataset distillation (jaxviz.distill) against PyTorch: one outer iteration of Wang et al. (2018) on
LeNet-5 with the same weights, MNIST-5k real batches of 256, in one process.

The peer (``peers/torch_distill.py``) differentiates through the unrolled inner SGD steps with
autograd (``torch.autograd.grad(..., create_graph=True)`` over ``torch.func.functional_call``), the
modern form of the reference code's hand-written reverse pass; its outer loss and its gradients in
the images and step sizes are checked equal to jaxviz's before anything is timed. Parts
(``--parts``, default all):

  outer     time per outer iteration (trace and compile apart from the steady state) and peak
            memory, jaxviz vs torch: (10 images, 1 step x 3 epochs, fixed init; the inner steps
            unrolled, jaxviz's default, and as a rolled loop) and (100 images,
            10 steps x 3 epochs, 4 random inits: jaxviz's default -- one init at a time on CPU, all
            vmapped elsewhere -- and all vmapped with inits_per_pass=4);
  memory    memory vs unrolled inner steps, jaxviz with and without ``jax.checkpoint``, and torch;
  per_init  time per initialisation vs the number vmapped into one step (1, 2, 4, 8), torch looping;
  devices   the random inits on 1 vs 4 simulated CPU devices (a subprocess with
            ``XLA_FLAGS=--xla_force_host_platform_device_count=4``);
  fits      the most inner steps (x 3 epochs) that fit in ``--budget-gib`` for 15 and 100 classes.

Memory, two measures: XLA's compiled estimate of the step (``memory_analysis()``: temporaries +
arguments + outputs, what :func:`jaxviz.distill.memory.check_fits` checks) and, for both sides alike,
the growth of the process's peak resident set during one warm call over the resident set just
before it (``malloc_trim``, then ``/proc/self/clear_refs`` resets the peak; Linux only).

    python benchmarks/distill.py                    # full run: results/distill.json + "## distill" of RESULTS.md
    python benchmarks/distill.py --quick            # smoke test (smaller cases), results/distill-quick.json
    python benchmarks/distill.py --parts outer,fits --budget-gib 16
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from benchmarks.common import jax_row, parser, settings, time_group, torch_row, use_gpu_peer, write_results  # noqa: E402
from benchmarks.peers import torch_distill as td  # noqa: E402
from benchmarks.peers.torch_models import lenet_from_jaxviz, nhwc_to_nchw, peer_tensor, pure_params  # noqa: E402
from jaxviz.data import load_dataset  # noqa: E402
from jaxviz.distill import DistillConfig, initial_distilled, make_outer_step, memory  # noqa: E402
from jaxviz.distill.core import make_optimizer  # noqa: E402
from jaxviz.models import lenet  # noqa: E402

NAME = "distill"
PARTS = ("outer", "memory", "per_init", "devices", "fits")
BATCH = 256
MIB = 2**20


# -- setup -----------------------------------------------------------------------------------------
def real_batch(data, n=BATCH, seed=0):
    idx = np.random.default_rng([seed, 0]).choice(len(data.y_train), n, replace=False)  # as distill's batches(0)
    return data.x_train[idx], data.y_train[idx].astype(np.int32)


def jax_case(model, data, cfg, batch):
    """``(step, (state, batch))`` of jaxviz's outer step for ``cfg``: Adam as in ``distill``."""
    opt = make_optimizer(cfg)
    d0 = initial_distilled(cfg, data, model.num_classes)
    state = (d0, opt.init(d0._replace(labels=None)))  # hard labels are constants, not Adam's
    step = make_outer_step(model, cfg, model.params if cfg.init == "fixed" else None, opt)
    return step, (state, (*batch, np.int32(0)))


def abstract_case(model, data, cfg):
    """``(step, args)`` with ``jax.ShapeDtypeStruct`` arguments: compiled, never allocated."""
    opt = make_optimizer(cfg)
    d0 = jax.eval_shape(lambda: initial_distilled(cfg, data, model.num_classes))
    state = (d0, jax.eval_shape(opt.init, d0._replace(labels=None)))
    batch = (jax.ShapeDtypeStruct((BATCH, *model.input_shape), np.float32), jax.ShapeDtypeStruct((BATCH,), np.int32),
             jax.ShapeDtypeStruct((), np.int32))
    return make_outer_step(model, cfg, model.params if cfg.init == "fixed" else None, opt), (state, batch)


def compile_timed(step, args):
    """``(compiled, trace_s, compile_s)``; ``jax.jit(step)`` with the same arguments later reuses it."""
    t0 = time.perf_counter()
    lowered = jax.jit(step).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    return compiled, t1 - t0, time.perf_counter() - t1


def torch_peer(model, data, cfg, inits=None):
    """The peer of ``jax_case(model, data, cfg)``: same starting images, labels and step sizes.

    ``inits``: jaxviz initialisations (a vmapped params tree) to start from; default the model's own
    parameters for ``init="fixed"`` and fresh torch initialisations every call for ``"random"``.
    """
    net = lenet_from_jaxviz(model)
    d0 = initial_distilled(cfg, data, model.num_classes)
    x = peer_tensor(np.asarray(d0.x).transpose(0, 1, 4, 2, 3))
    labels = peer_tensor(np.asarray(d0.labels).astype(np.int64))
    if inits is not None:
        n = jax.tree.leaves(inits)[0].shape[0]
        chosen = [td.params_of(lenet_from_jaxviz(pure_params(jax.tree.map(lambda a, i=i: a[i], inits)))) for i in range(n)]
    elif cfg.init == "fixed":
        chosen = [td.params_of(net)]
    else:
        chosen = lambda: [td.fresh_init(net) for _ in range(cfg.num_inits)]  # noqa: E731
    return td.OuterStep(net, x, labels, peer_tensor(d0.raw_lrs), chosen, lr=cfg.lr,
                        step_size_lr=cfg.step_size_lr, beta1=cfg.beta1)


def jax_inits(model, cfg, i=0):
    """The initialisations ``make_outer_step`` samples at iteration ``i`` (``init="random"``)."""
    return jax.vmap(model.init)(jax.random.split(jax.random.fold_in(jax.random.key(cfg.seed + 1), i), cfg.num_inits))


def adam_gradient(opt_state, beta1):
    """The gradient of the first step, read off Adam's first moment (``(1 - beta1) * g`` after one step)."""
    states = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
              if isinstance(s, optax.ScaleByAdamState)]
    found = {}
    for s in states:
        for name in ("x", "raw_lrs"):
            leaf = getattr(s.mu, name)
            if isinstance(leaf, jax.Array):
                found[name] = np.asarray(leaf) / (1 - beta1)
    return found["x"], found["raw_lrs"]


def check_equal(model, data, cfg, compiled, args, xt, yt):
    """One outer iteration of each from the same state; loss and gradients must agree (float32)."""
    (_, opt_state), metrics = compiled(*args)
    gx, glr = adam_gradient(opt_state, cfg.beta1)
    peer = torch_peer(model, data, cfg, inits=jax_inits(model, cfg) if cfg.init == "random" else None)
    loss_t, _ = peer(xt, yt)
    tx, tlr = peer.x.grad.cpu().numpy().transpose(0, 1, 3, 4, 2), peer.raw_lrs.grad.cpu().numpy()
    loss_j = float(metrics["loss"])
    errs = {"loss": abs(loss_j - loss_t.item()) / abs(loss_t.item()),
            "images": float(np.abs(gx - tx).max() / np.abs(tx).max()),
            "step sizes": float(np.abs(glr - tlr).max() / np.abs(tlr).max())}
    if errs["loss"] > 1e-5 or errs["images"] > 1e-4 or errs["step sizes"] > 1e-4:
        raise AssertionError(f"jaxviz and the torch peer disagree ({errs}); not timing different computations")
    return loss_j, errs


# -- memory ----------------------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def peak_rss_mib(call) -> float:
    """Growth of the peak resident set during ``call()`` over the resident set just before it (MiB)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the system, so the baseline is what is live
    base = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    call()
    return (_status_kib("VmHWM") - base) / 1024


def estimate_mib(compiled) -> float:
    return memory.estimate(compiled).per_device_bytes / MIB


def _block(f, *args):
    return lambda: jax.block_until_ready(f(*args))


# -- parts -----------------------------------------------------------------------------------------
def outer(model, data, quick, timer, peak_rss=True):
    xr, yr = real_batch(data)
    xt, yt = nhwc_to_nchw(xr), peer_tensor(yr.astype(np.int64))
    big = DistillConfig(steps=2 if quick else 10, init="random", num_inits=4)
    cases = [("10 images, 1 step x 3 epochs, fixed init", DistillConfig(),
              {"jaxviz": {}, "jaxviz rolled inner loop (unroll=1)": dict(unroll=1)}, dict(timer)),
             (f"{10 * big.steps} images, {big.steps} steps x 3 epochs, 4 random inits", big,
              {"jaxviz": {}, "jaxviz all inits vmapped (inits_per_pass=4)": dict(inits_per_pass=4)},
              dict(warmup=0, iters=2 if quick else 3, min_time=0.0, rounds=1 if quick else 3))]
    rows, mem, checks = [], [], []
    for case, cfg, variants, tsettings in cases:
        prepared = {}
        for impl, change in variants.items():
            c = cfg._replace(**change)
            step, args = jax_case(model, data, c, (xr, yr))
            compiled, trace_s, compile_s = compile_timed(step, args)
            t0 = time.perf_counter()
            if not prepared:  # the check runs the first variant (all variants compute the same step)
                loss, errs = check_equal(model, data, c, compiled, args, xt, yt)
                checks.append({"case": case, "loss": loss, "relative errors": errs})
            else:
                jax.block_until_ready(compiled(*args))
            first = time.perf_counter() - t0
            prepared[impl] = (step, args, compiled, trace_s, compile_s, first)
        peer = torch_peer(model, data, cfg)
        peer(xt, yt)  # warm
        for impl, (_, args, compiled, *_rest) in prepared.items():  # the resident set means nothing on a GPU
            mem.append({"case": case, "impl": impl, "XLA estimate MiB": estimate_mib(compiled),
                        "peak RSS growth MiB": peak_rss_mib(_block(compiled, *args)) if peak_rss else None})
        mem.append({"case": case, "impl": "torch", "XLA estimate MiB": None,
                    "peak RSS growth MiB": peak_rss_mib(lambda: peer(xt, yt)) if peak_rss else None})
        t = time_group({impl: (p[0], p[1]) for impl, p in prepared.items()}, {"torch": (peer, (xt, yt))}, inference=False,
                       **tsettings)
        for impl, (_, _, _, trace_s, compile_s, first) in prepared.items():
            timing = dataclasses.replace(t[impl], trace_s=trace_s, compile_s=compile_s, first_call_s=trace_s + compile_s + first)
            rows.append(jax_row("outer step", case, timing, t["torch"], impl=impl, items=1, unit="iter"))
        rows.append(torch_row("outer step", case, t["torch"], impl="torch (autograd through the steps)", items=1, unit="iter"))
    return rows, mem, checks


def memory_vs_steps(model, data, steps_list):
    xr, yr = real_batch(data)
    xt, yt = nhwc_to_nchw(xr), peer_tensor(yr.astype(np.int64))
    rows = []
    for u in steps_list:
        row = {"unrolled steps": u}
        for remat in (False, True):
            cfg = DistillConfig(steps=u, epochs=1, remat=remat, unroll=1)
            step, args = jax_case(model, data, cfg, (xr, yr))
            compiled, *_ = compile_timed(step, args)
            jax.block_until_ready(compiled(*args))  # warm
            tag = "remat" if remat else "no remat"
            row[f"jaxviz {tag}: XLA estimate MiB"] = estimate_mib(compiled)
            row[f"jaxviz {tag}: XLA temp MiB"] = compiled.memory_analysis().temp_size_in_bytes / MIB
            row[f"jaxviz {tag}: peak RSS growth MiB"] = peak_rss_mib(_block(compiled, *args))
        peer = torch_peer(model, data, DistillConfig(steps=u, epochs=1))
        peer(xt, yt)
        row["torch: peak RSS growth MiB"] = peak_rss_mib(lambda: peer(xt, yt))
        rows.append(row)
        print(row, flush=True)
    return rows


def per_init(model, data, sizes, quick):
    xr, yr = real_batch(data)
    xt, yt = nhwc_to_nchw(xr), peer_tensor(yr.astype(np.int64))
    jfns, tfns, compile_s = {}, {}, {}
    for b in sizes:
        cfg = DistillConfig(init="random", num_inits=b, inits_per_pass=b)  # all b in one vmap, also on CPU
        step, args = jax_case(model, data, cfg, (xr, yr))
        compiled, tr, co = compile_timed(step, args)
        compile_s[b] = tr + co
        jfns[f"jaxviz {b}"] = (step, args)
        tfns[f"torch {b}"] = (torch_peer(model, data, cfg), (xt, yt))
    t = time_group(jfns, tfns, inference=False, warmup=1, iters=2 if quick else 4, min_time=0.0, rounds=1 if quick else 2)
    rows = []
    for b in sizes:
        j, tt = t[f"jaxviz {b}"].steady_s, t[f"torch {b}"].steady_s
        rows.append({"inits": b, "jaxviz compile s": compile_s[b], "jaxviz ms/iteration": 1e3 * j, "jaxviz ms per init": 1e3 * j / b,
                     "torch ms per init": 1e3 * tt / b, "jaxviz/torch": j / tt})
    for r in rows:
        r["jaxviz per-init time / 1 init"] = r["jaxviz ms per init"] / rows[0]["jaxviz ms per init"]
    return rows


DEVICE_WORKER = "--devices-worker"


def devices(quick):
    """Run :func:`devices_worker` in a subprocess that sees 4 simulated CPU devices."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, __file__, DEVICE_WORKER] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("DEVICES ")]
    if proc.returncode or not lines:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(lines[-1][len("DEVICES "):])


def devices_worker(quick) -> None:
    assert jax.device_count() == 4, jax.devices()
    data = load_dataset("mnist5k")
    model = lenet(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(0))
    xr, yr = real_batch(data)
    cfg = DistillConfig(init="random", num_inits=4)
    mesh = jax.make_mesh((4,), ("inits",))
    opt = make_optimizer(cfg)
    d0 = initial_distilled(cfg, data, 10)
    args = ((d0, opt.init(d0._replace(labels=None))), (xr, yr, np.int32(0)))
    fns, compile_s, out = {}, {}, {}
    for name, m in (("1 device", None), ("4 devices", mesh)):
        step = make_outer_step(model, cfg, None, opt, mesh=m)
        compiled, tr, co = compile_timed(step, args)
        compile_s[name] = tr + co
        out[name] = jax.block_until_ready(compiled(*args))
        fns[name] = (step, args)
    same = float(np.abs(np.asarray(out["4 devices"][0][0].x) - np.asarray(out["1 device"][0][0].x)).max())
    t = time_group(fns, {}, inference=False, warmup=0, iters=2 if quick else 6, min_time=0.0, rounds=1 if quick else 3)
    res = {name: {"compile s": compile_s[name], "ms per iteration": 1e3 * t[name].steady_s, "loss": float(out[name][1]["loss"])}
           for name in fns}
    res["max |images after 4 devices - 1 device|"] = same
    res["cores"] = len(os.sched_getaffinity(0))
    print("DEVICES " + json.dumps(res), flush=True)


def most_within(estimate, budget, fitting, guess):
    """The most steps whose compiled ``estimate`` is within ``budget`` (to 1%): from a linear ``guess``,
    doubling until one does not fit, then bisection; ``fitting`` steps are known to fit."""
    lo, hi = fitting, guess
    while estimate(hi) <= budget:
        lo, hi = hi, 2 * hi
    while hi - lo > max(1, lo // 100):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if estimate(mid) <= budget else (lo, mid)
    return lo


def fits(model_factory, data, classes, budget, step_points, quick):
    """Most inner steps (x 3 epochs) in ``budget`` bytes for each class count: XLA's estimate, nearly
    linear in the steps (each keeps its weights or activations), fitted on two compiled points and
    then searched by compiling around that guess; torch's peak RSS growth fitted on two runs, checked
    on a third."""
    xr, yr = real_batch(data)
    xt, yt = nhwc_to_nchw(xr), peer_tensor(yr.astype(np.int64))
    rows = []
    for c in classes:
        model = model_factory(c)
        row = {"classes": c}
        for remat in (True, False):
            @functools.cache
            def est(s, remat=remat):
                step, args = abstract_case(model, data, DistillConfig(steps=s, remat=remat, unroll=1))
                return memory.estimate(compile_timed(step, args)[0]).per_device_bytes
            (s1, s2), (m1, m2) = step_points, (est(step_points[0]), est(step_points[1]))
            slope = (m2 - m1) / (s2 - s1)
            guess = int((budget - (m1 - slope * s1)) // slope)
            tag = "remat" if remat else "no remat"
            row[f"jaxviz {tag}: MiB per step"] = slope / MIB
            row[f"jaxviz {tag}: linear guess"] = guess
            if not quick:
                best = most_within(est, budget, s2, guess)
                row[f"jaxviz {tag}: most steps"] = best
                row[f"jaxviz {tag}: XLA estimate there GiB"] = est(best) / 2**30
        ms = []
        for s in (*step_points, step_points[1] * 2):
            peer = torch_peer(model, data, DistillConfig(steps=s))
            peer(xt, yt)
            ms.append(peak_rss_mib(lambda peer=peer: peer(xt, yt)) * MIB)
        slope = (ms[1] - ms[0]) / (step_points[1] - step_points[0])
        predicted = ms[0] + slope * (2 * step_points[1] - step_points[0])
        row["torch: MiB per step"] = slope / MIB
        row["torch: most steps (extrapolated)"] = int((budget - (ms[0] - slope * step_points[0])) // slope)
        row[f"torch: fit error at {2 * step_points[1]} steps"] = (predicted - ms[2]) / ms[2]
        rows.append(row)
        print(row, flush=True)
    return rows


# -- report ----------------------------------------------------------------------------------------
def _md(rows, spec=".3g"):
    if not rows:
        return ""
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join("—" if r[k] is None else format(r[k], spec) if isinstance(r[k], float) else str(r[k])
                                     for k in keys) + " |")
    return "\n".join(out)


def kept_subsections(results_md) -> str:
    """The hand-written ``### `` subsections of ``## distill`` (the accuracy runs), kept when the tables are rewritten."""
    if results_md is None or not Path(results_md).exists():
        return ""
    text = Path(results_md).read_text()
    start = text.find(f"## {NAME}\n")
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    section = text[start:] if end < 0 else text[start:end]
    sub = section.find("\n### ")
    return "" if sub < 0 else section[sub + 1:].strip()


PROSE = {
    "outer_memory": "Peak memory of one outer iteration: XLA's compiled estimate (temporaries + arguments + outputs, "
                    "what `jaxviz.distill.memory.check_fits` compares with the free memory) and, measured the same way "
                    "for both, the growth of the peak resident set during one warm call.",
    "memory": "Memory vs unrolled inner steps (10 images per step, 1 epoch, fixed init, rolled inner loop `unroll=1`): "
              "jaxviz with and without `jax.checkpoint` per inner step, and the torch peer (autograd keeps every step's graph).",
    "per_init": "Random initialisations vmapped into one outer step (1 step x 3 epochs), torch looping over as many.",
    "fits": "Most inner steps (x 3 epochs, 1 image per class per step, real batch 256, 1 initialisation) within the budget: "
            "jaxviz from XLA's estimate: a linear guess fitted on 2 and 6 steps, then the most steps found by "
            "compiling around it (to 1%; never allocated); torch's peak RSS growth fitted on 2 and 6 steps and extrapolated (its error at 12 "
            "steps is shown). For comparison, a user of the reference code (LeNet, 10 steps x 3 epochs by default) ran "
            "out of memory at 15 classes on a V100 (ssnl/dataset-distillation#28; data set and image size not stated).",
}


def main() -> None:
    p = parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    p.add_argument("--budget-gib", type=float, default=16.0, help="memory budget of the fits part (default 16: a V100)")
    p.add_argument(DEVICE_WORKER, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.devices_worker:
        return devices_worker(args.quick)
    timer, out, md = settings(args, NAME)
    parts = [s for s in args.parts.split(",") if s]
    unknown = set(parts) - set(PARTS)
    if unknown:
        p.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    t_start = time.perf_counter()
    on_gpu = use_gpu_peer() == "cuda"
    data = load_dataset("mnist5k")
    model = lenet(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(0))
    result, rows, extra = {"parts": parts}, [], []
    if "outer" in parts:
        rows, mem, checks = outer(model, data, args.quick, timer, peak_rss=not on_gpu)
        result.update(outer_memory=mem, checks=checks)
    if "memory" in parts:
        result["memory"] = memory_vs_steps(model, data, (1, 5) if args.quick else (1, 10, 30, 100))
    if "per_init" in parts:
        result["per_init"] = per_init(model, data, (1, 2) if args.quick else (1, 2, 4, 8), args.quick)
    if "devices" in parts:
        result["devices"] = devices(args.quick)
    if "fits" in parts:
        def factory(c):
            return lenet(data.x_train.shape[1:], num_classes=c, key=jax.random.key(0))
        result["fits"] = fits(factory, data, (15,) if args.quick else (15, 100), args.budget_gib * 2**30, (2, 6), args.quick)
    result["wall_s"] = time.perf_counter() - t_start
    for name in ("outer_memory", "memory", "per_init", "fits"):
        if name in result:
            extra.append(PROSE[name] + "\n\n" + _md(result[name]))
    if "devices" in result:
        d = result["devices"]
        extra.append(f"4 simulated CPU devices ({d['cores']} core(s) under them; random init, 4 inits, 1 step x 3 epochs): "
                     f"{d['4 devices']['ms per iteration']:.0f} ms per iteration vs {d['1 device']['ms per iteration']:.0f} ms on 1 "
                     f"device (compile {d['4 devices']['compile s']:.1f} s vs {d['1 device']['compile s']:.1f} s); images after "
                     f"one step differ by at most {d['max |images after 4 devices - 1 device|']:.2g}. The devices share "
                     "the cores above, so a difference is not parallel speed-up: each device runs its own initialisations.")
    if not on_gpu:
        extra.append("The machine was shared with other jobs while this ran (the load average above): ratios are from "
                     "interleaved rounds in one process; absolute times are not comparable between runs.")
    kept = kept_subsections(md)
    if kept:
        extra.append(kept)
    command = "python benchmarks/distill.py" + (" --quick" if args.quick else "") + (
        f" --parts {args.parts}" if args.parts != ",".join(PARTS) else "")
    write_results(NAME, rows, out, md, command=command, extra="\n\n".join(extra), config=result)
    print("\n\n".join(extra))
    print(json.dumps({k: result[k] for k in ("checks", "devices", "wall_s") if k in result}, indent=1))


if __name__ == "__main__":
    main()
