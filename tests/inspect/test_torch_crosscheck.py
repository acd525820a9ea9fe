"""jaxviz's top-k equals the PyTorch recipe of benchmarks/inside.py (forward hooks + torch.topk) on
the same weights, so the benchmark compares the same computation."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402

from jaxviz import inspect as I  # noqa: E402

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "inside.py"


def _bench():
    name = "_jaxviz_bench_inside"  # loaded by path: "benchmarks" would clash with the tests folder
    if name not in sys.modules:
        root = str(BENCH.parents[1])
        sys.path.insert(0, root)
        try:
            spec = importlib.util.spec_from_file_location(name, BENCH)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(root)
    return sys.modules[name]


@pytest.mark.parametrize("case", ["lenet", "convnet"])
def test_hooks_and_topk_agree(case, small_train):
    from jaxviz.models import convnet, lenet

    b = _bench()
    x = small_train[0][:120]
    if case == "lenet":
        model = lenet(key=jax.random.key(0))
        net = b.TappedLeNet(b.lenet_from_jaxviz(model)).eval()
    else:
        model = convnet((28, 28, 1), key=jax.random.key(0), width=16)
        net = b.TorchConvNet(b.pure_params(model), 1, 28, width=16).eval()
    modules = {n: getattr(net, n) for n in model.layers}
    theirs = b.run_torch(net, modules, x, 50)
    ours = I.top_k(model, x, model.layers, k=b.K, batch_size=50)
    for n in model.layers:
        np.testing.assert_allclose(ours[n].values, theirs[n][0], rtol=2e-4, atol=1e-5, err_msg=n)
        v = np.asarray(theirs[n][0])
        gap = np.minimum(np.abs(np.diff(v, axis=1, prepend=np.inf)), np.abs(np.diff(v, axis=1, append=-np.inf)))
        distinct = gap > 1e-4 * np.abs(v).max()  # (dead ReLU units tie at 0: any order is right)
        assert distinct.mean() > 0.5, n
        np.testing.assert_array_equal(ours[n].indices[distinct], theirs[n][1][distinct], err_msg=n)
        np.testing.assert_array_equal(ours[n].positions[distinct], theirs[n][2][distinct], err_msg=n)
