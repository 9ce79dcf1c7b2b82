"""Models choose a label scheme: the ResNet trained one epoch on ``ptbxl_superdiagnostic`` of a demo
store stratifies its split on that scheme, records scheme and tables digest in its card, and
``ecgpipe predict`` writes scores under the scheme's class names."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.config import load_params
from pipeline.dataset.splits import read_index
from pipeline.models.card import card_from_checkpoint
from pipeline.store.labels import read_labels
from pipeline.store.local import ShardStore
from pipeline.training.checkpoint import load_checkpoint
from tests.model_stages import REPO, TINY, build_demo_store, cli_args, stage_dirs

SUPER = ("CD", "HYP", "MI", "NORM", "STTC")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("scheme_model")
    overrides = build_demo_store(root, n_ptbxl=80, n_cinc2017=0, n_ucr=0, profiles=("ecg12",))
    overrides += stage_dirs(root) + TINY
    overrides += ["train.models.resnet.labels=ptbxl_superdiagnostic", "train.models.resnet.epochs=1"]
    args = cli_args(overrides)
    assert main(["split", "resnet", *args]) == 0
    assert main(["train", "resnet", *args]) == 0
    return root, overrides


def test_resnet_on_ptbxl_superdiagnostic_splits_and_trains_on_the_scheme(
    trained: tuple[Path, list[str]],
) -> None:
    root, overrides = trained
    params = load_params(REPO / "params.yaml", overrides)
    store = ShardStore(params.ingest.store / "ecg12", "ecg12")
    labels = read_labels(store, "ptbxl_superdiagnostic")
    assert labels is not None and labels.vocabulary == SUPER and labels.y.sum() > 0
    index = read_index(params.split.out_dir / "resnet.csv")
    assert index.header["scheme"] == "ptbxl_superdiagnostic" and index.header["vocabulary"] == list(SUPER)
    assert index.header["labels_digest"] == labels.digest
    card = card_from_checkpoint(load_checkpoint(params.train.out_dir / "resnet" / "best.pt"))
    assert card.classes == SUPER and card.vocabulary == SUPER
    assert card.labels_scheme == "ptbxl_superdiagnostic" and card.labels_tables_digest == labels.tables_digest
    assert len(card.labels_tables_digest) == 64


def test_predict_writes_scores_under_the_scheme_class_names(
    trained: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, overrides = trained
    params = load_params(REPO / "params.yaml", overrides)
    out = tmp_path / "pred"
    records = root / "raw" / "ptbxl"
    assert main(["predict", "--model", str(params.train.out_dir / "resnet"), str(records), "--out", str(out),
                 *cli_args(overrides)]) == 0  # fmt: skip
    table = next(out.glob("*.csv"))
    with table.open(newline="", encoding="utf-8") as f:  # after the `# key: <json>` lines
        header = next(csv.reader(line for line in f if not line.startswith("#")))
    assert [c for c in header if c in SUPER] == list(SUPER)
