"""Feature visualisation benchmark: jaxviz's compiled render step against a Lucent-style PyTorch loop.

Case: maximise channels 0-3 of SqueezeNet's fire6 (one per image, batch 4) in the robust setting --
Fourier parameterisation with 1/f scaling, Lucid's colour decorrelation, sigmoid, Lucid's standard
transforms (pad 12, jitter 8, scale 0.9-1.1, rotate -10..10 degrees, jitter 4), Adam(0.05) -- at 128
and 224 px, for ``--steps`` steps (default 512, as the issue asks). The torch peer is written here in
plain torch on the same weights (``benchmarks/peers/torch_models.py``): ``torch.fft.irfft2``, the
same colour matrix, ``F.pad``, random crops, ``affine_grid`` + ``grid_sample`` for scale and
rotation, and the peer SqueezeNet stopped after fire6.

Both loops run in alternating blocks of steps (jax, then torch) so machine load falls on both alike;
rows give the median seconds per step, steps per second, the time ratio jaxviz / torch (below 1:
jaxviz faster), compile time apart (jaxviz: the first step; torch: its cold first step), and peak
memory (device memory on accelerators; on CPU the process's peak RSS growth during each loop).

    python benchmarks/featureviz.py                 # writes results/featureviz.json and RESULTS.md
    python benchmarks/featureviz.py --quick         # 24 steps at 64 and 128 px, results/featureviz-quick.json
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from benchmarks.common import Row, describe, machine_description, parser, settings, table, write_results  # noqa: E402
from benchmarks.peers.torch_models import POOL_AFTER, squeezenet_from_jaxviz  # noqa: E402
from jaxviz import featureviz as fv  # noqa: E402
from jaxviz.featureviz import transforms as T  # noqa: E402
from jaxviz.featureviz.render import _step  # noqa: E402
from jaxviz.models.squeezenet import squeezenet  # noqa: E402

NAME = "featureviz"
TORCH_THREADS = 2
BATCH, LAYER, CHANNELS = 4, "fire6", [0, 1, 2, 3]
BLOCKS = 8


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TorchRender:
    """Lucent's render loop in plain torch: Fourier + decorrelated image, standard transforms, Adam."""

    def __init__(self, net, size: int, seed: int = 0):
        self.net, self.size = net, size
        g = torch.Generator().manual_seed(seed)
        h = w = size
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = torch.sqrt(fx * fx + fy * fy)
        self.scale = (1.0 / torch.clamp(freqs, min=1.0 / max(h, w))) * math.sqrt(h * w)
        self.spectrum = (0.01 * torch.randn(BATCH, 3, h, w // 2 + 1, 2, generator=g)).requires_grad_(True)
        self.colour = torch.from_numpy(fv.COLOUR_CORRELATION_SQRT.T.copy())
        self.opt = torch.optim.Adam([self.spectrum], lr=0.05)
        self.channels = torch.tensor(CHANNELS)
        self.scales = torch.tensor([1 + (i - 5) / 50 for i in range(11)])
        self.angles = torch.tensor(list(range(-10, 11)) + 5 * [0], dtype=torch.float32)

    def image(self):
        spec = torch.view_as_complex(self.spectrum) * self.scale
        t = torch.fft.irfft2(spec, s=(self.size, self.size)) * 0.25  # (B, 3, H, W)
        t = torch.einsum("bchw,cd->bdhw", t, self.colour)
        return torch.sigmoid(t)

    @staticmethod
    def _jitter(x, d):
        h, w = x.shape[2:]
        oy, ox = np.random.randint(0, d + 1, size=2)
        return x[:, :, oy:oy + h - d, ox:ox + w - d]

    def _affine(self, x):
        b = x.shape[0]
        s = self.scales[torch.randint(len(self.scales), (b,))]
        a = torch.deg2rad(self.angles[torch.randint(len(self.angles), (b,))])
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a) / s, -torch.sin(a) / s
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a) / s, torch.cos(a) / s
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def features(self, x):
        h = self.net.pool(self.net.relu1(self.net.conv1(self.net.preprocess(x))))
        for name, fire in self.net.fires.items():
            h = fire(h)
            if name == LAYER:
                return h
            if name in POOL_AFTER:
                h = self.net.pool(h)
        raise KeyError(LAYER)

    def step(self):
        self.opt.zero_grad()
        x = F.pad(self.image(), (12, 12, 12, 12), value=0.5)
        x = self._affine(self._jitter(x, 8))
        x = self._jitter(x, 4)
        acts = self.features(x).mean(dim=(2, 3))
        obj = acts[torch.arange(BATCH), self.channels]
        (-obj.sum()).backward()
        self.opt.step()
        return obj.detach()


def _jax_memory() -> float | None:
    stats = jax.devices()[0].memory_stats()
    return None if not stats else stats.get("peak_bytes_in_use", 0) / 2**20


def case(model, net, size: int, steps: int) -> tuple[list[Row], dict]:
    objective = fv.channel(LAYER, CHANNELS)
    param = fv.image_param(size, BATCH)
    opt = fv.adam(0.05)
    # the plain-gradient step: what render runs after its first REDIRECT_STEPS (Lucent has no redirected ReLU)
    settings_ = dict(param=param, transforms=T.STANDARD, regularisers=fv.Regularisers(), optimizer=opt, relu_gradient="gradient")
    key = jax.random.key(0)
    params = param.init(key)
    state = opt.init(params)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    params, state, obj, _ = _step(model, objective, params, state, key, jnp.int32(0), **settings_)
    jax.block_until_ready(params)
    jax_compile = time.perf_counter() - t0
    peer = TorchRender(net, size)
    t0 = time.perf_counter()
    peer.step()
    torch_first = time.perf_counter() - t0
    per_block = max(1, (steps - 1) // BLOCKS)
    jt, tt, i = [], [], 1
    jax_rss, torch_rss = 0.0, 0.0
    for _ in range(BLOCKS):
        r = _rss_mb()
        t0 = time.perf_counter()
        for _ in range(per_block):
            params, state, obj, _ = _step(model, objective, params, state, key, jnp.int32(i), **settings_)
            i += 1
        jax.block_until_ready(params)
        jt.append((time.perf_counter() - t0) / per_block)
        jax_rss = max(jax_rss, _rss_mb() - rss0)
        r = _rss_mb()
        t0 = time.perf_counter()
        for _ in range(per_block):
            tobj = peer.step()
        tt.append((time.perf_counter() - t0) / per_block)
        torch_rss = max(torch_rss, _rss_mb() - r)
    done = 1 + BLOCKS * per_block
    j, t = statistics.median(jt), statistics.median(tt)
    dev_mem = _jax_memory()
    mem = f"peak device memory {dev_mem:.0f} MiB" if dev_mem is not None else f"process peak RSS grew {jax_rss:.0f} MiB"
    c = f"{size}px b{BATCH} {LAYER} {done} steps"
    rows = [
        Row(NAME, c, "jaxviz", jax_compile, j, j / t, f"{1 / j:.2f} steps/s; first step = trace + compile; {mem}", BATCH),
        Row(NAME, c, "torch (Lucent-style)", torch_first, t, None, f"{1 / t:.2f} steps/s; process peak RSS grew {torch_rss:.0f} MiB more", BATCH),
    ]
    extra = {"size": size, "steps": done, "jax_objective": np.asarray(obj).tolist(), "torch_objective": tobj.tolist()}
    return rows, extra


def main(argv=None) -> list:
    p = parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--steps", type=int, default=None, help="steps per size (default 512; 24 with --quick)")
    p.add_argument("--torch-threads", type=int, default=TORCH_THREADS, help="torch intra-op threads (default %(default)s; 1 is far faster than 2 on an oversubscribed machine)")
    p.add_argument("--sizes", default=None, help="comma-separated sizes (default 128,224; 64,128 with --quick)")
    args = p.parse_args(argv)
    _, out, md = settings(args, NAME)
    torch.set_num_threads(args.torch_threads)
    np.random.seed(0)
    torch.manual_seed(0)
    print(describe(machine_description()), flush=True)
    steps = args.steps or (24 if args.quick else 512)
    sizes = [int(s) for s in (args.sizes or ("64,128" if args.quick else "128,224")).split(",")]
    model = squeezenet()
    net = squeezenet_from_jaxviz(model)
    load_start = os.getloadavg()[0]
    rows, extras, t0 = [], [], time.perf_counter()
    for size in sizes:
        r, e = case(model, net, size, steps)
        rows += r
        extras.append(e)
        print(table(r), flush=True)
    load = f"1-min load average {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; torch threads {args.torch_threads}."
    notes = ("Time ratios jaxviz / torch per render step (below 1: jaxviz faster), medians of "
             f"{BLOCKS} alternating blocks. Final objectives (channel means) are in the JSON. On CPU the memory figure is the "
             "growth of the process's peak RSS (ru_maxrss) during each side's first use; torch's loop runs after jaxviz's "
             "has raised that peak, so torch's growth is only what it needs beyond jaxviz's, not its own peak. " + load)
    command = "python benchmarks/featureviz.py" + (" --quick" if args.quick else "") + (f" --steps {args.steps}" if args.steps else "") + (f" --sizes {args.sizes}" if args.sizes else "") + (f" --torch-threads {args.torch_threads}" if args.torch_threads != TORCH_THREADS else "")
    write_results(NAME, rows, out, md, command=command, extra=notes, config=dict(steps=steps, sizes=sizes, batch=BATCH, layer=LAYER, cases=extras,
                                                                                     seconds=round(time.perf_counter() - t0, 1)))
    print(f"wrote {out}" + (f" and section '## {NAME}' of {md}" if md else ""))
    return rows


if __name__ == "__main__":
    main()
