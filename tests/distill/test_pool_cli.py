"""``jaxviz distill --init pool`` / ``--poison A:B``: bad input exits 2 with one line, before any pretraining."""

import pytest

from jaxviz.cli.main import main


@pytest.mark.parametrize("args, message", [
    (["--poison", "3:3"], "the attacked class and the target class must differ"),
    (["--poison", "3-8"], "--poison takes two class indices as A:B"),
    (["--poison", "3:12"], "mnist5k has classes 0..9"),
    (["--pretrain-on", "digits"], "--pretrain-on needs --init pool"),
    (["--init", "pool", "--soft-labels"], "drop --soft-labels"),
    (["--init", "pool", "--pool-size", "4", "--held-out", "4"], "needs held_out >= 1 and at least num_inits (4) left"),
    (["--init", "pool", "--pool-size", "6", "--held-out", "3"], "leaves 3 networks to distil on"),
    (["--poison", "3:8", "--pretrain-on", "digits"], "drop --pretrain-on"),
])
def test_bad_pool_input_exits_2(tmp_path, capsys, args, message):
    assert main(["distill", *args, "--cache-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxviz distill: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "checkpoints").exists()  # nothing was trained
