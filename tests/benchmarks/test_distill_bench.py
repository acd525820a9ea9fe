"""benchmarks/distill.py compares like with like: the PyTorch peer's outer loss and gradients equal
jaxviz's outer step, and its peak-memory probe measures what a call allocates."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402
from bench_loader import load  # noqa: E402

bench = load("distill.py", "_jaxviz_bench_distill")


def test_peer_matches_jaxviz_outer_step():
    from jaxviz.data import load_dataset
    from jaxviz.distill import DistillConfig
    from jaxviz.models import lenet

    data = load_dataset("mnist5k")
    model = lenet(key=jax.random.key(0))
    cfg = DistillConfig(steps=2, epochs=1)  # two batches of distilled images, the fixed initialisation
    xr, yr = bench.real_batch(data, 64)
    step, args = bench.jax_case(model, data, cfg, (xr, yr))
    compiled, _, _ = bench.compile_timed(step, args)
    loss, errs = bench.check_equal(model, data, cfg, compiled, args, bench.nhwc_to_nchw(xr), torch.from_numpy(yr.astype(np.int64)))
    assert 1.5 < loss < 4 and errs["loss"] < 1e-5 and errs["images"] < 1e-4 and errs["step sizes"] < 1e-4
    # The check is not vacuous: other initialisations (jaxviz's random ones, converted) give another loss.
    other = bench.torch_peer(model, data, cfg._replace(init="random", num_inits=2), inits=bench.jax_inits(model, cfg._replace(num_inits=2)))
    assert abs(other(bench.nhwc_to_nchw(xr), torch.from_numpy(yr.astype(np.int64)))[0].item() - loss) > 1e-3


def test_peak_rss_probe_sees_an_allocation():
    kept = []
    grown = bench.peak_rss_mib(lambda: kept.append(np.ones(64 * 2**20 // 8)))  # 64 MiB, written
    transient = bench.peak_rss_mib(lambda: np.ones(32 * 2**20 // 8).sum())  # 32 MiB, freed at once
    assert 60 < grown < 80 and 28 < transient < 48


def test_most_within_finds_the_largest_size_within_the_budget_from_a_wrong_guess():
    calls = []

    def estimate(steps):  # convex in the steps, as XLA's estimate was at 100 classes: a linear guess overshoots
        calls.append(steps)
        return 100 + steps + steps**2 / 1000

    budget = estimate(2000)  # exactly 2000 steps fit
    for guess in (2400, 700):  # too many, too few
        found = bench.most_within(estimate, budget, 6, guess)
        assert 1980 <= found <= 2000 and estimate(found) <= budget
    assert len(calls) < 40
