"""Style transfer benchmark: jaxviz against the PyTorch tutorial's loop, same extractor and weights.

Gatys style transfer (chelsea in the style of the bundled immunohistochemistry image) on SqueezeNet 1.1
at 256 and 512 px: ``ITERS`` L-BFGS iterations and ``ITERS`` Adam iterations, each timed once after a
compile/warm-up run, jaxviz and torch alternating case by case so that machine load falls on both.

* jaxviz: :func:`jaxviz.style.optimize_image` (one compiled ``lax.scan``; L-BFGS is ``optax.lbfgs``,
  memory 10, zoom line search; Adam is projected onto [0, 1]).
* torch: the PyTorch "Neural Transfer" tutorial's loop on the peer SqueezeNet with the same weights
  (``benchmarks/peers/torch_models.py``): Gram-matrix and content losses as modules on the feature maps,
  ``torch.optim.LBFGS`` (history 10, strong-Wolfe line search, as jaxviz) or ``torch.optim.Adam`` with a
  clamp after each step. The losses are jaxviz's normalised ones; the script checks that both sides
  compute the same loss on the start image (relative error below 1e-3) before timing.

Peak memory: each implementation runs ``MEM_ITERS`` iterations, after one warm-up/compile run, in a fresh
subprocess; a thread samples the resident set size every 2 ms. The table gives the peak and its growth over
the size just before the run (CPU; on a GPU, read the device's allocator). Both processes load the weights
through jaxviz, so both import JAX.

torch runs with 1 or 2 threads, whichever is faster at the time (see :func:`pick_torch_threads`).

Usage::

    python benchmarks/style.py            # full run: results/style.json and section "## style" of RESULTS.md
    python benchmarks/style.py --quick    # 128 px, 10 iterations: results/style-quick.json only
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from benchmarks.common import (
    Row,
    describe,
    machine_description,
    parser,
    settings,
    table,
    write_results,
)

NAME = "style"
TORCH_THREADS = 2  # the most tried
STYLE_LAYERS = ("conv1", "fire2", "fire3", "fire5", "fire7")
CONTENT_LAYER = "fire5"
ALPHA, BETA, LR = 1.0, 1.0, 0.02
MEM_ITERS = 5


def images(size: int):
    from jaxviz.data import photo, resize, to_rgb

    return resize(photo("chelsea"), size)[None], resize(to_rgb(photo("immunohistochemistry")), size)[None]


# -- jaxviz ---------------------------------------------------------------------------------------
def jax_setup(size: int):
    import jax.numpy as jnp

    from jaxviz.models import squeezenet
    from jaxviz.style import Objective, extractor, statistics
    from jaxviz.style.transfer import _content_target

    model = squeezenet()
    content, style = images(size)
    ext = extractor(model, STYLE_LAYERS)
    objective = Objective(STYLE_LAYERS, content_layer=CONTENT_LAYER)
    args = {"style": statistics(extractor(model, STYLE_LAYERS), style), "content": _content_target(ext, jnp.asarray(content), CONTENT_LAYER),
            "layer_weights": jnp.full((1, len(STYLE_LAYERS)), 1 / len(STYLE_LAYERS)), "alpha": jnp.full((1,), ALPHA),
            "beta": jnp.full((1,), BETA), "tv_weight": jnp.zeros((1,))}
    return objective, ext, jnp.asarray(content), args


def jax_run(setup, method: str, iters: int):
    import jax

    from jaxviz.style import optimize_image

    objective, ext, x0, args = setup
    t0 = time.perf_counter()
    res = optimize_image(objective, ext, x0, args, method=method, steps=iters, learning_rate=LR)
    jax.block_until_ready(res.image)
    return time.perf_counter() - t0, float(res.loss[0]), res.status


def jax_loss(setup) -> float:
    objective, ext, x0, args = setup
    return float(objective(ext, x0, args)[0])


# -- torch: the tutorial's loop -------------------------------------------------------------------
def torch_setup(size: int):
    import torch
    from torch import nn

    from benchmarks.peers.torch_models import nhwc_to_nchw, squeezenet_from_jaxviz
    from jaxviz.models import squeezenet
    from jaxviz.models.squeezenet import POOL_AFTER

    net = squeezenet_from_jaxviz(squeezenet())
    for p in net.parameters():
        p.requires_grad_(False)

    def gram(f):  # (1, C, H, W) -> (C, C) / (H W), as jaxviz.style.gram
        _, c, h, w = f.shape
        flat = f.view(c, h * w)
        return flat @ flat.T / (h * w)

    class StyleLoss(nn.Module):  # the tutorial's modules, with jaxviz's normalisation
        def __init__(self, target):
            super().__init__()
            self.target = gram(target).detach()
            self.scale = 0.25 * self.target.pow(2).mean()

        def forward(self, f):
            self.loss = 0.25 * (gram(f) - self.target).pow(2).mean() / self.scale
            return f

    class ContentLoss(nn.Module):
        def __init__(self, target):
            super().__init__()
            self.target = target.detach()
            self.scale = 0.5 * self.target.pow(2).mean()

        def forward(self, f):
            self.loss = 0.5 * (f - self.target).pow(2).mean() / self.scale
            return f

    def features(x):
        out = {}
        h = net.relu1(net.conv1(net.preprocess(x)))
        out["conv1"] = h
        h = net.pool(h)
        for name, fire in net.fires.items():
            h = out[name] = fire(h)
            if name == STYLE_LAYERS[-1]:
                break
            if name in POOL_AFTER:
                h = net.pool(h)
        return out

    content, style = (nhwc_to_nchw(a) for a in images(size))
    with torch.no_grad():
        fs, fc = features(style), features(content)
    style_losses = {n: StyleLoss(fs[n]) for n in STYLE_LAYERS}
    content_loss = ContentLoss(fc[CONTENT_LAYER])

    def loss_fn(x):
        f = features(x)
        for n, m in style_losses.items():
            m(f[n])
        content_loss(f[CONTENT_LAYER])
        return BETA * sum(m.loss for m in style_losses.values()) / len(STYLE_LAYERS) + ALPHA * content_loss.loss

    return loss_fn, content


def pick_torch_threads(setup) -> int:
    """1 or 2 threads, whichever runs a forward and backward pass faster now (median of 3).

    On a loaded machine torch's OpenMP pool with 2 threads measured 50-100x slower than 1 thread;
    the faster setting is the fair peer.
    """
    import torch

    loss_fn, content = setup
    best = {}
    for n in (1, TORCH_THREADS):
        torch.set_num_threads(n)
        x = content.clone().requires_grad_(True)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            loss_fn(x).backward()
            times.append(time.perf_counter() - t0)
        best[n] = sorted(times)[1]
    n = min(best, key=best.get)
    torch.set_num_threads(n)
    return n


def torch_run(setup, method: str, iters: int):
    import torch

    loss_fn, content = setup
    x = content.clone().requires_grad_(True)
    t0 = time.perf_counter()
    if method == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=1, max_iter=iters, max_eval=iters * 25, history_size=10, tolerance_grad=0,
                                tolerance_change=0, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = loss_fn(x)
            loss.backward()
            return loss

        opt.step(closure)
        done = opt.state[opt._params[0]]["n_iter"]
    else:
        opt = torch.optim.Adam([x], lr=LR)
        for _ in range(iters):
            opt.zero_grad()
            loss = loss_fn(x)
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
        done = iters
    elapsed = time.perf_counter() - t0
    with torch.no_grad():
        final = float(loss_fn(x.clamp(0, 1)))
    return elapsed, final, f"{done} iterations"


def torch_loss(setup) -> float:
    import torch

    loss_fn, content = setup
    with torch.no_grad():
        return float(loss_fn(content))


# -- peak memory in a fresh process ---------------------------------------------------------------
def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(impl: str, size: int, method: str, threads: int) -> None:
    import threading

    if impl == "torch":
        import torch

        torch.set_num_threads(threads)
    setup = (jax_setup if impl == "jaxviz" else torch_setup)(size)
    run = jax_run if impl == "jaxviz" else torch_run
    run(setup, method, 1)  # compile / warm up, so the measured run is the steady state
    before, peak, stop = _rss_mib(), [0.0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    run(setup, method, MEM_ITERS)
    stop.set()
    sampler.join()
    print(json.dumps({"peak_mib": max(peak[0], before), "growth_mib": max(peak[0], before) - before}))


def peak_memory(impl: str, size: int, method: str, threads: int = 1) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", impl, str(size), method, str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = parser(__doc__.splitlines()[0], NAME)
    args = p.parse_args()
    _, out, md = settings(args, NAME)
    sizes, iters = ((128,), 10) if args.quick else ((256, 512), 100)
    rows = []
    for size in sizes:
        js, ts = jax_setup(size), torch_setup(size)
        threads = pick_torch_threads(ts)
        lj, lt = jax_loss(js), torch_loss(ts)
        assert abs(lj - lt) <= 1e-3 * abs(lt), f"jaxviz and torch losses differ at the start: {lj} vs {lt}"
        for method in ("lbfgs", "adam"):
            t_compile = jax_run(js, method, iters)[0]  # compile + first run
            torch_run(ts, method, 2)  # warm-up
            tj, fj, status = jax_run(js, method, iters)
            tt, ft, done = torch_run(ts, method, iters)
            mj, mt = peak_memory("jaxviz", size, method), peak_memory("torch", size, method, threads)
            case = f"{method}, {iters} iterations, {size} px"
            rows.append(Row("style-transfer", case, "jaxviz optimize_image", t_compile - tj, tj, tj / tt,
                            notes=f"{iters / tj:.2f} it/s; final loss {fj:.4g} ({status}); peak RSS {mj['peak_mib']:.0f} MiB "
                                  f"(+{mj['growth_mib']:.0f} MiB during the run)", items=iters, unit="it"))
            rows.append(Row("style-transfer", case, "torch tutorial loop", None, tt, None,
                            notes=f"{iters / tt:.2f} it/s; {threads} thread(s); final loss {ft:.4g} ({done}); peak RSS {mt['peak_mib']:.0f} MiB "
                                  f"(+{mt['growth_mib']:.0f} MiB during the run)", items=iters, unit="it"))
            print(table(rows[-2:]), flush=True)
    extra = ("Both sides start from the content image with the same loss (checked); one timed run of the given iterations each, "
             "after a compile (jaxviz) or warm-up (torch) run. jaxviz's compile column is its first call minus the steady run. "
             "L-BFGS iterations may evaluate the loss several times (line search) on both sides. Peak memory from a fresh "
             f"process per implementation running {MEM_ITERS} iterations.\n")
    write_results(NAME, rows, out, md, command="python benchmarks/style.py" + (" --quick" if args.quick else ""), extra=extra,
                  config={"sizes": list(sizes), "iters": iters, "style_layers": list(STYLE_LAYERS), "content_layer": CONTENT_LAYER})
    print(describe(machine_description()))
    print(table(rows))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    else:
        main()
