import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxviz import attribution as A
from jaxviz import inspect as I
from jaxviz.data import batches
from jaxviz.errors import JaxvizError, ShapeError, UnknownLayerError


def _reference(model, x, layer, k, reduce):
    a = np.asarray(model.activations(x, [layer])[layer])
    if a.ndim == 2:
        scores, pos = a, np.zeros((*a.shape, 2), int)
    else:
        flat = a.reshape(len(a), -1, a.shape[-1])
        arg = flat.argmax(1)
        scores = flat.max(1) if reduce == "max" else flat.mean(1)
        pos = np.stack([arg // a.shape[2], arg % a.shape[2]], -1)
    order = np.argsort(-scores, axis=0, kind="stable")[:k].T  # (C, k), ties: earlier example first
    c = np.arange(scores.shape[1])[:, None]
    return scores[order, c], order, pos[order, c]


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_streamed_topk_matches_sorting_everything(lenet_trained, small_train, reduce):
    x, _ = small_train
    before = I.topk_step._cache_size()
    got = I.top_k(lenet_trained, x, ["conv1", "pool2", "fc1"], k=7, reduce=reduce, batch_size=128)  # 700 = 5 x 128 + 60
    assert I.topk_step._cache_size() == before + 1  # one program for every batch, the padded last one too
    for layer, t in got.items():
        values, indices, positions = _reference(lenet_trained, x, layer, 7, reduce)
        np.testing.assert_allclose(t.values, values, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(t.indices, indices)
        np.testing.assert_array_equal(t.positions, positions)


def test_a_stream_of_batches_gives_the_same_answer(lenet_trained, small_train):
    x, _ = small_train
    whole = I.top_k(lenet_trained, x, "conv2", k=5, batch_size=100)["conv2"]
    stream = I.top_k(lenet_trained, batches(x, batch_size=100), "conv2", k=5, batch_size=100)["conv2"]
    for a, b in zip(whole, stream):
        np.testing.assert_array_equal(a, b)


def test_crops_are_the_receptive_field_around_the_argmax(lenet_trained, small_train):
    x, _ = small_train
    t = I.top_k(lenet_trained, x, "conv2", k=4)["conv2"]
    ex = I.top_examples(lenet_trained, x, t, "conv2", 3)
    assert ex.crops.shape == (4, 14, 14, 1)
    for img, c, (i, j) in zip(ex.images, ex.crops, t.positions[3]):
        top, left = 2 * i - 2, 2 * j - 2
        for r in range(14):
            for q in range(14):
                inside = 0 <= top + r < 28 and 0 <= left + q < 28
                assert c[r, q, 0] == (img[top + r, left + q, 0] if inside else 1.0)


def test_projections_match_unit_projection(lenet_trained, small_train):
    x, _ = small_train
    t = I.top_k(lenet_trained, x, ["conv2", "fc1"], k=3)
    proj = I.top_projections(lenet_trained, x, t["conv2"], "conv2", 5)
    for n in range(3):
        i, j = t["conv2"].positions[5, n]
        ref = A.unit_projection(lenet_trained, x[t["conv2"].indices[5, n]][None], "conv2", (5, int(i), int(j)))
        np.testing.assert_allclose(proj[n], np.asarray(ref)[0], rtol=1e-4, atol=1e-6)
    dense = I.top_projections(lenet_trained, x, t["fc1"], "fc1", 2, method="guided")
    ref = A.unit_projection(lenet_trained, x[t["fc1"].indices[2]], "fc1", 2, method="guided")
    np.testing.assert_allclose(dense, np.asarray(ref), rtol=1e-4, atol=1e-6)


def test_bad_input(lenet_trained, small_train):
    x, _ = small_train
    with pytest.raises(JaxvizError, match="k=701 is larger than the data set \\(700 images\\)"):
        I.top_k(lenet_trained, x, "conv1", k=701)
    with pytest.raises(ShapeError, match="empty"):
        I.top_k(lenet_trained, x[:0], "conv1")
    with pytest.raises(UnknownLayerError, match="valid layers: conv1, pool1, conv2"):
        I.top_k(lenet_trained, x, "fc9")
    t = I.top_k(lenet_trained, x[:50], ["conv1", "fc1"], k=3)
    with pytest.raises(JaxvizError, match="channel 6 is out of range for layer 'conv1' with 6 channels"):
        I.top_examples(lenet_trained, x, t["conv1"], "conv1", 6)
    with pytest.raises(ShapeError, match="without spatial axes"):
        I.top_examples(lenet_trained, x, t["fc1"], "fc1", 0)


SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    from jaxviz import inspect as I
    from jaxviz.data import load_dataset
    from jaxviz.models import lenet

    assert jax.device_count() == 4, jax.devices()
    model = lenet(key=jax.random.key(1))
    x = load_dataset("mnist5k").x_train[:300]
    ref = I.top_k(model, x, ["conv2", "fc2"], k=6, batch_size=64)  # 300 = 4 x 64 + 44
    for axis_type in (AxisType.Auto, AxisType.Explicit):
        mesh = jax.make_mesh((4,), ("batch",), axis_types=(axis_type,))
        with jax.set_mesh(mesh):
            got = I.top_k(model, x, ["conv2", "fc2"], k=6, batch_size=64, sharding=NamedSharding(mesh, P("batch")))
        for layer in ref:
            for a, b in zip(ref[layer], got[layer]):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{layer} on a {axis_type} mesh")
    print("sharded ok")
    """
)


def test_sharded_batches_give_the_same_top_k():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sharded ok" in result.stdout


def test_memory_does_not_grow_with_the_stream(lenet_trained, small_train):
    x, _ = small_train
    live = []

    def stream():
        for i in range(0, 640, 32):
            live.append(sum(a.nbytes for a in jax.live_arrays()))
            yield x[i : i + 32]

    I.top_k(lenet_trained, stream(), ["conv1", "fc1"], k=5, batch_size=32)
    batch_bytes = x[:32].nbytes
    # 20 batches streamed; device memory holds the (C, k) states and a few queued batches, never the stream
    assert len(live) == 20 and max(live) <= live[0] + 5 * batch_bytes
