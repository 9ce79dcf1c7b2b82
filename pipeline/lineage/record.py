"""Where one record went: its raw files, shard and row, labels, splits, checkpoints and scores.

:func:`record_lineage` finds the record in every profile's store (the unified-label arrays hold
``record_id``, ``shard`` and ``row`` of every live record, one read per profile), reads that
shard's per-record arrays whole, and follows the record into each model whose split index holds
it: its split, the checkpoint trained after the split was made (path, created time and git commit
from the checkpoint itself) and, for the test split, its row of ``<eval>/<model>/test_scores.csv``.

The document (``format`` :data:`FORMAT`)::

    record_id, profiles_searched
    occurrences  [{profile, shard, row, shard_path, shard_sha256, flow_run_id, source, unit, patient_id,
                   reader, parent_id, window, orig_fs_hz, orig_len, meta, raw_files, raw_labels,
                   unified_labels}]
    models       [{model, profile, index, split, group, role, checkpoint, evaluation}]
    warnings     [str]
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.fs import sha256_file
from pipeline.dataset.splits import SplitError, read_index
from pipeline.labels.schemes import DEFAULT_SCHEME, load_scheme
from pipeline.labels.why import explain
from pipeline.lineage.dvc_lock import display_path
from pipeline.lineage.query import LineageError, StoreLayout, shown_location
from pipeline.lineage.similar import close_record_ids
from pipeline.store.base import Store
from pipeline.store.labels import read_labels
from pipeline.store.local import raw_labels_from_json, read_array, read_strings
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot

FORMAT = "ecgpipe.lineage.record/1"
# Raw files larger than this are not re-hashed for a record query (a multi-GB HDF5 would dominate).
MAX_HASH_BYTES = 256 * 1024 * 1024
CHECKPOINT_NAMES = ("best.pt", "latest.pt")
# Columns of test_scores.csv that are not per-class scores.
NON_SCORE_COLUMNS = frozenset({"record_id", "labels", "predicted", "is_anomaly_pred"})
SPLIT_ROLES = {
    "train": "training: the checkpoint's weights were fitted on it",
    "val": "validation: early stopping, checkpoint choice and decision thresholds; not fitted on",
    "test": "test: held out from training, scored by the evaluation",
}


@dataclass(frozen=True)
class ModelRef:
    """Where one model's files live (plain paths from params)."""

    name: str
    profile: str
    index: Path  # split index CSV
    checkpoint_dir: Path  # holds best.pt / latest.pt
    eval_dir: Path  # holds test_scores.csv


@dataclass(frozen=True)
class _Hit:
    profile: str
    shard: str
    row: int
    labels: tuple[str, ...] | None  # positive unified labels, None when the store has none yet
    vocabulary: tuple[str, ...]
    labels_digest: str | None


def record_lineage(
    project_root: Path,
    record_id: str,
    layout: StoreLayout,
    profiles: Sequence[str],
    models: Sequence[ModelRef] = (),
) -> dict[str, Any]:
    """The lineage document of ``record_id``; raises :class:`LineageError` (with close matches and
    the profiles searched) when no profile's store holds it."""
    root = Path(project_root).resolve()
    warnings: list[str] = []
    hits, known = _find(layout.store, record_id, profiles)
    if not hits:
        raise LineageError(_unknown_message(record_id, known, profiles, layout.store))
    occurrences = [_occurrence(root, layout, record_id, h, warnings) for h in hits]
    in_profiles = {h.profile for h in hits}
    model_docs = [_model_json(root, m, record_id, warnings) for m in models if m.profile in in_profiles]
    return {
        "format": FORMAT,
        "project_root": str(root),
        "record_id": record_id,
        "profiles_searched": list(profiles),
        "occurrences": occurrences,
        "models": [m for m in model_docs if m is not None],
        "warnings": warnings,
    }


# --------------------------------------------------------------------------- finding the record


def _find(
    store_root: StoreRoot | Path, record_id: str, profiles: Sequence[str]
) -> tuple[list[_Hit], list[str]]:
    """The record's live rows in each profile, and every record id seen (for close matches)."""
    hits: list[_Hit] = []
    known: list[str] = []
    for profile in profiles:
        store = open_store(store_root, profile)
        if not store.has_manifest():
            continue
        labels = read_labels(store)
        if labels is not None:
            ids = labels.record_id
            known.extend(ids)
            for i in np.flatnonzero(np.asarray(ids, dtype=object) == record_id):
                positive = tuple(v for v, on in zip(labels.vocabulary, labels.y[i], strict=True) if on)
                hits.append(
                    _Hit(
                        profile,
                        labels.shard[i],
                        int(labels.row[i]),
                        positive,
                        labels.vocabulary,
                        labels.digest,
                    )
                )
            continue
        hits.extend(_scan_shards(store, record_id, known))
    return hits, known


def _scan_shards(store: Store, record_id: str, known: list[str]) -> list[_Hit]:
    """Live rows holding ``record_id`` when the store has no unified labels yet (record ids per shard)."""
    out: list[_Hit] = []
    for name, entry in sorted(store.load_manifest().shards.items()):
        ids = read_strings(store.open_shard(name), "record_id")
        for r in entry.live_rows():
            known.append(ids[r])
            if ids[r] == record_id:
                out.append(_Hit(store.profile, name, int(r), None, (), None))
    return out


def _unknown_message(
    record_id: str, known: Sequence[str], profiles: Sequence[str], store: StoreRoot | Path
) -> str:
    close = close_record_ids(record_id, known)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (
        f"record {record_id!r} is not in any profile's store (searched {', '.join(profiles) or 'none'} "
        f"under {StoreRoot.of(store).url}; {len(known):,} live records).{hint} Record ids are "
        "'<source>:<local id>', e.g. 'ptbxl:00001'"
    )


# --------------------------------------------------------------------------- the record itself


def _occurrence(
    root: Path, layout: StoreLayout, record_id: str, hit: _Hit, warnings: list[str]
) -> dict[str, Any]:
    store = open_store(layout.store, hit.profile)
    entry = store.load_manifest().shards.get(hit.shard)
    group = store.open_shard(hit.shard)
    fields = {
        n: read_strings(group, n)[hit.row]
        for n in ("record_id", "source", "unit", "patient_id", "raw_labels", "meta", "provenance")
    }
    if fields["record_id"] != record_id:
        warnings.append(
            f"{hit.profile}/{hit.shard} row {hit.row} holds {fields['record_id']!r}, not "
            f"{record_id!r}: the unified labels are older than the shards; re-run ingest"
        )
    prov = json.loads(fields["provenance"])
    source = fields["source"]
    return {
        "profile": hit.profile,
        "shard": hit.shard,
        "row": hit.row,
        "shard_path": shown_location(root, store.shard_location(hit.shard)),
        "shard_sha256": entry.sha256 if entry else None,
        "flow_run_id": entry.run if entry else None,
        "shard_created": entry.created if entry else None,
        "source": source,
        "unit": fields["unit"],
        "patient_id": fields["patient_id"] or None,
        "reader": prov.get("reader"),
        "parent_id": prov.get("parent_id"),
        "window": prov.get("window"),
        "orig_fs_hz": _number(read_array(group, "orig_fs")[hit.row]),
        "orig_len": int(read_array(group, "orig_len")[hit.row]),
        "meta": json.loads(fields["meta"]) if fields["meta"] else {},
        "raw_files": _raw_files(root, layout.source_roots.get(source), prov.get("files", []), warnings),
        "raw_labels": [
            {"code": lab.code, "likelihood": lab.likelihood}
            for lab in raw_labels_from_json(fields["raw_labels"])
        ],
        "unified_labels": {
            "positive": None if hit.labels is None else list(hit.labels),
            "vocabulary": list(hit.vocabulary),
            "digest": hit.labels_digest,
        },
        "schemes": _schemes_why(store, layout, hit, fields, warnings),
    }


def _schemes_why(
    store: Store, layout: StoreLayout, hit: _Hit, fields: Mapping[str, str], warnings: list[str]
) -> dict[str, Any]:
    """Per derived scheme: the record's labels and, per raw label, its scope and table row."""
    manifest = store.load_manifest()
    if manifest.labels is None or layout.labels_root is None:
        return {}
    raw = raw_labels_from_json(fields["raw_labels"])
    meta = json.loads(fields["meta"]) if fields["meta"] else {}
    source = fields["source"]
    out: dict[str, Any] = {}
    for name in [DEFAULT_SCHEME, *sorted(manifest.labels.schemes)]:
        try:
            scheme = load_scheme(layout.labels_root, name)
        except ValueError as exc:
            warnings.append(f"label scheme {name}: {exc}")
            continue
        labels = read_labels(store, name)
        positive: list[str] | None = None
        if labels is not None:
            at = [
                i
                for i, (s, r) in enumerate(zip(labels.shard, labels.row, strict=True))
                if (s, int(r)) == (hit.shard, hit.row)
            ]
            positive = (
                [v for v, on in zip(labels.vocabulary, labels.y[at[0]], strict=True) if on] if at else None
            )
        why = explain(
            scheme.tables,
            layout.table_for.get(source, source),
            raw,
            dataset=meta.get("dataset"),
            windowed="parent" in meta,
            rule=scheme.rule,
            min_likelihood=layout.min_likelihood,
            root=layout.labels_root.parent.parent,  # rows as data/labels/schemes/<name>/<table>.csv:<line>
        )
        out[name] = {"rule": scheme.rule, "positive": positive, "why": [w.to_json() for w in why]}
    return out


def _number(value: Any) -> float | None:
    v = float(value)
    return None if np.isnan(v) else v


def _raw_files(
    root: Path, source_root: Path | None, files: Sequence[Sequence[str]], warnings: list[str]
) -> list[dict[str, Any]]:
    """Each raw file with the sha256 ingest recorded and, where cheap, its sha256 now."""
    out: list[dict[str, Any]] = []
    for rel, sha in ((str(f[0]), str(f[1])) for f in files):
        path = None if source_root is None else Path(source_root) / rel
        now = _sha256_now(path)
        item = {
            "path": rel if path is None else display_path(root, path),
            "file": rel,
            "sha256": sha,
            "exists": path is not None and path.is_file(),
            "sha256_now": now,
            "unchanged": None if now is None else now == sha,
        }
        if now is not None and now != sha:
            warnings.append(
                f"raw file {item['path']} changed since it was ingested (sha256 {sha[:12]} → {now[:12]})"
            )
        out.append(item)
    return out


def _sha256_now(path: Path | None) -> str | None:
    if path is None or not path.is_file() or path.stat().st_size > MAX_HASH_BYTES:
        return None
    return sha256_file(path)


# --------------------------------------------------------------------------- models


def _model_json(root: Path, model: ModelRef, record_id: str, warnings: list[str]) -> dict[str, Any] | None:
    """The record's split in ``model``'s index, the checkpoint and its evaluation; None if not indexed."""
    if not model.index.is_file():
        warnings.append(f"model {model.name}: no split index at {display_path(root, model.index)}")
        return None
    try:
        index = read_index(model.index)
    except SplitError as exc:
        warnings.append(f"model {model.name}: {exc}")
        return None
    row = next((r for r in index.rows if r.record_id == record_id), None)
    if row is None:
        return None
    checkpoint = _checkpoint_json(root, model, warnings)
    return {
        "model": model.name,
        "profile": model.profile,
        "index": display_path(root, model.index),
        "split": row.split,
        "group": row.group,
        "index_shard": row.shard,
        "index_row": row.row,
        "role": SPLIT_ROLES.get(row.split, f"split {row.split}"),
        "checkpoint": checkpoint,
        "evaluation": _evaluation(root, model, record_id, row.split),
    }


def _checkpoint_json(root: Path, model: ModelRef, warnings: list[str]) -> dict[str, Any] | None:
    path = next(
        (model.checkpoint_dir / n for n in CHECKPOINT_NAMES if (model.checkpoint_dir / n).is_file()), None
    )
    if path is None:
        warnings.append(f"model {model.name}: no checkpoint in {display_path(root, model.checkpoint_dir)}")
        return None
    from pipeline.training.checkpoint import CheckpointError, load_checkpoint  # imports torch

    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        warnings.append(f"model {model.name}: {exc}")
        return {"path": display_path(root, path), "error": str(exc)}
    code = ckpt.get("code") or {}
    lineage = ckpt.get("lineage") or {}
    index_sha = lineage.get("index_sha256")
    same_index = None if not index_sha else index_sha == _sha256_now(model.index)
    if same_index is False:
        warnings.append(
            f"model {model.name}: {display_path(root, path)} was trained on another version of "
            f"{display_path(root, model.index)} (re-run train)"
        )
    return {
        "path": display_path(root, path),
        "created_utc": code.get("created_utc"),
        "git_commit": code.get("git_commit"),
        "git_dirty": code.get("git_dirty"),
        "epoch": ckpt.get("epoch"),
        "finished": ckpt.get("finished"),
        "trained_on_this_index": same_index,
    }


def _evaluation(root: Path, model: ModelRef, record_id: str, split: str) -> dict[str, Any]:
    path = model.eval_dir / "test_scores.csv"
    base: dict[str, Any] = {"path": display_path(root, path), "scored": False}
    if split != "test":
        return {
            **base,
            "reason": f"not scored: evaluation scores the test split only; this record is in "
            f"the {split} split",
        }
    if not path.is_file():
        return {**base, "reason": "not scored yet: no test_scores.csv (run the evaluate stage)"}
    row = _score_row(path, record_id)
    if row is None:
        return {
            **base,
            "reason": "in the test split but not in test_scores.csv: the evaluation is older than "
            "the split index (re-run evaluate)",
        }
    return {
        **base,
        "scored": True,
        "labels": row.get("labels", ""),
        "predicted": row.get("predicted", row.get("is_anomaly_pred", "")),
        "scores": _scores(row),
        "row": row,
    }


def _score_row(path: Path, record_id: str) -> dict[str, str] | None:
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("record_id") == record_id:
                return dict(row)
    return None


def _scores(row: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in row.items():
        if key in NON_SCORE_COLUMNS:
            continue
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out
