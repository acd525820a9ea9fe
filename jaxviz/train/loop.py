"""One resumable training loop for every long run in jaxviz: classifiers, generators, feature
visualisation and dataset distillation all drive their compiled step through :func:`run_loop`.

The loop owns what every long run needs and nothing model-specific: a compiled step, batches that are
a pure function of the global step (so a resumed run sees exactly the batches an uninterrupted one
would, and ends bit-identical), orbax checkpoints every N steps or seconds, at the end and on
Ctrl-C (with the metrics so far, so a resumed run returns the whole run's history), a tqdm bar with
live metrics, and a NaN guard: a metric that stops being finite ends the run
with :class:`~jaxviz.errors.TrainingDivergedError` before anything after the last good checkpoint is
saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxviz.errors import TrainingDivergedError
from jaxviz.train.checkpoints import Checkpointer

Step = Callable[[Any, Any], tuple[Any, Mapping[str, jax.Array]]]


class LoopResult(NamedTuple):
    state: Any  # the final state pytree
    step: int  # the global step reached
    history: dict[str, np.ndarray]  # each metric, one value per step from ``first_step`` to ``step``
    first_step: int  # where ``history`` starts: 0, or the step resumed from a checkpoint that holds no metrics
    resumed_from: int | None  # the checkpoint step restored, if any
    seconds: float  # wall time of this call
    monitored: dict[str, np.ndarray] | None = None  # ``monitor``'s values and their global ``step``, from ``first_step`` on


def run_loop(
    step: Step,
    state: Any,
    batches: Callable[[int], Any],
    *,
    steps: int,
    checkpointer: Checkpointer | None = None,
    meta: Mapping[str, Any] | None = None,
    expect: Mapping[str, Any] | None = None,
    desc: str = "train",
    progress: bool = True,
    checkpoint_every: int = 0,
    checkpoint_seconds: float = 30.0,
    stop_after_steps: int | None = None,
    log_every: int = 10,
    monitor: Callable[[int, Any], Mapping[str, float]] | None = None,
    monitor_every: int = 0,
) -> LoopResult:
    """Run ``state, metrics = step(state, batches(i))`` for global steps ``i`` up to ``steps``.

    Args:
      step: a pure function ``(state, batch) -> (state, {name: scalar})``; it is compiled once here.
      state: the initial state pytree (parameters, optimiser state, anything else), also the template
        a checkpoint is restored onto.
      batches: ``i -> batch`` for global step ``i``; make it a pure function of ``i`` (seeded
        shuffles) so a resumed run is bit-identical to an uninterrupted one.
      steps: the total number of steps of the run.
      checkpointer: where checkpoints go; if it holds one, the run resumes from it, metrics and
        monitored values of the steps before included. ``None``: no checkpoints (short runs such as
        a feature-visualisation render).
      meta: JSON written beside each checkpoint; ``expect``: keys a restored checkpoint's meta must match.
      checkpoint_every: steps between checkpoints; 0 = every ``checkpoint_seconds`` of wall time.
      stop_after_steps: end early at this global step (checkpointed), e.g. to test resuming.
      log_every: steps between host reads of the metrics (progress bar and the NaN guard).
      monitor: ``(global step, state) -> {name: float}``, called every ``monitor_every`` steps and
        at the end (e.g. held-out accuracy); shown on the progress bar and returned in
        ``LoopResult.monitored``.

    Raises:
      TrainingDivergedError: a metric became NaN or infinite; the state of that step is not saved.
    """
    compiled = jax.jit(step)
    meta = dict(meta or {})
    start = resumed_from = None
    saved: dict[str, Any] = {}
    if checkpointer is not None and checkpointer.latest_step() is not None:
        state, saved = checkpointer.restore(state, expect=expect)
        start = resumed_from = checkpointer.latest_step()
    start = start or 0
    end = steps if stop_after_steps is None else min(steps, stop_after_steps)
    # Metrics of the steps before a resume come back from the checkpoint's meta (older checkpoints hold none).
    first_step = saved.get("history_start", start)
    history: dict[str, list[float]] = saved.get("history", {})  # metric -> one value per step from first_step
    watched: list[dict[str, float]] = list(saved.get("monitored", []))
    pending: list[tuple[int, Mapping[str, jax.Array]]] = []
    last_saved = resumed_from

    def drain() -> None:
        """Bring the metrics of finished steps to the host and stop at the first non-finite one."""
        for i, metrics in pending:
            values = {k: float(v) for k, v in metrics.items()}
            bad = [k for k, v in values.items() if not np.isfinite(v)]
            if bad:
                kept = f"the last good checkpoint (step {last_saved}) is kept in {checkpointer.directory}" if (
                    checkpointer is not None and last_saved is not None) else "no checkpoint was written"
                raise TrainingDivergedError(
                    f"{desc}: {bad[0]} became {values[bad[0]]} at step {i + 1}; {kept}. "
                    "Lower the learning rate or check the data for NaNs.")
            for k, v in values.items():
                history.setdefault(k, []).append(v)
        pending.clear()

    def save(i: int) -> None:
        nonlocal last_saved
        drain()
        if checkpointer is not None:
            checkpointer.save(i, state, {**meta, "history_start": first_step, "history": history, "monitored": watched})
            last_saved = i

    t0 = last_save_time = time.perf_counter()
    i = start
    bar = tqdm(total=steps, initial=start, desc=desc, disable=not progress, unit="step")
    try:
        while i < end:
            state, metrics = compiled(state, batches(i))
            pending.append((i, metrics))
            i += 1
            bar.update(1)
            if monitor is not None and (i == end or (monitor_every and i % monitor_every == 0)):
                drain()  # measured before a checkpoint at the same step, which then keeps the measurement
                watched.append({"step": i, **{k: float(v) for k, v in monitor(i, state).items()}})
            due = (i % checkpoint_every == 0) if checkpoint_every else time.perf_counter() - last_save_time >= checkpoint_seconds
            if i == end or due:
                save(i)
                last_save_time = time.perf_counter()
            elif len(pending) >= log_every:
                drain()
            if history and not pending:
                shown = {k: v[-1] for k, v in history.items()}
                shown.update({k: v for k, v in (watched[-1] if watched else {}).items() if k != "step"})
                bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
        drain()
    except KeyboardInterrupt:
        if i > start and last_saved != i:
            save(i)
        raise
    finally:
        bar.close()
    monitored = {k: np.asarray([w[k] for w in watched]) for k in watched[0]} if watched else None
    return LoopResult(state, i, {k: np.asarray(v) for k, v in history.items()}, first_step, resumed_from,
                      time.perf_counter() - t0, monitored)
