"""Files the evaluate stage writes for one model (``<out>/``):

- ``metrics.json``: headline test metrics and their bootstrap CIs (``dvc metrics show``);
- ``report.json``: everything (per-class metrics, confusion, threshold selection, notes);
- ``thresholds.json``: the decision rule ``ecgpipe predict`` applies;
- ``test_scores.csv``: one row per test record (scores, true labels, decision);
- ``plots/``: ROC / PR / confusion data points (JSON, rendered by ``dvc plots``), the same as
  PNGs, ECG strips of whole model inputs with labels and scores, and for the autoencoder
  reconstructions and score histograms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.fs import write_atomic
from pipeline.dataset.targets import Targets, labels_of
from pipeline.evaluation import plots, plots_data, plots_ecg
from pipeline.evaluation.decisions import write_rule
from pipeline.evaluation.evaluate import Evaluation, SplitScores, score_table
from pipeline.evaluation.jsonable import json_safe
from pipeline.models.card import ModelCard


def write_json(path: Path, data: Any) -> Path:
    """``data`` as JSON (non-finite floats as null), written atomically."""
    write_atomic(path, (json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n").encode())
    return path


def metrics_summary(card: ModelCard, ev: Evaluation, test: SplitScores) -> dict[str, Any]:
    """The DVC metrics file: headline values, their CIs as ``<metric>_low/_high``, and counts."""
    ci = {
        f"{name}_{end}": part[end]
        for name, part in ev.report.get("ci", {}).items()
        for end in ("low", "high")
    }
    return {"model": card.name, "n_test": len(test.record_ids), "test": ev.headline, "test_ci": ci}


def write_evaluation(
    out_dir: Path,
    card: ModelCard,
    ev: Evaluation,
    test: SplitScores,
    train: SplitScores | None,
    n_strips: int,
) -> list[Path]:
    """Write every file listed in the module docstring; returns their paths."""
    targets = Targets(card.task, card.vocabulary, card.classes, card.normal_class)
    labels = labels_of(targets, test.y)
    written = [
        write_json(out_dir / "metrics.json", metrics_summary(card, ev, test)),
        write_json(out_dir / "report.json", ev.report),
        write_rule(ev.rule, out_dir / "thresholds.json"),
        plots_data.write_datapoints(
            score_table(card, test, ev.decisions, labels), out_dir / "test_scores.csv"
        ),
    ]
    pdir = out_dir / "plots"
    y = targets.of(test.y)
    names = list(card.classes) if card.task != "reconstruction" else ["anomalous"]
    written += [
        plots_data.write_datapoints(plots_data.roc_rows(y, test.scores, names), pdir / "roc.json"),
        plots_data.write_datapoints(plots_data.pr_rows(y, test.scores, names), pdir / "pr.json"),
        plots.plot_roc(y, test.scores, names, pdir / "roc.png", title=f"{card.name}: ROC per class (test)"),
        plots.plot_pr(y, test.scores, names, pdir / "pr.png",
                      title=f"{card.name}: precision-recall per class (test)"),
    ]  # fmt: skip
    if card.task == "multiclass":
        rows = plots_data.confusion_rows(np.argmax(y, axis=1), np.argmax(test.scores, axis=1), card.classes)
        written.append(plots_data.write_datapoints(rows, pdir / "confusion.json"))
        written.append(plots.plot_confusion(
            np.asarray(ev.report["confusion_matrix"]["counts"]), card.classes, pdir / "confusion.png",
            title=f"{card.name}: confusion on the test split ({len(test.record_ids)} records)",
        ))  # fmt: skip
    elif card.task == "multilabel":
        cm = np.asarray([ev.report["confusion"][c] for c in card.classes])
        written.append(plots.plot_multilabel_confusion(cm, card.classes, pdir / "confusion.png"))
    else:
        written += _anomaly_plots(card, ev, test, train, pdir)
    if n_strips and len(test.x):
        written.append(_strips(card, test, labels, pdir / "ecg_strips.png", n_strips))
    return written


def _anomaly_plots(
    card: ModelCard, ev: Evaluation, test: SplitScores, train: SplitScores | None, pdir: Path
) -> list[Path]:
    targets = Targets(card.task, card.vocabulary, card.classes, card.normal_class)
    threshold = float(ev.report["threshold"])
    flags = targets.of(test.y).astype(bool)
    hist = plots_data.histogram_rows(test.scores, flags, threshold)
    out = [
        plots.plot_score_histogram(test.scores, flags, threshold, pdir / "score_histogram.png",
                                   title="Test anomaly scores (threshold from training normals)"),
        plots_data.write_datapoints(hist, pdir / "score_histogram.json"),
    ]  # fmt: skip
    m = len(test.x)
    if m:
        out.append(plots_ecg.plot_reconstructions(
            test.x, test.out, flags[:m], test.scores[:m], pdir / "reconstructions.png", unit=_unit(card),
        ))  # fmt: skip
    if train is not None and len(train.scores):
        tflags = targets.of(train.y).astype(bool)
        path = pdir / "train_score_histogram.png"
        title = "Training-normal scores and the threshold"
        out.append(plots.plot_score_histogram(train.scores, tflags, threshold, path, title=title))
    return out


def _unit(card: ModelCard) -> str:
    """The y-axis unit of the model's input: mV unless the profile normalises (or has no known rate)."""
    plan = card.plan()
    if plan.normalise == "zscore":
        return "z-score"
    if plan.normalise == "minmax":
        return "scaled 0-1"
    return "mV" if plan.fs_hz else "amplitude (source units)"


def _strips(card: ModelCard, test: SplitScores, labels: list[list[str]], path: Path, n: int) -> Path:
    """The first ``n`` test inputs, whole (the window the model saw), with labels and scores."""
    plan = card.plan()
    m = min(n, len(test.x))
    scores = test.scores.reshape(len(test.record_ids), -1)
    per_record = [{name: float(scores[i, k]) for k, name in enumerate(card.output_names)} for i in range(m)]
    return plots_ecg.plot_ecg_strips(
        test.x[:m], plan.fs_hz, plan.leads, test.record_ids[:m], labels[:m], per_record, path,
        max_records=m, unit=_unit(card), crop=plan.crop,
    )  # fmt: skip
