"""Evaluation figures as PNG files: confusion matrices, ROC / precision-recall curves, score histograms.

Every ``plot_*`` function draws one figure, writes it to ``path`` (parents created) and returns
the path. Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
``pyplot``: no global state, no GUI backend, nothing fetched from the network, safe in worker
threads. Sizes are kept to a few tens of kB (100 dpi, no embedded fonts). Classes are drawn in
the order given (the model's clinical order, e.g. N, A, O, ~), never sorted by name.

ECG strips and autoencoder beats are in :mod:`pipeline.evaluation.plots_ecg`; the data files
``dvc plots`` renders in :mod:`pipeline.evaluation.plots_data`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.evaluation.metrics import (
    F64,
    as_labels_2d,
    as_scores_2d,
    average_precision_per_class,
    roc_auc_per_class,
)
from pipeline.evaluation.plots_data import pr_rows, roc_rows

DPI = 100
MAX_ANNOTATED_CLASSES = 20  # beyond this, numbers in confusion cells are unreadable


# --------------------------------------------------------------------------- figure plumbing


def new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI)
    return out


def _legend(ax: Axes, n_entries: int) -> None:
    ax.legend(fontsize="small", ncol=1 + n_entries // 12, loc="best", framealpha=0.8)


def plot_roc(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str], path: str | Path, title: str = "ROC"
) -> Path:
    """One ROC curve per class (one-vs-rest) from ``y_true`` ``(N, K)`` / ``scores`` ``(N, K)``;
    the legend gives each class's positives and AUROC. Classes without both outcomes are listed as such."""
    return _curves(roc_rows(y_true, scores, classes), y_true, scores, classes, path, title, roc=True)


def plot_pr(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    classes: Sequence[str],
    path: str | Path,
    title: str = "Precision-recall",
) -> Path:
    """One precision-recall curve per class; the legend gives positives and average precision,
    and a dotted line per class marks its prevalence (the precision of a random scorer)."""
    return _curves(pr_rows(y_true, scores, classes), y_true, scores, classes, path, title, roc=False)


def _curves(
    rows: Sequence[dict[str, Any]], y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str],
    path: str | Path,
    title: str, roc: bool,
) -> Path:  # fmt: skip
    y = as_labels_2d(y_true)
    s = as_scores_2d(scores, y.shape[0])
    areas = roc_auc_per_class(y, s) if roc else average_precision_per_class(y, s)
    fig = new_figure(6.0, 5.2)
    ax = fig.add_subplot()
    xk, yk = ("fpr", "tpr") if roc else ("recall", "precision")
    for k, name in enumerate(classes):
        pts = [r for r in rows if r["class"] == name]
        n_pos = int(y[:, k].sum())
        if not pts:
            ax.plot([], [], " ", label=f"{name}: n+={n_pos}, undefined")
            continue
        xs = np.array([p[xk] for p in pts])
        ys = np.array([p[yk] for p in pts])
        line = ax.plot(xs, ys, lw=1.4)[0]
        line.set_label(f"{name}: n+={n_pos}, {'AUROC' if roc else 'AP'} {areas[k]:.3f}")
        if not roc:
            ax.axhline(n_pos / max(len(y), 1), color=line.get_color(), ls=":", lw=0.8)
    if roc:
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate" if roc else "recall (sensitivity)",
           ylabel="true positive rate (sensitivity)" if roc else "precision (PPV)", title=title)  # fmt: skip
    ax.grid(True, lw=0.3)
    _legend(ax, len(classes))
    return save_figure(fig, path)


# --------------------------------------------------------------------------- confusion matrices


def plot_confusion(
    counts: npt.ArrayLike, labels: Sequence[str], path: str | Path, title: str = "Confusion matrix"
) -> Path:
    """Single-label confusion ``(K, K)`` (row = true, column = predicted): counts and row-normalised."""
    cm = np.asarray(counts, dtype=np.int64)
    if cm.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix {cm.shape} does not match {len(labels)} labels")
    totals = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)
    side = min(4.0 + 0.35 * len(labels), 14.0)
    fig = new_figure(2 * side + 1, side)
    axes = fig.subplots(1, 2)
    _confusion_panel(axes[0], cm.astype(np.float64), labels, "counts", "{:.0f}")
    _confusion_panel(axes[1], norm, labels, "normalised by true class (recall on the diagonal)", "{:.2f}")
    fig.suptitle(title)
    return save_figure(fig, path)


def _confusion_panel(ax: Axes, values: F64, labels: Sequence[str], subtitle: str, fmt: str) -> None:
    image = ax.imshow(values, cmap="Blues", interpolation="nearest")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=90 if len(labels) > 6 else 0, fontsize="small")
    ax.set_yticks(ticks, labels, fontsize="small")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(subtitle, fontsize="medium")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    if len(labels) <= MAX_ANNOTATED_CLASSES:
        _annotate_cells(ax, values, fmt)


def _annotate_cells(ax: Axes, values: F64, fmt: str) -> None:
    top = float(values.max()) if values.size else 0.0
    size = "medium" if values.shape[0] <= 6 else "small" if values.shape[0] <= 12 else "x-small"
    for (i, j), v in np.ndenumerate(values):
        colour = "white" if top > 0 and v > top / 2 else "black"
        ax.text(j, i, fmt.format(v), ha="center", va="center", color=colour, fontsize=size)


def plot_multilabel_confusion(
    matrices: npt.ArrayLike, classes: Sequence[str], path: str | Path, title: str = "Per-class confusion"
) -> Path:
    """One 2x2 ``[[tn, fp], [fn, tp]]`` panel per class from ``(K, 2, 2)`` counts (multi-label tasks)."""
    cms = np.asarray(matrices, dtype=np.int64)
    if cms.shape != (len(classes), 2, 2):
        raise ValueError(f"need ({len(classes)}, 2, 2) counts, got {cms.shape}")
    cols = min(6, max(1, len(classes)))
    rows = max(1, math.ceil(len(classes) / cols))
    fig = new_figure(2.2 * cols, 2.2 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name, cm in zip(axes, classes, cms, strict=False):
        ax.imshow(cm, cmap="Blues", interpolation="nearest")
        _annotate_cells(ax, cm.astype(np.float64), "{:.0f}")
        ax.set_xticks([0, 1], ["pred 0", "pred 1"], fontsize="x-small")
        ax.set_yticks([0, 1], ["true 0", "true 1"], fontsize="x-small")
        ax.set_title(name, fontsize="small")
    for ax in axes[len(classes) :]:
        ax.set_axis_off()
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_score_histogram(
    scores: npt.ArrayLike,
    is_anomaly: npt.ArrayLike,
    threshold: float,
    path: str | Path,
    bins: int = 50,
    title: str = "Anomaly scores",
) -> Path:
    """Histograms of the scores ``(N,)`` of normal and anomalous records, with the threshold line.

    Bins are shared and densities normalised per group so a small anomalous group stays visible;
    the counts are in the legend.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    flags = np.asarray(is_anomaly).astype(np.bool_).ravel()
    if s.size != flags.size:
        raise ValueError(f"{s.size} scores but {flags.size} flags")
    edges = np.histogram_bin_edges(np.append(s, threshold), bins=bins)
    fig = new_figure(7.0, 4.0)
    ax = fig.add_subplot()
    for mask, name in ((~flags, "normal"), (flags, "anomalous")):
        if mask.any():
            ax.hist(
                s[mask], bins=edges.tolist(), density=True, alpha=0.55, label=f"{name} (n={int(mask.sum())})"
            )
    ax.axvline(threshold, color="k", ls="--", lw=1.5, label=f"threshold {threshold:.3g}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.grid(True, lw=0.3)
    _legend(ax, 3)
    return save_figure(fig, path)
