"""Shared by the ``ecgpipe predict`` tests: tiny models trained by ``fit``, reference scores computed
without predict (``wfdb.rdrecord`` decoding, ``process``, a real shard round trip, one forward pass),
and readers of predict's output files."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
import wfdb

from pipeline.config import Profile, Quality
from pipeline.config.build import signal_plan
from pipeline.core.leads import canonical_leads
from pipeline.core.records import Provenance, Record
from pipeline.evaluation.thresholds import SplitName, ThresholdSet
from pipeline.export.predict import CSV_NAME, JSON_NAME
from pipeline.models.card import ModelCard, card_from_checkpoint
from pipeline.models.scoring import Task, output_scores
from pipeline.signal.preprocess import SignalPlan, process
from pipeline.store.local import ShardStore, StorageSpec, read_signal, rows_for
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.loop import fit
from pipeline.training.options import EarlyStopping, TrainConfig

CINC = "cinc2017/training2017"
PTBXL = "ptbxl"
UCR = "ucr_ecg5000"
N_BEATS = 150
AF_CLASSES = ("NORM", "AF", "OTHER", "NOISY")
ECG12_CLASSES = ("NORM", "MI", "OTHER")
ECG12_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
STORAGE = StorageSpec(dtype="int16", scale_mv=0.001, records_per_chunk=16)

# Profiles as params.yaml declares them (built here so the test does not depend on that file).
PROFILES: dict[str, Profile] = {
    "lead1_af": Profile(
        sources=("cinc2017",),
        leads=("I",),
        lead_aliases={"I": ("ECG",)},
        fs_hz=300,
        length_s=30,
        quality=Quality(min_duration_s=5.0),
    ),
    "ecg12": Profile(
        sources=("ptbxl",), leads=ECG12_LEADS, fs_hz=500, length_s=10, quality=Quality(min_duration_s=2.0)
    ),
    "beats140": Profile(
        sources=("ucr",),
        leads=("ECG",),
        fs_hz=None,
        length_samples=140,
        baseline_hz=None,
        notch_hz=None,
        quality=Quality(max_nan_fraction=0.0, flat_ptp_mv=0.0, reject_flat=False, min_duration_s=0.0),
    ),
}

Scores = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- models


@dataclasses.dataclass(frozen=True)
class Trained:
    card: ModelCard
    checkpoint: Path


def make_card(
    profile: str, name: str, kind: str, kwargs: Mapping[str, Any], task: Task, classes: tuple[str, ...]
) -> ModelCard:
    plan = signal_plan(PROFILES[profile])
    return ModelCard(
        name=name,
        kind=kind,
        kwargs=dict(kwargs),
        task=task,
        classes=classes,
        vocabulary=("NORM", "AF", "MI", "BBB", "OTHER", "NOISY"),
        profile=profile,
        signal_plan=dataclasses.asdict(plan),
        input_shape=(len(plan.leads), plan.length),
        normal_class="NORM" if task == "reconstruction" else None,
    )


CARDS = {
    "crnn": make_card(
        "lead1_af",
        "crnn",
        "crnn",
        {"n_classes": 4, "n_fft": 64, "hop": 32, "conv_channels": [4, 8], "rnn_hidden": 8},
        "multiclass",
        AF_CLASSES,
    ),
    "resnet": make_card(
        "ecg12",
        "resnet",
        "resnet1d",
        {"n_leads": 12, "n_classes": 3, "widths": [8, 16], "kernel_size": 7},
        "multilabel",
        ECG12_CLASSES,
    ),
    "autoencoder": make_card(
        "beats140",
        "autoencoder",
        "autoencoder",
        {"in_channels": 1, "length": 140, "widths": [8, 16], "latent": 8},
        "reconstruction",
        (),
    ),
}


def tiny_batches(card: ModelCard, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One tiny batch of noise in the card's input shape, with targets of its task."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(3, *card.input_shape, generator=g)
    if card.task == "multiclass":
        y = torch.arange(3)
    elif card.task == "multilabel":
        y = (torch.rand(3, len(card.classes), generator=g) > 0.5).float()
    else:
        y = torch.zeros(3)
    return [(x, y)]


_TRAINED: dict[str, Trained] = {}


def train_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """The three model families, trained one epoch each by ``fit`` (real ``best.pt`` files); once per
    session, so the test modules that use them share one training."""
    if _TRAINED:
        return _TRAINED
    out = _TRAINED
    for i, (name, card) in enumerate(CARDS.items()):
        folder = tmp_path_factory.mktemp(f"train-{name}")
        cfg = TrainConfig(
            task=card.task,
            epochs=1,
            lr=1e-2,
            device="cpu",
            amp=False,
            seed=i,
            early_stopping=EarlyStopping(patience=None),
        )
        batches = tiny_batches(card, i)
        result = fit(card.build(), batches, batches, cfg, folder, {"card": card.to_dict()}, progress=False)
        assert result.best_path is not None
        out[name] = Trained(card, result.best_path)
    return out


def loaded_model(t: Trained) -> torch.nn.Module:
    """The network from the checkpoint, loaded the way any consumer would (not via predict)."""
    ckpt = load_checkpoint(t.checkpoint)
    model = card_from_checkpoint(ckpt).build()
    model.load_state_dict(ckpt["model"])
    return model.eval()


# --------------------------------------------------------------------------- references


def ref_record(rid: str, signal: npt.NDArray[np.float32], fs: float | None, leads: Sequence[str]) -> Record:
    return Record(
        rid,
        "ref",
        np.ascontiguousarray(signal, dtype=np.float32),
        fs,
        tuple(leads),
        None,
        (),
        Provenance(files=(), reader="ref"),
    )


def wfdb_record(path: Path, samples: int | None = None) -> Record:
    """A record decoded by ``wfdb.rdrecord`` (an independent decoder), optionally its first samples."""
    rec = wfdb.rdrecord(str(path), sampto=samples)
    leads = canonical_leads(list(rec.sig_name))
    return ref_record(
        path.name, np.asarray(rec.p_signal, dtype=np.float64).T.astype(np.float32), rec.fs, leads
    )


def reference_scores(t: Trained, records: Sequence[Record], tmp: Path) -> Scores:
    """Scores of a direct forward pass on the signal as a training shard stores it."""
    plan: SignalPlan = t.card.plan()
    batch, rejected = process(list(records), plan)
    assert not rejected, rejected
    store = ShardStore(tmp / f"store-{len(list(tmp.iterdir()))}", t.card.profile)
    rows = rows_for(batch.records, [r.record_id for r in batch.records], batch.valid_len)
    store.write_shard("part-000000", batch.signal, rows, STORAGE, {})
    x = torch.from_numpy(read_signal(store.open_shard("part-000000")))
    with torch.inference_mode():
        scores = output_scores(t.card.task, x, loaded_model(t)(x))
    return np.asarray(scores.double().numpy()).reshape(len(records), -1)


# --------------------------------------------------------------------------- output helpers


def csv_rows(out: Path) -> dict[str, dict[str, str]]:
    """The table's rows by id; the ``# key: <json>`` preamble (model, training data) is left out."""
    text = (out / CSV_NAME).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("#")]
    return {row["record_id"]: row for row in csv.DictReader(lines)}


def csv_preamble(out: Path) -> dict[str, Any]:
    """The ``# key: <json>`` lines above the CSV header, parsed."""
    head = [
        line[2:]
        for line in (out / CSV_NAME).read_text(encoding="utf-8").splitlines()
        if line.startswith("# ")
    ]
    return {k: json.loads(v) for k, v in (line.split(": ", 1) for line in head)}


def read_json(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / JSON_NAME).read_text())
    return data


def scores_of(rows: Mapping[str, Mapping[str, str]], ids: Sequence[str], names: Sequence[str]) -> Scores:
    return np.array([[float(rows[i][n]) for n in names] for i in ids], dtype=np.float64)


def thresholds(classes: Sequence[str], values: Sequence[float], chosen_on: SplitName = "val") -> ThresholdSet:
    values = tuple(float(v) for v in values)
    return ThresholdSet(tuple(classes), values, chosen_on, n=10, method="test", ids_digest="0" * 64)


def copy_record(src: Path, dest: Path, suffixes: Sequence[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in suffixes:
        shutil.copy(src.with_name(src.name + suffix), dest / (src.name + suffix))


def ucr_head(src: Path, dest: Path, n: int) -> tuple[Path, Path]:
    """The first ``n`` beats of the real ECG5000 ``.txt`` and ``.arff`` files (same values)."""
    dest.mkdir()
    txt_lines = (src / "ECG5000_TRAIN.txt").read_text().splitlines(keepends=True)
    (dest / "ECG5000_TRAIN.txt").write_text("".join(txt_lines[:n]))
    arff_lines = (src / "ECG5000_TRAIN.arff").read_text().splitlines(keepends=True)
    data = next(i for i, line in enumerate(arff_lines) if line.strip().lower() == "@data") + 1
    (dest / "ECG5000_TRAIN.arff").write_text("".join(arff_lines[: data + n]))
    return dest / "ECG5000_TRAIN.txt", dest / "ECG5000_TRAIN.arff"
