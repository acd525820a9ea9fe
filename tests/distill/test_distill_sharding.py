"""Random initialisations sharded over 4 simulated CPU devices give the single-device result."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent('''
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_numpy_rank_promotion", "raise")
    from jaxviz.data import Dataset
    from jaxviz.distill import DistillConfig, distill
    from jaxviz.errors import JaxvizError
    from jaxviz.models import Model

    assert jax.device_count() == 4, jax.devices()

    def init(key):
        return {"w": 0.1 * jax.random.normal(key, (16, 3)), "b": jnp.zeros((3,))}

    model = Model(init(jax.random.key(0)), lambda p, x, d: (x.reshape(x.shape[0], -1) @ p["w"] + p["b"][None], {}), (), (4, 4, 1),
                  ("a", "b", "c"), "linear", init=init)
    rng = np.random.default_rng(0)
    y = np.arange(60, dtype=np.int32) % 3
    x = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)[y] + 0.5 * rng.normal(size=(60, 4, 4, 1)).astype(np.float32)
    data = Dataset("blobs", x, y, x, y, ("a", "b", "c"), "test")
    cfg = DistillConfig(steps=2, epochs=2, init="random", num_inits=8, iterations=4, batch_size=30, lr=0.05)
    mesh = jax.make_mesh((4,), ("inits",))
    one = distill(model, data, cfg, checkpoint=False, progress=False)
    four = distill(model, data, cfg, checkpoint=False, progress=False, mesh=mesh)
    np.testing.assert_allclose(four.history["loss"], one.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(four.distilled.x, one.distilled.x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(four.distilled.raw_lrs, one.distilled.raw_lrs, rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(four.distilled.raw_lrs) - np.log(np.expm1(0.02))).min() > 1e-3  # they moved
    try:
        distill(model, data, cfg._replace(num_inits=6), checkpoint=False, progress=False, mesh=mesh)
    except JaxvizError as e:
        assert "multiple of 4" in str(e)
    else:
        raise AssertionError("num_inits=6 over 4 devices was accepted")
    print("SHARDED-OK")
''')


def test_sharded_inits_match_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(Path(__file__).parents[2]))
    proc = subprocess.run([sys.executable, "-W", "error", "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "SHARDED-OK" in proc.stdout, proc.stderr[-3000:]
