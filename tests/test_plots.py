"""Plots write readable, reasonably small PNGs; DVC data-point helpers write what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from matplotlib.image import imread

from pipeline.evaluation import plots, plots_data, plots_ecg
from pipeline.evaluation.metrics import confusion_matrix, multilabel_confusion, roc_curve

CLASSES = ["NORM", "AF", "STTC", "MI", "HYP"]
LEADS_12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
MAX_BYTES = 300_000


def _multilabel(n: int = 600) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    y = (rng.random((n, len(CLASSES))) < 0.25).astype(np.int64)
    s = rng.random(y.shape) * 0.7 + 0.3 * y
    y[:, 4] = 0  # a class without positives must not break any plot
    return y, s


def _ecg_like(m: int, c: int, fs_hz: float, seconds: float) -> npt.NDArray[np.float32]:
    """Spiky periodic traces with noise: compress about as badly as real ECG in a PNG."""
    rng = np.random.default_rng(1)
    t = np.arange(int(fs_hz * seconds)) / fs_hz
    beat = np.exp(-(((t % 0.8) - 0.3) ** 2) / 2e-4) - 0.2 * np.exp(-(((t % 0.8) - 0.55) ** 2) / 4e-3)
    x = beat[None, None, :] * rng.uniform(0.3, 1.5, (m, c, 1)) + rng.normal(0, 0.02, (m, c, t.size))
    return x.astype(np.float32)


def _check_png(path: Path, returned: Path) -> None:
    assert returned == path
    size = path.stat().st_size
    assert 2_000 < size < MAX_BYTES, f"{path.name}: {size} bytes"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert np.ptp(image[..., :3]) > 0  # something was drawn


def test_confusion_and_ranking_curve_pngs_are_drawn(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t, p = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    out = plots.plot_confusion(
        confusion_matrix(t, p, 4), ["NORM", "AF", "OTHER", "NOISY"], tmp_path / "cm.png"
    )
    _check_png(tmp_path / "cm.png", out)
    y, s = _multilabel()
    cms = multilabel_confusion(y, s >= 0.5)
    _check_png(tmp_path / "mcm.png", plots.plot_multilabel_confusion(cms, CLASSES, tmp_path / "mcm.png"))
    _check_png(tmp_path / "roc.png", plots.plot_roc(y, s, CLASSES, tmp_path / "roc.png"))
    _check_png(tmp_path / "pr.png", plots.plot_pr(y, s, CLASSES, tmp_path / "pr.png"))


def test_autoencoder_beats_and_score_histogram_are_drawn(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = np.sin(np.linspace(0, 6, 140))[None, None, :] + rng.normal(0, 0.05, (10, 1, 140))
    recon = 0.9 * x
    flags = np.arange(10) % 4 == 0
    err = ((x - recon) ** 2).mean(axis=(1, 2))
    out = plots_ecg.plot_reconstructions(x, recon, flags, err, tmp_path / "rec.png", unit="z-score")
    _check_png(tmp_path / "rec.png", out)
    scores = np.r_[rng.gamma(2, 1, 900), rng.gamma(6, 1, 100)]
    is_anomaly = np.r_[np.zeros(900), np.ones(100)]
    _check_png(
        tmp_path / "hist.png", plots.plot_score_histogram(scores, is_anomaly, 6.0, tmp_path / "hist.png")
    )


@pytest.mark.parametrize(
    ("m", "leads", "fs_hz", "seconds"),
    [(4, LEADS_12, 500.0, 10.0), (4, ["I"], 300.0, 30.0)],
    ids=["ecg12", "lead1_af"],
)
def test_ecg_strips_of_whole_records_stay_small(
    tmp_path: Path, m: int, leads: list[str], fs_hz: float, seconds: float
) -> None:
    x = _ecg_like(m, len(leads), fs_hz, seconds)
    ids = [f"src:{i}" for i in range(m)]
    labels = [["AF"], [], ["NORM", "MI"], ["STTC"]]
    scores = [{"AF": 0.91, "NORM": 0.12, "MI": 0.4}] * m
    path = tmp_path / "strips.png"
    _check_png(path, plots_ecg.plot_ecg_strips(x, fs_hz, leads, ids, labels, scores, path))


def test_strip_title_names_truth_and_top_scores() -> None:
    title = plots_ecg.strip_title(
        "ptbxl:00001", ["AF", "MI"], {"NORM": 0.1, "AF": 0.9, "MI": 0.5, "CD": 0.3}, top=2
    )
    assert title == "ptbxl:00001 | true: AF, MI | scores: AF 0.90, MI 0.50"


# --------------------------------------------------------------------------- DVC data points


def test_roc_rows_are_the_exact_curve_points(tmp_path: Path) -> None:
    y, s = _multilabel()
    rows = plots_data.roc_rows(y, s, CLASSES)
    assert {r["class"] for r in rows} == set(CLASSES[:4])  # HYP has no positives
    fpr, tpr, _ = roc_curve(y[:, 1], s[:, 1])
    af = [r for r in rows if r["class"] == "AF"]
    np.testing.assert_allclose([r["fpr"] for r in af], fpr)
    np.testing.assert_allclose([r["tpr"] for r in af], tpr)
    assert af[0]["threshold"] is None  # the +inf origin point
    path = plots_data.write_datapoints(rows, tmp_path / "roc.json")
    assert json.loads(path.read_text()) == rows


def test_confusion_rows_count_every_cell_in_the_given_class_order() -> None:
    conf = plots_data.confusion_rows([0, 1, 2, 1], [0, 2, 2, 2], ["N", "A", "O"])
    assert [(r["actual"], r["predicted"]) for r in conf[:3]] == [("N", "N"), ("N", "A"), ("N", "O")]
    counts = {(r["actual"], r["predicted"]): r["count"] for r in conf}
    assert counts[("A", "O")] == 2 and counts[("N", "N")] == 1 and counts[("O", "O")] == 1
    assert sum(counts.values()) == 4 and len(conf) == 9  # zero cells are rows too
    assert {(r["actual"], r["actual_order"]) for r in conf} == {("N", 0), ("A", 1), ("O", 2)}


def test_histogram_and_pr_rows(tmp_path: Path) -> None:
    scores = np.random.default_rng(4).random(200)
    flags = np.arange(200) < 30
    hist = plots_data.histogram_rows(scores, flags, threshold=0.8, bins=20)
    assert sum(r["normal"] for r in hist) == 170 and sum(r["anomalous"] for r in hist) == 30
    assert {r["above_threshold"] for r in hist} == {0, 1}
    pr = plots_data.pr_rows([0, 1, 1], [0.1, 0.5, 0.9], ["X"])
    assert pr[-1] == {"recall": 0.0, "precision": 1.0, "threshold": None, "class": "X"}
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        plots_data.write_datapoints(hist, tmp_path / "x.tsv")


# --------------------------------------------------------------------------- ECG paper and axes


def test_twelve_leads_use_the_printout_layout_with_a_lead_ii_rhythm_strip() -> None:
    rows = plots_ecg.paper_layout(LEADS_12, 10.0)
    assert [[s.name for s in r] for r in rows] == [
        ["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"], ["II"],
    ]  # fmt: skip
    assert [(s.start_s, s.end_s) for s in rows[0]] == [(0.0, 2.5), (2.5, 5.0), (5.0, 7.5), (7.5, 10.0)]
    assert (rows[3][0].start_s, rows[3][0].end_s) == (0.0, 10.0)


def test_a_single_lead_30_s_record_is_drawn_whole_in_three_10_s_rows() -> None:
    rows = plots_ecg.paper_layout(["I"], 30.0)
    assert [(r[0].start_s, r[0].end_s) for r in rows] == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


def test_paper_is_25_mm_per_s_and_10_mm_per_mv_with_1_and_5_mm_lines(tmp_path: Path) -> None:
    x = _ecg_like(1, 1, 300.0, 30.0)
    path = plots_ecg.plot_ecg_strips(x, 300.0, ["I"], ["cinc2017:A00001"], [["AF"]], [{"AF": 0.9}],
                                     tmp_path / "s.png")  # fmt: skip
    fig_w, fig_h = imread(path).shape[1] / plots.DPI, imread(path).shape[0] / plots.DPI
    # 30 s in 10 s rows: 250 mm of paper (+ the calibration pulse) wide, 3 rows of 30 mm high
    assert 250 / 25.4 < fig_w < 250 / 25.4 + 1.5 and 90 / 25.4 < fig_h < 90 / 25.4 + 1.5
    fig = plots.new_figure(10, 4)
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(-1, 1)
    plots_ecg._paper_grid(ax)
    assert ax.get_aspect() == 0.4  # 10 mm per mV over 25 mm per s

    # matplotlib leaves out minor ticks that fall on major ones: the 1 mm lines are both together
    def inside(ticks: npt.NDArray[np.float64], low: float, high: float) -> npt.NDArray[np.float64]:
        return np.sort(ticks[(ticks >= low - 1e-9) & (ticks <= high + 1e-9)])

    every_mm_x = inside(np.r_[ax.get_xticks(), ax.get_xticks(minor=True)], 0, 10)
    every_mm_y = inside(np.r_[ax.get_yticks(), ax.get_yticks(minor=True)], -1, 1)
    assert np.allclose(np.diff(every_mm_x), 0.04) and every_mm_x.size == 251  # 1 mm at 25 mm/s
    assert np.allclose(np.diff(inside(ax.get_xticks(), 0, 10)), 0.2)  # 5 mm
    assert np.allclose(np.diff(every_mm_y), 0.1) and every_mm_y.size == 21  # 1 mm at 10 mm/mV
    assert np.allclose(np.diff(inside(ax.get_yticks(), -1, 1)), 0.5)


def test_without_a_rate_strips_and_beats_use_the_sample_index_and_say_so(tmp_path: Path) -> None:
    note = plots_ecg.window_note(140, None)
    assert "140 samples" in note and "sample index" in note
    assert plots_ecg.window_note(9000, 300.0).startswith("model input: 30 s at 300 Hz")
    x = _ecg_like(2, 1, 140.0, 1.0)
    path = tmp_path / "beats.png"
    _check_png(path, plots_ecg.plot_ecg_strips(x, None, ["ECG"], ["ucr:1", "ucr:2"], [[], []], [{}, {}], path,
                                               unit="amplitude"))  # fmt: skip
