"""Long dataset-distillation runs (Wang et al. 2018; soft labels of Sucholutsky & Schonlau 2021) within a
wall-clock budget: the accuracy bars that need more outer iterations than a CPU session gives.

Every run in ``--runs`` (see ``RUNS``) first runs a short probe, all probes at once in parallel
processes as the real runs will be, which gives each run's seconds per outer iteration under that
sharing (after a warm-up call, two calls of :func:`jaxviz.distill.distill`, 20 and 220 iterations:
compile time cancels).
Each run then gets the most iterations from ``LADDER`` that fit the rest of ``--budget`` and runs in
its own process, reading the test accuracy every tenth of the run (the cosine schedule spans the
iterations chosen, so a longer run is a different run, not a continuation). Its set is written as an
``.npz`` artifact, read back with :func:`jaxviz.distill.load_artifact` and evaluated under protocol (a)
(the fixed initialisation, or 10 fresh ones for random init): the accuracy follows from the artifact.

    python benchmarks/distill_long.py --budget 300                   # every run, 5 minutes in all
    python benchmarks/distill_long.py --runs mnist5k-fixed,mnist5k-soft10 --budget 1800 --out /tmp/long

JSON ``OUT/distill-long.json`` (runs of earlier calls into the same folder are kept unless run again); with ``--results-md`` (default for a full run: benchmarks/RESULTS.md)
section ``## distill-long`` (``-gpu`` on a GPU). Workers start with ``XLA_PYTHON_CLIENT_PREALLOCATE=false``
so that they share one accelerator, and ``JAX_DEFAULT_MATMUL_PRECISION=highest`` (no TF32 on a GPU): three
inner steps are sensitive enough that a set learnt in TF32 would score differently in float32 on a CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS_DIR, RESULTS_MD, backend_name, describe, machine_description, replace_section  # noqa: E402
from benchmarks.distill_table import RECIPES  # noqa: E402
from jaxviz.distill import DistillConfig  # noqa: E402

# distill_table.py's random-init recipe (its sets can replace the table's with --from-artifacts), without its iterations
RANDOM = {f: v for f, v in RECIPES["random"]._asdict().items() if f != "iterations" and v != DistillConfig._field_defaults[f]}
RUNS = {  # name: (data set, DistillConfig fields besides the defaults)
    "mnist5k-fixed": ("mnist5k", {}),
    "mnist5k-fixed-batch1024": ("mnist5k", dict(batch_size=1024)),
    "mnist5k-soft10": ("mnist5k", dict(soft_labels=True)),
    "mnist5k-soft5": ("mnist5k", dict(soft_labels=True, num_images=5)),
    "mnist5k-random": ("mnist5k", RANDOM),
    "fashion_mnist-fixed": ("fashion_mnist", {}),
    "fashion_mnist-random": ("fashion_mnist", RANDOM),
}
LADDER = (30000, 20000, 15000, 10000, 8000, 6000, 4000, 3000, 2000, 1000, 500, 200)
PROBE = (20, 220)
MARGIN = 1.25  # on the probed rate: evaluation every tenth, the artifact and its evaluation


def _setup(name: str):
    import jax

    from jaxviz.data import load_dataset
    from jaxviz.models import lenet

    dataset, fields = RUNS[name]
    data = load_dataset(dataset)
    model = lenet(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(0))
    return data, model, DistillConfig(**fields)


def probe(name: str) -> dict:
    """Seconds per outer iteration of run ``name``: the difference of two short runs after a warm-up run
    (on a GPU the first run in a process took 44 s of one-time costs, the next ones 6-8 s)."""
    from jaxviz.distill import distill

    data, model, config = _setup(name)
    distill(model, data, config._replace(iterations=PROBE[0]), checkpoint=False, progress=False)  # one-time costs: backend start, autotuning
    seconds = []
    for n in PROBE:
        t0 = time.perf_counter()
        distill(model, data, config._replace(iterations=n), checkpoint=False, progress=False)
        seconds.append(time.perf_counter() - t0)
    per_iteration = (seconds[1] - seconds[0]) / (PROBE[1] - PROBE[0])
    return {"name": name, "seconds": seconds, "per_iteration_s": per_iteration, "compile_and_setup_s": seconds[0] - PROBE[0] * per_iteration}


def run(name: str, iterations: int, out: Path) -> dict:
    """Distil ``name`` for ``iterations``, save its artifact in ``out`` and evaluate the artifact."""
    from jaxviz.distill import distill, evaluate, load_artifact, save_artifact

    data, model, config = _setup(name)
    config = config._replace(iterations=iterations)
    t0 = time.perf_counter()
    result = distill(model, data, config, test=(data.x_test, data.y_test), eval_every=max(1, iterations // 10), progress=False)
    seconds = time.perf_counter() - t0
    artifact = save_artifact(out / f"{name}.npz", result)
    ev = evaluate(model, load_artifact(artifact, model), data.x_test, data.y_test)
    curve = result.test_history or {}
    return {"name": name, "dataset": RUNS[name][0], "config": {k: v for k, v in config._asdict().items() if isinstance(v, (int, float, str, bool, type(None)))},
            "iterations": iterations, "seconds": seconds, "artifact": artifact.name, "test_accuracy": ev.mean, "test_accuracy_std": ev.std,
            "test_curve": {k: [float(v) for v in vals] for k, vals in curve.items()}}


def _parallel(args_list: list[list[str]], timeout: float) -> list[dict | None]:
    """Run this script once per argument list, all at once; each prints one JSON line last."""
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", JAX_DEFAULT_MATMUL_PRECISION="highest")
    procs = [subprocess.Popen([sys.executable, __file__, *a], stdout=subprocess.PIPE, text=True, env=env) for a in args_list]
    deadline = time.time() + timeout
    results = []
    for p in procs:
        try:
            stdout, _ = p.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, _ = p.communicate()
            print(f"timed out: {p.args[2:]}", flush=True)
        lines = [ln for ln in (stdout or "").splitlines() if ln.startswith("{")]
        results.append(json.loads(lines[-1]) if p.returncode == 0 and lines else None)
    return results


def choose(per_iteration_s: float, seconds_left: float, setup_s: float) -> int | None:
    """The most iterations of ``LADDER`` that fit ``seconds_left`` at the probed rate (``None``: none fits)."""
    fits = [n for n in LADDER if setup_s + MARGIN * n * per_iteration_s <= seconds_left]
    return max(fits) if fits else None


def markdown(runs: list[dict]) -> str:
    lines = ["| run | data set | iterations | test accuracy at each tenth (%) | final (artifact, protocol a) | wall s |",
             "|---|---|---:|---|---:|---:|"]
    for r in runs:
        curve = " / ".join(f"{100 * a:.1f}" for a in r["test_curve"].get("test_accuracy", []))
        std = f" +/- {100 * r['test_accuracy_std']:.1f}" if r["config"].get("init") == "random" else ""
        lines.append(f"| {r['name']} | {r['dataset']} | {r['iterations']} | {curve} | **{100 * r['test_accuracy']:.1f}{std}** | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {', '.join(RUNS)}")
    p.add_argument("--budget", type=float, default=600.0, help="wall-clock seconds for the probes and the runs (default %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="artifacts and JSON (default benchmarks/results/distill-long[-gpu])")
    p.add_argument("--results-md", type=Path, default=RESULTS_MD, help="markdown file whose section to rewrite")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:  # one probe (no --iterations) or one run, in its own process
        record = probe(args.worker) if args.iterations is None else run(args.worker, args.iterations, args.out)
        print(json.dumps(record), flush=True)
        return
    names = [n for n in args.runs.split(",") if n]
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        p.error(f"unknown runs {unknown}; choose from {', '.join(RUNS)}")
    started = time.time()
    section = backend_name("distill-long")
    out = args.out or RESULTS_DIR / section
    out.mkdir(parents=True, exist_ok=True)
    probes = dict(zip(names, _parallel([["--worker", n] for n in names], args.budget / 2)))
    print(json.dumps(probes, indent=1), flush=True)
    left = args.budget - (time.time() - started)
    plan = {n: choose(pr["per_iteration_s"], left, pr["compile_and_setup_s"]) if pr and pr["per_iteration_s"] > 0 else None
            for n, pr in probes.items()}
    print(f"{left:.0f} s left; iterations: {plan}", flush=True)
    todo = [n for n, it in plan.items() if it]
    runs = [r for r in _parallel([["--worker", n, "--iterations", str(plan[n]), "--out", str(out)] for n in todo], left) if r]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for r in runs:
        r["date"] = date
    previous = out / "distill-long.json"  # runs of earlier calls into the same folder stay, unless rerun now
    if previous.exists():
        done = {r["name"] for r in runs}
        runs = [r for r in json.loads(previous.read_text())["runs"] if r["name"] not in done] + runs
    table = markdown(runs)
    print(table, flush=True)
    record = {"date": date, "machine": machine_description(), "budget_s": args.budget, "probes": probes, "plan": plan, "runs": runs,
              "seconds": time.time() - started}
    (out / "distill-long.json").write_text(json.dumps(record, indent=2) + "\n")
    if args.results_md is None:
        return
    fields = "; ".join(f"{n}: {RUNS[n][1] or 'defaults'}" for n in dict.fromkeys(r["name"] for r in runs))
    root = RESULTS_DIR.parent.parent
    where = out.relative_to(root) if out.resolve().is_relative_to(root) else out
    text = "\n".join([
        f"## {section}", "",
        f"Generated by `python benchmarks/distill_long.py --runs {args.runs} --budget {args.budget:.0f}` on {date} (earlier runs in the "
        "same folder kept, each with its date in the JSON). Do not edit by hand: the script rewrites this section.", "",
        f"Machine: {describe(record['machine'])}.", "",
        f"LeNet, the `DistillConfig` defaults besides each run's fields ({fields}). "
        "The runs of one call run at once, each in its own process on this machine, and each got the most iterations of "
        f"{', '.join(map(str, LADDER))} that fitted that call's budget at its probed rate. Artifacts in `{where}`; "
        "the final column is protocol (a) on each artifact read back (random init: mean +/- std over 10 fresh "
        "initialisations; the curve during the run uses 4).", "",
        table,
    ])
    md = Path(args.results_md)
    md.write_text(replace_section(md.read_text() if md.exists() else "# Benchmark results\n", section, text + "\n"))


if __name__ == "__main__":
    main()
