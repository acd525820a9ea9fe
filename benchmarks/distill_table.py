"""Wang et al. (2018) Table 1 on the data jaxviz has: distilled sets against every baseline.

For each data set (MNIST-5k, Fashion-MNIST) and initialisation (fixed, random) this distils LeNet's
set with the recipe below (resumable: checkpoints under ``--cache``), writes it as an ``.npz``
artifact, reads the artifact back with :func:`jaxviz.distill.load_artifact` and runs
:func:`jaxviz.distill.table1` on it (random real, optimised real, k-means, mean images, herding,
k-NN), beside the paper's MNIST column. The accuracy of each set follows from its artifact alone.
Section ``## distill-table`` of benchmarks/RESULTS.md and ``results/distill-table.json``.

    python benchmarks/distill_table.py [--datasets mnist5k fashion_mnist] [--inits fixed random] [--quick]
    python benchmarks/distill_table.py --from-artifacts benchmarks/results/distill-long-gpu   # longer runs' sets
    python benchmarks/distill_table.py --artifact mnist5k-fixed=benchmarks/results/distill-30k/distill/distilled-lenet-mnist5k-fixed.npz
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import time
from pathlib import Path

import jax

from jaxviz.data import load_dataset
from jaxviz.distill import DistillConfig, distill, load_artifact, save_artifact, table1, table1_markdown
from jaxviz.models import lenet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, RESULTS_MD, describe, machine_description, replace_section  # noqa: E402

# Fixed init: 10 images, 1 step x 3 epochs (the library's recipe). Random init: 100 images, 10 steps x
# 3 epochs, two fresh initialisations per iteration run one after the other (the CPU-friendly setting).
RECIPES = {
    "fixed": DistillConfig(),
    "random": DistillConfig(init="random", steps=10, num_inits=2, inits_per_pass=1, iterations=300),
}


def describe_recipe(config: dict) -> str:
    """The fields of a recipe that differ from ``DistillConfig()``'s (outer iterations apart, listed on their own)."""
    skip = ("iterations", "checkpoint_seconds")
    changed = [f"{k}={v}" for k, v in config.items() if k in DistillConfig._fields and k not in skip and v != DistillConfig._field_defaults[k]]
    if config.get("validation"):
        changed.append(f"{config['validation']} training examples held out to keep the best set")
    return ", ".join(changed) or "DistillConfig() defaults"


def recorded_recipe(artifact: Path) -> str:
    """The recipe ``jaxviz distill`` recorded in the ``distill.json`` of the run that wrote ``artifact`` (OUT/distill/*.npz)."""
    for folder in (artifact.parent, artifact.parent.parent):
        record = folder / "distill.json"
        if record.is_file() and "config" in (summary := json.loads(record.read_text())):
            return describe_recipe(summary["config"])
    return "recipe not recorded beside the artifact (written before jaxviz distill recorded it): see where the run is reported"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["mnist5k", "fashion_mnist"])
    p.add_argument("--inits", nargs="+", default=["fixed", "random"], choices=sorted(RECIPES))
    p.add_argument("--iterations", type=int, default=None, help="override every recipe's outer iterations")
    p.add_argument("--num-sets", type=int, default=10, help="random real sets per baseline (default: %(default)s)")
    p.add_argument("--runs-only", action="store_true", help="distil and save the artifacts, skip the baselines (e.g. to run the "
                   "distillations in parallel processes before one table run)")
    p.add_argument("--quick", action="store_true", help="a smoke test: 5 iterations, 2 sets, no RESULTS.md")
    p.add_argument("--out", type=Path, default=None, help="folder for the artifacts and JSON (default benchmarks/results/distill-table)")
    p.add_argument("--cache", type=Path, default=None, help="checkpoint folder (default: jaxviz's cache)")
    p.add_argument("--from-artifacts", type=Path, default=None, help="take each set from DIR/<dataset>-<init>.npz (same recipe, e.g. "
                   "distill_long.py's longer runs on a GPU) instead of distilling it; the file is copied next to the table")
    p.add_argument("--artifact", action="append", default=[], metavar="DATASET-INIT=PATH", help="take that one set from PATH (e.g. "
                   "mnist5k-fixed=run/distill/distilled-lenet-mnist5k-fixed.npz, a longer run's artifact); repeatable")
    args = p.parse_args()
    sets_named = {f"{d}-{i}" for d in args.datasets for i in args.inits}
    if any("=" not in a or a.split("=", 1)[0] not in sets_named for a in args.artifact):
        p.error(f"--artifact takes DATASET-INIT=PATH, DATASET-INIT one of {sorted(sets_named)}; got {args.artifact}")
    given = dict(a.split("=", 1) for a in args.artifact)
    out = args.out or RESULTS_DIR / ("distill-table-quick" if args.quick else "distill-table")
    iterations = 5 if args.quick else args.iterations
    sets = 2 if args.quick else args.num_sets
    started = time.time()
    rows, runs = [], []
    for name in args.datasets:
        data = load_dataset(name)
        model = lenet(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(0))
        results = []
        for init in args.inits:
            artifact = out / f"{name}-{init}.npz"
            source = given.get(f"{name}-{init}") or (args.from_artifacts / artifact.name if args.from_artifacts else None)
            if source is not None:
                out.mkdir(parents=True, exist_ok=True)
                if Path(source).resolve() != artifact.resolve():
                    shutil.copyfile(source, artifact)
                results.append(load_artifact(artifact, model))
                runs.append({"dataset": name, "init": init, "artifact": artifact.name, "iterations": results[-1].config.iterations,
                             "soft_labels": results[-1].config.soft_labels, "from": str(source), "recipe": recorded_recipe(Path(source))})
                continue
            config = RECIPES[init]._replace(**({} if iterations is None else {"iterations": iterations}))
            r = distill(model, data, config, cache=args.cache, progress=not args.quick)
            save_artifact(artifact, r)
            results.append(load_artifact(artifact, model))
            runs.append({"dataset": name, "init": init, "artifact": artifact.name, "iterations": config.iterations,
                         "soft_labels": config.soft_labels, "seconds": r.seconds, "resumed_from": r.resumed_from})
            print(f"{name} {init}: {config.iterations} iterations, {r.seconds:.0f} s this call", flush=True)
        if args.runs_only:
            continue
        t = table1(model, data, results, num_sets=sets)
        rows += t.rows
        print(t.markdown, flush=True)
    if args.runs_only:
        return
    markdown = table1_markdown(rows)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    record = {"date": date, "machine": machine_description(), "runs": runs, "rows": rows, "markdown": markdown,
              "seconds": time.time() - started}
    out.mkdir(parents=True, exist_ok=True)
    (out / "distill-table.json").write_text(json.dumps(record, indent=2) + "\n")
    if args.quick:
        return
    distilled_here = sorted({r["init"] for r in runs if "from" not in r})
    recipe = "; ".join(f"{k}: {describe_recipe(RECIPES[k]._asdict())}" for k in distilled_here)
    recipe += ("; " if recipe else "") + "outer iterations: " + ", ".join(f"{r['dataset']} {r['init']} {r['iterations']}" for r in runs)
    copied = [f"{r['dataset']} {r['init']} from `{r['from']}` ({r['recipe']})" for r in runs if "from" in r]
    if copied:
        recipe += f" (sets read from earlier runs' artifacts: {'; '.join(copied)})"
    soft = [f"{r['dataset']} {r['init']}" for r in runs if r["soft_labels"]]
    if soft:
        recipe += (f". Soft labels: {', '.join(soft)}; their baselines keep one class per image, each image's starting class "
                   "(`table1`)")
    section = "\n".join([
        "## distill-table", "",
        f"Generated by `python benchmarks/distill_table.py` on {date}. Do not edit by hand: the script rewrites this section.", "",
        f"Machine: {describe(record['machine'])}.", "",
        f"LeNet, test accuracy (%) under protocol (a) of each set read back from its artifact ({', '.join(r['artifact'] for r in runs)} "
        f"in `benchmarks/results/distill-table/`); recipes: {recipe}. Baselines: {sets} random real sets, each trained with "
        "the same inner steps and its best constant step size; the paper's column is full MNIST (60,000 training images, "
        "100 distilled images), ours MNIST-5k (4,000) and Fashion-MNIST (60,000).", "",
        markdown,
    ])
    RESULTS_MD.write_text(replace_section(RESULTS_MD.read_text(), "distill-table", section + "\n"))


if __name__ == "__main__":
    main()
