"""Text dataset distillation: nearest words of token embeddings, the sentence table and figure, and a
short distillation of real Rotten Tomatoes reviews whose outer loss must fall."""

import json

import jax
import numpy as np
import pytest

from jaxviz import distill as dd
from jaxviz.errors import JaxvizError, ShapeError

VOCAB = ("good", "bad", "film", "dull", "fun")


@pytest.fixture(scope="module")
def embeddings():
    return np.random.default_rng(0).normal(size=(len(VOCAB), 50)).astype(np.float32)


def test_nearest_words_finds_each_words_own_vector(embeddings):
    x = np.stack([embeddings[[2, 0, 4]], 3.0 * embeddings[[1, 3, 3]]])  # (2, 3, 50): scaling keeps the cosine
    near = dd.nearest_words(x, VOCAB, embeddings, k=2)
    assert near.words.shape == (2, 3, 2)
    assert near.words[..., 0].tolist() == [["film", "good", "fun"], ["bad", "dull", "dull"]]
    np.testing.assert_allclose(near.similarity[..., 0], 1.0, atol=1e-5)
    assert (near.similarity[..., 1] < 0.9).all() and (near.indices[..., 1] != near.indices[..., 0]).all()
    np.testing.assert_allclose(near.norms[1], 3 * np.linalg.norm(embeddings[[1, 3, 3]], axis=-1), rtol=1e-5)


def test_nearest_words_reads_word_vector_matrices(embeddings):
    """(steps, n, length, 50, 1) like a distilled text set; a row between two words goes to the nearer."""
    x = np.zeros((1, 2, 3, 50, 1), np.float32)
    x[0, 0, :, :, 0] = embeddings[[4, 3, 2]]
    x[0, 1, 0, :, 0] = 0.8 * embeddings[1] + 0.2 * embeddings[0]
    near = dd.nearest_words(x, VOCAB, embeddings)
    assert near.words.shape == (1, 2, 3, 1)
    assert near.words[0, 0, :, 0].tolist() == ["fun", "dull", "film"] and near.words[0, 1, 0, 0] == "bad"


def test_nearest_words_bad_input(embeddings):
    with pytest.raises(ShapeError, match="50-dimensional"):
        dd.nearest_words(np.zeros((3, 40)), VOCAB, embeddings)
    with pytest.raises(ShapeError, match="len\\(vocab\\)"):
        dd.nearest_words(np.zeros((3, 50)), VOCAB[:3], embeddings)
    with pytest.raises(JaxvizError, match="k must be"):
        dd.nearest_words(np.zeros((3, 50)), VOCAB, embeddings, k=6)


def test_sentences_markdown_and_figure(embeddings):
    x = np.zeros((1, 2, 4, 50, 1), np.float32)
    x[0, 0, :, :, 0] = embeddings[[0, 2, 4, 4]]
    x[0, 1, :, :, 0] = embeddings[[1, 3, 2, 1]]
    table = dd.sentences_markdown(x, np.array([[1, 0]]), VOCAB, embeddings, ("rotten", "fresh"))
    assert table.splitlines()[2:] == ["| 1 | fresh | good film fun fun (1.00) |", "| 1 | rotten | bad dull film bad (1.00) |"]
    soft = dd.sentences_markdown(x, np.array([[[0.0, np.log(3)], [0.0, 0.0]]]), VOCAB, embeddings, ("rotten", "fresh"))
    assert "| fresh 0.75 rotten 0.25 |" in soft and "| rotten 0.50 fresh 0.50 |" in soft
    fig = dd.sentences_figure(x, np.array([[1, 0]]), VOCAB, embeddings, ("rotten", "fresh"))
    assert fig.dtype == np.uint8 and fig.ndim == 3 and fig.shape[2] == 3 and (fig < 128).any()
    with pytest.raises(ShapeError, match="steps, n, length, dim, 1"):
        dd.sentences_markdown(np.zeros((1, 2, 28, 28, 3)), np.array([[1, 0]]), VOCAB, embeddings, ("rotten", "fresh"))
    with pytest.raises(ShapeError, match="labels must be"):
        dd.sentences_markdown(x, np.array([1, 0]), VOCAB, embeddings, ("rotten", "fresh"))


def test_distilling_real_reviews_lowers_the_outer_loss():
    """Two sentences distilled against a fixed batch of 128 real reviews (the whole training split
    given): the unrolled-training loss on them must fall, and the nearest words are vocabulary words.
    (Test accuracy needs a few hundred iterations: benchmarks/distill_text.py.)"""
    from jaxviz.data import load_rotten_tomatoes
    from jaxviz.models import textcnn

    text = load_rotten_tomatoes()
    data = text.data._replace(x_train=text.data.x_train[:128], y_train=text.data.y_train[:128])
    model = textcnn(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(0), filters=16)
    cfg = dd.DistillConfig(images_per_class=1, iterations=30, batch_size=128, lr=0.1, step_size_lr=0.1)
    r = dd.distill(model, data, cfg, checkpoint=False, progress=False)
    loss = r.history["loss"]
    assert np.isfinite(loss).all() and loss[-5:].mean() < loss[:5].mean() - 0.05, loss
    assert r.distilled.x.shape == (1, 2, 32, 50, 1)
    near = dd.nearest_words(r.distilled.x, text.vocab, text.embeddings)
    assert near.words.shape == (1, 2, 32, 1) and set(near.words.ravel()) <= set(text.vocab)


def test_cli_distils_sentences_and_rejects_mismatched_pairs(tmp_path, capsys):
    from jaxviz.cli.main import main

    assert main(["distill", "--dataset", "rotten_tomatoes", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxviz distill: error: --model textcnn goes with --dataset rotten_tomatoes") and "Traceback" not in err
    assert main(["distill", "--model", "textcnn", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    out = tmp_path / "o"
    code = main(["distill", "--dataset", "rotten_tomatoes", "--model", "textcnn", "--iterations", "2", "--batch-size", "64",
                 "--no-baseline", "--out", str(out), "--cache-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "distill.json").read_text())
    z = np.load(out / summary["runs"][0]["artifact"])
    assert z["x"].shape == (1, 2, 32, 50, 1) and z["y"].tolist() == [[0, 1]] and str(z["model"]) == "textcnn"
    rows = (out / "sentences.md").read_text().splitlines()[2:]
    assert [r.split(" | ")[1] for r in rows] == ["rotten", "fresh"] and len(rows[0].split(" | ")[2].rstrip(" |").split()) == 33  # 32 words + cosine


def test_nearest_words_in_chunks_matches_one_pass(embeddings, monkeypatch):
    from jaxviz.distill import text

    x = np.random.default_rng(1).normal(size=(7, 50)).astype(np.float32)
    whole = dd.nearest_words(x, VOCAB, embeddings, k=3)
    monkeypatch.setattr(text, "_MAX_SCORES", 2 * len(VOCAB))  # two tokens per call: four calls
    parts = dd.nearest_words(x, VOCAB, embeddings, k=3)
    np.testing.assert_array_equal(parts.indices, whole.indices)
    np.testing.assert_allclose(parts.similarity, whole.similarity, rtol=1e-6)
