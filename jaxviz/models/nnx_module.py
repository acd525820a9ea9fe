"""Turn a flax NNX module whose ``__call__(x, taps)`` names its layers into a :class:`Model`."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

from jaxviz.models.contract import Model, Taps, _identity, layer_order


def model_from_module(
    module: nnx.Module,
    *,
    name: str,
    input_shape: tuple[int, int, int],
    class_names: tuple[str, ...] | None = None,
    preprocess: Callable = _identity,
    deprocess: Callable = _identity,
    build: Callable[[jax.Array], nnx.Module] | None = None,
    resizable: bool = False,
) -> Model:
    """Wrap a tap-aware NNX module (``module(x, taps) -> logits``) in the model contract.

    ``build(key) -> module`` (optional) gives ``Model.init``, so fresh parameters can be sampled
    with ``jax.vmap(model.init)(keys)``.
    """
    graphdef, params = nnx.split(module)

    def forward(params, x, deltas):
        taps = Taps(deltas)
        logits = nnx.merge(graphdef, params)(preprocess(x), taps)
        return logits, taps.acts

    init = None if build is None else (lambda key: nnx.split(build(key))[1])
    return Model(
        params=params,
        forward=forward,
        layers=layer_order(forward, params, input_shape),
        input_shape=tuple(input_shape),
        class_names=class_names,
        name=name,
        preprocess=preprocess,
        deprocess=deprocess,
        init=init,
        resizable=resizable,
    )
