import json

import pytest

from jaxviz.cli.main import main


@pytest.fixture(scope="module")
def ckpt(trained):
    return trained[0].checkpoint_dir


def _run(ckpt, tmp_path, *args):
    return main(["inspect", *args, "--model", ckpt, "--out", str(tmp_path), "--no-progress"])


def test_subcommands_write_figures_and_records(ckpt, lenet_trained, mnist, tmp_path, monkeypatch):
    import jaxviz.cli.inspect as cli

    assert _run(ckpt, tmp_path, "filters") == 0  # loads the checkpoint folder
    rec = json.loads((tmp_path / "inspect-filters.json").read_text())
    assert rec["kernel"] == "conv1" and rec["filter_structure"] > rec["filter_structure_random"]
    monkeypatch.setattr(cli, "load_model", lambda args: (lenet_trained, mnist))  # the same model, already loaded
    assert _run(ckpt, tmp_path, "topk", "--layer", "conv2", "-k", "4", "--limit", "300", "--channels", "1,2") == 0
    rec = json.loads((tmp_path / "inspect-topk.json").read_text())
    assert rec["receptive_field"]["size"] == [14, 14] and len(rec["indices"][0]) == 4
    assert all((tmp_path / f).is_file() for f in rec["figures"])
    assert _run(ckpt, tmp_path, "grand-tour", "--points", "60", "--frames", "4", "--layers", "fc2,logits") == 0
    assert json.loads((tmp_path / "inspect-grand-tour.json").read_text())["layers"] == ["fc2", "logits"]
    assert (tmp_path / "grand-tour.html").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["topk", "--layer", "conv9"], "has no layer 'conv9'; valid layers: conv1"),
        (["topk", "--layer", "conv1", "-k", "301", "--limit", "300"], "k=301 is larger than the data set (300 images)"),
        (["topk", "--layer", "conv1", "--limit", "0"], "the data set is empty"),
        (["topk", "--layer", "fc1", "--crops", "yes", "--limit", "50"], "without spatial axes"),
        (["topk", "--layer", "conv1", "--channels", "7", "--limit", "50"], "channel 7 is out of range for layer 'conv1' with 6 channels"),
        (["embed", "--layer", "fc2", "--points", "20"], "perplexity 30.0 needs more points"),
    ],
)
def test_bad_input_exits_2_with_one_line(lenet_trained, mnist, tmp_path, capsys, monkeypatch, args, message):
    import jaxviz.cli.inspect as cli

    monkeypatch.setattr(cli, "load_model", lambda args: (lenet_trained, mnist))  # loading is tested above
    assert _run("lenet", tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxviz inspect: error:") and message in err and len(err.strip().splitlines()) == 1


def test_tour_section(lenet_trained, mnist, tmp_path, monkeypatch):
    import importlib

    from jaxviz.tour.core import Classifier, TourContext
    from jaxviz.viz import Report

    section = importlib.import_module("jaxviz.tour.inspect")
    monkeypatch.setattr(section, "QUICK", dict(topk_images=600, knn_train=400, knn_test=150, points=120, tsne_iter=250))
    ctx = TourContext(tmp_path, Report(tmp_path), quick=True, progress=False)
    ctx.resources["classifier"] = Classifier(lenet_trained, mnist, None)
    summary = section.inspect(ctx)["inspect"]
    assert summary["filter_structure"]["LeNet"]["trained"] > summary["filter_structure"]["LeNet"]["random"]
    assert set(summary["sparsity"]["trained"]) == set(lenet_trained.layers)
    assert summary["topk"]["images"] == 600 and summary["topk"]["images_per_s"] > 0
    assert summary["knn_accuracy"]["fc2"] > summary["knn_accuracy"]["pixels"] - 0.05
    assert summary["receptive_fields"]["pool2"] == {"size": (16, 16), "stride": (4, 4), "offset": (-2, -2)}
    assert all((tmp_path / f).is_file() for f in summary["figures"]) and len(summary["figures"]) >= 10
    assert (tmp_path / summary["grand_tour"]).is_file()
