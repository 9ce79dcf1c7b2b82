"""The loader benchmark's inputs, built once under ``--work`` and reused: the replicated PTB-XL tree (from
the ingest benchmark), its store with labels, a split index with every record in ``train``, and one
``.npz`` file per record, compressed and plain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.ingest.inputs import PROFILE, build_input, raw_wfdb_bytes
from benchmarks.ingest.ours import run_ours
from pipeline.config import load_params
from pipeline.config.build import signal_plan
from pipeline.core.records import Provenance, Record
from pipeline.dataset.splits import index_from_store, write_index
from pipeline.signal.preprocess import process
from pipeline.sources.ptbxl import PtbXlReader
from pipeline.store.labels import read_labels, relabel
from pipeline.store.local import ShardStore

BATCH = 64  # records per batch, in every reader
STORE_VERSION = 2  # bump when the cached store or .npz files must be rebuilt
NPZ_CHUNK = 256  # records read and preprocessed together while writing the .npz files


@dataclass(frozen=True)
class Inputs:
    """Everything the readers need: the store, its index, the .npz folders, sizes (bytes)."""

    store_base: Path
    index: Path
    npz_compressed: Path
    npz_plain: Path
    n_records: int
    raw_bytes: int


def build_inputs(source: Path, params: Path, work: Path, n: int, overrides: Sequence[str] = ()) -> Inputs:
    """Input tree, store (+ labels and index) and .npz files under ``work``, reused when present.
    ``overrides`` (``ecgpipe --set``, e.g. the profile's ``storage.codec``) shape the store only; a
    store per distinct set of overrides is kept."""
    tree = build_input(source, work / f"input-{n}", n)
    tag = hashlib.sha256(json.dumps(list(overrides)).encode()).hexdigest()[:8] if overrides else ""
    base = work / (f"store-{n}-{tag}" if tag else f"store-{n}")
    store = ShardStore(base / PROFILE, PROFILE)
    stamp = {"version": STORE_VERSION, "n": n, "tree": str(tree.resolve()), "overrides": list(overrides)}
    marker = work / (f".store-{n}-{tag}.json" if tag else f".store-{n}.json")
    if not (marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == stamp):
        marker.unlink(missing_ok=True)
        _ingest(tree, params, store, overrides)
        _write_npz(store, tree, params, work / f"npz-compressed-{n}", work / f"npz-{n}")
        marker.write_text(json.dumps(stamp), encoding="utf-8")
    index = work / f"index-{n}.csv"
    # Every record in one split: the benchmark reads all N records per pass.
    split = index_from_store(store, fractions={"train": 1.0}, fold_map={"train": list(range(1, 11))})
    write_index(index, split.rows, split.header)
    return Inputs(
        store_base=base,
        index=index,
        npz_compressed=work / f"npz-compressed-{n}",
        npz_plain=work / f"npz-{n}",
        n_records=len(split.rows),
        raw_bytes=raw_wfdb_bytes(tree)["raw_bytes"],
    )


def _ingest(tree: Path, params_path: Path, store: ShardStore, overrides: Sequence[str] = ()) -> None:
    """Ingest ``tree`` into ``store`` as the ingest benchmark does (2 workers), then label it."""
    spec = {
        "params": str(params_path),
        "input": str(tree),
        "workers": 2,
        "store": str(store.root),
        "overrides": list(overrides),
    }
    run = run_ours(spec)
    if not run["reconciled"] or run["quarantined"]:
        raise SystemExit(f"ingest of {tree} did not reconcile: {run}")
    params = load_params(params_path, [f"sources.ptbxl.root={tree}"])
    relabel(
        store,
        params.labels.tables_dir,
        params.vocabulary(PROFILE),
        params.labels.ptbxl_min_likelihood,
        params.labels.unmapped,
        params.label_tables_for(),
        params.profiles[PROFILE].label_merge,
    )


def _write_npz(store: ShardStore, tree: Path, params_path: Path, compressed: Path, plain: Path) -> None:
    """One file per record in each folder, ``<position>.npz`` in label-set order, as a notebook
    writes them: the preprocessed float32 ``(12, 5000)`` mV signal (before the store's int16
    quantisation) and the float32 ``(K,)`` labels."""
    labels = read_labels(store)
    assert labels is not None
    position = {rid: i for i, rid in enumerate(labels.record_id)}
    params = load_params(params_path, [f"sources.ptbxl.root={tree}"])
    plan = signal_plan(params.profiles[PROFILE])
    reader = PtbXlReader("ptbxl", tree)
    for folder in (compressed, plain):
        folder.mkdir(parents=True, exist_ok=True)
        for p in folder.glob("*.npz"):
            p.unlink()
    units = reader.discover().units
    for start in range(0, len(units), NPZ_CHUNK):
        records = [
            r
            for unit in units[start : start + NPZ_CHUNK]
            for r in reader.read(unit, Provenance(files=(), reader=reader.reader_id))
            if isinstance(r, Record)
        ]
        batch, _ = process(records, plan)
        for rec, x in zip(batch.records, batch.signal, strict=True):
            i = position[rec.record_id]
            y = labels.y[i].astype(np.float32)
            np.savez_compressed(compressed / f"{i:06d}.npz", signal=x, y=y)
            np.savez(plain / f"{i:06d}.npz", signal=x, y=y)
