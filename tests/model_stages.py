"""Shared by the model-stage tests: a demo store ingested with the ingest library, the stages
``ecgpipe split | train | evaluate`` run once on it, and readers of the stores and outputs."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from pipeline.cli.main import main
from pipeline.config import Params, load_params
from pipeline.config.build import signal_plan, storage_spec
from pipeline.dataset.splits import IndexRow, read_index
from pipeline.demo.raw_tree import write_demo_data
from pipeline.ingest.batch import run_batch
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import plan_ingest
from pipeline.models.card import ModelCard, card_from_checkpoint
from pipeline.sources.registry import build_readers
from pipeline.store.labels import read_labels, relabel
from pipeline.store.local import ShardStore, read_signal, read_strings
from pipeline.training.checkpoint import load_checkpoint

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


def build_demo_store(
    root: Path, n_ptbxl: int, n_cinc2017: int, n_ucr: int, profiles: Sequence[str]
) -> list[str]:
    """Write demo raw data under ``root/raw`` and ingest ``profiles`` into ``root/shards`` with the
    ingest library; returns the ``--set`` overrides that point params at them."""
    write_demo_data(root / "raw", seed=0, n_ptbxl=n_ptbxl, n_cinc2017=n_cinc2017, n_ucr=n_ucr)
    return ingest_raw_tree(root, profiles)


def ingest_raw_tree(root: Path, profiles: Sequence[str]) -> list[str]:
    """Ingest ``profiles`` from the raw tree under ``root/raw`` into ``root/shards``; returns the
    ``--set`` overrides that point params at them."""
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
            params.labels.unmapped, params.label_tables_for(), prof.label_merge,
            params.labels.derived_schemes())  # fmt: skip


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


_STAGE: list[Stage] = []


def run_stages(tmp_path_factory: pytest.TempPathFactory) -> Stage:
    """``ecgpipe split | train | evaluate`` for the three families on a demo store; once per session,
    so the test modules that use the outputs share one run."""
    if _STAGE:
        return _STAGE[0]
    root = tmp_path_factory.mktemp("stage")
    overrides = build_demo_store(root, 60, 40, 120, list(PROFILE_OF.values()))
    overrides += [*stage_dirs(root), *TINY]
    for model in MODELS:
        for command in ("split", "train", "evaluate"):
            assert main([command, model, *cli_args(overrides)]) == 0, (command, model)
    _STAGE.append(Stage(root, overrides, load_params(REPO / "params.yaml", overrides)))
    return _STAGE[0]


def labels_by_id(store: ShardStore, scheme: str | None = None) -> dict[str, npt.NDArray[np.uint8]]:
    """record id → its multi-hot labels in ``scheme`` (None: the default, coarse)."""
    labels = read_labels(store, scheme)
    assert labels is not None
    return dict(zip(labels.record_id, labels.y, strict=True))


def string_column(store: ShardStore, name: str) -> dict[tuple[str, int], str]:
    """(shard, row) → the string column ``name`` of every shard row."""
    out: dict[tuple[str, int], str] = {}
    for shard in store.load_manifest().shards:
        for row, value in enumerate(read_strings(store.open_shard(shard), name)):
            out[(shard, row)] = value
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV; ``#`` comment lines above the header (predictions.csv's preamble) are skipped."""
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
        if not line.startswith("#")
    ]
    return list(csv.DictReader(lines))


def shard_signals(store: ShardStore, rows: Sequence[IndexRow]) -> npt.NDArray[np.float32]:
    """``(N, C, L)`` mV, read straight from the shards (not through the loaders)."""
    return np.stack([read_signal(store.open_shard(r.shard), np.array([r.row]))[0] for r in rows])


def trained_model(stage: Stage, model: str) -> tuple[torch.nn.Module, ModelCard]:
    ckpt = load_checkpoint(stage.params.train.out_dir / model / "best.pt")
    card = card_from_checkpoint(ckpt)
    net = card.build()
    net.load_state_dict(ckpt["model"])
    return net.eval(), card
