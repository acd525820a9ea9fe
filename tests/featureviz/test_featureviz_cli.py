import json

import pytest

from jaxviz.cli.featureviz import parse_indices
from jaxviz.cli.main import main
from jaxviz.errors import JaxvizError


def test_parse_indices():
    assert parse_indices("3", "channels") == [0, 1, 2]
    assert parse_indices("2-4,9", "channels") == [2, 3, 4, 9]
    assert parse_indices("1000", "classes", count=False) == [1000]
    with pytest.raises(JaxvizError, match="--channels"):
        parse_indices("a,b", "channels")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["featureviz", "--layer", "fire99"], "has no layer 'fire99'"),
        (["featureviz", "--layer", "fire2", "--channels", "127-128"], "channel 128 is out of range for layer 'fire2'"),
        (["featureviz", "--layer", "conv10", "--neuron", "40,0", "--size", "64"], "outside layer 'conv10'"),
        (["featureviz", "--layer", "logits", "--neuron", "0,0"], "no spatial axes"),
        (["featureviz", "--classes", "1000"], "class index 1000 is out of range"),
        (["featureviz", "--channels", "2", "--copies", "2", "--diversity", "1", "--layer", "fire99"], "has no layer 'fire99'"),
        (["featureviz", "--channels", "2", "--diversity", "1"], "--copies 2"),
        (["featureviz", "--start", "chelsea"], "--start turns a photo toward --classes"),
        (["dream", "chelsea", "--size", "40", "--octaves", "5"], "coarsest octave"),
        (["dream", "no-such-photo.png"], "no-such-photo.png"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_featureviz_and_dream_write_their_records(tmp_path):
    out = tmp_path / "fv"
    assert main(["featureviz", "--layer", "fire2", "--channels", "3", "--size", "40", "--steps", "6", "--out", str(out), "--no-progress"]) == 0
    record = json.loads((out / "featureviz.json").read_text())
    assert record["units"] == [0, 1, 2] and len(record["final_objective"]) == 3 and (out / "featureviz.png").is_file()
    out = tmp_path / "dream"
    assert main(["dream", "coffee", "--size", "48", "--octaves", "1", "--steps", "3", "--jitter", "4", "--layer", "fire2",
                 "--out", str(out), "--no-progress"]) == 0
    record = json.loads((out / "dream.json").read_text())
    assert record["objective_last"] > record["objective_first"] and record["size"] == [48, 72]
