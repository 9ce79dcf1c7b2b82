"""The split index file (``ecgpipe-split-index/1``: which shard row of the store is in which split,
and its group) and :func:`index_from_store`, which splits every live record of a store by the
rules of :mod:`pipeline.dataset.stratify`. Nothing here reads a signal.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.core.fs import write_atomic
from pipeline.dataset.stratify import (
    DEFAULT_FRACTIONS,
    PTBXL_FOLD_MAP,
    SplitError,
    group_keys,
    make_splits,
    split_counts,
)
from pipeline.store.base import Store
from pipeline.store.labels import read_labels
from pipeline.store.local import read_strings

# SplitError is raised by read_index too: readers of an index catch it from here.
__all__ = [
    "INDEX_COLUMNS",
    "INDEX_FORMAT",
    "IndexRow",
    "SplitError",
    "SplitIndex",
    "index_from_store",
    "read_index",
    "write_index",
]

INDEX_FORMAT = "ecgpipe-split-index/1"
INDEX_COLUMNS = ("record_id", "shard", "row", "split", "group")


@dataclass(frozen=True)
class IndexRow:
    """One record of the index: where it lives in the store, its split and its group."""

    record_id: str
    shard: str
    row: int
    split: str
    group: str


@dataclass(frozen=True)
class SplitIndex:
    """The rows of an index file and its header (seed, fractions, labels digest, ...)."""

    rows: tuple[IndexRow, ...]
    header: dict[str, Any]

    def split_rows(self, split: str) -> tuple[IndexRow, ...]:
        """The rows of one split, in index order."""
        return tuple(r for r in self.rows if r.split == split)


# --------------------------------------------------------------------------- index file


def write_index(path: Path, rows: Sequence[IndexRow], header: Mapping[str, Any] | None = None) -> None:
    """Write the index CSV atomically: ``# key: <json>`` header lines, then one row per record."""
    buf = io.StringIO()
    buf.write(f"# format: {json.dumps(INDEX_FORMAT)}\n")
    for key, value in (header or {}).items():
        if key == "format":
            continue
        if not key.isidentifier():
            raise SplitError(f"index header key {key!r}: use a plain identifier")
        buf.write(f"# {key}: {json.dumps(value)}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for r in rows:
        writer.writerow([r.record_id, r.shard, r.row, r.split, r.group])
    write_atomic(Path(path), buf.getvalue().encode("utf-8"))


def read_index(path: Path) -> SplitIndex:
    """Read an index written by :func:`write_index`; a malformed file raises :class:`SplitError`."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    n_header = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    header: dict[str, Any] = {}
    for lineno, line in enumerate(lines[:n_header], start=1):
        key, sep, value = line[1:].strip().partition(":")
        if not sep:
            raise SplitError(f"{path}:{lineno}: header line without 'key: value'")
        try:
            header[key.strip()] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SplitError(f"{path}:{lineno}: header value is not JSON: {exc}") from exc
    if header.get("format") != INDEX_FORMAT:
        raise SplitError(
            f"{path}: not a split index of format {INDEX_FORMAT} (found {header.get('format')!r})"
        )
    reader = csv.reader(lines[n_header:])
    columns = next(reader, None)
    if columns is None or tuple(columns) != INDEX_COLUMNS:
        raise SplitError(f"{path}: expected columns {','.join(INDEX_COLUMNS)}, found {columns}")
    rows = []
    for lineno, fields in enumerate(reader, start=n_header + 2):
        if len(fields) != len(INDEX_COLUMNS) or not fields[2].isdigit():
            raise SplitError(f"{path}:{lineno}: expected {len(INDEX_COLUMNS)} fields with an integer row")
        rows.append(IndexRow(fields[0], fields[1], int(fields[2]), fields[3], fields[4]))
    return SplitIndex(rows=tuple(rows), header=header)


# --------------------------------------------------------------------------- from a store


def _fold_of(meta_json: str, fold_key: str) -> int | None:
    value = json.loads(meta_json).get(fold_key) if meta_json else None
    if value is None or str(value).strip() == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        raise SplitError(f"meta {fold_key}={value!r}: expected an integer fold") from None


def index_from_store(
    store: Store,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    fold_map: Mapping[str, Sequence[int]] = PTBXL_FOLD_MAP,
    fold_key: str | None = "strat_fold",
    group_by_source: bool = True,
    normal_only_train: str | None = None,
    keep: Callable[[npt.NDArray[Any]], npt.NDArray[np.bool_]] | None = None,
    scheme: str | None = None,
) -> SplitIndex:
    """Split every live record of ``store`` (labels from :func:`read_labels`; patient ids and
    ``meta[fold_key]`` from the shards; no signal is read). ``fold_key=None`` ignores folds.
    ``keep(y (N, V)) -> (N,) bool`` leaves records out before splitting (e.g. a single-label model
    cannot use a record with two of its classes); the header counts them as ``excluded``.
    ``scheme`` picks the label scheme stratified on (None: the default); the header names it, so
    the loader joins the same labels."""
    labels = read_labels(store, scheme)
    if labels is None:
        raise SplitError(f"{store.location()}: no unified labels yet; run ingest (which relabels) first")
    n_live = len(labels.record_id)
    if keep is not None:
        labels = labels.subset(np.flatnonzero(keep(labels.y)))
    n = len(labels.record_id)
    pids: list[str] = [""] * n
    fold_list: list[int | None] = [None] * n
    for shard, rows in _rows_by_shard(labels.shard, labels.row).items():
        group = store.open_shard(shard)
        pid = read_strings(group, "patient_id")
        meta = read_strings(group, "meta") if fold_key else []
        for pos, row in rows:
            pids[pos] = pid[row]
            if fold_key:
                fold_list[pos] = _fold_of(meta[row], fold_key)
    splits = make_splits(
        labels.record_id, pids, labels.y, fractions, seed,
        fold_list if fold_key else None, fold_map, group_by_source, normal_only_train, labels.vocabulary,
    )  # fmt: skip
    groups = group_keys(labels.record_id, pids, group_by_source)
    rows_out = tuple(
        IndexRow(labels.record_id[i], labels.shard[i], int(labels.row[i]), splits[i], groups[i])
        for i in range(n)
    )
    header = {
        "profile": store.profile,
        "seed": seed,
        "fractions": dict(fractions),
        "fold_key": fold_key,
        "fold_map": {k: [int(f) for f in v] for k, v in fold_map.items()},
        "group_by_source": group_by_source,
        "normal_only_train": normal_only_train,
        "labels_digest": labels.digest,
        "scheme": labels.scheme,
        "vocabulary": list(labels.vocabulary),
        "counts": split_counts(splits, labels.y, labels.vocabulary),
        "records_with_fold": sum(f is not None for f in fold_list),
        "excluded": n_live - n,
        "groups": dict(Counter(r.split for r in _first_per_group(rows_out))),
    }
    return SplitIndex(rows=rows_out, header=header)


def _rows_by_shard(shards: Sequence[str], rows: npt.NDArray[np.int64]) -> dict[str, list[tuple[int, int]]]:
    """``{shard: [(position in the label set, row in the shard), ...]}`` in label-set order."""
    out: dict[str, list[tuple[int, int]]] = {}
    for pos, (shard, row) in enumerate(zip(shards, rows, strict=True)):
        out.setdefault(shard, []).append((pos, int(row)))
    return out


def _first_per_group(rows: Sequence[IndexRow]) -> list[IndexRow]:
    seen: set[str] = set()
    out = []
    for r in rows:
        if r.group not in seen:
            seen.add(r.group)
            out.append(r)
    return out
