"""benchmarks/distill_table.py describes each set's recipe: its own for the sets it distils, the one
``jaxviz distill`` recorded for a set read from an earlier run's artifact."""

import json

from bench_loader import load

table = load("distill_table.py", "_jaxviz_bench_distill_table")


def test_recipe_of_a_copied_artifact_comes_from_its_run(tmp_path):
    from jaxviz.distill import DistillConfig

    artifact = tmp_path / "run" / "distill" / "distilled-lenet-mnist5k-random.npz"
    artifact.parent.mkdir(parents=True)
    assert table.recorded_recipe(artifact).startswith("recipe not recorded")  # a run folder from before distill.json["config"]
    config = DistillConfig(init="random", steps=10, soft_labels=True, step_size_lr=0.005, iterations=1500)
    (tmp_path / "run" / "distill.json").write_text(json.dumps({"runs": [], "config": {**config._asdict(), "validation": 500}}))
    assert table.recorded_recipe(artifact) == ("steps=10, init=random, soft_labels=True, step_size_lr=0.005, "
                                               "500 training examples held out to keep the best set")
    assert table.describe_recipe(DistillConfig(iterations=30000)._asdict()) == "DistillConfig() defaults"


def test_each_set_is_described_with_its_own_recipe():
    runs = [{"dataset": "mnist5k", "init": "fixed", "iterations": 400, "soft_labels": False},
            {"dataset": "mnist5k", "init": "random", "iterations": 1500, "soft_labels": True, "from": "run/x.npz",
             "recipe": "steps=10, init=random"}]
    assert table.describe_runs(runs) == ("mnist5k fixed: 400 outer iterations, DistillConfig() defaults; "
                                         "mnist5k random: 1500 outer iterations, steps=10, init=random, read from `run/x.npz`")
