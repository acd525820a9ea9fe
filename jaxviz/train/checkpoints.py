"""Resumable checkpoints (orbax) and the cache directory shared by every long run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxviz.errors import CheckpointError


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$JAXVIZ_CACHE``, else ``~/.cache/jaxviz``; created if missing."""
    root = Path(path or os.environ.get("JAXVIZ_CACHE") or Path.home() / ".cache" / "jaxviz").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def run_id(**fields: Any) -> str:
    """A short stable name for a run from its defining fields (model, data set, config)."""
    blob = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _host(x) -> np.ndarray:
    """A leaf as a NumPy array; typed PRNG keys (RNG state of dropout layers) as their key data."""
    return np.asarray(jax.random.key_data(x)) if _is_key(x) else np.asarray(x)


def _rewrap(value, template):
    return jax.random.wrap_key_data(value, impl=jax.random.key_impl(template)) if _is_key(template) else value


def _signature(tree) -> list[list]:
    return [[list(np.shape(x)), str(np.asarray(x).dtype) if not hasattr(x, "dtype") else str(x.dtype)] for x in jax.tree.leaves(tree)]


class Checkpointer:
    """Saves and restores a pytree ``state`` with a JSON ``meta`` under ``directory``.

    The pytree is stored as its flat list of leaves and rebuilt on the structure of a template, so
    any pytree (NNX ``State``, optax states) round-trips; a checkpoint whose leaves do not match the
    template (another model, another optimiser) raises :class:`CheckpointError`.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        leaves = {f"{i:05d}": _host(x) for i, x in enumerate(jax.tree.leaves(state))}
        meta = dict(meta, signature=_signature(state))
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(leaves), meta=ocp.args.JsonSave(meta)), force=True)
        self._manager.wait_until_finished()

    def read_meta(self, step: int) -> dict:
        """The JSON written beside the checkpoint at ``step``."""
        try:
            return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:
            raise CheckpointError(f"cannot read checkpoint {self.directory}/{step}: {e}") from None

    def restore(self, template, step: int | None = None, expect: dict | None = None):
        """Restore ``(state, meta)`` shaped like ``template``; ``expect`` keys must match ``meta``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        meta = self.read_meta(step)
        for key, value in (expect or {}).items():
            if meta.get(key) != value:
                raise CheckpointError(
                    f"checkpoint {self.directory} was written for {key}={meta.get(key)!r}, not {value!r}; "
                    "use another --cache-dir or delete that folder"
                )
        if meta.get("signature") != _signature(template):
            raise CheckpointError(f"checkpoint {self.directory} holds parameters of another shape than {expect or 'this model'}; delete it or use another --cache-dir")
        leaves, treedef = jax.tree.flatten(template)
        abstract = {f"{i:05d}": np.zeros_like(_host(x)) for i, x in enumerate(leaves)}
        restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
        values = [_rewrap(restored[k], x) for k, x in zip(sorted(restored), leaves)]
        return jax.tree.unflatten(treedef, values), meta

    def close(self) -> None:
        self._manager.close()


@contextlib.contextmanager
def latest_checkpoint(directory: str | os.PathLike, hint: str) -> Iterator[tuple[Checkpointer, int, dict]]:
    """``(checkpointer, step, meta)`` of the newest checkpoint in ``directory``, closed on exit.

    Raises :class:`CheckpointError`, ending with ``hint`` (how to make one), when the folder is
    missing or holds no checkpoint.
    """
    path = Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {path}; {hint}")
    checkpointer = Checkpointer(path)
    try:
        step = checkpointer.latest_step()
        if step is None:
            raise CheckpointError(f"{path} holds no checkpoint; {hint}")
        yield checkpointer, step, checkpointer.read_meta(step)
    finally:
        checkpointer.close()
