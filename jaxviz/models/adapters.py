"""Adapters that bring a user's network into the model contract.

* :func:`from_nnx` -- any flax NNX module; named submodules become probe layers.
* :func:`from_linen` -- a flax Linen module plus its variables, through ``nn.intercept_methods``.
* :func:`from_functions` -- a plain split ``features(x) -> A``, ``head(A) -> logits``.
* :func:`from_function` -- a plain ``f(x) -> logits`` (input-gradient methods only).

In each case ``acts[name]`` is the layer output plus ``deltas[name]``, so layer gradients are
gradients with respect to the delta at zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxviz.errors import JaxvizError, UnknownLayerError
from jaxviz.models.contract import Model, Taps, identity, layer_order
from jaxviz.models.nnx_module import nnx_model


def _submodule_paths(module: nnx.Module) -> dict[str, tuple]:
    return {"/".join(map(str, path)): path for path, _ in nnx.iter_modules(module) if path}


def _leaf_paths(paths: dict[str, tuple]) -> list[str]:
    """Submodules that hold no further submodules (convolutions, dense layers, norms)."""
    return [p for p in paths if not any(q.startswith(p + "/") for q in paths)]


class _Tapped:
    """Stands in for a submodule during one forward pass, sending its output through ``taps``."""

    def __init__(self, inner: Callable, name: str, taps: Taps):
        self.inner, self.name, self.taps = inner, name, taps

    def __call__(self, *args, **kwargs):
        return self.taps(self.name, self.inner(*args, **kwargs))


def from_nnx(
    module: nnx.Module,
    input_shape: Sequence[int],
    *,
    layers: Sequence[str] | None = None,
    name: str | None = None,
    class_names: Sequence[str] | None = None,
    preprocess: Callable = identity,
    deprocess: Callable = identity,
    resizable: bool = False,
    head: bool = True,
    build: Callable[[jax.Array], nnx.Module] | None = None,
) -> Model:
    """Wrap an NNX module ``module(x) -> logits``; submodules named by path (``"block1/conv"``) are layers.

    ``layers`` defaults to every leaf submodule (those holding no further submodules). ``Model.params``
    holds the module's ``nnx.Param`` leaves and ``Model.state`` everything else (batch-norm statistics,
    RNG counters); ``model.apply_train`` runs it in training mode. ``Model.init(key)`` builds fresh
    parameters with ``build(key) -> module`` when given, else with flax's default initialisers of its
    layers (pass ``build`` if the module chose other initialisers), so
    ``jax.vmap(model.init)(keys)`` samples initialisations. ``head=False`` marks a feature extractor.

    Example:
      >>> model = from_nnx(MyNet(rngs=nnx.Rngs(0)), (28, 28, 1), build=lambda k: MyNet(rngs=nnx.Rngs(k)))
    """
    paths = _submodule_paths(module)
    if layers is None:
        layers = _leaf_paths(paths)
    unknown = [n for n in layers if n not in paths]
    if unknown:
        raise UnknownLayerError(f"{type(module).__name__} has no submodule {', '.join(map(repr, unknown))}; valid: {', '.join(paths)}")
    layers = tuple(layers)

    def call(m, x, taps):
        for layer in layers:
            *parent_path, attr = paths[layer]
            parent = m
            for p in parent_path:
                parent = parent[p] if isinstance(p, int) else getattr(parent, p)
            child = parent[attr] if isinstance(attr, int) else getattr(parent, attr)
            wrapped = _Tapped(child, layer, taps)
            if isinstance(attr, int):
                parent[attr] = wrapped
            else:
                object.__setattr__(parent, attr, wrapped)
        return m(x)

    return nnx_model(module, call, name=name or type(module).__name__.lower(), input_shape=tuple(input_shape),
                     class_names=None if class_names is None else tuple(class_names), preprocess=preprocess,
                     deprocess=deprocess, build=build, resizable=resizable, head=head, train_call=lambda m, x: m(x))


def from_linen(
    module,
    variables,
    input_shape: Sequence[int],
    *,
    layers: Sequence[str] | None = None,
    name: str | None = None,
    class_names: Sequence[str] | None = None,
    preprocess: Callable = identity,
    deprocess: Callable = identity,
    resizable: bool = False,
    head: bool = True,
    eval_kwargs: dict | None = None,
    train_kwargs: dict | None = None,
) -> Model:
    """Wrap a Linen module and its ``variables``; submodule outputs are layers, named by their
    path (``"Dense_0"``, ``"encoder/conv1"``). ``layers`` defaults to every submodule called.

    ``Model.params`` is ``variables["params"]``; other collections (``"batch_stats"``) are
    ``Model.state``. ``Model.init(key)`` is ``module.init(key, x)["params"]``. ``eval_kwargs`` /
    ``train_kwargs`` are passed to ``module.apply`` in evaluation / training mode (for example
    ``{"train": False}`` / ``{"train": True}``); in training mode the state collections are mutable
    and the key is the ``"dropout"`` RNG.
    """
    from flax import linen as nn

    wanted = None if layers is None else set(layers)
    variables = dict(variables)
    params = variables.pop("params", None)
    if params is None:
        raise JaxvizError(f"from_linen needs variables with a 'params' collection (module.init(key, x)); got {', '.join(variables) or 'none'}.")
    state = variables or None
    eval_kwargs, train_kwargs = dict(eval_kwargs or {}), dict(train_kwargs or {})

    def forward(params, x, deltas, state=None):
        taps = Taps(deltas)

        def interceptor(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            path = "/".join(context.module.path)
            if context.method_name != "__call__" or not path or (wanted is not None and path not in wanted):
                return out
            return taps(path, out)

        with nn.intercept_methods(interceptor):
            logits = module.apply({"params": params, **(state or {})}, preprocess(x), **eval_kwargs)
        return logits, taps.acts

    def forward_train(params, state, x, key):
        rngs = None if key is None else {"dropout": key}
        out, updates = module.apply({"params": params, **(state or {})}, preprocess(x), mutable=list(state or ()),
                                    rngs=rngs, **train_kwargs)
        return out, ({**state, **updates} if state else None)

    def init(key):
        x = jnp.zeros((1, *input_shape), jnp.float32)
        return module.init(key, preprocess(x), **eval_kwargs)["params"]

    found = layer_order(forward, params, input_shape, state)
    if wanted is not None and wanted - set(found):
        missing = sorted(wanted - set(found))
        raise UnknownLayerError(f"{type(module).__name__} has no submodule {', '.join(map(repr, missing))}; valid: {', '.join(found)}")
    return Model(params, forward, found, tuple(input_shape), None if class_names is None else tuple(class_names),
                 name or type(module).__name__.lower(), preprocess, deprocess, init, resizable, head, state,
                 forward_train if (state or train_kwargs) else None)


def from_functions(
    features: Callable[[jax.Array], jax.Array],
    head: Callable[[jax.Array], jax.Array],
    input_shape: Sequence[int] | None = None,
    *,
    layer: str = "features",
    name: str = "model",
    class_names: Sequence[str] | None = None,
    resizable: bool = True,
) -> Model:
    """A model split into ``features(x) -> A`` and ``head(A) -> logits``; ``A`` is layer ``layer``.

    The functions close over their own weights, so ``params`` is empty and there is no ``init``: use
    :func:`from_nnx`, :func:`from_linen` or a zoo model where explicit parameters are needed (dataset
    distillation, training).
    """

    def forward(params, x, deltas):
        taps = Taps(deltas)
        a = taps(layer, features(x))
        return head(a), taps.acts

    return Model({}, forward, (layer,), None if input_shape is None else tuple(input_shape),
                 None if class_names is None else tuple(class_names), name, resizable=resizable)


def from_function(
    f: Callable[[jax.Array], jax.Array],
    input_shape: Sequence[int] | None = None,
    *,
    name: str = "model",
    class_names: Sequence[str] | None = None,
) -> Model:
    """A plain ``f(x) -> logits``: enough for input-gradient methods, no probe layers."""

    def forward(params, x, deltas):
        return f(x), {}

    return Model({}, forward, (), None if input_shape is None else tuple(input_shape),
                 None if class_names is None else tuple(class_names), name, resizable=True)
