"""The model stages end to end on a small synthetic store: ``ecgpipe split | train | evaluate``
for the three model families (``ecgpipe predict`` on raw records: test_predict_stage.py).

The store is built once per module from :func:`pipeline.demo.raw_tree.write_demo_data` with the
ingest library (plan → run_batch → commit → relabel, as the Prefect flow does, without starting
a Prefect server). Models are tiny and train two epochs; everything lives under ``tmp_path``.
Checks are made against values recomputed here independently of the stage code: signals read
from the shards, forward passes of the network rebuilt from the checkpoint, sklearn metrics.
CPU only (no GPU here): the CUDA paths of training and scoring are not exercised.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score

from pipeline.cli.main import main
from pipeline.dataset.splits import IndexRow, read_index
from pipeline.dataset.targets import Targets
from pipeline.evaluation.decisions import read_rule
from pipeline.evaluation.evaluate import EvalSettings, SplitScores, evaluate, score_split, torch_runner
from pipeline.evaluation.thresholds import ScoredSplit, choose_thresholds, ids_digest
from pipeline.models.card import ModelCard
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.load import split_loader
from tests.model_stages import (
    MODELS,
    PNG,
    Stage,
    labels_by_id,
    read_csv,
    run_stages,
    shard_signals,
    string_column,
    trained_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Stage:
    return run_stages(tmp_path_factory)


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("model", MODELS)
def test_no_group_and_no_patient_is_in_two_splits(stage: Stage, model: str) -> None:
    rows = stage.index(model)
    assert len({r.record_id for r in rows}) == len(rows)
    by_group: dict[str, set[str]] = defaultdict(set)
    by_patient: dict[tuple[str, str], set[str]] = defaultdict(set)
    patients = string_column(stage.store(model), "patient_id")
    sources = string_column(stage.store(model), "source")
    for r in rows:
        by_group[r.group].add(r.split)
        pid = patients[(r.shard, r.row)]
        if pid:
            by_patient[(sources[(r.shard, r.row)], pid)].add(r.split)
    assert all(len(s) == 1 for s in by_group.values())
    assert all(len(s) == 1 for s in by_patient.values())
    assert {r.split for r in rows} == {"train", "val", "test"}


def test_ptbxl_strat_folds_decide_the_resnet_split_and_patients_share_records(stage: Stage) -> None:
    meta = string_column(stage.store("resnet"), "meta")
    fold_to_split = {f: s for s, folds in stage.params.split.fold_map.items() for f in folds}
    rows = stage.index("resnet")
    for r in rows:
        assert fold_to_split[int(json.loads(meta[(r.shard, r.row)])["strat_fold"])] == r.split, r
    # the demo data gives some patients several records: grouping is being exercised
    sizes: dict[str, int] = defaultdict(int)
    for r in rows:
        sizes[r.group] += 1
    assert max(sizes.values()) > 1


def test_the_index_holds_every_live_record_a_model_can_use(stage: Stage) -> None:
    for model in MODELS:
        labels = labels_by_id(stage.store(model))
        assert {r.record_id for r in stage.index(model)} == set(labels)


def test_autoencoder_trains_on_normal_beats_only(stage: Stage) -> None:
    labels = labels_by_id(stage.store("autoencoder"))
    norm = np.zeros(len(stage.params.vocabulary("beats140")), dtype=np.uint8)
    norm[stage.params.vocabulary("beats140").index("NORM")] = 1
    rows = stage.index("autoencoder")
    train = [r for r in rows if r.split == "train"]
    assert train and all(np.array_equal(labels[r.record_id], norm) for r in train)
    test_normal = [np.array_equal(labels[r.record_id], norm) for r in rows if r.split == "test"]
    assert any(test_normal) and not all(test_normal)  # both kinds are evaluated
    ckpt = load_checkpoint(stage.params.train.out_dir / "autoencoder" / "latest.pt")
    assert ckpt["lineage"]["n_train"] == len(train)


def test_a_single_label_model_leaves_out_records_without_exactly_one_of_its_classes(
    stage: Stage, tmp_path: Path
) -> None:
    args = stage.args(f"split.out_dir={tmp_path}", "train.models.crnn.classes=[N, A]",
                      "train.models.crnn.f1_classes=[N, A]")  # fmt: skip
    assert main(["split", "crnn", *args]) == 0
    index = read_index(tmp_path / "crnn.csv")
    scheme = stage.params.train.models["crnn"].labels  # the CinC 2017 classes N A O NOISY
    labels = labels_by_id(stage.store("crnn"), scheme)
    vocab = stage.params.model_vocabulary("crnn")
    kept = {rid for rid, y in labels.items() if y[vocab.index("N")] + y[vocab.index("A")] == 1}
    assert {r.record_id for r in index.rows} == kept
    assert index.header["excluded"] == len(labels) - len(kept) > 0
    assert index.header["model"] == "crnn"


# --------------------------------------------------------------------------- evaluate outputs

EXPECTED_PLOTS = {
    "crnn": ["roc.json", "pr.json", "confusion.json", "confusion.png", "ecg_strips.png"],
    "resnet": ["roc.json", "pr.json", "confusion.png", "ecg_strips.png"],
    "autoencoder": ["roc.json", "pr.json", "score_histogram.json", "score_histogram.png",
                    "reconstructions.png", "train_score_histogram.png", "ecg_strips.png"],
}  # fmt: skip


@pytest.mark.parametrize("model", MODELS)
def test_evaluate_writes_metrics_report_rule_scores_and_plots(stage: Stage, model: str) -> None:
    out = stage.eval_dir(model)
    metrics = json.loads((out / "metrics.json").read_text())
    report = json.loads((out / "report.json").read_text())
    rule = read_rule(out / "thresholds.json")
    n_test = sum(r.split == "test" for r in stage.index(model))
    assert metrics["model"] == model and metrics["n_test"] == n_test and metrics["test"]
    assert rule.model == model and rule.task == stage.card(model).task
    assert isinstance(report, dict) and report
    for name in EXPECTED_PLOTS[model]:
        path = out / "plots" / name
        assert path.is_file() and path.stat().st_size > 0, path
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == PNG
        else:
            assert json.loads(path.read_text())
    live = stage.params.train.live_dir / model
    assert (live / "metrics.json").is_file() and (live / "plots" / "metrics" / "val_loss.tsv").is_file()
    assert not (stage.params.train.out_dir / model / "live").exists()  # kept apart from the checkpoints


@pytest.mark.parametrize("model", MODELS)
def test_test_scores_are_the_test_split_in_index_order_with_its_labels(stage: Stage, model: str) -> None:
    card = stage.card(model)
    rows = read_csv(stage.eval_dir(model) / "test_scores.csv")
    test = [r for r in stage.index(model) if r.split == "test"]
    assert [r["record_id"] for r in rows] == [r.record_id for r in test]
    labels = labels_by_id(stage.store(model), card.labels_scheme)
    vocab = card.vocabulary
    for row in rows:
        want = [vocab[j] for j in np.flatnonzero(labels[row["record_id"]])]
        assert row["labels"].split() == want
    assert set(card.output_names) <= set(rows[0])


@pytest.mark.parametrize("model", MODELS)
def test_test_decisions_follow_the_written_rule(stage: Stage, model: str) -> None:
    card = stage.card(model)
    rule = read_rule(stage.eval_dir(model) / "thresholds.json")
    rows = read_csv(stage.eval_dir(model) / "test_scores.csv")
    scores = np.array([[float(r[c]) for c in card.output_names] for r in rows])
    if card.task == "reconstruction":
        want = rule.decide(scores[:, 0])
        assert [r["is_anomaly_pred"] == "True" for r in rows] == want.tolist()
    else:
        decided = rule.decide(scores)
        for row, d in zip(rows, decided, strict=True):
            assert row["predicted"].split() == [c for c, on in zip(card.classes, d, strict=True) if on]
        if card.task == "multiclass":
            assert (decided.sum(axis=1) == 1).all()


def test_crnn_metrics_agree_with_sklearn_on_the_test_scores(stage: Stage) -> None:
    card = stage.card("crnn")
    rows = read_csv(stage.eval_dir("crnn") / "test_scores.csv")
    metrics = json.loads((stage.eval_dir("crnn") / "metrics.json").read_text())["test"]
    report = json.loads((stage.eval_dir("crnn") / "report.json").read_text())
    true = [r["labels"] for r in rows]
    pred = [r["predicted"] for r in rows]
    assert metrics["accuracy"] == pytest.approx(np.mean([t == p for t, p in zip(true, pred, strict=True)]))
    want = confusion_matrix(true, pred, labels=list(card.classes))
    np.testing.assert_array_equal(np.asarray(report["confusion_matrix"]["counts"]), want)


def test_autoencoder_metrics_agree_with_sklearn_on_the_test_scores(stage: Stage) -> None:
    rows = read_csv(stage.eval_dir("autoencoder") / "test_scores.csv")
    metrics = json.loads((stage.eval_dir("autoencoder") / "metrics.json").read_text())["test"]
    is_anomaly = np.array([r["labels"] != "NORM" for r in rows])
    score = np.array([float(r["anomaly_score"]) for r in rows])
    pred = np.array([r["is_anomaly_pred"] == "True" for r in rows])
    assert metrics["auroc"] == pytest.approx(roc_auc_score(is_anomaly, score))
    assert metrics["f1"] == pytest.approx(f1_score(is_anomaly, pred, zero_division=0.0))
    rule = read_rule(stage.eval_dir("autoencoder") / "thresholds.json")
    assert rule.thresholds is not None and metrics["threshold"] == rule.thresholds.values[0]


def test_resnet_micro_f1_agrees_with_sklearn_on_the_test_scores(stage: Stage) -> None:
    card = stage.card("resnet")
    rows = read_csv(stage.eval_dir("resnet") / "test_scores.csv")
    metrics = json.loads((stage.eval_dir("resnet") / "metrics.json").read_text())["test"]
    y = np.array([[c in r["labels"].split() for c in card.classes] for r in rows])
    p = np.array([[c in r["predicted"].split() for c in card.classes] for r in rows])
    assert metrics["f1_micro"] == pytest.approx(f1_score(y, p, average="micro", zero_division=0.0))


# --------------------------------------------------------------------------- no test leakage


def _scores_by_hand(stage: Stage, model: str, split: str) -> tuple[list[IndexRow], npt.NDArray[np.float64]]:
    """Scores of a split from shard signals and the checkpoint's network, without the stage code."""
    net, card = trained_model(stage, model)
    rows = [r for r in stage.index(model) if r.split == split]
    x = torch.from_numpy(shard_signals(stage.store(model), rows))
    with torch.no_grad():
        out = net(x)
    if card.task == "reconstruction":
        return rows, (out - x).pow(2).mean(dim=(1, 2)).double().numpy()
    return rows, torch.sigmoid(out).double().numpy()


def test_multilabel_thresholds_are_those_chosen_on_the_validation_scores(stage: Stage) -> None:
    card = stage.card("resnet")
    rows, scores = _scores_by_hand(stage, "resnet", "val")
    labels = labels_by_id(stage.store("resnet"), card.labels_scheme)
    targets = Targets(card.task, card.vocabulary, card.classes)
    y = targets.of(np.stack([labels[r.record_id] for r in rows]))
    ids = tuple(r.record_id for r in rows)
    want = choose_thresholds(ScoredSplit("val", y, scores, ids), card.classes)
    rule = read_rule(stage.eval_dir("resnet") / "thresholds.json")
    assert rule.thresholds is not None
    np.testing.assert_allclose(rule.thresholds.as_array(), want.as_array(), rtol=0, atol=1e-6)
    assert rule.thresholds.chosen_on == "val" and rule.thresholds.n == len(rows)
    assert rule.thresholds.ids_digest == ids_digest(ids)
    report = json.loads((stage.eval_dir("resnet") / "report.json").read_text())
    assert report["threshold_selection"] == rule.thresholds.to_dict()
    assert y.any(), "no positive in val: every threshold would be the default"


def _split_scores(stage: Stage, model: str, card: ModelCard, split: Any) -> SplitScores:
    net, _ = trained_model(stage, model)
    index = stage.params.split.out_dir / f"{model}.csv"
    loader = split_loader(stage.params.ingest.store, card.profile, index, split, 64)
    return score_split(loader, torch_runner(net), card, split, progress=False)


def _perturbed(s: SplitScores, seed: int) -> SplitScores:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=s.y.shape).astype(np.float32)
    return dataclasses.replace(s, scores=rng.random(s.scores.shape), y=y)


def test_perturbing_the_test_split_leaves_the_multilabel_thresholds_unchanged(stage: Stage) -> None:
    card = stage.card("resnet")
    val, test = (_split_scores(stage, "resnet", card, s) for s in ("val", "test"))
    settings = EvalSettings(bootstrap=0)
    base = evaluate(card, val, test, settings).rule.thresholds
    written = read_rule(stage.eval_dir("resnet") / "thresholds.json").thresholds
    assert base is not None and written is not None
    np.testing.assert_allclose(base.as_array(), written.as_array(), rtol=0, atol=1e-9)
    for seed in range(3):
        got = evaluate(card, val, _perturbed(test, seed), settings).rule.thresholds
        assert got is not None and got.values == base.values
    # and the check can fail: the validation scores do move them
    moved = evaluate(card, _perturbed(val, 7), test, settings).rule.thresholds
    assert moved is not None and moved.values != base.values


def test_anomaly_threshold_is_the_percentile_of_training_normals_only(stage: Stage) -> None:
    card = stage.card("autoencoder")
    _, train_scores = _scores_by_hand(stage, "autoencoder", "train")
    p = stage.params.evaluate.anomaly_threshold.p
    rule = read_rule(stage.eval_dir("autoencoder") / "thresholds.json")
    assert rule.thresholds is not None and rule.thresholds.chosen_on == "train"
    assert rule.thresholds.values[0] == pytest.approx(float(np.percentile(train_scores, p)), rel=1e-5)
    train, val, test = (_split_scores(stage, "autoencoder", card, s) for s in ("train", "val", "test"))
    settings = EvalSettings(bootstrap=0, anomaly_p=p)
    base = evaluate(card, val, test, settings, train).rule.thresholds
    assert base is not None
    for seed in range(3):
        got = evaluate(card, _perturbed(val, seed), _perturbed(test, seed), settings, train).rule.thresholds
        assert got is not None and got.values == base.values
