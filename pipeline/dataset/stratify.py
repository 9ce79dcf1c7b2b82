"""Leak-free train/val/test splits: which split each record goes to (the index file that records
them, and splitting a store, are :mod:`pipeline.dataset.splits`).

Rules, in the order they are applied:

* **Groups.** Every record belongs to a group: its patient (``<source>:<patient_id>`` by default,
  because MIT-BIH patient ``100`` and CPSC 2021 patient ``100`` are different people), or the
  record alone when the source gives no patient id (CinC 2017, UCR). A whole group goes to one
  split, so no patient is ever in two splits.
* **Folds.** A record with a predefined fold (PTB-XL's ``strat_fold``, which PTB-XL itself makes
  patient-grouped and label-stratified) goes where ``fold_map`` sends it; PTB-XL recommends folds
  1-8 train, 9 val, 10 test. A group is sent by its fold records (by majority when they disagree,
  so even a malformed fold column cannot put one patient in two splits); records of that group
  without a fold follow it.
* **Stratification.** Every other group is placed by iterative stratification (Sechidis,
  Tsoumakas & Vlahavas 2011, "On the stratification of multi-label data"), applied to groups:
  take the label with the fewest examples not yet placed, give each group carrying it (largest
  first) to the split that most lacks that label, then the split that most lacks records, then
  a seeded draw. Groups with no label at all fill the splits that most lack records.
* **Normal-only train** (autoencoder profiles): only groups whose every record is exactly the
  normal class may go to train; groups with any other label vector (anomalies, and records with
  no label, which are not known to be normal) are spread over the other splits in proportion
  to their fractions.

The result depends only on the inputs and the seed, not on record order. Nothing here reads a
signal: a label-map change re-derives the labels and this index, and nothing upstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.core.errors import PipelineError

DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
# PTB-XL's recommended use of its ten stratified, patient-grouped folds.
PTBXL_FOLD_MAP: Mapping[str, Sequence[int]] = {"train": tuple(range(1, 9)), "val": (9,), "test": (10,)}


class SplitError(PipelineError, ValueError):
    """Inconsistent split settings or inputs (names the setting or record at fault)."""


# --------------------------------------------------------------------------- groups


def group_keys(
    record_ids: Sequence[str], patient_ids: Sequence[str | None], group_by_source: bool = True
) -> list[str]:
    """The group of each record: ``<source>:<patient>`` (or the bare patient id when
    ``group_by_source`` is false), or ``record:<record_id>`` when the patient is unknown.

    The source is the part of the record id before the first ``:``.
    """
    if len(record_ids) != len(patient_ids):
        raise SplitError(f"{len(record_ids)} record ids but {len(patient_ids)} patient ids")
    keys = []
    for rid, pid in zip(record_ids, patient_ids, strict=True):
        if pid is None or not str(pid).strip():
            keys.append(f"record:{rid}")
        elif group_by_source:
            keys.append(f"patient:{rid.split(':', 1)[0]}:{str(pid).strip()}")
        else:
            keys.append(f"patient:{str(pid).strip()}")
    return keys


# --------------------------------------------------------------------------- validation


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    if not fractions:
        raise SplitError("fractions: at least one split is needed")
    bad = {k: v for k, v in fractions.items() if not np.isfinite(v) or v < 0}
    if bad:
        raise SplitError(f"fractions: negative or non-finite values {bad}")
    total = float(sum(fractions.values()))
    if abs(total - 1.0) > 1e-6:
        raise SplitError(f"fractions: must sum to 1, got {total:g} ({dict(fractions)})")
    return {str(k): float(v) for k, v in fractions.items()}


def _fold_lookup(fold_map: Mapping[str, Sequence[int]], splits: Sequence[str]) -> dict[int, str]:
    lookup: dict[int, str] = {}
    for split, folds in fold_map.items():
        if split not in splits:
            raise SplitError(f"fold_map: split {split!r} is not one of the fractions' splits {list(splits)}")
        for f in folds:
            if int(f) in lookup:
                raise SplitError(f"fold_map: fold {f} is mapped to both {lookup[int(f)]!r} and {split!r}")
            lookup[int(f)] = split
    return lookup


def _check_labels(y: npt.NDArray[Any], n: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(y)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise SplitError(f"y: expected shape ({n}, K), got {arr.shape}")
    out: npt.NDArray[np.int64] = (arr != 0).astype(np.int64)
    return out


# --------------------------------------------------------------------------- splitting


def make_splits(
    record_ids: Sequence[str],
    patient_ids: Sequence[str | None],
    y: npt.NDArray[Any],
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    folds: Sequence[int | None] | None = None,
    fold_map: Mapping[str, Sequence[int]] = PTBXL_FOLD_MAP,
    group_by_source: bool = True,
    normal_only_train: str | None = None,
    vocabulary: Sequence[str] | None = None,
    train_split: str = "train",
) -> list[str]:
    """The split name of each record (see the module docstring for the rules).

    ``y`` is the ``(N, K)`` multi-hot unified label matrix; ``folds`` gives each record's
    predefined fold or None; ``normal_only_train`` names the normal class (a ``vocabulary``
    entry): only records labelled exactly that class may go to ``train_split``.
    """
    n = len(record_ids)
    fr = _check_fractions(fractions)
    names = list(fr)
    labels = _check_labels(y, n)
    if folds is not None and len(folds) != n:
        raise SplitError(f"folds: {len(folds)} values for {n} records")
    if folds is not None and all(f is None for f in folds):
        folds = None  # no record has a fold: the fold map is not used, so it need not fit
    fold_split = _fold_lookup(fold_map, names) if folds is not None else {}
    if n == 0:
        return []
    keys = group_keys(record_ids, patient_ids, group_by_source)
    uniq, group_of = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    n_groups = len(uniq)
    counts = np.zeros((n_groups, labels.shape[1]), dtype=np.int64)
    np.add.at(counts, group_of, labels)
    sizes = np.bincount(group_of, minlength=n_groups).astype(np.int64)
    fixed = _fixed_by_fold(record_ids, folds, fold_split, group_of, n_groups, names)
    assigned = fixed.copy()
    rng = np.random.default_rng(seed)
    if normal_only_train is None:
        free = np.flatnonzero(assigned < 0)
        assigned[free] = _stratify(counts[free], sizes[free], np.array(list(fr.values())), rng)
    else:
        normal = _normal_groups(labels, group_of, n_groups, normal_only_train, vocabulary)
        _assign_normal_only(assigned, normal, counts, sizes, fr, train_split, rng)
    return [names[s] for s in assigned[group_of]]


def _fixed_by_fold(
    record_ids: Sequence[str],
    folds: Sequence[int | None] | None,
    fold_split: Mapping[int, str],
    group_of: npt.NDArray[np.intp],
    n_groups: int,
    names: Sequence[str],
) -> npt.NDArray[np.int64]:
    """Split index of each group decided by its records' folds, -1 where no record has one."""
    fixed = np.full(n_groups, -1, dtype=np.int64)
    if folds is None:
        return fixed
    votes = np.zeros((n_groups, len(names)), dtype=np.int64)
    for i, fold in enumerate(folds):
        if fold is None:
            continue
        if int(fold) not in fold_split:
            raise SplitError(f"{record_ids[i]}: fold {fold} is not in fold_map {dict(fold_split)}")
        votes[group_of[i], names.index(fold_split[int(fold)])] += 1
    has = votes.sum(axis=1) > 0
    # argmax takes the first of equal votes: ties go to the split listed first in the fractions.
    fixed[has] = np.argmax(votes[has], axis=1)
    return fixed


def _normal_groups(
    labels: npt.NDArray[np.int64],
    group_of: npt.NDArray[np.intp],
    n_groups: int,
    normal: str,
    vocabulary: Sequence[str] | None,
) -> npt.NDArray[np.bool_]:
    """True for groups whose every record is labelled exactly ``normal`` and nothing else."""
    if vocabulary is None or normal not in vocabulary:
        raise SplitError(f"normal_only_train: {normal!r} is not in the vocabulary {vocabulary}")
    if len(vocabulary) != labels.shape[1]:
        raise SplitError(f"vocabulary has {len(vocabulary)} labels but y has {labels.shape[1]} columns")
    target = np.zeros(labels.shape[1], dtype=np.int64)
    target[list(vocabulary).index(normal)] = 1
    record_normal = np.all(labels == target, axis=1)
    abnormal = np.zeros(n_groups, dtype=np.int64)
    np.add.at(abnormal, group_of, ~record_normal)
    only_normal: npt.NDArray[np.bool_] = abnormal == 0
    return only_normal


def _assign_normal_only(
    assigned: npt.NDArray[np.int64],
    normal: npt.NDArray[np.bool_],
    counts: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.int64],
    fractions: Mapping[str, float],
    train_split: str,
    rng: np.random.Generator,
) -> None:
    """Normal groups over all splits; other groups over every split but ``train_split``."""
    names = list(fractions)
    if train_split not in names:
        raise SplitError(f"normal_only_train: no split named {train_split!r} in {names}")
    train = names.index(train_split)
    # A fold may not send an anomaly into train; such groups are stratified like unfolded ones.
    assigned[(~normal) & (assigned == train)] = -1
    frac = np.array(list(fractions.values()))
    other = frac.copy()
    other[train] = 0.0
    free_anomalous = np.flatnonzero((~normal) & (assigned < 0))
    if len(free_anomalous) and other.sum() <= 0:
        raise SplitError(f"normal_only_train: every split but {train_split!r} has fraction 0")
    free_normal = np.flatnonzero(normal & (assigned < 0))
    assigned[free_normal] = _stratify(counts[free_normal], sizes[free_normal], frac, rng)
    if len(free_anomalous):
        part = _stratify(counts[free_anomalous], sizes[free_anomalous], other / other.sum(), rng)
        assigned[free_anomalous] = part


def _stratify(
    counts: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.int64],
    fractions: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """Iterative stratification of groups: the split index of each group.

    ``counts`` ``(G, K)``: records per label in each group; ``sizes`` ``(G,)``: records per group.
    """
    n_groups = len(sizes)
    out = np.full(n_groups, -1, dtype=np.int64)
    if n_groups == 0:
        return out
    want_records = fractions * float(sizes.sum())
    want_label = fractions[:, None] * counts.sum(axis=0)[None, :].astype(np.float64)
    open_splits = np.flatnonzero(fractions > 0)
    remaining = counts.sum(axis=0)
    # A seeded visiting order, then largest groups first: big groups are hardest to fit late.
    order = rng.permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]
    while True:
        live = np.flatnonzero(remaining > 0)
        if len(live) == 0:
            break
        label = int(live[np.argmin(remaining[live])])
        for g in order[(counts[order, label] > 0) & (out[order] < 0)]:
            s = _pick(want_label[open_splits, label], want_records[open_splits], open_splits, rng)
            out[g] = s
            want_label[s] -= counts[g]
            want_records[s] -= sizes[g]
            remaining -= counts[g]
    for g in order[out[order] < 0]:  # groups without any label
        s = _pick(want_records[open_splits], want_records[open_splits], open_splits, rng)
        out[g] = s
        want_records[s] -= sizes[g]
    return out


def _pick(
    primary: npt.NDArray[np.float64],
    secondary: npt.NDArray[np.float64],
    splits: npt.NDArray[np.intp],
    rng: np.random.Generator,
) -> int:
    """The split with the largest ``primary`` need, then ``secondary``, then a seeded draw."""
    best = np.flatnonzero(np.isclose(primary, primary.max()))
    if len(best) > 1:
        sub = secondary[best]
        best = best[np.isclose(sub, sub.max())]
    choice = best[0] if len(best) == 1 else best[int(rng.integers(len(best)))]
    return int(splits[choice])


def split_counts(
    splits: Sequence[str], y: npt.NDArray[Any], vocabulary: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Records and positives per label in each split: ``{split: {"records": n, label: n, ...}}``."""
    labels = _check_labels(y, len(splits))
    out: dict[str, dict[str, int]] = {}
    arr = np.asarray(splits, dtype=object)
    for name in sorted(set(splits)):
        mask = arr == name
        per = labels[mask].sum(axis=0)
        out[name] = {"records": int(mask.sum()), **{v: int(c) for v, c in zip(vocabulary, per, strict=True)}}
    return out
