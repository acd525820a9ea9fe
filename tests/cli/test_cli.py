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
    html = (out / "index.html").read_text()
    for fig in summary["figures"]:
        assert (out / fig).is_file() and fig in html
