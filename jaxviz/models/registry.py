"""Zoo models by name, as the command line and the tour ask for them."""

from __future__ import annotations

from collections.abc import Sequence

from jaxviz.errors import JaxvizError
from jaxviz.models.contract import Model
from jaxviz.models.squeezenet import squeezenet
from jaxviz.models.vgg import load_hed_vgg16
from jaxviz.models.zoo import convnet, lenet

TRAINABLE = {"lenet": lenet, "convnet": convnet}
PRETRAINED = {"squeezenet": squeezenet, "vgg16_hed": load_hed_vgg16}
MODELS = tuple(TRAINABLE) + tuple(PRETRAINED)


def get_model(name: str, input_shape: Sequence[int] | None = None, class_names: Sequence[str] | None = None) -> Model:
    """A zoo model by name: trainable ones get fresh weights for ``input_shape`` and ``class_names``."""
    if name in PRETRAINED:
        return PRETRAINED[name]()
    if name not in TRAINABLE:
        raise JaxvizError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    kwargs = {} if input_shape is None else {"input_shape": tuple(input_shape)}
    return TRAINABLE[name](**kwargs, class_names=class_names)
