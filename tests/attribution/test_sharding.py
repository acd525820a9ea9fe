"""A batch sharded across several devices gives the same attributions as one device.

Runs in a subprocess with four host devices (XLA_FLAGS must be set before JAX starts)."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from jaxviz import attribution as A
    from jaxviz.models import lenet

    assert jax.device_count() == 4, jax.devices()
    model = lenet()
    x = jax.random.uniform(jax.random.key(0), (8, 28, 28, 1))
    t = np.arange(8) % 10
    key = jax.random.key(1)
    grad = jax.jit(A.gradient)
    smooth = jax.jit(lambda m, x, t, k: A.smoothgrad(A.gradient, m, x, t, key=k, samples=6, chunk_size=3))
    cam = jax.jit(A.grad_cam, static_argnames="layer")
    ref = [grad(model, x, t), smooth(model, x, t, key), cam(model, x, t, layer="conv2")]
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
    ts = jax.device_put(t, NamedSharding(mesh, P("batch")))
    out = [grad(model, xs, ts), smooth(model, xs, ts, key), cam(model, xs, ts, layer="conv2")]
    assert len(out[0].sharding.device_set) == 4, out[0].sharding
    for r, o in zip(ref, out):
        np.testing.assert_allclose(np.asarray(o), np.asarray(r), rtol=1e-5, atol=1e-6)
    print("sharded ok")
    """
)


def test_sharded_batch_matches_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sharded ok" in result.stdout
