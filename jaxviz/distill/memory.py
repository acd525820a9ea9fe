"""Will an outer step fit? XLA's compiled memory analysis against the memory a device has free.

Differentiating through ``epochs * steps`` unrolled inner steps keeps something of every step for the
backward pass (each step's parameters with :func:`jax.checkpoint`, every activation without), so a
long enough inner run does not fit. :func:`check_fits` compiles the outer step once, before the run,
reads XLA's buffer assignment (``compiled.memory_analysis()``: temporaries, arguments and outputs)
and compares it with what the device has free, so that a run that would die of an out-of-memory
error half-way through its first step stops at once with a message saying what to change instead.
The compilation is not wasted: ``jax.jit`` of the same step function with arguments of the same
shapes finds it in JAX's compilation cache, so :func:`~jaxviz.train.run_loop` starts without
compiling again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax

from jaxviz.errors import MemoryLimitError


class MemoryEstimate(NamedTuple):
    """Bytes one compiled outer step needs and the bytes free where it runs.

    Attributes:
      temp_bytes: XLA's temporary buffers (the saved residuals and activations of the unrolled run).
      argument_bytes: inputs (distilled set, optimiser state, real batch).
      output_bytes: outputs, less those aliased to (donated) inputs.
      per_device_bytes: ``temp + argument + output`` on one device.
      needed_bytes: what the step needs of the memory ``available_bytes`` counts: per device on an
        accelerator; on the CPU, where simulated devices share the host's memory, times the devices.
      available_bytes: free memory (``None``: the platform does not say; nothing is checked).
    """

    temp_bytes: int
    argument_bytes: int
    output_bytes: int
    per_device_bytes: int
    needed_bytes: int
    available_bytes: int | None

    @property
    def fits(self) -> bool:
        return self.available_bytes is None or self.needed_bytes <= self.available_bytes


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def host_available_bytes() -> int | None:
    """Memory a new allocation on the host can get: ``MemAvailable`` of ``/proc/meminfo``, capped by the
    cgroup (v2) limit of a container; ``psutil`` elsewhere; ``None`` if nothing says."""
    found = [n for n in (_meminfo_available(), _cgroup_available()) if n is not None]
    if not found:
        try:
            import psutil
        except ImportError:
            return None
        return int(psutil.virtual_memory().available)
    return min(found)


def available_bytes(device: jax.Device | None = None) -> int | None:
    """Free memory of ``device`` (default: the first device): ``bytes_limit - bytes_in_use`` of its
    allocator on an accelerator, the host's available memory on the CPU."""
    device = device or jax.devices()[0]
    if device.platform == "cpu":
        return host_available_bytes()
    stats = device.memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


def estimate(compiled: jax.stages.Compiled, devices: list[jax.Device] | None = None) -> MemoryEstimate | None:
    """The :class:`MemoryEstimate` of a compiled computation over ``devices`` (default: the first
    device); ``None`` if the backend has no memory analysis."""
    devices = devices or [jax.devices()[0]]
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, jax.errors.JaxRuntimeError):
        stats = None
    if stats is None:
        return None
    temp, arg = int(stats.temp_size_in_bytes), int(stats.argument_size_in_bytes)
    out = int(stats.output_size_in_bytes) - int(stats.alias_size_in_bytes)
    per_device = temp + arg + out
    local = [d for d in devices if d.process_index == jax.process_index()] or devices[:1]
    if local[0].platform == "cpu":
        needed, free = per_device * len(local), available_bytes(local[0])
    else:
        needed = per_device
        frees = [available_bytes(d) for d in local]
        free = None if any(f is None for f in frees) else min(frees)
    return MemoryEstimate(temp, arg, out, per_device, needed, free)


def check_fits(step: Any, state: Any, batch: Any, *, mesh: jax.sharding.Mesh | None = None, config: Any = None,
               what: str = "the outer step") -> MemoryEstimate | None:
    """Compile ``jax.jit(step)`` for ``(state, batch)`` and raise before running if it cannot fit.

    Args:
      step: the step function :func:`~jaxviz.train.run_loop` will compile (the same object, so that
        its ``jax.jit`` reuses this compilation).
      state, batch: its arguments (the initial state and the first batch).
      mesh: the devices the step runs on (default: the first device).
      config: a :class:`~jaxviz.distill.DistillConfig`; its fields make the advice specific.
      what: the computation's name in the message.

    Returns:
      the estimate (``None`` where the backend reports no memory analysis).

    Raises:
      MemoryLimitError: the estimate exceeds the free memory; the message gives both and what to change.
    """
    compiled = jax.jit(step).lower(state, batch).compile()
    est = estimate(compiled, list(mesh.devices.flat) if mesh is not None else None)
    if est is None or est.fits:
        return est
    where = "per device" if est.needed_bytes == est.per_device_bytes else f"on the host ({_gib(est.per_device_bytes)} per device)"
    raise MemoryLimitError(
        f"{what} needs about {_gib(est.needed_bytes)} {where} (XLA's estimate: {_gib(est.temp_bytes)} temporaries, "
        f"{_gib(est.argument_bytes)} arguments, {_gib(est.output_bytes)} outputs) but only {_gib(est.available_bytes)} is free; "
        f"it would run out of memory. {_advice(config)}")


def _advice(config: Any) -> str:
    if config is None:
        return "Use smaller inputs or batches."
    tips = []
    unrolled = config.steps * config.epochs
    tips.append(f"fewer unrolled inner steps (now {config.steps} steps x {config.epochs} epochs = {unrolled})")
    if not config.remat:
        tips.append("remat=True (recompute each inner step's activations in the backward pass)")
    now = config.inits_per_pass or (1 if jax.default_backend() == "cpu" else config.num_inits)  # None: make_outer_step's default
    if config.init == "random" and now > 1:
        tips.append(f"a smaller inits_per_pass (now {now} initialisations at once; 1 loops over them) or fewer num_inits")
    tips.append(f"a smaller batch_size (now {config.batch_size} real images)")
    if config.images_per_class > 1 and config.num_images is None:
        tips.append(f"fewer images_per_class (now {config.images_per_class})")
    return "Try " + "; ".join(tips) + "."

