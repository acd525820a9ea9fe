"""Memory check before distilling: XLA's estimate against the free memory; a run that cannot fit stops
before its first step with a message, one that fits runs on the same compilation."""

import logging

import jax
import numpy as np
import pytest

from jaxviz.cli.main import main
from jaxviz.data import Dataset
from jaxviz.distill import DistillConfig, distill, memory
from jaxviz.errors import MemoryLimitError
from jaxviz.models import Model


def _init(key):
    k1, k2 = jax.random.split(key)
    return {"w1": 0.1 * jax.random.normal(k1, (16, 256)), "w2": 0.1 * jax.random.normal(k2, (256, 3))}


def _apply(p, x, _):
    return jax.nn.relu(x.reshape(x.shape[0], -1) @ p["w1"]) @ p["w2"], {}


@pytest.fixture(scope="module")
def mlp_and_blobs():
    model = Model(_init(jax.random.key(0)), _apply, (), (4, 4, 1), ("a", "b", "c"), "mlp", init=_init)
    rng = np.random.default_rng(0)
    y = np.arange(60, dtype=np.int32) % 3
    x = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)[y] + 0.5 * rng.normal(size=(60, 4, 4, 1)).astype(np.float32)
    return model, Dataset("blobs", x, y, x, y, ("a", "b", "c"), "test")


# 60 distilled images per step and 40 unrolled steps: without jax.checkpoint every step's hidden
# activations stay for the backward pass (XLA: about 9 MB), with it only each step's weights (about 2 MB).
CONFIG = DistillConfig(images_per_class=20, steps=40, epochs=1, iterations=2, batch_size=30, unroll=1)


def test_unrolled_steps_past_the_memory_stop_before_running(mlp_and_blobs, monkeypatch, caplog):
    model, data = mlp_and_blobs
    monkeypatch.setattr(memory, "host_available_bytes", lambda: 4 << 20)  # a machine with 4 MiB free
    with pytest.raises(MemoryLimitError) as e:
        distill(model, data, CONFIG._replace(remat=False), checkpoint=False, progress=False)
    msg = str(e.value)
    assert "distilling blobs for mlp needs about" in msg and "only 4 MiB is free" in msg
    assert "40 steps x 1 epochs = 40" in msg and "remat=True" in msg and "batch_size (now 30" in msg
    needed = float(msg.split("needs about ")[1].split(" MiB")[0])
    assert 6 < needed < 12  # the estimate is XLA's buffer assignment, not a guess: see the next test

    # jax.checkpoint: the same run fits in 4 MiB, and runs on the compilation the check made.
    caplog.set_level(logging.WARNING)
    with jax.log_compiles(True):
        result = distill(model, data, CONFIG, checkpoint=False, progress=False)
    assert len(result.history["loss"]) == 2 and np.isfinite(result.history["loss"]).all()
    compiled_steps = [r for r in caplog.records if "Compiling step" in r.getMessage() or "Compiling jit(step)" in r.getMessage()]
    assert len(compiled_steps) == 1, [r.getMessage()[:80] for r in compiled_steps]


def test_estimate_is_the_compiled_buffer_assignment(mlp_and_blobs, monkeypatch):
    from jaxviz.distill.core import _opt_target, initial_distilled, make_optimizer, make_outer_step

    model, data = mlp_and_blobs
    monkeypatch.setattr(memory, "host_available_bytes", lambda: 123 << 30)
    cfg = CONFIG._replace(remat=False)
    opt = make_optimizer(cfg)
    d0 = initial_distilled(cfg, data, 3)
    state, batch = (d0, opt.init(_opt_target(d0))), (data.x_train[:30], data.y_train[:30], np.int32(0))
    step = make_outer_step(model, cfg, model.params, opt)
    est = memory.check_fits(step, state, batch, config=cfg)
    stats = jax.jit(step).lower(state, batch).compile().memory_analysis()
    assert est.temp_bytes == stats.temp_size_in_bytes and est.argument_bytes == stats.argument_size_in_bytes
    assert est.needed_bytes == est.per_device_bytes == est.temp_bytes + est.argument_bytes + est.output_bytes
    assert est.available_bytes == 123 << 30 and est.fits
    # The arguments are the distilled set, Adam's moments and the real batch, byte for byte (less the
    # 4-byte iteration index, which a fixed initialisation does not use: jit drops it).
    assert est.argument_bytes == sum(np.asarray(a).nbytes for a in jax.tree.leaves((state, batch))) - 4
    assert est.argument_bytes > 3 * 40 * 60 * 16 * 4  # the images and their two moments


def test_free_memory_of_the_host_is_read():
    free = memory.available_bytes(jax.devices("cpu")[0])
    assert free is not None and 64 << 20 < free < 64 << 40  # between 64 MiB and 64 TiB: a number of bytes, not kB


def test_command_line_exits_2_with_the_estimate(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "host_available_bytes", lambda: 1 << 20)
    assert main(["distill", "--steps", "2", "--epochs", "1", "--iterations", "1", "--batch-size", "16", "--no-baseline", "--out", str(tmp_path / "o"),
                 "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxviz distill: error: distilling mnist5k for lenet needs about") and "Traceback" not in err
    assert "only 1 MiB is free" in err and "2 steps x 1 epochs = 2" in err
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())  # nothing ran, nothing saved

