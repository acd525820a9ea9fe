"""Figures of distilled sets: images per inner step with their learned step sizes (Wang et al. 2018,
Figs. 2 and 3), soft labels as each image's top-3 classes, and accuracy against the number of
distilled images (Sucholutsky & Schonlau 2021, Fig. 3), and a run's training curve. Each returns an ``(H, W, 3)`` uint8 array
rendered with matplotlib's Agg canvas (no pyplot)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from jaxviz.distill.core import DistillResult
from jaxviz.errors import JaxvizError
from jaxviz.viz import figure_to_array, image_grid


def _shown(x: np.ndarray) -> np.ndarray:
    """Images scaled to [0, 1] by the 1st and 99th percentile of the whole set (one scale for every image)."""
    lo, hi = np.percentile(x, [1, 99])
    return np.clip((x - lo) / (hi - lo + 1e-12), 0, 1)


def _top3(logits: np.ndarray, class_names: Sequence[str]) -> list[str]:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return [f"{class_names[c]} {p[c]:.2f}" for c in np.argsort(-p, kind="stable")[:3]]


def distilled_figure(result: DistillResult, class_names: Sequence[str], *, scale: int = 3) -> np.ndarray:
    """Distilled images, one row per inner step, titled with the step sizes learned for it in each epoch.

    Each image is labelled with its class (hard labels) or its most likely class (soft labels; see
    :func:`soft_label_figure` for the top three). Step ``s`` is applied in epoch ``e`` with step size
    ``lrs[e * steps + s]``, so the title of row ``s`` lists ``lrs[s], lrs[steps + s], ...``.
    """
    d = result.distilled
    x = _shown(np.asarray(d.x))
    steps, n = x.shape[:2]
    labels = np.asarray(d.labels)
    classes = labels.argmax(-1) if labels.ndim == 3 else labels
    lrs = np.asarray(d.lrs).reshape(-1, steps)  # (epochs, steps)
    rows = [image_grid(x[s], ncols=n, labels=[str(class_names[c])[:9] for c in classes[s]], scale=scale) for s in range(steps)]
    h, w = rows[0].shape[:2]
    fig = Figure(figsize=(w / 80, steps * (h / 80 + 0.3)), dpi=80)
    for s, row in enumerate(rows):
        ax = fig.add_subplot(steps, 1, s + 1)
        ax.imshow(row)
        ax.set_axis_off()
        ax.set_title(f"step {s + 1}, step size in each epoch: " + ", ".join(f"{v:.3g}" for v in lrs[:, s]), fontsize=9)
    fig.tight_layout(pad=0.3)
    return figure_to_array(fig)


def soft_label_figure(result: DistillResult, class_names: Sequence[str], *, ncols: int | None = None) -> np.ndarray:
    """Each distilled image with its learned label distribution's top-3 classes and probabilities (SLDD)."""
    labels = np.asarray(result.distilled.labels)
    if labels.ndim != 3:
        raise JaxvizError("soft_label_figure needs a soft-label run (DistillConfig(soft_labels=True)); this one has hard labels.")
    x = _shown(np.asarray(result.distilled.x))
    flat = x.reshape(-1, *x.shape[2:])
    logits = labels.reshape(-1, labels.shape[-1])
    ncols = ncols or min(len(flat), 10)
    nrows = -(-len(flat) // ncols)
    fig = Figure(figsize=(1.3 * ncols, 1.9 * nrows), dpi=80)
    for i, (img, lg) in enumerate(zip(flat, logits)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title("\n".join(_top3(lg, class_names)), fontsize=7)
    fig.tight_layout(pad=0.3)
    return figure_to_array(fig)


def accuracy_curve(runs: Sequence[Mapping], *, title: str = "test accuracy vs distilled images") -> np.ndarray:
    """Test accuracy against the number of images, one line per method (SLDD Fig. 3).

    Args:
      runs: dicts with ``"images"`` (count), ``"accuracy"`` (in [0, 1]), optional ``"std"`` (error
        bars) and ``"method"`` (line name; default ``"distilled"``), e.g. :class:`Table1` rows or
        several runs' summaries.
    """
    if not runs:
        raise JaxvizError("accuracy_curve needs at least one run.")
    fig = Figure(figsize=(5, 3.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    methods = dict.fromkeys(r.get("method", "distilled") for r in runs)
    for m in methods:
        pts = sorted((r["images"], r["accuracy"], r.get("std", 0.0)) for r in runs if r.get("method", "distilled") == m)
        n, acc, std = (np.asarray(v, float) for v in zip(*pts))
        ax.errorbar(n, 100 * acc, yerr=100 * std, marker="o", capsize=3, label=m)
    ax.set_xscale("log")
    ax.set_xlabel("distilled images")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_to_array(fig)


def training_curve(result: DistillResult, *, window: int = 50) -> np.ndarray:
    """The outer loss and real-minibatch accuracy of a run (moving average over ``window`` iterations)
    and, when the run was given a test split, its test accuracy every ``eval_every`` iterations."""
    h = result.history
    if not h or len(h.get("loss", ())) == 0:
        raise JaxvizError("this run has no training history (it was restored complete from its checkpoint); "
                          "the curve covers the iterations run in one call.")
    n = len(h["loss"])
    steps = (result.resumed_from or 0) + np.arange(1, n + 1)
    w = max(1, min(window, n))

    def smooth(v):
        return np.convolve(np.asarray(v, float), np.ones(w) / w, mode="valid")

    fig = Figure(figsize=(7, 3), dpi=100)
    loss_ax, acc_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    loss_ax.plot(steps[w - 1:], smooth(h["loss"]))
    loss_ax.set(xlabel="outer iteration", ylabel="outer loss (real minibatch)")
    acc_ax.plot(steps[w - 1:], 100 * smooth(h["acc"]), label="real minibatch")
    if result.test_history is not None:
        acc_ax.plot(result.test_history["step"], 100 * result.test_history["test_accuracy"], "o-", label="test split")
    acc_ax.set(xlabel="outer iteration", ylabel="accuracy after the inner run (%)")
    acc_ax.legend(fontsize=7)
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_to_array(fig)


def _bars(ax, groups: Sequence[str], series: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> None:
    width = 0.8 / max(1, len(series))
    pos = np.arange(len(groups))
    for i, (name, (means, stds)) in enumerate(series.items()):
        ax.bar(pos + (i - (len(series) - 1) / 2) * width, 100 * np.asarray(means), width, yerr=100 * np.asarray(stds), capsize=3,
               label=name)
    ax.set_xticks(pos, groups, fontsize=7)
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)


def adaptation_figure(rows: Sequence[Mapping], *, title: str = "adapting pretrained networks") -> np.ndarray:
    """Test accuracy (mean and std over held-out networks) of each adaptation method (Wang et al. 2018, Fig. 1b)."""
    if not rows:
        raise JaxvizError("adaptation_figure needs at least one row (Adaptation.rows).")
    fig = Figure(figsize=(1.3 * len(rows) + 1.5, 3.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    names = [f"{r['method']}\n({r['images']} images)".replace(" (", "\n(") for r in rows]
    _bars(ax, names, {"test accuracy": ([r["accuracy"] for r in rows], [r["std"] for r in rows])})
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return figure_to_array(fig)


def poisoning_figure(rows: Sequence[Mapping], attack_names: tuple[str, str], *, title: str | None = None) -> np.ndarray:
    """Fraction of the attacked class sent to the target class and accuracy on the other classes, per row (Fig. 1c)."""
    if not rows:
        raise JaxvizError("poisoning_figure needs at least one row (Poisoning.rows).")
    a, b = attack_names
    fig = Figure(figsize=(1.6 * len(rows) + 2, 3.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    _bars(ax, [r["method"].replace(" (", "\n(").replace(" labelled", "\nlabelled") for r in rows],
          {f"{a} classified as {b}": ([r["fraction"] for r in rows], [r["fraction_std"] for r in rows]),
           "accuracy on other classes": ([r["others"] for r in rows], [r["others_std"] for r in rows])})
    ax.set_ylabel("% of test images")
    ax.set_title(title or f"poisoning {a} -> {b} in one step (held-out networks)", fontsize=10)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    return figure_to_array(fig)
