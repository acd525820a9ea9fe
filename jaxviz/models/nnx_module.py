"""Turn a flax NNX module into a :class:`Model`: parameters apart from other state, evaluation and
training modes, and an ``init`` from a build function or from flax's default initialisers."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

from jaxviz.models.contract import Model, Taps, identity, layer_order

_DENSE = {"kernel": nnx.initializers.lecun_normal(), "bias": nnx.initializers.zeros_init()}
_NORM = {"scale": nnx.initializers.ones_init(), "bias": nnx.initializers.zeros_init()}
# flax's default initialiser of each parameter of its standard layers (the layers do not keep theirs).
DEFAULT_INITIALISERS = {
    nnx.Linear: _DENSE, nnx.Conv: _DENSE, nnx.ConvTranspose: _DENSE,
    nnx.Embed: {"embedding": nnx.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)},
    nnx.BatchNorm: _NORM, nnx.LayerNorm: _NORM, nnx.GroupNorm: _NORM, nnx.RMSNorm: {"scale": nnx.initializers.ones_init()},
}


def _initialisers(module: nnx.Module):
    """``(path, parameter, initialiser)`` for every parameter of a standard flax layer in ``module``."""
    for path, sub in nnx.iter_modules(module):
        for attr, fn in DEFAULT_INITIALISERS.get(type(sub), {}).items():
            var = getattr(sub, attr, None)
            if isinstance(var, nnx.Param):
                yield (*path, attr), var, fn


def split(module: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
    """``(graphdef, params, state)``: trainable ``nnx.Param`` leaves apart from every other variable."""
    return nnx.split(module, nnx.Param, ...)


def _default_initialisers(graphdef, params, rest) -> Callable[[jax.Array], nnx.State] | None:
    """``init(key) -> params`` redrawing every parameter with flax's default initialiser for its layer
    (LeCun normal kernels, zero biases, unit scales), or ``None`` if some parameter belongs to another
    kind of layer (then a ``build`` function is needed)."""
    found = {path for path, _, _ in _initialisers(nnx.merge(graphdef, params, rest, copy=True))}
    if {path for path, _ in nnx.to_flat_state(params)} - found:
        return None

    def init(key):
        m = nnx.merge(graphdef, params, rest, copy=True)
        for _, var, fn in _initialisers(m):
            key, k = jax.random.split(key)
            var.set_value(fn(k, var.get_value().shape, var.get_value().dtype))
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
    train_call: Callable[[nnx.Module, jax.Array], jax.Array] | None = None,
) -> Model:
    """Wrap an NNX module in the contract; ``call(module, x, taps) -> out`` runs it on network input
    (``train_call(module, x)``, if given, in training mode, where no layer is tapped).

    ``build(key) -> module`` gives ``Model.init``; without it, parameters are redrawn with flax's default
    initialisers for their layers (see :data:`DEFAULT_INITIALISERS`) when every parameter belongs to a
    standard flax layer; a module initialised otherwise should pass ``build``.
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
        m = nnx.merge(graphdef, params, state, copy=True)
        m.train()
        if key is not None and tags:
            nnx.reseed(m, **{tag: jax.random.fold_in(key, i) for i, tag in enumerate(sorted(tags))})
        out = call(m, preprocess(x), Taps()) if train_call is None else train_call(m, preprocess(x))
        return out, split(m)[2]

    init = (lambda key: split(build(key))[1]) if build is not None else _default_initialisers(graphdef, params, rest)
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
