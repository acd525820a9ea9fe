import numpy as np
import pytest

from jaxviz import inspect as I
from jaxviz.errors import JaxvizError, ShapeError


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_neighbours_match_brute_force(metric):
    rng = np.random.default_rng(0)
    q, db = rng.standard_normal((7, 12)).astype(np.float32), rng.standard_normal((301, 12)).astype(np.float32)
    nb = I.nearest_neighbours(q, db, 4, metric=metric, chunk_size=64)  # 301 = 4 x 64 + 45
    if metric == "l2":
        d = np.sqrt(((q[:, None] - db[None]) ** 2).sum(-1))
    else:
        d = 1 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (db / np.linalg.norm(db, axis=1, keepdims=True)).T
    np.testing.assert_array_equal(nb.indices, np.argsort(d, axis=1)[:, :4])
    np.testing.assert_allclose(nb.distances, np.sort(d, axis=1)[:, :4], atol=2e-5)


def test_feature_space_beats_pixels_after_training(lenet_trained, lenet_untrained, mnist, small_train):
    x, y = small_train
    xt, yt = mnist.x_test[:300], mnist.y_test[:300]
    f = I.layer_features(lenet_trained, x, ["fc2", "conv1"], batch_size=256)
    assert f["fc2"].shape == (700, 84) and f["conv1"].shape == (700, 28 * 28 * 6)
    np.testing.assert_allclose(f["fc2"], I.features(lenet_trained, x, "fc2"), rtol=1e-4, atol=1e-5)  # two batchings: float32 summation order
    pixel = I.knn_accuracy(I.pixels(x), y, I.pixels(xt), yt)
    trained = I.knn_accuracy(f["fc2"], y, I.features(lenet_trained, xt, "fc2"), yt)
    untrained = I.knn_accuracy(I.features(lenet_untrained, x, "fc2"), y, I.features(lenet_untrained, xt, "fc2"), yt)
    assert trained > pixel > 0.7 and trained > untrained + 0.03


def test_knn_accuracy_on_separated_clusters():
    rng = np.random.default_rng(1)
    centres = np.eye(3, 5) * 10
    y = np.repeat(np.arange(3), 20)
    f = centres[y] + rng.standard_normal((60, 5))
    assert I.knn_accuracy(f[::2], y[::2], f[1::2], y[1::2], k=3, metric="l2") == 1.0
    with pytest.raises(JaxvizError, match="k=31 is larger than the database"):
        I.nearest_neighbours(f[:2], f[:30], 31)


def test_tsne_separates_clusters_and_checks_perplexity():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 25)
    f = np.eye(3, 20)[y] * 8 + rng.standard_normal((75, 20))
    coords = I.embed(f, perplexity=10, max_iter=300, threads=1)
    assert coords.shape == (75, 2)
    assert I.knn_accuracy(coords, y, coords, y, k=5, metric="l2") == 1.0
    pca = I.embed(f, method="pca")
    assert np.allclose(pca.mean(0), 0, atol=1e-4) and pca[:, 0].var() >= pca[:, 1].var()
    with pytest.raises(JaxvizError, match="perplexity 30.0 needs more points"):
        I.embed(f[:20])
    with pytest.raises(ShapeError, match="\\(N, D\\)"):
        I.embed(f[None])


def test_image_map_places_each_image_once():
    x = np.arange(12, dtype=np.float32).reshape(12, 1, 1, 1) / 12
    coords = np.stack([np.arange(12) % 4, np.arange(12) // 4], 1).astype(float)
    grid = I.image_map(x, coords, (3, 4))
    assert grid.shape == (3, 4, 1)
    assert sorted(grid.ravel().tolist()) == sorted(x.ravel().tolist())  # a 3x4 lattice on a 3x4 grid: a permutation
    assert grid[2, 0, 0] == x[0, 0, 0, 0]  # the lowest-left point goes to the lowest-left cell
