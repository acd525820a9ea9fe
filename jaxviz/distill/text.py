"""Reading distilled text: the nearest real words of each synthetic token embedding.

Text dataset distillation (Sucholutsky & Schonlau, "Soft-Label Dataset Distillation and Text Dataset
Distillation", IJCNN 2021) learns synthetic "sentences": ``(length, dim)`` matrices of word-vector
rows trained like distilled images (:func:`jaxviz.distill.distill` on
:func:`jaxviz.data.load_rotten_tomatoes` with :func:`jaxviz.models.textcnn`). A row need not be any
word's vector; as in the paper, it is read as the real words whose embeddings are most similar to it
by cosine similarity. :func:`nearest_words` finds them, :func:`sentences_markdown` and
:func:`sentences_figure` show a distilled set as those words.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from matplotlib.figure import Figure

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.viz import figure_to_array

_MAX_SCORES = 2**25  # cosine scores held at once (128 MiB of float32): 83 tokens at a time against all 400,000 GloVe words


class NearestWords(NamedTuple):
    """The ``k`` most cosine-similar vocabulary words of each token embedding, most similar first.

    Attributes:
      words: ``(..., length, k)`` numpy array of strings.
      indices: ``(..., length, k)`` int32 rows of the vocabulary.
      similarity: ``(..., length, k)`` float32 cosine similarities.
      norms: ``(..., length)`` Euclidean norm of each token embedding (padding-like rows are near 0).
    """

    words: np.ndarray
    indices: np.ndarray
    similarity: np.ndarray
    norms: np.ndarray


@functools.partial(jax.jit, static_argnames="k")
def _top_k(x: jax.Array, unit: jax.Array, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    norms = jnp.linalg.norm(x, axis=-1)
    cos = (x / jnp.maximum(norms, 1e-12)[:, None]) @ unit.T
    sim, idx = jax.lax.top_k(cos, k)
    return sim, idx, norms


def nearest_words(x: ArrayLike, vocab: Sequence[str], embeddings: ArrayLike, k: int = 1) -> NearestWords:
    """The ``k`` vocabulary words nearest (cosine) to every token embedding of ``x``.

    Args:
      x: token embeddings ``(..., dim)``, or word-vector matrices ``(..., length, dim, 1)`` as the text
        data sets and their distilled sets hold them (the trailing channel axis is dropped).
      vocab: the words, one per row of ``embeddings``
        (e.g. :attr:`jaxviz.data.TextDataset.vocab`).
      embeddings: ``(len(vocab), dim)`` word vectors (e.g. :attr:`jaxviz.data.TextDataset.embeddings`).
      k: words per token, at most ``len(vocab)``.

    Returns:
      a :class:`NearestWords` with leading shape ``x.shape[:-1]`` (``x.shape[:-2]`` for a channel axis).

    Example:
      >>> t = jaxviz.data.load_rotten_tomatoes()
      >>> nearest_words(t.embeddings[[5, 7]], t.vocab, t.embeddings).words[:, 0]  # [t.vocab[5], t.vocab[7]]
    """
    x = jnp.asarray(x, jnp.float32)
    e = jnp.asarray(embeddings, jnp.float32)
    if e.ndim != 2 or e.shape[0] != len(vocab):
        raise ShapeError(f"embeddings must be (len(vocab), dim) = ({len(vocab)}, dim); got shape {e.shape}.")
    if x.ndim >= 2 and x.shape[-1] == 1 and x.shape[-2] == e.shape[1]:
        x = x[..., 0]
    if x.ndim < 1 or x.shape[-1] != e.shape[1]:
        raise ShapeError(f"x must hold {e.shape[1]}-dimensional embeddings on its last axis (or (..., length, {e.shape[1]}, 1)); "
                         f"got shape {x.shape}.")
    if not 1 <= k <= len(vocab):
        raise JaxvizError(f"k must be between 1 and the vocabulary size {len(vocab)}; got {k}.")
    unit = e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    chunk = max(1, _MAX_SCORES // len(vocab))  # bound the (tokens, vocab) similarity matrix of one call
    parts = [_top_k(flat[i : i + chunk], unit, k) for i in range(0, flat.shape[0], chunk)]
    sim, idx, norms = (np.concatenate([np.asarray(p[j]) for p in parts]) for j in range(3))
    words = np.asarray(vocab, dtype=object)[idx]
    return NearestWords(words.reshape(*lead, k), idx.reshape(*lead, k).astype(np.int32), sim.reshape(*lead, k), norms.reshape(lead))


def _label_text(labels: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """One label string per distilled sentence: the class, or each class's probability for soft labels."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return [str(class_names[c]) for c in labels]
    p = np.exp(labels - labels.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return [" ".join(f"{class_names[c]} {q[c]:.2f}" for c in np.argsort(-q, kind="stable")) for q in p]


def _sentences(x: ArrayLike, labels: ArrayLike, vocab: Sequence[str], embeddings: ArrayLike, class_names: Sequence[str]):
    x = np.asarray(x)
    labels = np.asarray(labels)
    if x.ndim != 5 or x.shape[-1] != 1:
        raise ShapeError(f"a distilled text set has x of shape (steps, n, length, dim, 1); got {x.shape}.")
    if labels.shape[:2] != x.shape[:2]:
        raise ShapeError(f"labels must be (steps, n) classes or (steps, n, classes) logits for x of shape {x.shape}; got {labels.shape}.")
    near = nearest_words(x, vocab, embeddings, 1)
    rows = []
    for s in range(x.shape[0]):
        for i, lab in enumerate(_label_text(labels[s], class_names)):
            rows.append((s, lab, near.words[s, i, :, 0], near.similarity[s, i, :, 0]))
    return rows


def sentences_markdown(x: ArrayLike, labels: ArrayLike, vocab: Sequence[str], embeddings: ArrayLike, class_names: Sequence[str]) -> str:
    """A markdown table of a distilled text set: step, label and each sentence as its tokens' nearest words.

    Args:
      x: distilled sentences ``(steps, n, length, dim, 1)`` (``DistillResult.distilled.x``, or an artifact's ``x``).
      labels: ``(steps, n)`` classes or ``(steps, n, classes)`` label logits (``distilled.labels``, an artifact's ``y``).
      vocab, embeddings: the words to read the tokens as (see :func:`nearest_words`).
      class_names: one name per class.
    """
    lines = ["| step | label | nearest words (mean cosine) |", "|---|---|---|"]
    for s, lab, words, sim in _sentences(x, labels, vocab, embeddings, class_names):
        lines.append(f"| {s + 1} | {lab} | {' '.join(words)} ({sim.mean():.2f}) |")
    return "\n".join(lines)


def sentences_figure(x: ArrayLike, labels: ArrayLike, vocab: Sequence[str], embeddings: ArrayLike, class_names: Sequence[str],
                     *, width: int = 110) -> np.ndarray:
    """Each distilled sentence as its nearest words, coloured by cosine similarity, as an ``(H, W, 3)`` uint8 image.

    Every token is one word of a wrapped line, shaded from grey (cosine 0) to black (cosine 1), so words
    that are far from any real word look faint. Lines are titled with the step and the label (class
    probabilities for soft labels).

    Args:
      x, labels: a distilled text set (see :func:`sentences_markdown`).
      vocab, embeddings: the words to read the tokens as (see :func:`nearest_words`).
      class_names: one name per class.
      width: characters per line before wrapping.
    """
    rows = _sentences(x, labels, vocab, embeddings, class_names)
    layout = []
    for s, lab, words, sim in rows:
        lines, line, used = [], [], 0
        for w, c in zip(words, sim):
            if line and used + len(w) + 1 > width:
                lines.append(line)
                line, used = [], 0
            line.append((used, str(w), float(c)))
            used += len(w) + 1
        lines.append(line)
        layout.append((f"step {s + 1}, {lab}", lines))
    height = sum(1 + len(lines) for _, lines in layout) + 0.5 * len(layout)
    char, line_h = 0.085, 0.2  # inches per character and per line at fontsize 9
    fig = Figure(figsize=(width * char + 0.4, height * line_h + 0.3), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, width * char + 0.4)
    ax.set_ylim(height * line_h + 0.3, 0)
    y = 0.25
    for title, lines in layout:
        ax.text(0.2, y, title, fontsize=9, fontweight="bold", va="center", family="monospace")
        y += line_h
        for line in lines:
            for col, w, c in line:
                shade = 0.6 * (1.0 - float(np.clip(c, 0.0, 1.0)))
                ax.text(0.2 + col * char, y, w, fontsize=9, va="center", family="monospace", color=(shade, shade, shade))
            y += line_h
        y += 0.5 * line_h
    return figure_to_array(fig)
