"""The shared benchmark runner keeps CPU and accelerator results apart, and distill_long.py fits its
runs into the wall-clock budget it is given."""

import argparse

import jax
import pytest
from bench_loader import load

common = load("common.py", "_jaxviz_bench_common")
long = load("distill_long.py", "_jaxviz_bench_distill_long")


def test_results_of_a_gpu_run_get_their_own_section_and_json(monkeypatch):
    args = argparse.Namespace(quick=False, out=None, results_md=None, min_time=0.25)
    timer, out, md = common.settings(args, "models")
    assert (common.backend_name("models"), out.name, timer["min_time"]) == ("models", "models.json", 0.25)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    timer, out, md = common.settings(args, "models")
    assert (common.backend_name("models"), out.name) == ("models-gpu", "models-gpu.json")


def test_torch_peer_stays_on_cpu_without_a_gpu():
    torch = pytest.importorskip("torch")
    assert common.use_gpu_peer() == "cpu" and torch.get_default_device().type == "cpu"
    calls = []
    assert common._torch_call(lambda a: calls.append(a) or a, (3,))() == 3 and calls == [3]


def test_distill_long_takes_the_most_iterations_that_fit():
    assert long.choose(0.1, 1000, 10) == 6000  # 10 s setup + 1.25 x 6000 x 0.1 s = 760 s; 8000 would need 1010 s
    assert long.choose(0.01, 1000, 10) == 30000  # the top of the ladder
    assert long.choose(1.0, 100, 90) is None  # not even the shortest run fits
