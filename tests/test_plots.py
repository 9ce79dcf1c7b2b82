"""Plots write readable, reasonably small PNGs; DVC data-point helpers write what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from matplotlib.image import imread

from pipeline.evaluation import plots
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


def test_confusion_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t, p = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    out = plots.plot_confusion(
        confusion_matrix(t, p, 4), ["NORM", "AF", "OTHER", "NOISY"], tmp_path / "cm.png"
    )
    _check_png(tmp_path / "cm.png", out)
    y, s = _multilabel()
    cms = multilabel_confusion(y, s >= 0.5)
    _check_png(tmp_path / "mcm.png", plots.plot_multilabel_confusion(cms, CLASSES, tmp_path / "mcm.png"))


def test_autoencoder_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = np.sin(np.linspace(0, 6, 140))[None, None, :] + rng.normal(0, 0.05, (10, 1, 140))
    recon = 0.9 * x
    flags = np.arange(10) % 4 == 0
    err = ((x - recon) ** 2).mean(axis=(1, 2))
    out = plots.plot_reconstructions(x, recon, flags, err, tmp_path / "rec.png", fs_hz=140.0)
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
def test_ecg_strips_stay_small(
    tmp_path: Path, m: int, leads: list[str], fs_hz: float, seconds: float
) -> None:
    x = _ecg_like(m, len(leads), fs_hz, seconds)
    ids = [f"src:{i}" for i in range(m)]
    labels = [["AF"], [], ["NORM", "MI"], ["STTC"]]
    scores = [{"AF": 0.91, "NORM": 0.12, "MI": 0.4}] * m
    path = tmp_path / "strips.png"
    _check_png(path, plots.plot_ecg_strips(x, fs_hz, leads, ids, labels, scores, path, max_seconds=seconds))


def test_strip_title_names_truth_and_top_scores() -> None:
    title = plots.strip_title(
        "ptbxl:00001", ["AF", "MI"], {"NORM": 0.1, "AF": 0.9, "MI": 0.5, "CD": 0.3}, top=2
    )
    assert title == "ptbxl:00001 | true: AF, MI | scores: AF 0.90, MI 0.50"


# --------------------------------------------------------------------------- DVC data points


def test_roc_rows_are_the_exact_curve_points(tmp_path: Path) -> None:
    y, s = _multilabel()
    rows = plots.roc_rows(y, s, CLASSES)
    assert {r["class"] for r in rows} == set(CLASSES[:4])  # HYP has no positives
    fpr, tpr, _ = roc_curve(y[:, 1], s[:, 1])
    af = [r for r in rows if r["class"] == "AF"]
    np.testing.assert_allclose([r["fpr"] for r in af], fpr)
    np.testing.assert_allclose([r["tpr"] for r in af], tpr)
    assert af[0]["threshold"] is None  # the +inf origin point
    path = plots.write_datapoints(rows, tmp_path / "roc.json")
    assert json.loads(path.read_text()) == rows


def test_other_rows(tmp_path: Path) -> None:
    conf = plots.confusion_rows([0, 1, 2], [0, 2, 2], ["N", "A", "O"])
    assert conf == [
        {"actual": "N", "predicted": "N"},
        {"actual": "A", "predicted": "O"},
        {"actual": "O", "predicted": "O"},
    ]
    scores = np.random.default_rng(4).random(200)
    flags = np.arange(200) < 30
    hist = plots.histogram_rows(scores, flags, threshold=0.8, bins=20)
    assert sum(r["normal"] for r in hist) == 170 and sum(r["anomalous"] for r in hist) == 30
    assert {r["above_threshold"] for r in hist} == {0, 1}
    pr = plots.pr_rows([0, 1, 1], [0.1, 0.5, 0.9], ["X"])
    assert pr[-1] == {"recall": 0.0, "precision": 1.0, "threshold": None, "class": "X"}
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        plots.write_datapoints(conf, tmp_path / "x.tsv")
