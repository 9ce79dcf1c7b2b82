"""ECG pictures: strips on standard ECG paper, and autoencoder beats over their sample index.

Paper (:func:`plot_ecg_strips` when the rate is known and the signal is in mV): 25 mm/s and
10 mm/mV, 1 mm (0.04 s, 0.1 mV) minor and 5 mm (0.2 s, 0.5 mV) major lines, a 1 mV × 0.2 s
calibration pulse at the start of each row, and the figure sized so that the millimetres are
real millimetres when printed at 100 %. The standard 12 leads are laid out as on a 12-lead
printout: 3 rows × 4 columns of a quarter of the record each (I aVR V1 V4 / II aVL V2 V5 /
III aVF V3 V6) and a lead II rhythm strip over the whole record. Any other lead set: every lead
over the whole record, wrapped into rows of at most 10 s. The title says how much of the
recording is drawn: the whole model input, which is the window the model saw.

A signal without a known rate (UCR beats) is drawn over its sample index with the units given:
no time axis is made up.

Own matplotlib, compared with ``ecg_plot`` 0.3.0 (the 2020 ``ecg_plot`` rewritten SVG-first; has
the layouts but is not a project dependency and builds its own figure) and ``neurokit2``
(``ecg_plot`` draws a processed-signal dashboard, not calibrated paper): ~150 lines here keep
``Figure``-only drawing (no pyplot, thread-safe) and one dependency fewer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MultipleLocator

from pipeline.evaluation.metrics import F64
from pipeline.evaluation.plots import new_figure, save_figure

STANDARD_12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
PRINTOUT_ROWS = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD = "II"
MM_PER_S, MM_PER_MV = 25.0, 10.0
ROW_MV = 3.0  # 30 mm between row baselines, as on a printout
ROW_SECONDS = 10.0  # single-lead strips wrap after 10 s (25 cm of paper)
CAL_S = 0.4  # paper left of t = 0 for the calibration pulse
MM_PER_IN = 25.4


@dataclass(frozen=True)
class Segment:
    """Lead ``lead`` (channel index) from ``start_s`` to ``end_s``, drawn from ``x0_s`` in its row."""

    lead: int
    name: str
    start_s: float
    end_s: float
    x0_s: float


def paper_layout(leads: Sequence[str], duration_s: float) -> list[list[Segment]]:
    """Rows of segments: the 12-lead printout for the standard leads, else each lead wrapped at 10 s."""
    index = {name: k for k, name in enumerate(leads)}
    if set(STANDARD_12) <= set(index):
        q = duration_s / 4
        rows = [
            [Segment(index[n], n, c * q, (c + 1) * q, c * q) for c, n in enumerate(r)] for r in PRINTOUT_ROWS
        ]
        return [*rows, [Segment(index[RHYTHM_LEAD], RHYTHM_LEAD, 0.0, duration_s, 0.0)]]
    rows = []
    for k, name in enumerate(leads):
        starts = np.arange(0.0, duration_s, ROW_SECONDS)
        rows += [[Segment(k, name, float(a), min(float(a) + ROW_SECONDS, duration_s), 0.0)] for a in starts]
    return rows


def strip_title(record_id: str, true_labels: Sequence[str], scores: Mapping[str, float], top: int = 3) -> str:
    """``"<id> | true: A, B | scores: X 0.91, Y 0.40"`` with the ``top`` highest scores."""
    best = sorted(scores.items(), key=lambda kv: -kv[1])[:top]
    truth = ", ".join(true_labels) if true_labels else "(none)"
    shown = ", ".join(f"{k} {v:.2f}" for k, v in best)
    return f"{record_id} | true: {truth} | scores: {shown}" if shown else f"{record_id} | true: {truth}"


def window_note(n_samples: int, fs_hz: float | None, crop: str = "start") -> str:
    """What part of the recording the picture shows, for the figure title."""
    if not fs_hz:
        return f"model input: all {n_samples} samples (sampling rate not recorded: x is the sample index)"
    # Windowed profiles (holter) cut several windows per recording: name the rule, not an offset.
    return (f"model input: {n_samples / fs_hz:g} s at {fs_hz:g} Hz, the whole window the model saw "
            f"(longer recordings: crop {crop} or the profile's windows); 25 mm/s, 10 mm/mV")  # fmt: skip


def plot_ecg_strips(
    signals: npt.ArrayLike,
    fs_hz: float | None,
    leads: Sequence[str],
    record_ids: Sequence[str],
    true_labels: Sequence[Sequence[str]],
    scores: Sequence[Mapping[str, float]],
    path: str | Path,
    max_records: int = 4,
    unit: str = "mV",
    crop: str = "start",
) -> Path:
    """A few records, whole, one panel each, titled with their true labels and top scores.

    ``signals`` ``(M, C, T)`` (or ``(M, T)``) in ``unit`` at ``fs_hz``; the first ``max_records``
    are drawn. On ECG paper when ``fs_hz`` is known and ``unit`` is mV, else over the sample index.
    """
    x = np.asarray(signals, dtype=np.float64)
    x = x[:, None, :] if x.ndim == 2 else x
    m, c, t_len = x.shape
    if not (len(leads) == c and len(record_ids) == len(true_labels) == len(scores) == m):
        raise ValueError(f"signals {x.shape}: need {c} lead names and {m} ids, label lists and score maps")
    m = min(m, max_records)
    on_paper = bool(fs_hz) and unit == "mV"
    layout = paper_layout(leads, t_len / fs_hz) if on_paper and fs_hz else []
    width_in, panel_in = _panel_size(layout, c, t_len, fs_hz if on_paper else None)
    fig = new_figure(width_in, m * panel_in + 0.5)
    axes = fig.subplots(m, 1, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        if on_paper and fs_hz:
            _draw_paper(ax, x[i], fs_hz, layout)
        else:
            _draw_samples(ax, x[i], leads, unit)
        ax.set_title(strip_title(record_ids[i], true_labels[i], scores[i]), fontsize="small", loc="left")
    fig.suptitle(window_note(t_len, fs_hz, crop), fontsize="small")
    return save_figure(fig, path)


def _panel_size(layout: list[list[Segment]], c: int, t_len: int, fs_hz: float | None) -> tuple[float, float]:
    """(width, height) in inches of one record's panel: true scale on paper, else a fixed size."""
    if not fs_hz:
        return 9.0, 1.4 + 0.5 * c
    span_s = CAL_S + max(s.x0_s + s.end_s - s.start_s for row in layout for s in row)
    return span_s * MM_PER_S / MM_PER_IN + 0.8, len(layout) * ROW_MV * MM_PER_MV / MM_PER_IN + 0.6


def _draw_paper(ax: Axes, x: F64, fs_hz: float, layout: list[list[Segment]]) -> None:
    """``x`` ``(C, T)`` mV drawn row by row on ECG paper (row ``r``'s baseline at ``-r * ROW_MV``)."""
    span = 0.0
    for r, row in enumerate(layout):
        base = -ROW_MV * r
        _calibration_pulse(ax, base)
        for seg in row:
            a, b = int(round(seg.start_s * fs_hz)), int(round(seg.end_s * fs_hz))
            t = seg.x0_s + np.arange(b - a) / fs_hz
            # Unsmoothed 1-px traces: anti-aliased ones make a 12-lead PNG several times larger.
            ax.plot(t, x[seg.lead, a:b] + base, lw=0.7, color="k", antialiased=False)
            ax.text(seg.x0_s + 0.05, base + 0.9, seg.name, fontsize="x-small", va="bottom")
            span = max(span, seg.x0_s + seg.end_s - seg.start_s)
    ax.set_xlim(-CAL_S, span)
    ax.set_ylim(-ROW_MV * (len(layout) - 0.5), ROW_MV / 2)
    _paper_grid(ax)


def _calibration_pulse(ax: Axes, base: float) -> None:
    """The 1 mV, 0.2 s standardisation pulse left of the trace (10 mm tall, 5 mm wide)."""
    xs = [-0.35, -0.3, -0.3, -0.1, -0.1, -0.05]
    ys = [base, base, base + 1.0, base + 1.0, base, base]
    ax.plot(xs, ys, lw=0.7, color="k", antialiased=False)


def _paper_grid(ax: Axes) -> None:
    """1 mm and 5 mm lines at 25 mm/s and 10 mm/mV; x labelled in whole seconds, y unlabelled."""
    ax.set_aspect(MM_PER_MV / MM_PER_S)  # 1 mV spans 10 mm while 1 s spans 25 mm
    ax.xaxis.set_major_locator(MultipleLocator(0.2))
    ax.xaxis.set_minor_locator(MultipleLocator(0.04))
    ax.yaxis.set_major_locator(MultipleLocator(0.5))
    ax.yaxis.set_minor_locator(MultipleLocator(0.1))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}" if abs(v - round(v)) < 1e-6 else ""))
    ax.tick_params(which="both", length=0, labelsize="x-small")
    ax.tick_params(axis="y", labelleft=False)
    ax.grid(True, which="minor", color="#f5c6c6", lw=0.3)
    ax.grid(True, which="major", color="#e08a8a", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel("time in row (s); 1 small square = 0.04 s × 0.1 mV", fontsize="x-small")


def _draw_samples(ax: Axes, x: F64, leads: Sequence[str], unit: str) -> None:
    """``x`` ``(C, T)`` over the sample index, one line per lead (no rate: no time axis)."""
    idx = np.arange(x.shape[1])
    for k, name in enumerate(leads):
        ax.plot(idx, x[k], lw=1.0, label=name)
    ax.set_xlim(0, max(idx.size - 1, 1))
    ax.set_xlabel("sample")
    ax.set_ylabel(unit)
    ax.grid(True, lw=0.3)
    if len(leads) > 1:
        ax.legend(fontsize="x-small")


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
    n_each: int = 3,
    unit: str = "amplitude",
) -> Path:
    """Autoencoder input vs reconstruction for a few normal (top row) and anomalous (bottom) beats.

    ``inputs``/``outputs`` ``(M, L)`` or ``(M, C, L)`` (first channel drawn), ``is_anomaly``
    ``(M,)``, ``scores`` ``(M,)`` reconstruction errors. x is the sample index, always: a beat is
    the model's ``L`` samples, whatever rate it was recorded at. ``unit`` labels the y axis.
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
    idx = np.arange(x.shape[2], dtype=np.float64)
    fig = new_figure(3.2 * n_each, 5.2)
    axes = fig.subplots(2, n_each, squeeze=False)
    used = [0, 0]  # panels filled in the normal (0) and anomalous (1) rows
    for i in picks:
        row = int(flags[i])
        ax = axes[row, used[row]]
        used[row] += 1
        ax.plot(idx, x[i, 0], lw=1.2, label="input")
        ax.plot(idx, r[i, 0], lw=1.2, ls="--", label="reconstruction")
        ax.set(xlabel="sample", ylabel=unit, xlim=(0, idx[-1]))
        ax.grid(True, lw=0.3)
        ax.set_title(f"{'anomalous' if flags[i] else 'normal'} #{i}, error {err[i]:.3g}", fontsize="small")
    for ax in axes.ravel():
        if not ax.lines:
            ax.set_axis_off()
    next(ax for ax in axes.ravel() if ax.lines).legend(fontsize="x-small")
    fig.suptitle(f"Autoencoder reconstructions ({x.shape[2]} samples per beat)")
    return save_figure(fig, path)


def _as_batch(x: npt.ArrayLike) -> F64:
    """``(M, L)`` or ``(M, C, L)`` → ``(M, C, L)`` float64."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, None, :]
    if a.ndim != 3:
        raise ValueError(f"expected (M, L) or (M, C, L), got shape {a.shape}")
    return a
