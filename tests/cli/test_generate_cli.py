"""jaxviz generate: figures and numbers from a tiny generator; bad input ends with exit code 2."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxviz.cli.main import main

TINY = ["--quick", "--items", "4", "--steps", "6", "--hidden", "16", "--width", "4", "--no-progress"]


@pytest.mark.slow
def test_generate_writes_figures_and_numbers_loads_the_checkpoint_and_refuses_another_architecture(tmp_path, capsys):
    out, ckpt = tmp_path / "o", tmp_path / "ckpt"
    assert main(["generate", *TINY, "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    record = json.loads((out / "generate.json").read_text())
    assert record["trained_steps"] == 6 and record["config"]["n_items"] == 4
    for split in ("train", "held_out"):
        assert set(record["reconstruction"][split]) == {"image_mse", "mask_mse", "mask_iou"}
        assert all(np.isfinite(v) for v in record["reconstruction"][split].values())
    sweeps = np.asarray(Image.open(out / "sweeps.png"))
    assert sweeps.shape[0] > sweeps.shape[1]  # 12 rows (generated, rendered per transformation) of 9
    assert {"sweeps", "morph", "arithmetic"} == set(record["figures"]) and (out / "index.html").is_file()
    assert "held out" in capsys.readouterr().out
    assert main(["generate", *TINY, "--checkpoint", str(ckpt), "--out", str(out)]) == 0  # loaded, not retrained
    assert json.loads((out / "generate.json").read_text())["trained_steps"] == 0
    capsys.readouterr()
    assert main(["generate", *TINY, "--upsampling", "transposed4", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "was written for architecture" in err and "'upsampling': 'resize'" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "cifar10"], "unknown data set 'cifar10'"),
    (["--upsampling", "bilinear"], "unknown upsampling 'bilinear'"),
    (["--items", "0"], "n_items must be from 1"),
    (["--items", "5000"], "n_items must be from 1"),
    (["--canvas", "30"], "multiple of 8"),
    (["--holdout", "rotation:0.5"], "TRANSFORM:LOW:HIGH"),
    (["--holdout", "blur:0:0.5"], "held-out transformation 'blur'"),
    (["--holdout", "zoom:0.5:0.2"], "low < high"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    assert main(["generate", *TINY, *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_checkerboard_study_writes_its_scores_as_json(tmp_path):
    out = tmp_path / "o"
    assert main(["generate", *TINY, "--steps", "2", "--checkerboard", "--cache-dir", str(tmp_path / "c"), "--out", str(out)]) == 0
    study = json.loads((out / "generate.json").read_text())["checkerboard"]
    assert [v["upsampling"] for v in study] == ["transposed3", "transposed4", "resize"]
    assert all(np.isfinite(v["score"]) and "outputs" not in v and "image" not in v for v in study)
    assert (out / "checkerboard.png").is_file()
