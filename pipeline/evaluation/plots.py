"""Evaluation plots as PNG files, plus the data files DVC's own plots render.

Every ``plot_*`` function draws one figure, writes it to ``path`` (parents created) and returns
the path. Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
``pyplot``: no global state, no GUI backend, nothing fetched from the network, safe in worker
threads. Sizes are kept to a few tens of kB (100 dpi, no embedded fonts).

The ``*_rows`` helpers return lists of flat dicts (every exact curve point in long format with a
``class`` column, as dvc.yaml's ``curve_by_class`` template reads them) and :func:`write_datapoints`
writes them as CSV or JSON for ``dvc plots show|diff``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.evaluation.jsonable import json_float
from pipeline.evaluation.metrics import (
    F64,
    I64,
    as_labels_2d,
    as_scores_2d,
    precision_recall_curve,
    roc_curve,
)

DPI = 100
MAX_ANNOTATED_CLASSES = 20  # beyond this, numbers in confusion cells are unreadable
Row = dict[str, Any]


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


def _pair(y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str]) -> tuple[Any, F64]:
    y = as_labels_2d(y_true)
    s = as_scores_2d(scores, y.shape[0])
    if s.shape != y.shape or len(classes) != y.shape[1]:
        raise ValueError(f"labels {y.shape}, scores {s.shape} and {len(classes)} classes disagree")
    return y, s


# --------------------------------------------------------------------------- ranking curves


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
    for (i, j), v in np.ndenumerate(values):
        colour = "white" if top > 0 and v > top / 2 else "black"
        ax.text(j, i, fmt.format(v), ha="center", va="center", color=colour, fontsize="x-small")


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


# --------------------------------------------------------------------------- training curves


# --------------------------------------------------------------------------- autoencoder


def _as_batch(x: npt.ArrayLike) -> F64:
    """``(M, L)`` or ``(M, C, L)`` → ``(M, C, L)`` float64."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, None, :]
    if a.ndim != 3:
        raise ValueError(f"expected (M, L) or (M, C, L), got shape {a.shape}")
    return a


def _pick_examples(is_anomaly: npt.NDArray[np.bool_], n_each: int) -> list[int]:
    """The first ``n_each`` normal and the first ``n_each`` anomalous indices (deterministic)."""
    normal = np.flatnonzero(~is_anomaly)[:n_each]
    anomalous = np.flatnonzero(is_anomaly)[:n_each]
    return [int(i) for i in np.concatenate([normal, anomalous])]


def plot_reconstructions(
    inputs: npt.ArrayLike,
    outputs: npt.ArrayLike,
    is_anomaly: npt.ArrayLike,
    scores: npt.ArrayLike,
    path: str | Path,
    fs_hz: float | None = None,
    n_each: int = 3,
    unit: str = "mV",
) -> Path:
    """Autoencoder input vs reconstruction for a few normal and anomalous examples.

    ``inputs``/``outputs`` ``(M, L)`` or ``(M, C, L)`` (first channel drawn), ``is_anomaly``
    ``(M,)``, ``scores`` ``(M,)`` reconstruction errors. x in seconds when ``fs_hz`` is given,
    else samples; ``unit`` labels the y axis (UCR beats are z-normalised: pass "z"). Top row
    normal examples, bottom row anomalous.
    """
    x, r = _as_batch(inputs), _as_batch(outputs)
    flags = np.asarray(is_anomaly).astype(np.bool_).ravel()
    err = np.asarray(scores, dtype=np.float64).ravel()
    if x.shape != r.shape or flags.size != x.shape[0] or err.size != x.shape[0]:
        raise ValueError(
            f"inputs {x.shape}, outputs {r.shape}, flags {flags.size}, scores {err.size} disagree"
        )
    picks = _pick_examples(flags, n_each)
    if not picks:
        raise ValueError("no examples to plot")
    t = np.arange(x.shape[2]) / fs_hz if fs_hz else np.arange(x.shape[2], dtype=np.float64)
    fig = new_figure(3.2 * n_each, 5.2)
    axes = fig.subplots(2, n_each, squeeze=False)
    used = [0, 0]  # panels filled in the normal (0) and anomalous (1) rows
    for i in picks:
        row = int(flags[i])
        ax = axes[row, used[row]]
        used[row] += 1
        _draw_reconstruction(ax, t, x[i, 0], r[i, 0], unit, "time (s)" if fs_hz else "sample")
        ax.set_title(f"{'anomalous' if flags[i] else 'normal'} #{i}, score {err[i]:.3g}", fontsize="small")
    drawn = [ax for ax in axes.ravel() if ax.lines]
    for ax in axes.ravel():
        if not ax.lines:
            ax.set_axis_off()
    drawn[0].legend(fontsize="x-small")
    fig.suptitle("Autoencoder reconstructions")
    return save_figure(fig, path)


def _draw_reconstruction(ax: Axes, t: F64, x: F64, r: F64, unit: str, xlabel: str) -> None:
    ax.plot(t, x, lw=1.2, label="input")
    ax.plot(t, r, lw=1.2, ls="--", label="reconstruction")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(unit)
    ax.grid(True, lw=0.3)


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


# --------------------------------------------------------------------------- ECG strips


def strip_title(record_id: str, true_labels: Sequence[str], scores: Mapping[str, float], top: int = 3) -> str:
    """``"<id> | true: A, B | scores: X 0.91, Y 0.40"`` with the ``top`` highest scores."""
    best = sorted(scores.items(), key=lambda kv: -kv[1])[:top]
    truth = ", ".join(true_labels) if true_labels else "(none)"
    shown = ", ".join(f"{k} {v:.2f}" for k, v in best)
    return f"{record_id} | true: {truth} | scores: {shown}" if shown else f"{record_id} | true: {truth}"


def plot_ecg_strips(
    signals: npt.ArrayLike,
    fs_hz: float,
    leads: Sequence[str],
    record_ids: Sequence[str],
    true_labels: Sequence[Sequence[str]],
    scores: Sequence[Mapping[str, float]],
    path: str | Path,
    max_seconds: float = 10.0,
    lead_spacing_mv: float = 3.0,
    max_records: int = 4,
) -> Path:
    """A few ECG records, one panel each, titled with their true labels and top scores.

    ``signals`` ``(M, C, T)`` in mV at ``fs_hz``; the first ``max_records`` records and the first
    ``max_seconds`` of each are drawn (4 x 12 leads x 10 s at 500 Hz is about 150 kB). One lead:
    mV on the y axis. Several leads: stacked top to bottom, lead ``c`` drawn at
    ``-c * lead_spacing_mv`` mV with its name as the tick label, and a 1 mV calibration bar.
    """
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, None, :]
    m, c, t_len = x.shape
    if not (len(leads) == c and len(record_ids) == len(true_labels) == len(scores) == m):
        raise ValueError(f"signals {x.shape}: need {c} lead names and {m} ids, label lists and score maps")
    n = min(t_len, int(round(max_seconds * fs_hz)))
    m = min(m, max_records)
    t = np.arange(n) / fs_hz
    fig = new_figure(11.0, m * (1.6 + 0.45 * c if c > 1 else 2.2) + 0.3)
    axes = fig.subplots(m, 1, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        _draw_strip(ax, t, x[i, :, :n], leads, lead_spacing_mv)
        ax.set_title(strip_title(record_ids[i], true_labels[i], scores[i]), fontsize="small", loc="left")
    return save_figure(fig, path)


def _draw_strip(ax: Axes, t: F64, x: F64, leads: Sequence[str], spacing_mv: float) -> None:
    """Draw ``(C, n)`` mV traces on one axes (stacked when C > 1)."""
    c = x.shape[0]
    offsets = -spacing_mv * np.arange(c)
    for k in range(c):
        # Unsmoothed 1-px traces: anti-aliased ones make a 12-lead PNG four times larger.
        ax.plot(t, x[k] + offsets[k], lw=0.8, color="k", antialiased=False)
    ax.set_xlim(0, t[-1] if t.size else 1)
    ax.set_xlabel("time (s)")
    span = float(t[-1]) if t.size else 0.0
    ax.set_xticks(np.arange(0, span + 1e-9, 1.0 if span <= 15 else 2.0 if span <= 30 else 5.0))
    ax.grid(True, which="major", lw=0.3, color="tab:red", alpha=0.5)
    if c == 1:
        ax.set_ylabel(f"{leads[0]} (mV)")
        return
    ax.set_yticks(offsets, list(leads), fontsize="x-small")
    ax.set_ylabel(f"mV, leads {spacing_mv:g} mV apart")
    ax.set_ylim(offsets[-1] - spacing_mv / 2, spacing_mv / 2)
    t0 = float(t[-1]) * 0.995 if t.size else 0.0
    ax.plot([t0, t0], [spacing_mv / 2 - 1.1, spacing_mv / 2 - 0.1], color="tab:blue", lw=2)
    ax.text(t0, spacing_mv / 2 - 0.6, "1 mV ", ha="right", va="center", fontsize="x-small", color="tab:blue")


# --------------------------------------------------------------------------- DVC plot data


def _class_pairs(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str]
) -> list[tuple[str, Any, F64]]:
    y, s = _pair(y_true, scores, classes)
    return [(name, y[:, k], s[:, k]) for k, name in enumerate(classes)]


def roc_rows(y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str]) -> list[Row]:
    """Exact ROC points, long format: ``{fpr, tpr, threshold, class}`` (threshold None at the origin).

    Classes lacking positives or negatives contribute no rows; collinear points are dropped.
    """
    rows: list[Row] = []
    for name, y, s in _class_pairs(y_true, scores, classes):
        if y.all() or not y.any():
            continue
        fpr, tpr, thr = roc_curve(y, s)
        rows += [
            {"fpr": float(a), "tpr": float(b), "threshold": json_float(float(c)), "class": name}
            for a, b, c in zip(fpr, tpr, thr, strict=True)
        ]
    return rows


def pr_rows(y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str]) -> list[Row]:
    """Exact precision-recall points, long format: ``{recall, precision, threshold, class}``.

    The final (recall 0, precision 1) point has threshold None; classes without positives are skipped.
    """
    rows: list[Row] = []
    for name, y, s in _class_pairs(y_true, scores, classes):
        if not y.any():
            continue
        precision, recall, thr = precision_recall_curve(y, s)
        thr_all = [json_float(float(v)) for v in thr] + [None]
        rows += [
            {"recall": float(r), "precision": float(p), "threshold": t, "class": name}
            for r, p, t in zip(recall, precision, thr_all, strict=True)
        ]
    return rows


def confusion_rows(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, classes: Sequence[str]) -> list[Row]:
    """One ``{actual, predicted}`` row per record (class names), for DVC's ``confusion`` templates."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    return [{"actual": classes[int(a)], "predicted": classes[int(b)]} for a, b in zip(t, p, strict=True)]


def histogram_rows(
    scores: npt.ArrayLike, is_anomaly: npt.ArrayLike, threshold: float, bins: int = 50
) -> list[Row]:
    """Score histogram, wide format: ``{score (bin centre), normal, anomalous, above_threshold}`` counts."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    flags = np.asarray(is_anomaly).astype(np.bool_).ravel()
    edges = np.histogram_bin_edges(np.append(s, threshold), bins=bins)
    normal: I64 = np.histogram(s[~flags], bins=edges)[0]
    anomalous: I64 = np.histogram(s[flags], bins=edges)[0]
    centres = (edges[:-1] + edges[1:]) / 2
    return [
        {"score": float(c), "normal": int(a), "anomalous": int(b), "above_threshold": int(c >= threshold)}
        for c, a, b in zip(centres, normal, anomalous, strict=True)
    ]


def write_datapoints(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as ``.csv`` (header from the first row, None → empty) or ``.json`` (a list)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".json":
        out.write_text(json.dumps(list(rows), indent=1) + "\n")
        return out
    if out.suffix != ".csv":
        raise ValueError(f"data points go to .csv or .json, not {out.name}")
    fields = list(rows[0]) if rows else []
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out
