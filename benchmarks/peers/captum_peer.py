"""The Captum peer of the attribution benchmark: plain-torch SqueezeNet 1.1 with ``nn.ReLU`` modules.

Captum's ``GuidedBackprop`` and ``Deconvolution`` override the backward pass of ``nn.ReLU``
*modules* through hooks; a functional ``F.relu`` (as in :mod:`benchmarks.peers.torch_models`) is
invisible to them and would silently give the plain gradient. This subclass computes exactly the
same function with one ``nn.ReLU`` instance per activation, and loads the jaxviz weights the same way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmarks.peers.torch_models import (
    FIRE_CHANNELS,
    POOL_AFTER,
    Fire,
    SqueezeNet11,
    pure_params,
)


class ReluFire(Fire):
    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__(cin, squeeze, expand)
        self.relu_squeeze = nn.ReLU()
        self.relu_expand1x1 = nn.ReLU()
        self.relu_expand3x3 = nn.ReLU()

    def forward(self, x):
        s = self.relu_squeeze(self.squeeze1x1(x))
        return torch.cat(
            [
                self.relu_expand1x1(self.expand1x1(s)),
                self.relu_expand3x3(self.expand3x3(s)),
            ],
            dim=1,
        )


class CaptumSqueezeNet(SqueezeNet11):
    """:class:`SqueezeNet11` with ``nn.ReLU`` modules; ``self.fires["fire9"]`` is the Grad-CAM layer."""

    def __init__(self, num_classes: int = 1000):
        super().__init__(num_classes)
        self.fires = nn.ModuleDict({n: ReluFire(*c) for n, c in FIRE_CHANNELS.items()})
        self.relu1 = nn.ReLU()
        self.relu10 = nn.ReLU()

    def forward(self, x):
        h = self.pool(self.relu1(self.conv1(self.preprocess(x))))
        for name, fire in self.fires.items():
            h = fire(h)
            if name in POOL_AFTER:
                h = self.pool(h)
        return self.relu10(self.conv10(h)).mean(dim=(2, 3))


def captum_squeezenet_from_jaxviz(model: Any) -> CaptumSqueezeNet:
    """A :class:`CaptumSqueezeNet` in eval mode with the weights of jaxviz ``model``; parameters frozen
    (attributions need input gradients only)."""
    p = pure_params(model)
    net = (
        CaptumSqueezeNet(num_classes=p["conv10"]["bias"].shape[0]).load_jaxviz(p).eval()
    )
    return net.requires_grad_(False)
