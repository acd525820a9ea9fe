"""Safe readers for weight files (restricted pickles, shape checks that name the layer) and random redraws of a model's weights."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import WeightsError

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dtypes, lists, tuples, dicts and scalars; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise WeightsError(f"refusing to load {module}.{name}: a weight pickle may only hold numpy arrays, lists and dicts")


def load_array_pickle(path: str | os.PathLike) -> object:
    """Unpickle ``path`` admitting only numpy arrays and plain containers (no code execution)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weight file not found: {path}")
    try:
        with path.open("rb") as f:
            return _ArraysOnlyUnpickler(f, encoding="latin1").load()
    except WeightsError as e:
        raise WeightsError(f"{path}: {e}") from None
    except Exception as e:  # truncated or corrupt pickles raise many types
        raise WeightsError(f"{path} is not a readable weight pickle ({type(e).__name__}: {e}); re-install or re-download it") from None


def check_shape(layer: str, expected: tuple[int, ...], found: object, source: str) -> np.ndarray:
    """Return ``found`` as float32 array or raise naming the layer, the expected and found shapes."""
    arr = np.asarray(found)
    if arr.dtype.kind not in "fiu":
        raise WeightsError(f"{source}: layer {layer!r} holds {arr.dtype} data, expected floating-point weights")
    if tuple(arr.shape) != tuple(expected):
        raise WeightsError(f"{source}: layer {layer!r} expected shape {tuple(expected)}, found {tuple(arr.shape)}")
    return arr.astype(np.float32)


def require_keys(weights: Mapping, keys, source: str) -> None:
    """Raise listing the missing layer names if ``weights`` lacks any of ``keys``."""
    missing = [k for k in keys if k not in weights]
    if missing:
        raise WeightsError(f"{source} lacks layer(s) {', '.join(missing)}; is it a file for another architecture?")


def random_weights(model, key: jax.Array):
    """The same architecture with random filters: the untrained baseline of filter pictures (Krizhevsky
    et al. 2012), of texture synthesis (Gatys et al. 2015, Fig. 2) and of sanity checks.

    Every kernel (array of rank >= 2) is drawn from He et al.'s normal (variance ``2 / fan_in``, fan-in =
    all axes but the last; numpy, seeded by ``key``, so no initialiser is compiled per shape) and every
    bias is zero, whatever initialiser the model itself would use.
    """
    leaves, tree = jax.tree.flatten(model.params)
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    rng = np.random.default_rng(np.asarray(data).ravel().tolist())  # on the host: no compile per shape
    new = []
    for leaf in leaves:
        shape, dtype = np.shape(leaf), np.asarray(leaf).dtype
        if len(shape) >= 2:
            fan_in = max(1, int(np.prod(shape[:-1])))
            new.append(jnp.asarray((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)))
        else:
            new.append(jnp.zeros(shape, dtype))
    return model.replace(params=jax.tree.unflatten(tree, new), name=model.name + "_random")
