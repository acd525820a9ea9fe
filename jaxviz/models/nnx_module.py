"""Turn a flax NNX module into a :class:`Model`: parameters apart from other state, evaluation and
training modes, and an ``init`` from a build function or from the module's own initialisers."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

from jaxviz.models.contract import Model, Taps, identity, layer_order

# Parameter attribute -> the attribute holding its initialiser, as flax's layers name them.
INITIALISERS = {"kernel": "kernel_init", "bias": "bias_init", "scale": "scale_init", "embedding": "embedding_init"}


def split(module: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
    """``(graphdef, params, state)``: trainable ``nnx.Param`` leaves apart from every other variable."""
    return nnx.split(module, nnx.Param, ...)


def _own_initialisers(graphdef, params, rest) -> Callable[[jax.Array], nnx.State] | None:
    """``init(key) -> params`` redrawing every parameter with its layer's initialiser, or ``None`` if
    some parameter has no known initialiser (then a ``build`` function is needed)."""
    module = nnx.merge(graphdef, params, rest)
    found = set()
    for path, sub in nnx.iter_modules(module):
        for attr, fn in INITIALISERS.items():
            if isinstance(getattr(sub, attr, None), nnx.Param) and callable(getattr(sub, fn, None)):
                found.add((*path, attr))
    if {path for path, _ in nnx.to_flat_state(params)} - found:
        return None

    def init(key):
        m = nnx.merge(graphdef, params, rest)
        for path, sub in nnx.iter_modules(m):
            for attr, fn in INITIALISERS.items():
                var = getattr(sub, attr, None)
                if isinstance(var, nnx.Param) and callable(getattr(sub, fn, None)):
                    key, k = jax.random.split(key)
                    var.set_value(getattr(sub, fn)(k, var.get_value().shape, var.get_value().dtype))
        return split(m)[1]

    return init


def _rng_tags(state) -> set[str]:
    return {v.tag for _, v in nnx.to_flat_state(state) if isinstance(v, nnx.RngKey)}


def nnx_model(
    module: nnx.Module,
    call: Callable[[nnx.Module, jax.Array, Taps], jax.Array],
    *,
    name: str,
    input_shape: tuple[int, int, int],
    class_names: tuple[str, ...] | None = None,
    preprocess: Callable = identity,
    deprocess: Callable = identity,
    build: Callable[[jax.Array], nnx.Module] | None = None,
    resizable: bool = False,
    head: bool = True,
) -> Model:
    """Wrap an NNX module in the contract; ``call(module, x, taps) -> out`` runs it on network input.

    ``build(key) -> module`` gives ``Model.init``; without it, parameters are redrawn with each layer's
    own initialiser (``kernel_init``, ``bias_init``, ...) when every parameter has one.
    Batch-norm statistics and RNG counters become ``Model.state``; the evaluation forward uses running
    averages and no dropout, ``forward_train`` batch statistics and dropout reseeded from its key.
    """
    graphdef, params, rest = split(module)
    stateful = bool(jax.tree.leaves(rest))
    tags = _rng_tags(rest)

    def forward(params, x, deltas, state=None):
        m = nnx.merge(graphdef, params, rest if state is None else state)
        m.eval()
        taps = Taps(deltas)
        return call(m, preprocess(x), taps), taps.acts

    def forward_train(params, state, x, key):
        m = nnx.merge(graphdef, params, state)
        m.train()
        if key is not None and tags:
            nnx.reseed(m, **{tag: jax.random.fold_in(key, i) for i, tag in enumerate(sorted(tags))})
        out = call(m, preprocess(x), Taps())
        return out, split(m)[2]

    init = (lambda key: split(build(key))[1]) if build is not None else _own_initialisers(graphdef, params, rest)
    state = rest if stateful else None
    return Model(
        params=params,
        forward=forward,
        layers=layer_order(forward, params, input_shape, state),
        input_shape=tuple(input_shape),
        class_names=class_names,
        name=name,
        preprocess=preprocess,
        deprocess=deprocess,
        init=init,
        resizable=resizable,
        head=head,
        state=state,
        forward_train=forward_train if stateful else None,
    )


def model_from_module(module: nnx.Module, **kwargs) -> Model:
    """Wrap a tap-aware NNX module (``module(x, taps) -> logits``, as the zoo's) with :func:`nnx_model`."""
    return nnx_model(module, lambda m, x, taps: m(x, taps), **kwargs)
