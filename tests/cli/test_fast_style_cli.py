import json

import numpy as np
import pytest
from PIL import Image

from jaxviz.cli.main import main


def test_fast_style_trains_resumes_and_applies(tmp_path, capsys):
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    argv = ["fast-style", "train", "brick", "--size", "48", "--width", "4", "--blocks", "1", "--batch-size", "1",
            "--checkpoint", str(ckpt), "--out", str(out), "--no-progress"]
    assert main([*argv, "--steps", "3"]) == 0
    assert main([*argv, "--steps", "5"]) == 0  # resumes from step 3
    record = json.loads((out / "fast-style-train.json").read_text())
    assert record["steps"] == 5 and record["resumed_from"] == 3 and record["ms_per_256px_image"] > 0
    assert (out / "fast-style-train.png").is_file()
    img = tmp_path / "odd.png"
    Image.fromarray((np.random.default_rng(0).random((30, 41, 3)) * 255).astype(np.uint8)).save(img)
    assert main(["fast-style", "apply", str(img), "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    with Image.open(out / "odd-stylised.png") as stylised:
        assert stylised.size == (41, 30)
    # another architecture into the same checkpoint folder is refused
    assert main([*argv[:6], "8", *argv[7:], "--steps", "5"]) == 2
    assert "width" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["fast-style", "apply", "chelsea"], "needs --checkpoint"),
    (["fast-style", "train", "brick", "chelsea"], "one style image"),
    (["fast-style", "train", "brick", "--size", "50"], "multiple of 4"),
    (["fast-style", "train", "brick", "--stability", "1"], "needs noise_std"),
    (["fast-style", "train", "no_such.png"], "not found"),
])
def test_fast_style_bad_input_exits_2(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_fast_style_empty_content_folder_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["fast-style", "train", "brick", "--content-dir", str(tmp_path / "empty"), "--out", str(tmp_path),
                 "--cache-dir", str(tmp_path)]) == 2
    assert "no image files" in capsys.readouterr().err
