"""``jaxviz distill``: bad input exits 2 with one line; a tiny run writes artifacts that reproduce its numbers."""

import json

import jax
import numpy as np
import optax

from jaxviz.cli.main import main


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["distill", "--images-per-class", "0", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxviz distill: error: images_per_class must be at least 1") and "Traceback" not in err
    assert main(["distill", "--dataset", "digits", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    assert "28 or 32 px" in capsys.readouterr().err
    assert main(["distill", "--eval-every", "-1", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    assert "--eval-every must be 0" in capsys.readouterr().err
    assert main(["distill", "--validation", "100", "--eval-every", "0", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    assert "needs --eval-every >= 1" in capsys.readouterr().err
    assert main(["distill", "--validation", "4000", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    assert "between 1 and 3999 of mnist5k's 4000 training examples" in capsys.readouterr().err
    assert main(["distill", "--initial-step-size", "-0.1", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    assert "initial_step_size must be positive" in capsys.readouterr().err


def test_tiny_run_writes_an_artifact_that_reproduces_its_accuracy(tmp_path):
    from jaxviz.data import load_dataset
    from jaxviz.models import lenet

    out = tmp_path / "o"
    code = main(["distill", "--iterations", "2", "--batch-size", "64", "--no-baseline", "--eval-every", "1", "--out", str(out),
                 "--cache-dir", str(tmp_path), "--no-progress"])
    summary = json.loads((out / "distill.json").read_text())
    runs = summary["runs"]
    assert code == 0 and len(runs) == 1 and (out / "index.html").is_file()
    assert summary["config"]["iterations"] == 2 and summary["config"]["batch_size"] == 64 and summary["config"]["validation"] == 0
    z = np.load(out / runs[0]["artifact"])
    assert z["x"].shape == (1, 10, 28, 28, 1) and z["y"].tolist() == [list(range(10))] and z["lrs"].shape == (3,)
    model = lenet()  # same architecture; weights from the artifact alone
    treedef = jax.tree.structure(model.params)
    names = sorted(k for k in z.files if k.startswith("init/"))
    assert names == sorted(f"init/{layer}/{p}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("bias", "kernel"))
    theta = jax.tree.unflatten(treedef, [z[n] for n in names])  # leaves flatten in sorted path order
    grad = jax.jit(jax.grad(lambda p, xb, yb: optax.softmax_cross_entropy_with_integer_labels(model.apply(p, xb), yb).mean()))
    for k, lr in enumerate(z["lrs"]):
        theta = jax.tree.map(lambda a, b: a - lr * b, theta, grad(theta, z["x"][k % 1], z["y"][k % 1]))
    data = load_dataset("mnist5k")
    acc = float(np.mean(np.argmax(model.apply(theta, data.x_test), -1) == data.y_test))
    assert abs(acc - runs[0]["test_accuracy"]) < 1e-6
    curve = runs[0]["test_curve"]  # measured while distilling; the last point is the final set
    assert curve["step"] == [1, 2] and abs(curve["test_accuracy"][-1] - acc) < 1e-6
