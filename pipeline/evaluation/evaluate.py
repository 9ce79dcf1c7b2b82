"""The evaluate stage: score val/test (and train normals for the autoencoder), choose the
decision rule on data the test split never touches, and report with confidence intervals.

One procedure for any scorer (``x (B, C, L) float32 → raw model output``), so the FP32 PyTorch
model, its ONNX export and the INT8 model are all measured the same way (:mod:`pipeline.export.onnx`).

Thresholds: per class max-F1 on the validation split (multilabel); argmax (multiclass); the
training normals' score percentile or mean + kσ (reconstruction). Test decisions use them
unchanged; :class:`pipeline.evaluation.thresholds.ThresholdSet` refuses to apply them to the split they
came from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.dataset.loader import ShardLoader
from pipeline.dataset.targets import Targets
from pipeline.evaluation.bootstrap import anomaly_cis, multiclass_cis, multilabel_cis
from pipeline.evaluation.decisions import DecisionRule
from pipeline.evaluation.scheme_scores import field_score, field_score_cis, source_record
from pipeline.evaluation.task_reports import anomaly_report, multiclass_report, multilabel_report
from pipeline.evaluation.thresholds import ScoredSplit, anomaly_threshold, choose_thresholds
from pipeline.models.card import ModelCard
from pipeline.models.scoring import output_scores_np

Runner = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
SplitName = Literal["train", "val", "test"]


@dataclass(frozen=True)
class EvalSettings:
    """``bootstrap`` resamples for CIs at ``ci_level``; anomaly threshold ``method`` with
    percentile ``p`` or ``k`` σ; ``keep_examples`` records of each split kept for plots;
    ``field_score``: the scheme's own score family (:mod:`pipeline.evaluation.scheme_scores`), None
    for none."""

    bootstrap: int = 200
    ci_level: float = 0.95
    seed: int = 0
    anomaly_method: Literal["percentile", "mean_k_sigma"] = "percentile"
    anomaly_p: float = 99.0
    anomaly_k: float = 3.0
    f1_classes: tuple[str, ...] | None = None
    keep_examples: int = 32
    field_score: str | None = None


@dataclass(frozen=True)
class SplitScores:
    """One split, scored: ``y`` ``(N, V)`` vocabulary labels, ``scores`` ``(N, K)`` or ``(N,)``;
    ``x``/``out`` the first ``keep_examples`` inputs ``(M, C, L)`` and raw outputs."""

    split: SplitName
    record_ids: tuple[str, ...]
    y: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float64]
    x: npt.NDArray[np.float32]
    out: npt.NDArray[np.float32]


def torch_runner(model: nn.Module, device: str | torch.device = "cpu") -> Runner:
    """``x → model(x)`` in eval mode without gradients (float32 in, float32 out)."""
    model.eval()
    dev = torch.device(device)
    model.to(dev)

    def run(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        with torch.no_grad():
            out: npt.NDArray[np.float32] = model(torch.from_numpy(x).to(dev)).float().cpu().numpy()
            return out

    return run


def score_split(
    loader: ShardLoader, run: Runner, card: ModelCard, split: SplitName, keep_examples: int = 32,
    progress: bool = True,
) -> SplitScores:  # fmt: skip
    """Run every record of an in-order loader through ``run`` (see :class:`SplitScores`)."""
    ys: list[npt.NDArray[np.float32]] = []
    scores: list[npt.NDArray[np.float64]] = []
    xs: list[npt.NDArray[np.float32]] = []
    outs: list[npt.NDArray[np.float32]] = []
    kept = 0
    for x_t, y_t, _ in tqdm(loader, desc=f"score {split}", leave=False, disable=not progress):
        x = np.ascontiguousarray(x_t.numpy(), dtype=np.float32)
        out = run(x)
        ys.append(y_t.numpy().astype(np.float32))
        scores.append(output_scores_np(card.task, x, out))
        if kept < keep_examples:
            take = keep_examples - kept
            xs.append(x[:take])
            outs.append(out[:take])
            kept += len(x[:take])
    c, length = card.input_shape
    width = len(card.classes)
    return SplitScores(
        split=split,
        record_ids=tuple(loader.record_ids),
        y=np.concatenate(ys) if ys else np.zeros((0, len(card.vocabulary)), np.float32),
        scores=np.concatenate(scores) if scores else np.zeros((0, width) if width else (0,)),
        x=np.concatenate(xs) if xs else np.zeros((0, c, length), np.float32),
        out=np.concatenate(outs) if outs else np.zeros((0, width), np.float32),
    )


@dataclass(frozen=True)
class Evaluation:
    """The full report (JSON-able), the headline metrics (flat name → float) and the rule."""

    report: dict[str, Any]
    headline: dict[str, float]
    rule: DecisionRule
    decisions: npt.NDArray[np.bool_]


def evaluate(
    card: ModelCard,
    val: SplitScores,
    test: SplitScores,
    settings: EvalSettings,
    train: SplitScores | None = None,
) -> Evaluation:
    """Choose the rule (see the module docstring), apply it to ``test`` and report."""
    targets = Targets(card.task, card.vocabulary, card.classes, card.normal_class)
    alpha = 1.0 - settings.ci_level
    boot = {"n": settings.bootstrap, "alpha": alpha, "seed": settings.seed}
    if card.task == "reconstruction":
        if train is None:
            raise ValueError("the autoencoder's threshold comes from training normals: pass the train split")
        return _evaluate_anomaly(card, targets, train, test, settings, boot)
    if card.task == "multiclass":
        ev = _evaluate_multiclass(card, targets, test, settings, boot)
    else:
        ev = _evaluate_multilabel(card, targets, val, test, boot)
    if settings.field_score is not None:
        _add_field_score(ev, settings.field_score, card, targets.of(test.y), test, boot)
    return ev


def _scored(s: SplitScores, targets: Targets) -> ScoredSplit:
    return ScoredSplit(s.split, targets.of(s.y), s.scores, s.record_ids)


def _evaluate_multilabel(
    card: ModelCard, targets: Targets, val: SplitScores, test: SplitScores, boot: Mapping[str, Any]
) -> Evaluation:
    thresholds = choose_thresholds(_scored(val, targets), card.classes)
    test_split = _scored(test, targets)
    decisions = thresholds.apply(test_split)
    y = targets.of(test.y)
    report = multilabel_report(y, test.scores, thresholds.as_array(), card.classes)
    report["ci"] = _cis(multilabel_cis, y, test.scores, thresholds.as_array(), boot=boot, n_rows=len(y))
    report["threshold_selection"] = thresholds.to_dict()
    headline = {
        "auroc_macro": report["auroc"]["macro"], "ap_macro": report["ap"]["macro"],
        "f1_macro": report["f1"]["macro"], "f1_micro": report["f1"]["micro"],
        "f1_weighted": report["f1"]["weighted"],
        **{f"auroc_{c}": v for c, v in report["auroc"]["per_class"].items()},
        **{f"f1_{c}": v for c, v in report["f1"]["per_class"].items()},
    }  # fmt: skip
    rule = DecisionRule(card.name, card.task, card.classes, thresholds)
    return Evaluation(report, _flat(headline), rule, decisions)


def _evaluate_multiclass(
    card: ModelCard, targets: Targets, test: SplitScores, settings: EvalSettings, boot: Mapping[str, Any]
) -> Evaluation:
    y = targets.of(test.y)
    t = np.argmax(y, axis=1)
    report = multiclass_report(t, test.scores, card.classes, settings.f1_classes)
    selected = [card.classes.index(c) for c in report["selected_classes"]]
    report["ci"] = _cis(multiclass_cis, t, test.scores, selected, boot=boot, n_rows=len(t))
    headline = {
        "accuracy": report["accuracy"], "auroc_macro": report["auroc"]["macro"],
        "f1_macro": report["f1"]["macro"], "f1_selected": report["f1"]["selected"],
        "f1_weighted": report["f1"]["weighted"],
        **{f"f1_{c}": v for c, v in report["f1"]["per_class"].items()},
    }  # fmt: skip
    rule = DecisionRule(card.name, card.task, card.classes, None)
    return Evaluation(report, _flat(headline), rule, rule.decide(test.scores))


def _evaluate_anomaly(
    card: ModelCard,
    targets: Targets,
    train: SplitScores,
    test: SplitScores,
    settings: EvalSettings,
    boot: Mapping[str, Any],
) -> Evaluation:
    thr = anomaly_threshold(
        _scored(train, targets), settings.anomaly_method, settings.anomaly_p, settings.anomaly_k
    )
    test_split = _scored(test, targets)
    thr.check_unseen(test_split)
    value = float(thr.values[0])
    is_anomaly = targets.of(test.y)
    report = anomaly_report(is_anomaly, test.scores, value)
    report["ci"] = _cis(anomaly_cis, is_anomaly, test.scores, value, boot=boot, n_rows=len(is_anomaly))
    report["threshold_selection"] = thr.to_dict()
    headline = {k: report[k] for k in ("auroc", "auprc", "f1", "precision", "recall", "specificity")}
    headline["threshold"] = value
    rule = DecisionRule(card.name, card.task, (), thr)
    return Evaluation(report, _flat(headline), rule, rule.decide(test.scores))


def _add_field_score(
    ev: Evaluation, family: str, card: ModelCard, y: npt.NDArray[np.float32], test: SplitScores,
    boot: Mapping[str, Any],
) -> None:  # fmt: skip
    """The scheme's own score into the report (``field_score``), its CIs into ``ci`` and its values
    into the headline as ``field_<name>``. Beats/windows of one recording are resampled together."""
    groups = np.asarray([source_record(r) for r in test.record_ids])
    args = (family, card.classes, y, test.scores, ev.decisions)
    fs = field_score(*args, groups=groups)
    ev.report["field_score"] = fs
    ev.report.setdefault("ci", {}).update(
        _cis(field_score_cis, *args, boot=boot, n_rows=len(y), groups=groups)
    )
    if fs["score_name"] is not None:
        ev.headline[f"field_{fs['score_name']}"] = _flat({"v": fs["score"]})["v"]
    for name, value in fs.get("gross", {}).items():
        ev.headline[f"field_{name}"] = _flat({"v": value})["v"]


def _cis(
    fn: Callable[..., Any], *args: Any, boot: Mapping[str, Any], n_rows: int, **kwargs: Any
) -> dict[str, Any]:
    if int(boot["n"]) == 0 or n_rows < 2:
        return {}
    n, alpha, seed = int(boot["n"]), float(boot["alpha"]), int(boot["seed"])
    cis: dict[str, Any] = fn(*args, n=n, alpha=alpha, seed=seed, **kwargs)
    return cis


def _flat(values: Mapping[str, Any]) -> dict[str, float]:
    """None (undefined, e.g. AUROC of a class with no positive) → NaN, so the keys are stable."""
    return {k: float("nan") if v is None else float(v) for k, v in values.items()}


def score_table(
    card: ModelCard, test: SplitScores, decisions: npt.NDArray[np.bool_], labels: Sequence[Sequence[str]]
) -> list[dict[str, Any]]:
    """One row per test record: id, true labels, scores per output, the decision."""
    rows: list[dict[str, Any]] = []
    scores = test.scores.reshape(len(test.record_ids), -1)
    for i, rid in enumerate(test.record_ids):
        row: dict[str, Any] = {"record_id": rid, "labels": " ".join(labels[i])}
        row.update({name: float(scores[i, k]) for k, name in enumerate(card.output_names)})
        if card.task == "reconstruction":
            row["is_anomaly_pred"] = bool(decisions[i])
        else:
            row["predicted"] = " ".join(c for c, d in zip(card.classes, decisions[i], strict=True) if d)
        rows.append(row)
    return rows
