"""The benchmark's Lucent-style torch loop renders the same image from the same spectrum as jaxviz."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxviz import featureviz as fv  # noqa: E402

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "featureviz.py"


def _load():
    name = "_jaxviz_bench_featureviz"
    if name not in sys.modules:
        root = str(BENCH.parents[1])
        if root not in sys.path:
            sys.path.insert(0, root)
        spec = importlib.util.spec_from_file_location(name, BENCH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.mark.parametrize("size", [16, 17])
def test_torch_peer_image_matches_jaxviz_param(size):
    peer = _load().TorchRender(None, size)
    spectrum = peer.spectrum.detach().numpy()  # (B, C, H, W//2+1, re/im)
    params = np.moveaxis(spectrum, -1, 0)  # jaxviz layout (re/im, B, C, H, W//2+1)
    ours = np.asarray(fv.image_param(size, batch=spectrum.shape[0])(params))
    theirs = peer.image().detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
