"""The model stages end to end on a small synthetic store: ``ecgpipe split | train | evaluate``
for the three model families, then ``ecgpipe predict`` on raw records.

The store is built once per module from :func:`pipeline.demo.raw_tree.write_demo_data` with the
ingest library (plan → run_batch → commit → relabel, as the Prefect flow does, without starting
a Prefect server). Models are tiny and train two epochs; everything lives under ``tmp_path``.
Checks are made against values recomputed here independently of the stage code: signals read
from the shards, forward passes of the network rebuilt from the checkpoint, sklearn metrics.
CPU only (no GPU here): the CUDA paths of training and scoring are not exercised.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score

from pipeline.cli.main import main
from pipeline.config import Params, load_params
from pipeline.config.build import signal_plan, storage_spec
from pipeline.dataset.splits import IndexRow, read_index
from pipeline.dataset.targets import Targets
from pipeline.demo.raw_tree import write_demo_data
from pipeline.evaluation.decisions import read_rule
from pipeline.evaluation.evaluate import EvalSettings, SplitScores, evaluate, score_split, torch_runner
from pipeline.evaluation.thresholds import ScoredSplit, choose_thresholds, ids_digest
from pipeline.ingest.run import commit, plan_ingest, run_batch
from pipeline.models.card import ModelCard, card_from_checkpoint
from pipeline.sources.registry import build_readers
from pipeline.store.labels import read_labels, relabel
from pipeline.store.local import ShardStore, read_signal, read_strings
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.load import split_loader

REPO = Path(__file__).resolve().parents[1]
MODELS = ("crnn", "autoencoder", "resnet")
SOURCES = ("ptbxl", "cinc2017", "ucr")
PROFILE_OF = {"resnet": "ecg12", "crnn": "lead1_af", "autoencoder": "beats140"}
PNG = b"\x89PNG\r\n\x1a\n"

# Tiny networks, two epochs, few bootstrap resamples: the stages' logic, not model quality.
TINY = [
    "train.models.resnet.model.widths=[4,8]",
    "train.models.resnet.model.kernel_size=7",
    "train.models.crnn.model.conv_channels=[4,8]",
    "train.models.crnn.model.rnn_hidden=8",
    "train.models.autoencoder.model.widths=[4,8]",
    "train.models.autoencoder.model.latent=4",
    *(f"train.models.{m}.{k}" for m in MODELS for k in ("epochs=2", "device=cpu", "warmup_epochs=0")),
    "evaluate.bootstrap=20",
    "evaluate.n_strips=1",
]


# --------------------------------------------------------------------------- shared helpers


def build_demo_store(
    root: Path, n_ptbxl: int, n_cinc2017: int, n_ucr: int, profiles: Sequence[str]
) -> list[str]:
    """Write demo raw data under ``root/raw`` and ingest ``profiles`` into ``root/shards`` with the
    ingest library; returns the ``--set`` overrides that point params at them."""
    write_demo_data(root / "raw", seed=0, n_ptbxl=n_ptbxl, n_cinc2017=n_cinc2017, n_ucr=n_ucr)
    overrides = [f"sources.{s}.root={root / 'raw' / s}" for s in SOURCES]
    overrides.append(f"ingest.store={root / 'shards'}")
    params = load_params(REPO / "params.yaml", overrides)
    for name in profiles:
        _ingest_profile(params, name)
    return overrides


def _ingest_profile(params: Params, name: str) -> None:
    prof = params.profiles[name]
    store = ShardStore(params.ingest.store / name, name)
    readers = build_readers(params, [s for s in prof.sources if s in SOURCES])
    plan_s, storage = signal_plan(prof), storage_spec(prof)
    attrs = {"profile": name, "leads": list(prof.leads), "fs_hz": prof.fs_hz, "length": prof.length,
             "plan_digest": plan_s.digest(), "flow_run_id": None}  # fmt: skip
    manifest = store.load_manifest()
    plan = plan_ingest(name, plan_s, storage, readers, manifest, params.ingest.batch_units)
    results = [run_batch(b, readers, plan_s, storage, store, attrs) for b in plan.batches]
    report = commit(plan, results, store, manifest, {"flow_run_id": None})
    assert report["reconciled"] and report["records_total"] > 0, report
    relabel(store, params.labels.tables_dir, params.vocabulary(name), params.labels.ptbxl_min_likelihood,
            params.labels.unmapped, params.label_tables_for(), prof.label_merge)  # fmt: skip


def stage_dirs(root: Path) -> list[str]:
    """Overrides putting every output of the model stages under ``root``."""
    return [
        f"split.out_dir={root / 'splits'}",
        f"train.out_dir={root / 'models'}",
        f"train.live_dir={root / 'dvclive'}",
        f"evaluate.out_dir={root / 'eval'}",
        f"export.out_dir={root / 'export'}",
    ]


def cli_args(overrides: Sequence[str]) -> list[str]:
    args = ["--params", str(REPO / "params.yaml")]
    for o in overrides:
        args += ["--set", o]
    return args


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- the stages, once


@dataclass(frozen=True)
class Stage:
    root: Path
    overrides: list[str]
    params: Params

    def args(self, *extra: str) -> list[str]:
        return cli_args([*self.overrides, *extra])

    def index(self, model: str) -> list[IndexRow]:
        return list(read_index(self.params.split.out_dir / f"{model}.csv").rows)

    def store(self, model: str) -> ShardStore:
        p = PROFILE_OF[model]
        return ShardStore(self.params.ingest.store / p, p)

    def eval_dir(self, model: str) -> Path:
        return self.params.evaluate.out_dir / model

    def card(self, model: str) -> ModelCard:
        return card_from_checkpoint(load_checkpoint(self.params.train.out_dir / model / "best.pt"))


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Stage:
    root = tmp_path_factory.mktemp("stage")
    overrides = build_demo_store(root, 60, 40, 120, list(PROFILE_OF.values()))
    overrides += [*stage_dirs(root), *TINY]
    for model in MODELS:
        for command in ("split", "train", "evaluate"):
            assert main([command, model, *cli_args(overrides)]) == 0, (command, model)
    return Stage(root, overrides, load_params(REPO / "params.yaml", overrides))


def _labels_by_id(store: ShardStore) -> dict[str, npt.NDArray[np.uint8]]:
    labels = read_labels(store)
    assert labels is not None
    return dict(zip(labels.record_id, labels.y, strict=True))


def _column(store: ShardStore, name: str) -> dict[tuple[str, int], str]:
    """(shard, row) → the string column ``name`` of every shard row."""
    out: dict[tuple[str, int], str] = {}
    for shard in store.load_manifest().shards:
        for row, value in enumerate(read_strings(store.open_shard(shard), name)):
            out[(shard, row)] = value
    return out


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _signals(store: ShardStore, rows: Sequence[IndexRow]) -> npt.NDArray[np.float32]:
    """``(N, C, L)`` mV, read straight from the shards (not through the loaders)."""
    return np.stack([read_signal(store.open_shard(r.shard), np.array([r.row]))[0] for r in rows])


def _model(stage: Stage, model: str) -> tuple[torch.nn.Module, ModelCard]:
    ckpt = load_checkpoint(stage.params.train.out_dir / model / "best.pt")
    card = card_from_checkpoint(ckpt)
    net = card.build()
    net.load_state_dict(ckpt["model"])
    return net.eval(), card


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("model", MODELS)
def test_no_group_and_no_patient_is_in_two_splits(stage: Stage, model: str) -> None:
    rows = stage.index(model)
    assert len({r.record_id for r in rows}) == len(rows)
    by_group: dict[str, set[str]] = defaultdict(set)
    by_patient: dict[tuple[str, str], set[str]] = defaultdict(set)
    patients = _column(stage.store(model), "patient_id")
    sources = _column(stage.store(model), "source")
    for r in rows:
        by_group[r.group].add(r.split)
        pid = patients[(r.shard, r.row)]
        if pid:
            by_patient[(sources[(r.shard, r.row)], pid)].add(r.split)
    assert all(len(s) == 1 for s in by_group.values())
    assert all(len(s) == 1 for s in by_patient.values())
    assert {r.split for r in rows} == {"train", "val", "test"}


def test_ptbxl_strat_folds_decide_the_resnet_split_and_patients_share_records(stage: Stage) -> None:
    meta = _column(stage.store("resnet"), "meta")
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
        labels = _labels_by_id(stage.store(model))
        assert {r.record_id for r in stage.index(model)} == set(labels)


def test_autoencoder_trains_on_normal_beats_only(stage: Stage) -> None:
    labels = _labels_by_id(stage.store("autoencoder"))
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
    args = stage.args(f"split.out_dir={tmp_path}", "train.models.crnn.classes=[NORM, AF]",
                      "train.models.crnn.f1_classes=[NORM, AF]")  # fmt: skip
    assert main(["split", "crnn", *args]) == 0
    index = read_index(tmp_path / "crnn.csv")
    labels = _labels_by_id(stage.store("crnn"))
    vocab = stage.params.vocabulary("lead1_af")
    kept = {rid for rid, y in labels.items() if y[vocab.index("NORM")] + y[vocab.index("AF")] == 1}
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
    rows = _read_csv(stage.eval_dir(model) / "test_scores.csv")
    test = [r for r in stage.index(model) if r.split == "test"]
    assert [r["record_id"] for r in rows] == [r.record_id for r in test]
    labels = _labels_by_id(stage.store(model))
    vocab = card.vocabulary
    for row in rows:
        want = [vocab[j] for j in np.flatnonzero(labels[row["record_id"]])]
        assert row["labels"].split() == want
    assert set(card.output_names) <= set(rows[0])


@pytest.mark.parametrize("model", MODELS)
def test_test_decisions_follow_the_written_rule(stage: Stage, model: str) -> None:
    card = stage.card(model)
    rule = read_rule(stage.eval_dir(model) / "thresholds.json")
    rows = _read_csv(stage.eval_dir(model) / "test_scores.csv")
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
    rows = _read_csv(stage.eval_dir("crnn") / "test_scores.csv")
    metrics = json.loads((stage.eval_dir("crnn") / "metrics.json").read_text())["test"]
    report = json.loads((stage.eval_dir("crnn") / "report.json").read_text())
    true = [r["labels"] for r in rows]
    pred = [r["predicted"] for r in rows]
    assert metrics["accuracy"] == pytest.approx(np.mean([t == p for t, p in zip(true, pred, strict=True)]))
    want = confusion_matrix(true, pred, labels=list(card.classes))
    np.testing.assert_array_equal(np.asarray(report["confusion_matrix"]["counts"]), want)


def test_autoencoder_metrics_agree_with_sklearn_on_the_test_scores(stage: Stage) -> None:
    rows = _read_csv(stage.eval_dir("autoencoder") / "test_scores.csv")
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
    rows = _read_csv(stage.eval_dir("resnet") / "test_scores.csv")
    metrics = json.loads((stage.eval_dir("resnet") / "metrics.json").read_text())["test"]
    y = np.array([[c in r["labels"].split() for c in card.classes] for r in rows])
    p = np.array([[c in r["predicted"].split() for c in card.classes] for r in rows])
    assert metrics["f1_micro"] == pytest.approx(f1_score(y, p, average="micro", zero_division=0.0))


# --------------------------------------------------------------------------- no test leakage


def _scores_by_hand(stage: Stage, model: str, split: str) -> tuple[list[IndexRow], npt.NDArray[np.float64]]:
    """Scores of a split from shard signals and the checkpoint's network, without the stage code."""
    net, card = _model(stage, model)
    rows = [r for r in stage.index(model) if r.split == split]
    x = torch.from_numpy(_signals(stage.store(model), rows))
    with torch.no_grad():
        out = net(x)
    if card.task == "reconstruction":
        return rows, (out - x).pow(2).mean(dim=(1, 2)).double().numpy()
    return rows, torch.sigmoid(out).double().numpy()


def test_multilabel_thresholds_are_those_chosen_on_the_validation_scores(stage: Stage) -> None:
    card = stage.card("resnet")
    rows, scores = _scores_by_hand(stage, "resnet", "val")
    labels = _labels_by_id(stage.store("resnet"))
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
    net, _ = _model(stage, model)
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


# --------------------------------------------------------------------------- predict


def _raw_files(stage: Stage, model: str, record_ids: Sequence[str]) -> tuple[list[Path], dict[str, str]]:
    """Raw demo files holding ``record_ids`` and predict's id → store id."""
    raw = stage.root / "raw"
    if model == "crnn":
        locals_ = [rid.split(":", 1)[1] for rid in record_ids]
        files = [raw / "cinc2017" / "training2017" / f"{n}.hea" for n in locals_]
        return files, {n: rid for n, rid in zip(locals_, record_ids, strict=True)}
    if model == "resnet":
        files, ids = [], {}
        for rid in record_ids:
            (hea,) = (raw / "ptbxl" / "records500").rglob(f"{rid.split(':', 1)[1]}_hr.hea")
            files.append(hea)
            ids[hea.stem] = rid
        return files, ids
    # UCR: one file holds many beats; predict names a row <file>/<local id>
    files = sorted({raw / "ucr" / f"{rid.split(':', 1)[1].split('/')[0]}.txt" for rid in record_ids})
    return files, {
        f"{rid.split(':', 1)[1].split('/')[0]}.txt/{rid.split('/')[-1]}": rid for rid in record_ids
    }


@pytest.mark.parametrize("model", MODELS)
def test_predict_on_raw_records_gives_the_test_scores_and_decisions(
    stage: Stage, model: str, tmp_path: Path
) -> None:
    card = stage.card(model)
    test_rows = {r["record_id"]: r for r in _read_csv(stage.eval_dir(model) / "test_scores.csv")}
    chosen = list(test_rows)[:3]
    files, to_store_id = _raw_files(stage, model, chosen)
    # no --rule: predict finds eval/<model>/thresholds.json through params
    args = [
        "predict",
        "--model",
        str(stage.params.train.out_dir / model),
        "--out",
        str(tmp_path),
        *map(str, files),
    ]
    assert main([*args, *stage.args()]) == 0
    predicted = {
        to_store_id[r["record_id"]]: r
        for r in _read_csv(tmp_path / "predictions.csv")
        if r["record_id"] in to_store_id
    }
    assert set(chosen) <= set(predicted)
    report = json.loads((tmp_path / "predictions.json").read_text())
    assert report["decision_rule"] is not None
    for rid in chosen:
        got, want = predicted[rid], test_rows[rid]
        assert got["status"] == "scored"
        for name in card.output_names:
            assert float(got[name]) == pytest.approx(float(want[name]), abs=1e-6), (rid, name)
        if card.task == "reconstruction":
            assert (got["is_anomaly"] == "true") == (want["is_anomaly_pred"] == "True")
        else:
            # predictions.csv joins several classes with ";", test_scores.csv with " "
            assert [c for c in got["predicted"].split(";") if c] == want["predicted"].split()


def test_predict_does_not_apply_a_rule_evaluated_on_another_checkpoint(stage: Stage, tmp_path: Path) -> None:
    # Retrain the autoencoder elsewhere (another seed): eval/autoencoder/thresholds.json was
    # chosen for the first checkpoint's score scale, not this one's.
    other = tmp_path / "models"
    retrain = stage.args(f"train.out_dir={other}", f"train.live_dir={tmp_path / 'live'}",
                         "train.models.autoencoder.seed=1", "train.models.autoencoder.lr=0.01")  # fmt: skip
    assert main(["train", "autoencoder", *retrain]) == 0
    ucr = stage.root / "raw" / "ucr" / "ECG5000_TEST.txt"
    out = tmp_path / "pred"
    rc = main(["predict", "--model", str(other / "autoencoder"), "--out", str(out), str(ucr), *stage.args()])
    if rc == 2:
        return  # refused, naming the mismatch: acceptable
    report = json.loads((out / "predictions.json").read_text())
    assert report["decision_rule"] is None, (
        "predict applied eval/autoencoder/thresholds.json, which evaluation chose for another checkpoint"
    )
