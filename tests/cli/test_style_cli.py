import json

import numpy as np
import pytest
from PIL import Image

from jaxviz.cli.main import main


@pytest.mark.slow
def test_texture_command_writes_figure_and_distances(tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["texture", "brick", "gravel", "--size", "32", "--steps", "3", "--method", "adam", "--out", str(out), "--no-progress"])
    record = json.loads((out / "texture.json").read_text())
    assert code == 0 and (out / "texture.png").is_file() and (out / "index.html").is_file()
    assert [t["source"] for t in record["textures"]] == ["brick", "gravel"]
    assert set(record["textures"][0]["gram_distance_to_others"]) == {"gravel"}
    assert "distance to source" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["style", "chelsea", "brick", "--style-layers", "fire2,fire99"], "no layer 'fire99'"),
    (["style", "chelsea", "brick", "--style-layers", ","], "non-empty list"),
    (["style", "chelsea", "brick", "--size", "8"], "too small"),
    (["style", "chelsea", "brick", "--alpha-beta", "a,b"], "comma-separated numbers"),
    (["texture", "no_such_file.png"], "not found"),
    (["texture", "brick", "--model", "lenet"], "--model 'lenet'"),
    (["doodle", "coffee", "--segments", "0"], "positive number of segments"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_doodle_target_of_another_size_exits_2(tmp_path, capsys):
    target = tmp_path / "t.png"
    Image.fromarray(np.zeros((40, 20, 3), np.uint8)).save(target)  # centre-cropped to 32x32: one colour only
    assert main(["doodle", "coffee", "--target", str(target), "--size", "32", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "has no pixels" in capsys.readouterr().err


def test_stopped_optimisation_exits_2_with_its_message(capsys):
    from jaxviz.cli.texture import finish
    from jaxviz.style import OptimizeResult

    ok = OptimizeResult(None, None, np.zeros(3), 3, "ok", "3 lbfgs steps")
    nan = OptimizeResult(None, None, np.zeros(3), 1, "nan", "the loss turned NaN after 1 of 3 steps; kept the last good image.")
    assert finish("texture", [ok]) == 0 and capsys.readouterr().err == ""
    assert finish("texture", [ok, nan]) == 2
    assert capsys.readouterr().err == "jaxviz texture: error: the loss turned NaN after 1 of 3 steps; kept the last good image.\n"
