"""Top-k data-set examples benchmark: jaxviz's streamed, compiled top-k against the way it is done
in PyTorch -- forward hooks collecting each layer's per-image channel maxima (and argmax) batch by
batch, then ``torch.topk`` over the whole data set -- with the same weights, in one process.

Cases (k = 9, max over space, argmax positions kept on both sides):
  lenet     every channel of every LeNet-5 layer (conv1, pool1, conv2, pool2, fc1, fc2, logits) over
            the 60,000 Fashion-MNIST training images, batch 1000;
  convnet   every channel of every layer of the 3-block ConvNet (width 128, instance norm) over the
            same 60,000 images, batch 500;
  squeezenet  every fire module (fire2..fire9) of SqueezeNet 1.1 over 2,000 Fashion-MNIST test
            images upsampled to 227 px RGB, batch 50.

Times are medians of interleaved rounds (jaxviz pass, then torch pass), after one untimed warm-up
pass of each (jaxviz compiles there). Peak memory is measured apart, in a fresh subprocess per
implementation and data-set size: the growth of the peak resident set size during the pass over
the resident set just before it (data and weights already loaded; Linux ``clear_refs``), for a quarter of the data set and for all of
it -- the streamed top-k keeps (C, k) per layer, the hooks keep (N, C) per layer. torch runs with 2
threads. Usage::

    python benchmarks/inside.py                    # full run: results/inspect.json and RESULTS.md
    python benchmarks/inside.py --quick            # smoke test: fewer images, results/inspect-quick.json
    python benchmarks/inside.py --cases lenet      # some cases only
    python benchmarks/inside.py --rounds 1         # one timed round per case (a busy machine)
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# standard library's ``inspect``: drop the folder, put the repository root instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.common import Row, describe, machine_description, parser, settings, table, write_results  # noqa: E402
from benchmarks.peers.torch_models import lenet_from_jaxviz, nhwc_to_nchw, pure_params, squeezenet_from_jaxviz  # noqa: E402

NAME = "inspect"
TORCH_THREADS = 2
K = 9
CASES = {  # name: (images full, images quick, batch)
    "lenet": (60000, 6000, 1000),
    "convnet": (60000, 3000, 500),
    "squeezenet": (2000, 100, 50),
}


# -- peers: one module per jaxviz layer, so forward hooks see what jaxviz taps --------------------
class TappedLeNet(nn.Module):
    def __init__(self, peer):
        super().__init__()
        self.conv1 = nn.Sequential(peer.conv1, nn.ReLU())
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Sequential(peer.conv2, nn.ReLU())
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Sequential(nn.Flatten(), peer.fc1, nn.ReLU())
        self.fc2 = nn.Sequential(peer.fc2, nn.ReLU())
        self.logits = peer.fc3

    def forward(self, x):
        for m in (self.conv1, self.pool1, self.conv2, self.pool2, self.fc1, self.fc2, self.logits):
            x = m(x)
        return x


class TorchConvNet(nn.Module):
    """The 3-block ConvNet of ``jaxviz.models.convnet`` (conv 3x3, instance norm, ReLU, 2x2 avg pool)."""

    def __init__(self, params, cin: int, size: int, width: int = 128, classes: int = 10):
        super().__init__()
        blocks = []
        for i in range(3):
            conv = nn.Conv2d(cin if i == 0 else width, width, 3, padding=1)
            conv.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(params["convs"][i]["kernel"].transpose(3, 2, 0, 1))))
            conv.bias.data.copy_(torch.from_numpy(np.array(params["convs"][i]["bias"])))
            norm = nn.InstanceNorm2d(width, affine=True, eps=1e-5)
            norm.weight.data.copy_(torch.from_numpy(np.array(params["norms"][i]["scale"])))
            norm.bias.data.copy_(torch.from_numpy(np.array(params["norms"][i]["bias"])))
            blocks.append(nn.Sequential(conv, norm, nn.ReLU(), nn.AvgPool2d(2)))
            size //= 2
        self.block1, self.block2, self.block3 = blocks
        fc = nn.Linear(width * size * size, classes)
        k = params["fc"]["kernel"].reshape(size, size, width, classes).transpose(2, 0, 1, 3).reshape(-1, classes)  # NHWC -> NCHW rows
        fc.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(k.T)))
        fc.bias.data.copy_(torch.from_numpy(np.array(params["fc"]["bias"])))
        self.logits = nn.Sequential(nn.Flatten(), fc)

    def forward(self, x):
        return self.logits(self.block3(self.block2(self.block1(x))))


def hook_topk(net: nn.Module, modules: dict[str, nn.Module], batches, k: int) -> dict[str, tuple]:
    """The usual PyTorch recipe: forward hooks store each image's channel maxima and argmax, batch
    after batch; ``torch.topk`` over the data set at the end. Returns ``{layer: (values, indices,
    positions)}`` shaped like jaxviz's ``TopK`` (C, k)."""
    store: dict[str, list] = {n: [] for n in modules}

    def hook(name):
        def fn(module, inputs, out):
            if out.ndim == 4:
                flat = out.flatten(2)  # (B, C, H*W)
                val, arg = flat.max(dim=2)
                w = out.shape[3]
                store[name].append((val, torch.stack([arg // w, arg % w], -1)))
            else:
                store[name].append((out, torch.zeros((*out.shape, 2), dtype=torch.long)))
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        with torch.inference_mode():
            for xb in batches:
                net(xb)
            result = {}
            for n, parts in store.items():
                vals = torch.cat([p[0] for p in parts])  # (N, C)
                pos = torch.cat([p[1] for p in parts])  # (N, C, 2)
                top, idx = torch.topk(vals, k, dim=0)  # (k, C)
                result[n] = (top.T.numpy(), idx.T.numpy(), torch.gather(pos, 0, idx[..., None].expand(-1, -1, 2)).transpose(0, 1).numpy())
    finally:
        for h in handles:
            h.remove()
    return result


# -- cases ----------------------------------------------------------------------------------------
def _fashion(n: int, train: bool = True) -> np.ndarray:
    from jaxviz.data import load_dataset

    data = load_dataset("fashion_mnist")
    return np.ascontiguousarray((data.x_train if train else data.x_test)[:n])


def setup(case: str, n: int):
    """``(jaxviz model, layers, x NHWC, torch net, {layer: module}, batch)`` for ``case``."""
    import jax

    from jaxviz.models import convnet, lenet, squeezenet

    batch = CASES[case][2]
    if case == "lenet":
        model = lenet(key=jax.random.key(0))
        net = TappedLeNet(lenet_from_jaxviz(model)).eval()
        modules = {n_: getattr(net, n_) for n_ in model.layers}
        return model, model.layers, _fashion(n), net, modules, batch
    if case == "convnet":
        model = convnet((28, 28, 1), key=jax.random.key(0))
        net = TorchConvNet(pure_params(model), 1, 28).eval()
        modules = {n_: getattr(net, n_) for n_ in model.layers}
        return model, model.layers, _fashion(n), net, modules, batch
    from jaxviz.data import resize, to_rgb

    model = squeezenet()
    net = squeezenet_from_jaxviz(model)
    fires = tuple(n_ for n_ in model.layers if n_.startswith("fire"))
    x = np.concatenate([resize(to_rgb(c), 227) for c in np.array_split(_fashion(n, train=False), max(1, n // 100))]).astype(np.float32)
    return model, fires, x, net, {n_: net.fires[n_] for n_ in fires}, batch


def run_jax(model, layers, x, batch):
    from jaxviz import inspect as I

    return I.top_k(model, x, layers, k=K, batch_size=batch)


def run_torch(net, modules, x, batch):
    return hook_topk(net, modules, (nhwc_to_nchw(x[i : i + batch]) for i in range(0, len(x), batch)), K)


def agree(ours, theirs, layers) -> float:
    """Largest relative difference of the top values (indices can differ only on ties)."""
    worst = 0.0
    for n in layers:
        a, b = ours[n].values, theirs[n][0]
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)))
    return worst


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``: now; ``VmHWM``: peak since the last reset,
    which writing ``5`` to ``/proc/self/clear_refs`` does)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def peak_memory(case: str, impl: str, n: int) -> float:
    """MiB added to the peak RSS by one pass, in a fresh process (see the module doc)."""
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(_HERE)!r}); import torch; torch.set_num_threads({TORCH_THREADS});"
            f"from benchmarks.inside import setup, run_jax, run_torch; m, layers, x, net, mods, b = setup({case!r}, {n});"
            "from benchmarks.inside import status_kib; base = status_kib('VmRSS'); open('/proc/self/clear_refs', 'w').write('5');"
            f"run_jax(m, layers, x, b) if {impl!r} == 'jaxviz' else run_torch(net, mods, x, b);"
            "print('PEAK', (status_kib('VmHWM') - base) / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("PEAK")]
    if not line:
        raise RuntimeError(out.stderr[-2000:])
    return float(line[0].split()[1])


def bench(case: str, n: int, rounds: int) -> tuple[list[Row], dict]:
    model, layers, x, net, modules, batch = setup(case, n)
    t0 = time.perf_counter()
    run_jax(model, layers, x[: 2 * batch], batch)  # compile (the same program serves the full pass)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_torch(net, modules, x[: 2 * batch], batch)
    torch_first = time.perf_counter() - t0
    jt, tt = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ours = run_jax(model, layers, x, batch)
        jt.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs = run_torch(net, modules, x, batch)
        tt.append(time.perf_counter() - t0)
    j, t = statistics.median(jt), statistics.median(tt)
    err = agree(ours, theirs, layers)
    mem = {impl: {m: peak_memory(case, impl, m) for m in (n // 4, n)} for impl in ("jaxviz", "torch")}
    what = f"{case}: top-{K} of every channel of {len(layers)} layers over {n} images"
    note = lambda impl: f"peak RSS growth {mem[impl][n // 4]:.0f} MiB at {n // 4} images, {mem[impl][n]:.0f} MiB at {n}"  # noqa: E731
    rows = [
        Row(NAME, what, "jaxviz top_k", compile_s, j, j / t, f"{rounds} rounds; max rel. diff of top values vs torch {err:.1e}; {note('jaxviz')}", n),
        Row(NAME, what, "torch hooks + topk", torch_first, t, None, f"{rounds} rounds; {note('torch')}", n),
    ]
    return rows, {"case": case, "images": n, "layers": list(layers), "batch": batch, "jaxviz_s": jt, "torch_s": tt, "max_rel_diff": err, "peak_rss_growth_mib": mem}


def main() -> None:
    p = parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per case (default: %(default)s; --quick: 1)")
    args = p.parse_args()
    _, out, md = settings(args, NAME)
    torch.set_num_threads(TORCH_THREADS)
    rows, details = [], []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        full, quick, _ = CASES[case]
        r, d = bench(case, quick if args.quick else full, 1 if args.quick else args.rounds)
        rows += r
        details.append(d)
        print(table(r), flush=True)
    desc = machine_description()
    print(describe(desc))
    extra = ("Memory: growth of the peak resident set during one pass (fresh process per cell), at a quarter of the data set and at all of it. "
             "The jaxviz pass keeps a (C, k) running top-k per layer, so it stays flat; the hooks keep (N, C) maxima and argmax per layer.")
    write_results(NAME, rows, out, md, command="python benchmarks/inside.py" + (" --quick" if args.quick else f" --cases {args.cases} --rounds {args.rounds}"), extra=extra, config={"k": K, "cases": details})
    print(json.dumps(details, indent=1)[:2000])


if __name__ == "__main__":
    main()
