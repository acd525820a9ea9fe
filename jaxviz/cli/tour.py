"""Train or load the small classifier, classify the bundled photos with SqueezeNet and write
OUT/index.html and OUT/summary.json with every figure and number."""

from __future__ import annotations

HELP = "the main report on the embedded data and weights"


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from jaxviz.tour import run_tour

    summary = run_tour(args.out, quick=args.quick, seed=args.seed, cache=args.cache_dir, progress=not args.no_progress)
    c = summary["classifier"]
    print(f"classifier: LeNet-5 on {c['dataset']}: test accuracy {c['test_accuracy']:.4f}")
    for item in summary["imagenet"]:
        cid, name, p = item["top5"][0]
        print(f"imagenet: {item['image']}: {name} ({cid}) p={p:.3f}")
    print(f"report: {summary['report']}  ({summary['timings_s']['total']:.0f} s)")
    return 0
