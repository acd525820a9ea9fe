import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxviz.errors import TrainingDivergedError
from jaxviz.train import Checkpointer, run_loop


def _regression(lr=0.3):
    """Least squares on fixed data: a step function whose batches depend only on the step index."""
    rng = np.random.default_rng(0)
    x, w_true = rng.normal(size=(64, 3)).astype(np.float32), np.array([1.0, -2.0, 0.5], np.float32)
    y = x @ w_true
    opt = optax.sgd(lr)

    def step(carry, batch):
        w, s = carry
        xb, yb = batch
        loss, g = jax.value_and_grad(lambda w: jnp.mean((xb @ w - yb) ** 2))(w)
        u, s = opt.update(g, s, w)
        return (optax.apply_updates(w, u), s), {"loss": loss}

    def batches(i):
        idx = np.random.default_rng(i).permutation(64)[:16]
        return x[idx], y[idx]

    w0 = jnp.zeros(3)
    return step, (w0, opt.init(w0)), batches, w_true


def test_loop_learns_and_resumes_bit_identical(tmp_path):
    step, init, batches, w_true = _regression()
    straight = run_loop(step, init, batches, steps=30, checkpointer=Checkpointer(tmp_path / "a"), progress=False, checkpoint_every=5)
    np.testing.assert_allclose(straight.state[0], w_true, atol=2e-2)
    assert straight.history["loss"].shape == (30,) and straight.history["loss"][-1] < 1e-2 * straight.history["loss"][0]
    ckpt = Checkpointer(tmp_path / "b")
    first = run_loop(step, init, batches, steps=30, checkpointer=ckpt, progress=False, checkpoint_every=5, stop_after_steps=12)
    assert first.step == 12 and ckpt.latest_step() == 12  # the stop itself is checkpointed
    resumed = run_loop(step, init, batches, steps=30, checkpointer=ckpt, progress=False, checkpoint_every=5)
    assert resumed.resumed_from == 12 and resumed.first_step == 0  # the first 12 steps' metrics come from the checkpoint
    np.testing.assert_array_equal(np.asarray(resumed.state[0]), np.asarray(straight.state[0]))
    np.testing.assert_array_equal(resumed.history["loss"], straight.history["loss"])


def test_monitored_values_survive_a_resume_and_old_checkpoints_still_resume(tmp_path):
    step, init, batches, _ = _regression()

    def monitor(i, state):
        return {"norm": float(jnp.linalg.norm(state[0]))}

    kwargs = dict(steps=20, progress=False, checkpoint_every=5, monitor=monitor, monitor_every=5)
    straight = run_loop(step, init, batches, **kwargs)
    ckpt = Checkpointer(tmp_path / "a")
    run_loop(step, init, batches, checkpointer=ckpt, stop_after_steps=12, **kwargs)
    resumed = run_loop(step, init, batches, checkpointer=ckpt, **kwargs)
    assert resumed.monitored["step"].tolist() == [5, 10, 12, 15, 20]  # the stop at 12 is measured too
    np.testing.assert_array_equal(resumed.monitored["norm"][[0, 1, 3, 4]], straight.monitored["norm"])
    # A checkpoint written without metrics (an older jaxviz) resumes with the history of this call only.
    old = Checkpointer(tmp_path / "b")
    first = run_loop(step, init, batches, steps=12, progress=False)
    old.save(12, first.state, {})
    later = run_loop(step, init, batches, checkpointer=old, **kwargs)
    assert later.first_step == 12 and len(later.history["loss"]) == 8 and later.monitored["step"].tolist() == [15, 20]
    np.testing.assert_array_equal(later.history["loss"], straight.history["loss"][12:])


def test_nan_guard_keeps_the_last_good_checkpoint(tmp_path):
    step, init, batches, _ = _regression()

    def poisoned(i):  # from step 17 on the data are NaN
        xb, yb = batches(i)
        return (xb * np.nan, yb) if i >= 17 else (xb, yb)

    ckpt = Checkpointer(tmp_path)
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at step 18; the last good checkpoint \(step 15\)"):
        run_loop(step, init, poisoned, steps=30, checkpointer=ckpt, progress=False, checkpoint_every=5, log_every=100)
    assert ckpt.latest_step() == 15
    state, _ = ckpt.restore(init)
    assert np.all(np.isfinite(np.asarray(state[0])))


def test_loop_without_checkpoints_and_with_interrupt(tmp_path):
    step, init, batches, _ = _regression()
    plain = run_loop(step, init, batches, steps=4, progress=False)
    assert plain.step == 4 and plain.resumed_from is None

    def interrupting(i):
        if i == 7:
            raise KeyboardInterrupt
        return batches(i)

    ckpt = Checkpointer(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_loop(step, init, interrupting, steps=30, checkpointer=ckpt, progress=False, checkpoint_every=100)
    assert ckpt.latest_step() == 7  # everything done before the interrupt is saved


def test_monitor_sees_the_state_of_its_step_and_the_end():
    step, init, batches, w_true = _regression()
    seen = []

    def monitor(i, state):
        seen.append((i, np.asarray(state[0])))
        return {"error": float(np.abs(np.asarray(state[0]) - w_true).max())}

    run = run_loop(step, init, batches, steps=23, progress=False, monitor=monitor, monitor_every=10)
    assert [i for i, _ in seen] == [10, 20, 23]
    ten = run_loop(step, init, batches, steps=10, progress=False)  # the state after exactly 10 steps
    np.testing.assert_array_equal(seen[0][1], np.asarray(ten.state[0]))
    np.testing.assert_array_equal(run.monitored["step"], [10, 20, 23])
    assert run.monitored["error"][-1] < run.monitored["error"][0] < 1.0  # least squares converges
    assert run_loop(step, init, batches, steps=5, progress=False).monitored is None
