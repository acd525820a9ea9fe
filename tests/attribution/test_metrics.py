import jax
import jax.numpy as jnp
import numpy as np

import jaxviz.attribution as A
from jaxviz.attribution import metrics as M


def test_spearman():
    a = jnp.arange(10.0).reshape(1, 10)
    np.testing.assert_allclose(M.spearman(a, a**3), [1.0], atol=1e-6)
    np.testing.assert_allclose(M.spearman(a, -a), [-1.0], atol=1e-6)
    b = jnp.stack([a[0], a[0]])
    np.testing.assert_allclose(M.spearman(b, jnp.stack([a[0], jnp.exp(-a[0])])), [1.0, -1.0], atol=1e-6)


def sum_model(x):
    s = x.sum(axis=(1, 2, 3))
    return jnp.stack([s, jnp.zeros_like(s)], axis=1)


def test_deletion_insertion_trivial():
    x = jnp.zeros((1, 4, 4, 1)).at[0, 0, 0, 0].set(1.0)
    good = x[..., 0]
    d = M.deletion(sum_model, x, 0, good, steps=16, output="logit")
    assert d.curve.shape == (1, 17)
    np.testing.assert_allclose(d.curve[0, 0], 1.0)
    np.testing.assert_allclose(d.curve[0, 1:], 0.0)  # the one salient pixel goes first
    np.testing.assert_allclose(d.auc, [0.5 / 16], rtol=1e-6)
    bad = M.deletion(sum_model, x, 0, -good, steps=16, output="logit")
    assert float(bad.auc[0]) > float(d.auc[0])
    ins = M.insertion(sum_model, x, 0, good, steps=16, output="logit", baseline="black")
    np.testing.assert_allclose(ins.curve[0, 1:], 1.0)
    np.testing.assert_allclose(np.asarray(ins.fractions)[[0, -1]], [0.0, 1.0])
    # constant model: AUC = the constant
    const = lambda x: jnp.zeros((x.shape[0], 3))  # noqa: E731
    np.testing.assert_allclose(M.insertion(const, x, 1, good, steps=4).auc, [1 / 3], rtol=1e-6)


def test_model_randomisation(cnn, x8):
    names = [n for n, _ in M.parameter_groups(cnn)]
    assert names == ["conv1", "conv2", "dense"]
    r = M.model_randomisation(A.gradient, cnn, x8, 1, key=jax.random.key(0))
    assert r.layers == ("dense", "conv2", "conv1") and r.spearman.shape == (3, 2)
    assert float(r.spearman.max()) < 0.99
    r2 = M.model_randomisation(A.gradient, cnn, x8, 1, key=jax.random.key(0))
    np.testing.assert_array_equal(r.spearman, r2.spearman)
    # a map that ignores the parameters is perfectly stable
    fixed = M.model_randomisation(lambda m, x, t: x, cnn, x8, 1, key=jax.random.key(0))
    np.testing.assert_allclose(fixed.spearman, 1.0, atol=1e-6)


def test_completeness_metric(linear, x8):
    f, _ = linear
    a = A.integrated_gradients(f, x8, 1, steps=2)
    np.testing.assert_allclose(M.completeness(f, x8, 1, a), 0.0, atol=1e-4)
    assert float(jnp.abs(M.completeness(f, x8, 1, 2 * a, relative=True)).min()) > 0.5
