"""Model zoo benchmark: jaxviz against plain PyTorch with the same weights, in one process.

Cases:
  forward     SqueezeNet 1.1, batch 16 at 227x227, ``jax.jit(lambda m, x: m(x))`` vs the torch peer
              (``benchmarks/peers/torch_models.py``) under ``torch.inference_mode``.
  input-grad  gradient of the sum of the target-class logits with respect to the input pixels,
              same batch and nets (per-example targets).
  train-step  LeNet-5 training step, Adam(1e-3) on softmax cross-entropy, batch 256 of 28x28x1:
              ``jaxviz.train.make_train_step`` vs ``loss.backward(); opt.step()`` in torch.

Both sides take their native layout (NHWC for jaxviz, NCHW for torch), converted once outside the
timed region; both apply the Caffe preprocessing inside the forward pass. torch runs with 2
threads. Usage::

    python benchmarks/models.py            # full run: writes results/models.json and RESULTS.md
    python benchmarks/models.py --quick    # a smoke test: results/models-quick.json only
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from benchmarks.common import describe, jax_row, machine_description, parser, settings, table, time_pair, torch_row, write_results  # noqa: E402
from benchmarks.peers.torch_models import lenet_from_jaxviz, nhwc_to_nchw, squeezenet_from_jaxviz  # noqa: E402
from jaxviz.models.squeezenet import squeezenet  # noqa: E402
from jaxviz.models.zoo import lenet  # noqa: E402
from jaxviz.train import make_train_step  # noqa: E402

NAME = "models"
TORCH_THREADS = 2
SQUEEZE_BATCH, SQUEEZE_SIZE = 16, 227
LENET_BATCH = 256


def squeezenet_rows(timer) -> list:
    model = squeezenet()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(SQUEEZE_BATCH, SQUEEZE_SIZE, SQUEEZE_SIZE, 3)).astype(np.float32)
    targets = rng.integers(0, 1000, size=SQUEEZE_BATCH).astype(np.int32)
    xj, tj = jnp.asarray(x), jnp.asarray(targets)
    xt, tt = nhwc_to_nchw(x), torch.from_numpy(targets.astype(np.int64))[:, None]
    net = squeezenet_from_jaxviz(model)
    rows = []

    # (a) forward. The model is passed to jit as a pytree argument, so its weights are inputs of the
    # compiled function rather than constants folded into it.
    def forward(m, x):
        return m(x)

    jt, tt_ = time_pair(forward, (model, xj), net, (xt,), **timer)
    case = f"SqueezeNet 1.1 forward, batch {SQUEEZE_BATCH}, {SQUEEZE_SIZE}px"
    rows.append(jax_row("forward", case, jt, tt_, impl="jaxviz jit(model(x))", items=SQUEEZE_BATCH))
    rows.append(torch_row("forward", case, tt_, impl="torch peer (inference_mode)", items=SQUEEZE_BATCH))

    # (b) input gradient of the target-class logits
    def input_grad(m, x, t):
        return jax.grad(lambda x: jnp.take_along_axis(m(x), t[:, None], axis=1).sum())(x)

    net_g = squeezenet_from_jaxviz(model).requires_grad_(False)  # gradients for the input only, as in JAX
    xg = xt.clone().requires_grad_(True)

    def torch_input_grad(x, t):
        return torch.autograd.grad(net_g(x).gather(1, t).sum(), x)[0]

    jt, tt_ = time_pair(input_grad, (model, xj, tj), torch_input_grad, (xg, tt), inference=False, **timer)
    case = f"SqueezeNet 1.1 input gradient of target logits, batch {SQUEEZE_BATCH}, {SQUEEZE_SIZE}px"
    rows.append(jax_row("input-grad", case, jt, tt_, impl="jaxviz jit(grad)", items=SQUEEZE_BATCH))
    rows.append(torch_row("input-grad", case, tt_, impl="torch peer (autograd.grad)", items=SQUEEZE_BATCH))
    return rows


def lenet_rows(timer) -> list:
    model = lenet((28, 28, 1), 10, key=jax.random.key(0))
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(LENET_BATCH, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=LENET_BATCH).astype(np.int32)
    optimizer = optax.adam(1e-3)
    step = make_train_step(model, optimizer)
    params = model.params
    opt_state = optimizer.init(params)

    net = lenet_from_jaxviz(model).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = nhwc_to_nchw(x), torch.from_numpy(y.astype(np.int64))

    def torch_step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    jt, tt_ = time_pair(step, (params, opt_state, jnp.asarray(x), jnp.asarray(y)), torch_step, (xt, yt), inference=False, **timer)
    case = f"LeNet-5 train step, Adam, batch {LENET_BATCH}, 28x28x1"
    return [
        jax_row("train-step", case, jt, tt_, impl="jaxviz make_train_step", items=LENET_BATCH, unit="ex"),
        torch_row("train-step", case, tt_, impl="torch (backward + Adam.step)", items=LENET_BATCH, unit="ex"),
    ]


NOTES = """\
Notes. On an idle CPU like this one XLA's convolutions measured 1.6-2.6x slower than PyTorch's
(oneDNN) for the same small nets, forward and backward (see the design notes), so ratios above 1
are expected on the convolution-bound rows there; jaxviz targets accelerators, and a GPU rerun
gives the numbers that matter. Both implementations share the process and the cores and are timed
in alternating rounds, so load from other processes falls on both alike; absolute times on a shared
2-core machine are indicative only.
"""

OVERSUBSCRIBED = """\
**Caution: the machine was oversubscribed during this run** (1-min load average {load:.1f} on
{cores} cores, from other processes). PyTorch's OpenMP threads lose much more than XLA's thread
pool when cores are oversubscribed, so ratios below 1 here should not be read as jaxviz being
faster than PyTorch on an idle CPU; rerun on an idle machine for that comparison.
"""


def main(argv=None) -> list:
    args = parser(__doc__.splitlines()[0], NAME).parse_args(argv)
    timer, out, md = settings(args, NAME)
    torch.set_num_threads(TORCH_THREADS)
    print(describe(machine_description()), flush=True)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    rows = squeezenet_rows(timer)
    rows += lenet_rows(timer)
    print(table(rows))
    print(f"({time.perf_counter() - t0:.0f} s)")
    command = "python benchmarks/models.py" + (" --quick" if args.quick else "")
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
