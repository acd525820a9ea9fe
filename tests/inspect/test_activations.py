import numpy as np
import pytest

from jaxviz import inspect as I
from jaxviz.errors import ShapeError


def test_zero_fraction_counts_exact_zeros(lenet_trained, small_train):
    x = small_train[0][:300]
    got = I.zero_fraction(lenet_trained, x, batch_size=128)  # 300 = 2 x 128 + 44: padding must not count
    acts = lenet_trained.activations(x)
    for name, frac in got.items():
        assert frac == pytest.approx(float((np.asarray(acts[name]) == 0).mean()), abs=1e-9)
    assert got["logits"] == 0.0 and got["conv1"] > 0.1


def test_histograms_count_every_value(lenet_trained, small_train):
    x = small_train[0][:100]
    hists = I.activation_histograms(lenet_trained, x, ["conv1", "fc1"], bins=20)
    acts = lenet_trained.activations(x, ["conv1", "fc1"])
    for name, h in hists.items():
        a = np.asarray(acts[name]).reshape(-1, acts[name].shape[-1])
        assert h.counts.sum() == a.size and h.channel_counts.shape == (a.shape[1], 20)
        np.testing.assert_array_equal(h.channel_counts.sum(1), a.shape[0])
        np.testing.assert_allclose(h.edges[[0, -1]], [a.min(), a.max()], rtol=1e-6)
        ref, _ = np.histogram(a[:, 0], bins=np.asarray(h.edges, np.float64))
        assert np.abs(ref - h.channel_counts[0]).sum() <= 2  # bin-edge rounding only
        assert h.zero_fraction == pytest.approx((a == 0).mean())


def test_activation_maps(lenet_trained, small_train):
    img = small_train[0][0]
    maps = I.activation_maps(lenet_trained, img, "conv2")
    assert maps.shape == (16, 10, 10, 1)
    live = maps.reshape(16, -1).max(1) > 0
    np.testing.assert_allclose(maps.reshape(16, -1).max(1)[live], 1.0, rtol=1e-6)
    shared = I.activation_maps(lenet_trained, img, "conv2", normalize="shared")
    assert shared.max() == pytest.approx(1.0) and (shared.reshape(16, -1).max(1) < 1.0 - 1e-6).sum() >= 1
    with pytest.raises(ShapeError, match="not \\(h, w, C\\) maps"):
        I.activation_maps(lenet_trained, img, "fc1")
    with pytest.raises(ShapeError, match="one image"):
        I.activation_maps(lenet_trained, small_train[0][:2], "conv1")
