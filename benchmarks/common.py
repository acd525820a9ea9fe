"""The shared runner of the benchmark scripts: timers, result rows, machine description, reports.

Every script in ``benchmarks/`` times jaxviz against a peer in the same process and run:

* :func:`time_jax` times tracing/lowering, XLA compilation and the steady state apart
  (``jax.jit(fn).lower(*args)``, ``.compile()``, then warm-up calls and the median of timed calls,
  each ended by ``jax.block_until_ready``), as the dm-haiku benchmarks do;
* :func:`time_torch` times a PyTorch callable the same way (first call, warm-up, median);
* :func:`write_results` writes ``benchmarks/results/<name>.json`` and replaces the section
  ``## <name>`` of ``benchmarks/RESULTS.md``, leaving the other scripts' sections alone.

Ratios are time ratios jaxviz / peer: below 1 means jaxviz is faster. Absolute times only mean
something on the machine described next to them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"

FULL = dict(warmup=3, iters=20, min_time=2.0)
QUICK = dict(warmup=1, iters=3, min_time=0.0)


@dataclasses.dataclass(frozen=True)
class Timing:
    """What a timer measured. ``compile_s`` is ``None`` for eager peers (see ``first_call_s``)."""

    steady_s: float  # median of the timed calls
    times: tuple[float, ...]  # every timed call, in seconds
    first_call_s: float  # the first call: trace + compile for JAX, cold eager call for torch
    trace_s: float | None = None  # JAX: trace + lower
    compile_s: float | None = None  # JAX: XLA compile

    @property
    def iqr_s(self) -> float:
        if len(self.times) < 4:
            return max(self.times) - min(self.times)
        q = statistics.quantiles(self.times, n=4)
        return q[2] - q[0]


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a results table.

    ``compile_s`` is trace + lower + compile for JAX and the cold first call for eager peers;
    ``ratio_vs_peer`` is ``steady_s / peer steady_s`` (time ratio, below 1 means jaxviz faster),
    ``None`` on the peer's own row. ``items`` per call (images, examples) gives the throughput.
    """

    benchmark: str
    case: str
    impl: str
    compile_s: float | None
    steady_s: float
    ratio_vs_peer: float | None = None
    notes: str = ""
    items: int | None = None
    unit: str = "img"

    @property
    def throughput(self) -> float | None:
        return None if not self.items else self.items / self.steady_s


def use_gpu_peer() -> str:
    """Put the torch peer where JAX runs: ``"cuda"`` when JAX's backend is a GPU and torch sees one
    (new torch tensors and modules are created there from now on), else ``"cpu"``.

    On a GPU both sides then compute in full float32: no TF32 in torch's matrix products and
    convolutions, ``jax_default_matmul_precision="highest"`` in JAX (both default to TF32 on recent
    NVIDIA GPUs, in different places, and the peers' equality checks would fail)."""
    import jax
    import torch

    device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    torch.set_default_device(device)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        jax.config.update("jax_default_matmul_precision", "highest")
    return device


def _torch_call(fn: Callable, args: tuple) -> Callable[[], Any]:
    """``fn(*args)``, waiting for the GPU when the peer runs there (CUDA kernels run asynchronously)."""
    import torch

    if torch.get_default_device().type != "cuda":
        return lambda: fn(*args)

    def call():
        out = fn(*args)
        torch.cuda.synchronize()
        return out

    return call


def _median_loop(call: Callable[[], Any], warmup: int, iters: int, min_time: float, max_iters: int) -> list[float]:
    for _ in range(warmup):
        call()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iters or (time.perf_counter() - start < min_time and len(times) < max_iters):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def _prepare_jax(fn: Callable, args: tuple) -> tuple[Callable[[], Any], float, float, float]:
    import jax

    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()

    def call():
        return jax.block_until_ready(compiled(*args))

    call()  # first execution: buffers, thread pools
    return call, t1 - t0, t2 - t1, t2 - t0


def time_jax(
    fn: Callable,
    *args,
    warmup: int = FULL["warmup"],
    iters: int = FULL["iters"],
    min_time: float = FULL["min_time"],
    max_iters: int = 1000,
) -> Timing:
    """Time ``jax.jit(fn)(*args)``: trace+lower, compile and steady state apart.

    The steady state runs the compiled executable (no dispatch-cache lookup of ``jit``), at least
    ``iters`` times and for at least ``min_time`` seconds (at most ``max_iters`` calls), after
    ``warmup`` untimed calls; each call ends with ``jax.block_until_ready``.
    """
    call, trace_s, compile_s, first = _prepare_jax(fn, args)
    times = _median_loop(call, warmup, iters, min_time, max_iters)
    return Timing(statistics.median(times), tuple(times), first_call_s=first, trace_s=trace_s, compile_s=compile_s)


def time_torch(
    fn: Callable,
    *args,
    warmup: int = FULL["warmup"],
    iters: int = FULL["iters"],
    min_time: float = FULL["min_time"],
    max_iters: int = 1000,
    inference: bool = True,
) -> Timing:
    """Time the eager PyTorch callable ``fn(*args)`` (under ``torch.inference_mode`` if ``inference``).

    Pass ``inference=False`` for anything that calls ``backward``. ``first_call_s`` is the cold first
    call (allocator and kernel selection); on a GPU every call ends with ``torch.cuda.synchronize``.
    """
    import torch

    ctx = torch.inference_mode if inference else contextlib.nullcontext
    call = _torch_call(fn, args)
    with ctx():
        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
        times = _median_loop(call, warmup, iters, min_time, max_iters)
    return Timing(statistics.median(times), tuple(times), first_call_s=first)


def time_pair(
    jax_fn: Callable,
    jax_args: tuple,
    torch_fn: Callable,
    torch_args: tuple,
    *,
    warmup: int = FULL["warmup"],
    iters: int = FULL["iters"],
    min_time: float = FULL["min_time"],
    rounds: int = 4,
    inference: bool = True,
    max_iters: int = 1000,
) -> tuple[Timing, Timing]:
    """Time a JAX function and its torch peer in alternating rounds: ``(jax timing, torch timing)``.

    Same measurements as :func:`time_jax` and :func:`time_torch`, but the timed calls are split in
    ``rounds`` blocks, jax then torch, so that a change of machine load during the run (a shared
    CI runner) falls on both sides alike. Each side gets ``iters`` calls and ``min_time`` seconds
    in all; ``warmup`` untimed calls precede each side's first block.
    """
    import torch

    ctx = torch.inference_mode if inference else contextlib.nullcontext
    call, trace_s, compile_s, jfirst = _prepare_jax(jax_fn, jax_args)
    tcall = _torch_call(torch_fn, torch_args)
    with ctx():
        t0 = time.perf_counter()
        tcall()
        tfirst = time.perf_counter() - t0
    per_round = max(1, -(-iters // rounds))
    jtimes: list[float] = []
    ttimes: list[float] = []
    for r in range(rounds):
        w = warmup if r == 0 else 1
        jtimes += _median_loop(call, w, per_round, min_time / rounds, max_iters // rounds)
        with ctx():
            ttimes += _median_loop(tcall, w, per_round, min_time / rounds, max_iters // rounds)
    return (
        Timing(statistics.median(jtimes), tuple(jtimes), first_call_s=jfirst, trace_s=trace_s, compile_s=compile_s),
        Timing(statistics.median(ttimes), tuple(ttimes), first_call_s=tfirst),
    )


def time_group(
    jax_fns: dict[str, tuple[Callable, tuple]],
    torch_fns: dict[str, tuple[Callable, tuple]],
    *,
    warmup: int = FULL["warmup"],
    iters: int = FULL["iters"],
    min_time: float = FULL["min_time"],
    rounds: int = 4,
    inference: bool = True,
    max_iters: int = 1000,
) -> dict[str, Timing]:
    """:func:`time_pair` for several JAX variants and torch peers: ``{name: Timing}``.

    Every JAX function is traced and compiled first, then all of them are timed in ``rounds``
    alternating blocks (each JAX variant, then each torch peer), so that a change of machine load
    falls on every variant alike.
    """
    import torch

    ctx = torch.inference_mode if inference else contextlib.nullcontext
    prepared = {name: _prepare_jax(fn, args) for name, (fn, args) in jax_fns.items()}
    tcalls = {name: _torch_call(fn, args) for name, (fn, args) in torch_fns.items()}
    firsts = {}
    with ctx():
        for name, tcall in tcalls.items():
            t0 = time.perf_counter()
            tcall()
            firsts[name] = time.perf_counter() - t0
    per_round = max(1, -(-iters // rounds))
    times: dict[str, list[float]] = {name: [] for name in (*jax_fns, *torch_fns)}
    for r in range(rounds):
        w = warmup if r == 0 else 1
        for name, (call, *_rest) in prepared.items():
            times[name] += _median_loop(call, w, per_round, min_time / rounds, max_iters // rounds)
        with ctx():
            for name, tcall in tcalls.items():
                times[name] += _median_loop(tcall, w, per_round, min_time / rounds, max_iters // rounds)
    out = {name: Timing(statistics.median(times[name]), tuple(times[name]), first_call_s=first, trace_s=trace_s, compile_s=compile_s)
           for name, (_call, trace_s, compile_s, first) in prepared.items()}
    out.update({name: Timing(statistics.median(times[name]), tuple(times[name]), first_call_s=firsts[name]) for name in torch_fns})
    return out


def _spread(t: Timing) -> str:
    return f"n={len(t.times)}, IQR {t.iqr_s:.3g}s"


def jax_row(benchmark: str, case: str, t: Timing, peer: Timing | None, **kw) -> Row:
    """The jaxviz row of a case; ``ratio_vs_peer`` from ``peer`` (``None``: no peer)."""
    split = f"trace {t.trace_s:.2f}s + compile {t.compile_s:.2f}s"
    notes = "; ".join(filter(None, [split, _spread(t), kw.pop("notes", "")]))
    return Row(benchmark, case, kw.pop("impl", "jaxviz"), t.first_call_s, t.steady_s,
               None if peer is None else t.steady_s / peer.steady_s, notes, **kw)


def torch_row(benchmark: str, case: str, t: Timing, **kw) -> Row:
    """The peer row of a case (its ``compile_s`` is the cold first call)."""
    notes = "; ".join(filter(None, [_spread(t), kw.pop("notes", "")]))
    return Row(benchmark, case, kw.pop("impl", "torch"), t.first_call_s, t.steady_s, None, notes, **kw)


# -- machine -----------------------------------------------------------------------------------
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, Any]:
    """CPU, cores, JAX backend and devices, library versions and torch threads (if installed)."""
    import jax
    import jaxlib

    desc: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_device_kind": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
    }
    try:
        import torch
    except ImportError:
        desc["torch"] = None
    else:
        desc["torch"] = torch.__version__
        desc["torch_threads"] = torch.get_num_threads()
    return desc


def describe(desc: dict[str, Any]) -> str:
    torch = f"torch {desc['torch']} ({desc.get('torch_threads')} threads)" if desc.get("torch") else "torch not installed"
    return (
        f"{desc['cpu']}, {desc['cores_usable']} usable cores of {desc['cores']} "
        f"(1-min load average {desc.get('load_avg_1m')} when the results were written); "
        f"JAX backend {desc['jax_backend']} ({', '.join(desc['jax_devices'])}"
        + (f", {desc['jax_device_kind']}" if desc.get("jax_backend", "cpu") != "cpu" else "") + "); "
        f"jax {desc['jax']}, jaxlib {desc['jaxlib']}, {torch}, Python {desc['python']}"
    )


# -- reports -----------------------------------------------------------------------------------
def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def table(rows: Sequence[Row]) -> str:
    """A markdown table of ``rows``."""
    lines = [
        "| benchmark | case | impl | compile s (torch: first call) | steady s (median) | ratio jaxviz/peer | throughput | notes |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        tp = r.throughput
        tput = "—" if tp is None else f"{tp:,.1f} {r.unit}/s"
        ratio = f"{r.ratio_vs_peer:.2f}" if r.ratio_vs_peer is not None else ("n/a" if r.impl == "jaxviz" else "(peer)")
        lines.append(f"| {r.benchmark} | {r.case} | {r.impl} | {_fmt(r.compile_s, '.3f')} | {r.steady_s:.4f} | {ratio} | {tput} | {r.notes} |")
    return "\n".join(lines)


def _section(name: str, rows: Sequence[Row], desc: dict[str, Any], date: str, command: str, extra: str) -> str:
    parts = [
        f"## {name}",
        "",
        f"Generated by `{command}` on {date}. Do not edit by hand: the script rewrites this section.",
        "",
        f"Machine: {describe(desc)}.",
        "",
        "Ratio = jaxviz time / peer time (below 1: jaxviz faster). Steady state is the median of timed "
        "calls after warm-up; compile is JAX trace + lower + XLA compile (for torch: the cold first eager call).",
        "",
        table(rows),
    ]
    if extra:
        parts += ["", extra.strip()]
    return "\n".join(parts) + "\n"


def replace_section(text: str, name: str, section: str) -> str:
    """``text`` with its ``## name`` section (up to the next ``## `` heading) replaced, or appended."""
    pattern = re.compile(rf"^## {re.escape(name)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    return text.rstrip("\n") + "\n\n" + section


def backend_name(name: str) -> str:
    """``name`` on CPU, ``name-gpu`` (``-tpu``) elsewhere: a run on an accelerator keeps the CPU results."""
    import jax

    backend = jax.default_backend()
    return name if backend == "cpu" else f"{name}-{backend}"


def write_results(
    name: str,
    rows: Sequence[Row],
    path_json: str | os.PathLike | None = None,
    results_md: str | os.PathLike | None = RESULTS_MD,
    *,
    command: str | None = None,
    extra: str = "",
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``rows`` to ``path_json`` (default ``benchmarks/results/<name>.json``) and section
    ``## <name>`` of ``results_md`` (skipped if ``None``); ``name`` gets the backend's suffix off CPU
    (:func:`backend_name`). Returns the JSON record."""
    name = backend_name(name)
    desc = machine_description()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = command or f"python benchmarks/{name}.py"
    record = {
        "name": name,
        "date": date,
        "command": command,
        "machine": desc,
        "config": config or {},
        "rows": [dict(dataclasses.asdict(r), throughput=r.throughput) for r in rows],
    }
    path_json = Path(path_json) if path_json is not None else RESULTS_DIR / f"{name}.json"
    path_json.parent.mkdir(parents=True, exist_ok=True)
    path_json.write_text(json.dumps(record, indent=2) + "\n")
    if results_md is not None:
        md = Path(results_md)
        text = md.read_text() if md.exists() else (
            "# Benchmark results\n\nEach section is generated by one script in `benchmarks/`; see `benchmarks/README.md`.\n"
        )
        md.write_text(replace_section(text, name, _section(name, rows, desc, date, command, extra)))
    return record


def parser(description: str, name: str) -> argparse.ArgumentParser:
    """The command line every benchmark script shares: ``--quick`` and ``--out``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="few iterations (a smoke test); does not touch RESULTS.md unless --results-md is given")
    p.add_argument("--out", type=Path, default=None, help=f"JSON output (default benchmarks/results/{name}.json, or {name}-quick.json with --quick)")
    p.add_argument("--results-md", type=Path, default=None, help="markdown file whose section to rewrite (default benchmarks/RESULTS.md for full runs)")
    p.add_argument("--min-time", type=float, default=None, help=f"seconds of timed calls per variant at least (default {FULL['min_time']}; "
                   "a fraction of a second is plenty on a GPU)")
    return p


def settings(args: argparse.Namespace, name: str) -> tuple[dict[str, Any], Path, Path | None]:
    """Timer settings, JSON path and RESULTS.md path (or None) for parsed ``args``."""
    timer = dict(QUICK if args.quick else FULL)
    if getattr(args, "min_time", None) is not None:
        timer["min_time"] = args.min_time
    name = backend_name(name)
    out = args.out or RESULTS_DIR / (f"{name}-quick.json" if args.quick else f"{name}.json")
    md = args.results_md or (None if args.quick else RESULTS_MD)
    return timer, out, md
