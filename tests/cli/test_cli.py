import json

import pytest

from jaxviz.cli.main import main


def test_bad_arguments_exit_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "imagenet"])
    assert e.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_missing_data_dir_exits_2_without_traceback(tmp_path, capsys, monkeypatch):
    from jaxviz.data import datasets

    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "none")
    datasets.clear_cache()
    code = main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--cache-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("jaxviz train: error:") and "Traceback" not in err


def test_bad_numbers_exit_2(tmp_path, capsys):
    assert main(["train", "--epochs", "0", "--cache-dir", str(tmp_path)]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_model_that_does_not_fit_the_data_exits_2(tmp_path, capsys):
    code = main(["train", "--quick", "--dataset", "digits", "--cache-dir", str(tmp_path), "--no-progress"])
    assert code == 2 and "28x28 or 32x32" in capsys.readouterr().err  # digits are 8x8


def test_train_quick_writes_record(tmp_path):
    out = tmp_path / "o"
    code = main(["train", "--quick", "--dataset", "mnist5k", "--out", str(out), "--cache-dir", str(tmp_path), "--no-progress"])
    record = json.loads((out / "train.json").read_text())
    assert code == 0 and record["steps"] == 4000 // 128 and record["test_accuracy"] > 0.5


@pytest.mark.slow
def test_tour_quick_writes_report_and_summary(tmp_path):
    out = tmp_path / "tour"
    assert main(["tour", "--quick", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classifier"]["dataset"] == "mnist5k"
    assert summary["classifier"]["test_accuracy"] >= 0.95
    top = {item["image"]: item["top5"] for item in summary["imagenet"]}
    assert 281 <= top["chelsea"][0][0] <= 285 and top["coffee"][0][0] == 967
    assert all(len(t) == 5 and 0 < t[0][2] <= 1 for t in top.values())
    assert "total" in summary["timings_s"]
    attribution = summary["attribution"]
    for study in ("imagenet", "classifier"):
        a = attribution[study]
        assert set(a["deletion_auc"]) == set(a["insertion_auc"]) == {"occlusion", "gradient", "smoothgrad", "guided_backprop", "grad_cam", "integrated_gradients", "fullgrad"}
        assert all((out / p).is_file() for p in a["panels"])
    assert set(attribution["classifier"]["sanity_spearman"]) == {"gradient", "guided_backprop", "grad_cam"}
    gen = summary["generate"]
    checker = {(c["network"], c["upsampling"]): c for c in gen["checkerboard"]}
    assert set(checker) == {(n, u) for n in ("transformer", "generator") for u in ("transposed3", "transposed4", "resize")}
    from jaxviz.data import load_image
    from jaxviz.generate import checkerboard_score, tiles

    for c in checker.values():  # every score follows from the PNG it names (a generator's: the mean over its mosaic's outputs)
        saved = load_image(out / c["image"])
        parts = saved[None] if c["tile"] is None else tiles(saved, c["tile"])
        assert len(parts) == c["outputs"] == (1 if c["network"] == "transformer" else 64)
        assert abs(checkerboard_score(parts).mean() - c["score"]) <= 1e-6 * max(1.0, c["score"])
    # the transformer's transposed convolutions print checkerboards, resize-convolution does not
    assert checker["transformer", "resize"]["score"] < min(checker["transformer", t]["score"] for t in ("transposed3", "transposed4"))
    assert 0 < gen["feedforward_ms_256px"] < 1000 * gen["optimisation_s_256px"]
    change = gen["output_change_under_noise"]
    assert change["noise-robust"] < change["plain"]
    rec = gen["generator"]["reconstruction"]
    assert 0 < rec["train"]["image_mse"] < 0.05 and 0 < rec["held_out"]["image_mse"] < 0.05
    assert all(p in summary["figures"] for p in gen["figures"].values())
    html = (out / "index.html").read_text()
    for fig in summary["figures"]:
        assert (out / fig).is_file() and fig in html


def test_saliency_on_a_bundled_photo_and_a_file(tmp_path):
    from jaxviz.data import photo
    from jaxviz.viz import save_png

    path = save_png(tmp_path / "cat.png", photo("chelsea"))
    out = tmp_path / "sal"
    code = main(["saliency", str(path), "coffee", "--methods", "gradient,grad_cam", "--quick", "--out", str(out), "--no-progress"])
    record = json.loads((out / "saliency.json").read_text())
    assert code == 0 and record["images"] == ["cat", "coffee"]
    assert 281 <= record["targets"][0] <= 285 and record["targets"][1] == 967
    assert set(record["deletion_auc"]) == {"gradient", "grad_cam"} and len(record["insertion_auc"]["grad_cam"]) == 2
    assert (out / "saliency.png").is_file() and (out / "index.html").is_file()


def test_saliency_with_a_trained_checkpoint(tmp_path):
    assert main(["train", "--quick", "--dataset", "mnist5k", "--out", str(tmp_path / "t"), "--cache-dir", str(tmp_path), "--no-progress"]) == 0
    ckpt = json.loads((tmp_path / "t" / "train.json").read_text())["checkpoint"]
    from jaxviz.data import load_dataset
    from jaxviz.viz import save_png

    digit = save_png(tmp_path / "digit.png", load_dataset("mnist5k").x_test[0])
    out = tmp_path / "sal"
    assert main(["saliency", str(digit), "--model", ckpt, "--methods", "occlusion,guided_backprop", "--target", "3", "--quick", "--out", str(out)]) == 0
    record = json.loads((out / "saliency.json").read_text())
    assert record["model"] == "lenet" and record["targets"] == [3]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["saliency", "no-such.png"], "image file not found"),
        (["saliency", "chelsea", "--methods", "magic"], "unknown attribution method"),
        (["saliency", "chelsea", "--target", "1000"], "out of range"),
        (["saliency", "chelsea", "coffee", "--target", "1,2,3"], "targets must be"),
        (["saliency", "chelsea", "--layer", "fire99"], "valid layers: conv1"),
        (["saliency", "chelsea", "--model", "alexnet"], "neither a pretrained zoo model"),
    ],
)
def test_saliency_bad_input_exits_2(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
