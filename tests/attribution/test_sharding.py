"""A batch sharded across several devices gives the same attributions as one device.

Runs in a subprocess with four host devices (XLA_FLAGS must be set before JAX starts)."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    from jaxviz import attribution as A
    from jaxviz.models import lenet

    assert jax.device_count() == 4, jax.devices()
    model = lenet()
    x = jax.random.uniform(jax.random.key(0), (8, 28, 28, 1))
    t = np.arange(8) % 10
    key = jax.random.key(1)
    methods = {
        "gradient": lambda m, x, t: A.gradient(m, x, t),
        "smoothgrad": lambda m, x, t: A.smoothgrad(A.gradient, m, x, t, key=key, samples=6, chunk_size=4),
        "vargrad": lambda m, x, t: A.smoothgrad(A.gradient, m, x, t, key=key, samples=6, chunk_size=4, mode="vargrad"),
        "integrated_gradients": lambda m, x, t: A.integrated_gradients(m, x, t, steps=8, chunk_size=3),
        "occlusion": lambda m, x, t: A.occlusion(m, x, t, window=8, stride=4, chunk_size=7).prob,
        "grad_cam": lambda m, x, t: A.grad_cam(m, x, t, layer="conv2"),
        "score_cam": lambda m, x, t: A.score_cam(m, x, t, layer="conv2", chunk_size=5),
        "guided_backprop": lambda m, x, t: A.guided_backprop(m, x, t),
        "fullgrad": lambda m, x, t: A.fullgrad(m, x, t),
        "blur_integrated_gradients": lambda m, x, t: A.blur_integrated_gradients(m, x, t, steps=6, chunk_size=4),
        "deletion_auc": lambda m, x, t: A.metrics.deletion(m, x, t, A.gradient(m, x, t), steps=8, chunk_size=3).auc,
    }
    for axis_type in (AxisType.Auto, AxisType.Explicit):
        mesh = jax.make_mesh((4,), ("batch",), axis_types=(axis_type,))
        xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
        ts = jax.device_put(t, NamedSharding(mesh, P("batch")))
        for name, fn in methods.items():
            f = jax.jit(fn)
            ref = np.asarray(f(model, x, t))
            with jax.set_mesh(mesh):
                out = f(model, xs, ts)
                hlo = f.lower(model, xs, ts).compile().as_text()
            where = f"{name} on a {axis_type} mesh"
            assert out.sharding.spec[0] == "batch", (where, out.sharding)
            assert "all-gather" not in hlo and "all-reduce" not in hlo, where  # each device works on its own examples
            np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-6, err_msg=where)
    print("sharded ok")
    """
)


def test_sharded_batch_matches_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sharded ok" in result.stdout
