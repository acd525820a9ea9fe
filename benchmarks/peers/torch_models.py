"""Plain-PyTorch SqueezeNet 1.1, LeNet-5, ConvNet and Johnson's transformer network that load the same weights as the jaxviz zoo models.

The peers take NCHW pixels in [0, 1] (RGB for SqueezeNet, grey for LeNet) and apply the same
preprocessing inside ``forward`` as jaxviz does, so ``peer(x.permute(0, 3, 1, 2))`` equals
``jaxviz_model(x)``. Weights come from a jaxviz :class:`~jaxviz.models.contract.Model`
(``from_jaxviz``) or from the nested ``{layer: {"kernel", "bias"}}`` dict of its parameters:
HWIO convolution kernels become OIHW, ``(in, out)`` dense kernels become ``(out, in)``, and the
first dense layer of LeNet has its inputs reordered from jaxviz's NHWC flattening to torch's NCHW.

torchvision is not needed (nor installable here); Caffe's ceil-mode max pooling is
``nn.MaxPool2d(3, 2, ceil_mode=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from jaxviz.models.imagenet import CAFFE_BGR_MEAN
from jaxviz.models.squeezenet import FIRE_CHANNELS, POOL_AFTER  # one source for the architecture


def pure_params(model_or_params: Any) -> dict:
    """A jaxviz Model (or its NNX ``State`` params, or a plain dict) as nested dicts of numpy arrays."""
    params = getattr(model_or_params, "params", model_or_params)
    if not isinstance(params, dict):
        from flax import nnx

        params = nnx.to_pure_dict(params)

    def conv(tree):
        return {k: conv(v) for k, v in tree.items()} if isinstance(tree, Mapping) else np.asarray(tree, np.float32)

    return conv(params)


def _set_conv(conv: nn.Conv2d, p: Mapping[str, np.ndarray]) -> None:
    kernel = np.asarray(p["kernel"], np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
    if tuple(kernel.shape) != tuple(conv.weight.shape):
        raise ValueError(f"conv kernel of shape {kernel.shape} (OIHW) does not fit {tuple(conv.weight.shape)}")
    conv.weight.data.copy_(torch.from_numpy(np.array(kernel, np.float32, order="C")))
    conv.bias.data.copy_(torch.from_numpy(np.array(p["bias"], np.float32)))


def _set_linear(fc: nn.Linear, p: Mapping[str, np.ndarray], kernel: np.ndarray | None = None) -> None:
    w = np.asarray(p["kernel"] if kernel is None else kernel, np.float32).T  # (in, out) -> (out, in)
    if tuple(w.shape) != tuple(fc.weight.shape):
        raise ValueError(f"dense kernel of shape {w.shape} (out, in) does not fit {tuple(fc.weight.shape)}")
    fc.weight.data.copy_(torch.from_numpy(np.array(w, np.float32, order="C")))
    fc.bias.data.copy_(torch.from_numpy(np.array(p["bias"], np.float32)))


# -- SqueezeNet 1.1 ------------------------------------------------------------------------------
# Every activation is its own ``nn.ReLU`` module: Captum's GuidedBackprop and Deconvolution hook
# ReLU modules and would silently give the plain gradient through a functional ``F.relu``.
class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze1x1 = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.relu_squeeze, self.relu_expand1x1, self.relu_expand3x3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x):
        s = self.relu_squeeze(self.squeeze1x1(x))
        return torch.cat([self.relu_expand1x1(self.expand1x1(s)), self.relu_expand3x3(self.expand3x3(s))], dim=1)


class SqueezeNet11(nn.Module):
    """SqueezeNet 1.1 (Caffe layout) on NCHW RGB pixels in [0, 1]; Caffe BGR-mean preprocessing inside."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2)
        self.fires = nn.ModuleDict({n: Fire(*c) for n, c in FIRE_CHANNELS.items()})
        self.conv10 = nn.Conv2d(512, num_classes, 1)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.relu1, self.relu10 = nn.ReLU(), nn.ReLU()
        self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, x):
        return x.flip(1) * 255.0 - self.mean  # RGB [0, 1] -> BGR 0..255 minus the mean

    def forward(self, x):
        h = self.pool(self.relu1(self.conv1(self.preprocess(x))))
        for name, fire in self.fires.items():
            h = fire(h)
            if name in POOL_AFTER:
                h = self.pool(h)
        return self.relu10(self.conv10(h)).mean(dim=(2, 3))

    def load_jaxviz(self, params: Any) -> SqueezeNet11:
        """Copy the parameters of ``jaxviz.models.squeezenet()`` (Model, State or pure dict)."""
        p = pure_params(params)
        _set_conv(self.conv1, p["conv1"])
        _set_conv(self.conv10, p["conv10"])
        for name, fire in self.fires.items():
            for part in ("squeeze1x1", "expand1x1", "expand3x3"):
                _set_conv(getattr(fire, part), p["fires"][name][part])
        return self


# -- LeNet-5 ---------------------------------------------------------------------------------------
class LeNet(nn.Module):
    """LeNet-5 as in ``jaxviz.models.zoo.LeNet`` (ReLU, 2x2 max pooling) on NCHW pixels."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        pad = 2 if image_size == 28 else 0
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = F.relu(self.fc1(h.flatten(1)))
        h = F.relu(self.fc2(h))
        return self.fc3(h)

    def load_jaxviz(self, params: Any) -> LeNet:
        """Copy the parameters of ``jaxviz.models.lenet()`` (Model, State or pure dict)."""
        p = pure_params(params)
        _set_conv(self.conv1, p["conv1"])
        _set_conv(self.conv2, p["conv2"])
        # jaxviz flattens (5, 5, 16) NHWC maps, torch (16, 5, 5): reorder fc1's input rows.
        k = np.asarray(p["fc1"]["kernel"], np.float32)
        k = k.reshape(5, 5, 16, -1).transpose(2, 0, 1, 3).reshape(400, -1)
        _set_linear(self.fc1, p["fc1"], kernel=k)
        _set_linear(self.fc2, p["fc2"])
        _set_linear(self.fc3, p["fc3"])
        return self


# -- ConvNet (dataset condensation) ------------------------------------------------------------------
class ConvNet(nn.Module):
    """The 3-block ConvNet of ``jaxviz.models.zoo.ConvNet`` (conv 3x3, instance norm, ReLU, 2x2 avg pool)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32, width: int = 128, depth: int = 3):
        super().__init__()
        self.convs, self.norms, c, size = nn.ModuleList(), nn.ModuleList(), in_channels, image_size
        for _ in range(depth):
            self.convs.append(nn.Conv2d(c, width, 3, padding=1))
            self.norms.append(nn.InstanceNorm2d(width, affine=True, eps=1e-5))
            c, size = width, size // 2
        self.side, self.width = size, width
        self.fc = nn.Linear(width * size * size, num_classes)

    def forward(self, x):
        for conv, norm in zip(self.convs, self.norms):
            x = F.avg_pool2d(F.relu(norm(conv(x))), 2)
        return self.fc(x.flatten(1))

    def load_jaxviz(self, params: Any) -> ConvNet:
        """Copy the parameters of ``jaxviz.models.convnet()`` (Model, State or pure dict)."""
        p = pure_params(params)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            _set_conv(conv, p["convs"][i])
            norm.weight.data.copy_(torch.from_numpy(np.array(p["norms"][i]["scale"], np.float32)))
            norm.bias.data.copy_(torch.from_numpy(np.array(p["norms"][i]["bias"], np.float32)))
        k = np.asarray(p["fc"]["kernel"], np.float32)  # HWC flatten (jaxviz) -> CHW (torch)
        k = k.reshape(self.side, self.side, self.width, -1).transpose(2, 0, 1, 3).reshape(k.shape[0], -1)
        _set_linear(self.fc, p["fc"], kernel=k)
        return self


# -- Johnson et al.'s transformer network (jaxviz.generate.fast_style) ------------------------------
class ReflectConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__()
        self.pad, self.conv = nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride)

    def forward(self, x):
        return self.conv(self.pad(x))


def _set_norm(norm: nn.InstanceNorm2d, p: Mapping[str, np.ndarray]) -> None:
    norm.weight.data.copy_(torch.from_numpy(np.array(p["scale"], np.float32)))
    norm.bias.data.copy_(torch.from_numpy(np.array(p["bias"], np.float32)))


class Transformer(nn.Module):
    """``jaxviz.generate.fast_style.TransformerNet`` with instance norm and resize-convolution, NCHW."""

    def __init__(self, width: int = 32, blocks: int = 5):
        super().__init__()
        w = width
        self.down = nn.ModuleList([ReflectConv(3, w, 9), ReflectConv(w, 2 * w, 3, 2), ReflectConv(2 * w, 4 * w, 3, 2)])
        self.down_norms = nn.ModuleList([nn.InstanceNorm2d(c, affine=True) for c in (w, 2 * w, 4 * w)])
        self.blocks = nn.ModuleList([nn.ModuleList([ReflectConv(4 * w, 4 * w, 3), nn.InstanceNorm2d(4 * w, affine=True),
                                                    ReflectConv(4 * w, 4 * w, 3), nn.InstanceNorm2d(4 * w, affine=True)])
                                     for _ in range(blocks)])
        self.up = nn.ModuleList([ReflectConv(4 * w, 2 * w, 3), ReflectConv(2 * w, w, 3)])
        self.up_norms = nn.ModuleList([nn.InstanceNorm2d(c, affine=True) for c in (2 * w, w)])
        self.out = ReflectConv(w, 3, 9)

    def forward(self, x):
        h = x - 0.5
        for conv, norm in zip(self.down, self.down_norms):
            h = F.relu(norm(conv(h)))
        for c1, n1, c2, n2 in self.blocks:
            h = h + n2(c2(F.relu(n1(c1(h)))))
        for conv, norm in zip(self.up, self.up_norms):
            h = F.relu(norm(conv(F.interpolate(h, scale_factor=2, mode="nearest"))))
        return torch.sigmoid(self.out(h))

    def load_jaxviz(self, p: Mapping) -> Transformer:
        for i, conv in enumerate(self.down):
            _set_conv(conv.conv, p["down"][i]["conv"])
            _set_norm(self.down_norms[i], p["down_norms"][i])
        for i, (c1, n1, c2, n2) in enumerate(self.blocks):
            b = p["blocks"][i]
            _set_conv(c1.conv, b["conv1"]["conv"])
            _set_conv(c2.conv, b["conv2"]["conv"])
            _set_norm(n1, b["norm1"])
            _set_norm(n2, b["norm2"])
        for i, conv in enumerate(self.up):
            _set_conv(conv.conv, p["up"][i]["conv"]["conv"])
            _set_norm(self.up_norms[i], p["up_norms"][i])
        _set_conv(self.out.conv, p["out"]["conv"])
        return self


def transformer_from_jaxviz(fast: Any) -> Transformer:
    """A torch transformer network with the weights of a ``jaxviz.generate.FastStyle`` (instance norm, resize)."""
    cfg = fast.config
    if cfg.norm != "instance" or cfg.upsampling != "resize":
        raise ValueError(f"the peer is built for instance norm and resize-convolution; got {cfg.norm}, {cfg.upsampling}")
    return Transformer(cfg.width, cfg.residual_blocks).load_jaxviz(pure_params(fast.params))


def convnet_from_jaxviz(model: Any) -> ConvNet:
    """A torch ConvNet with the weights of jaxviz ``model`` (a ``convnet()``)."""
    p = pure_params(model)
    cin, width = p["convs"][0]["kernel"].shape[2:]
    size = model.input_shape[0] if getattr(model, "input_shape", None) else 32
    return ConvNet(cin, p["fc"]["bias"].shape[0], size, width, len(p["convs"])).load_jaxviz(p)


def squeezenet_from_jaxviz(model: Any) -> SqueezeNet11:
    """A torch SqueezeNet 1.1 in eval mode with the weights of jaxviz ``model``."""
    p = pure_params(model)
    return SqueezeNet11(num_classes=p["conv10"]["bias"].shape[0]).load_jaxviz(p).eval()


def lenet_from_jaxviz(model: Any) -> LeNet:
    """A torch LeNet-5 with the weights of jaxviz ``model`` (a ``lenet()`` of 28x28 or 32x32 inputs)."""
    p = pure_params(model)
    cin = p["conv1"]["kernel"].shape[2]
    shape = getattr(model, "input_shape", None)
    size = shape[0] if shape else 28
    return LeNet(cin, p["fc3"]["bias"].shape[0], size).load_jaxviz(p)


def peer_tensor(a: Any) -> torch.Tensor:
    """A writable torch copy of the array ``a`` (numpy or JAX) on torch's default device (the peer's)."""
    return torch.from_numpy(np.array(a, order="C")).to(torch.get_default_device())


def nhwc_to_nchw(x: Any) -> torch.Tensor:
    """A contiguous float32 NCHW torch tensor from an NHWC array (numpy or JAX), on the peer's device."""
    return peer_tensor(np.asarray(x, np.float32).transpose(0, 3, 1, 2))
