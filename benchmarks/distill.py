"""Dataset distillation (jaxviz.distill): memory of the unrolled inner run with and without
``jax.checkpoint``, and time per initialisation as more of them are vmapped into one outer step.

Memory is XLA's compiled temporary allocation of one outer step (``memory_analysis()``), so it needs
no run; times are the median of compiled calls, as ratios within this run. LeNet-5 on MNIST-5k
shapes, 10 images per step, real batch 256.

    python benchmarks/distill.py [--quick] [--out results/distill.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import numpy as np
import optax

from jaxviz.data import Dataset
from jaxviz.distill import DistillConfig, initial_distilled, make_outer_step
from jaxviz.models import lenet


def _step(model, cfg, data):
    opt = optax.adam(0.01)
    d0 = initial_distilled(cfg, data, 10)
    learned = d0._replace(labels=None)
    step = make_outer_step(model, cfg, model.params, opt)
    args = ((d0, opt.init(learned)), (data.x_train[:256], data.y_train[:256], np.int32(0)))
    return jax.jit(step).lower(*args).compile(), args


def memory(model, data, steps_list, epochs=1):
    rows = []
    for steps in steps_list:
        row = {"unrolled steps": steps * epochs}
        for remat in (False, True):
            cfg = DistillConfig(steps=steps, epochs=epochs, remat=remat)
            compiled, _ = _step(model, cfg, data)
            row[f"temp MiB remat={remat}"] = compiled.memory_analysis().temp_size_in_bytes / 2**20
        rows.append(row)
    return rows


def per_init_time(model, data, batch_sizes, iters):
    rows = []
    for b in batch_sizes:
        cfg = DistillConfig(steps=1, epochs=3, init="random", num_inits=b)
        compiled, args = _step(model, cfg, data)
        jax.block_until_ready(compiled(*args))
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            times.append(time.perf_counter() - t0)
        rows.append({"inits vmapped": b, "ms per outer step": 1e3 * statistics.median(times),
                     "ms per init": 1e3 * statistics.median(times) / b})
    base = rows[0]["ms per init"]
    for r in rows:
        r["per-init time / batch 1"] = r["ms per init"] / base
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    data = Dataset("shapes", rng.random((256, 28, 28, 1), np.float32), np.arange(256, dtype=np.int32) % 10,
                   np.zeros((1, 28, 28, 1), np.float32), np.zeros(1, np.int32), tuple(map(str, range(10))), "random")
    model = lenet()
    result = {
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "memory": memory(model, data, (1, 5) if args.quick else (1, 5, 10, 30)),
        "per_init": per_init_time(model, data, (1, 4) if args.quick else (1, 2, 4, 8), 3 if args.quick else 10),
    }
    for name in ("memory", "per_init"):
        rows = result[name]
        print(" | ".join(rows[0]))
        for r in rows:
            print(" | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values()))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
