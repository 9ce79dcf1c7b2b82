"""Unified labels: the vocabulary, the mapping tables in ``data/labels/*.csv``, and multi-hot vectors.

Readers keep labels exactly as each source states them (:class:`~pipeline.core.records.RawLabel`);
this module turns them into a multi-hot ``uint8`` vector ``(K,)`` over a profile's vocabulary
(``K`` labels, e.g. ``NORM AF MI BBB OTHER NOISY``). It is pure and fast: it reads CSV tables,
never YAML, and maps 100,000 records in well under a second (it caches per distinct raw-label
tuple).

Tables (see ``data/labels/README.md``) are read by :mod:`pipeline.labels.tables`; their digest
(:mod:`pipeline.labels.digest`) tells when stored labels must be re-derived.

Lookup rules:

- A source *name* (``mitbih``) is looked up in the rows of its *table source* (``wfdb``), given by
  ``table_for``; a name absent from ``table_for`` uses its own name.
- Codes are compared case-sensitively after stripping surrounding whitespace and NUL bytes
  (WFDB pads annotation aux text with NULs).
- With a ``dataset`` (UCR), the code ``<dataset>:<code>`` is tried first, then ``<code>``.
- A raw label whose ``likelihood`` (percent, only PTB-XL states one) is below
  ``ptbxl_min_likelihood`` is dropped before lookup; ``None`` likelihoods are always kept.
- A raw label is looked up by ``(scope, code)``: a beat ``A`` and a header class ``A`` are
  different rows.
- Record-scope labels of a *window* (``windowed=True``: one part of a longer recording) follow
  their row's ``windows`` rule: ``always`` reaches every window, ``never`` none (known, not
  unmapped), ``unannotated`` only windows that hold no interval label, so a recording's own
  rhythm annotations govern where they exist. Whole records take every record-scope label.
- ``rule="multilabel"``: the labels of all kept codes are OR-ed, so a record (or window) gets
  every label any of its codes maps to, and one ``V`` beat makes a window OTHER.
  ``rule="single"``: of those labels only the first in ``precedence`` (default: vocabulary
  order) is kept. ``rule="beat"``: as multilabel over beat-scope labels; interval labels are
  ignored, and record-scope labels count only where the scheme has a row for them (sources whose
  records are single beats, e.g. UCR ECG5000), otherwise they are neither mapped nor unmapped.
- A table label outside the mapper's vocabulary is dropped, unless ``merge`` sends it to one
  that is in it (``{"MI": "OTHER"}`` for a profile without MI).
- A code with no row is reported in ``unmapped``; with ``unmapped="OTHER"`` it also sets OTHER.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pipeline.core.records import RawLabel
from pipeline.labels.digest import digest_of
from pipeline.labels.tables import LabelTables, normalise_code

UNMAPPED_POLICIES = ("ignore", "OTHER")
RULES = ("multilabel", "single", "beat")
MAX_LABELS = 1024  # labels are packed into a Python int bit mask while mapping
_FAST_BITS = 63  # up to this many labels the masks fit an int64 array
_CACHE_LIMIT = 1 << 16

UInt8Array = npt.NDArray[np.uint8]
_Lookup = tuple[int, tuple[str, ...]]  # (label bit mask, unmapped codes)
_RawKey = tuple[tuple[str, float | None, str], ...]  # distinct (code, likelihood, scope): spans never matter


class UnknownSourceError(ValueError):
    """A source name has no label table (neither its own name nor a ``table_for`` alias)."""


@dataclass(frozen=True, eq=False)
class MappedLabels:
    """One record's labels: multi-hot ``uint8 (K,)`` and the raw codes that had no table row."""

    labels: UInt8Array
    unmapped: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class MappedBatch:
    """Many records' labels: multi-hot ``uint8 (N, K)`` and ``{source: {code: n_records}}``."""

    labels: UInt8Array
    unmapped: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


# --------------------------------------------------------------------------- mapping


def _check_vocabulary(vocabulary: Sequence[str], known: Sequence[str]) -> None:
    if not vocabulary:
        raise ValueError("the label vocabulary is empty")
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError(f"the label vocabulary {list(vocabulary)} lists a label twice")
    if len(vocabulary) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels are supported, got {len(vocabulary)}")
    unknown = [label for label in vocabulary if label not in known]
    if unknown:
        raise ValueError(f"labels {unknown} are not in the tables' vocabulary {list(known)}")


def _check_merge(merge: Mapping[str, str], vocabulary: Sequence[str], known: Sequence[str]) -> None:
    for src, dst in merge.items():
        if src not in known:
            raise ValueError(f"merge: {src!r} is not in the tables' vocabulary {list(known)}")
        if src in vocabulary:
            raise ValueError(f"merge: {src!r} is in the vocabulary {list(vocabulary)}; it cannot merge")
        if dst not in vocabulary:
            raise ValueError(f"merge: target {dst!r} of {src!r} is not in the vocabulary {list(vocabulary)}")


def _check_options(ptbxl_min_likelihood: float, unmapped: str, vocabulary: Sequence[str]) -> None:
    if not (math.isfinite(ptbxl_min_likelihood) and 0.0 <= ptbxl_min_likelihood <= 100.0):
        raise ValueError(f"ptbxl_min_likelihood must be in [0, 100] percent, got {ptbxl_min_likelihood}")
    if unmapped not in UNMAPPED_POLICIES:
        raise ValueError(f"unmapped must be one of {UNMAPPED_POLICIES}, got {unmapped!r}")
    if unmapped == "OTHER" and "OTHER" not in vocabulary:
        raise ValueError(f"unmapped='OTHER' needs OTHER in the vocabulary {list(vocabulary)}")


class LabelMapper:
    """Maps raw labels to multi-hot vectors over ``vocabulary`` (see the module docstring).

    ``table_for`` maps a source name to the table source whose rows it uses (``{"mitbih":
    "wfdb"}``); ``merge`` sends table labels outside ``vocabulary`` to labels in it;
    ``ptbxl_min_likelihood`` (percent) drops raw labels stated with a lower likelihood;
    ``unmapped`` is ``"ignore"`` (codes with no row set nothing) or ``"OTHER"``; ``rule`` and
    ``precedence`` combine labels (module docstring). ``partial=True`` is for a scheme defined on
    some sources only: a source without a table maps to no label and all its codes are unmapped.
    """

    def __init__(
        self,
        tables: LabelTables,
        vocabulary: Sequence[str],
        ptbxl_min_likelihood: float = 0.0,
        unmapped: str = "ignore",
        table_for: Mapping[str, str] | None = None,
        merge: Mapping[str, str] | None = None,
        rule: str = "multilabel",
        precedence: Sequence[str] | None = None,
        partial: bool = False,
    ) -> None:
        _check_vocabulary(vocabulary, tables.vocabulary)
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        self._rule = rule
        self._partial = partial
        self._precedence = tuple(precedence or vocabulary)
        if sorted(self._precedence) != sorted(vocabulary):
            raise ValueError(
                f"precedence {list(self._precedence)} must order exactly the vocabulary {list(vocabulary)}"
            )
        _check_options(ptbxl_min_likelihood, unmapped, vocabulary)
        _check_merge(merge or {}, vocabulary, tables.vocabulary)
        self._tables = tables
        self._vocabulary = tuple(vocabulary)
        self._min_likelihood = float(ptbxl_min_likelihood)
        self._unmapped = unmapped
        self._table_for = dict(table_for or {})
        self._merge = dict(merge or {})
        self._check_aliases()
        self._label_mask = self._label_masks()
        self._unmapped_mask = self._label_mask["OTHER"] if unmapped == "OTHER" else 0
        self._code_masks = self._build_code_masks()
        self._bits = np.arange(len(self._vocabulary), dtype=np.int64)
        self._cache: dict[tuple[str, str | None, bool, _RawKey], _Lookup] = {}

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The labels, in multi-hot column order."""
        return self._vocabulary

    @property
    def digest(self) -> str:
        """:func:`tables_digest` of this mapper's tables and parameters."""
        return digest_of(
            self._tables.files,
            self._vocabulary,
            self._min_likelihood,
            self._unmapped,
            self._table_for,
            self._merge,
            self._rule,
            self._precedence,
        )

    def _check_aliases(self) -> None:
        if self._partial:
            return
        known = self._tables.sources()
        bad = {name: table for name, table in self._table_for.items() if table not in known}
        if bad:
            raise ValueError(f"table_for {bad}: no such table source; tables exist for {sorted(known)}")

    def _label_masks(self) -> dict[str, int]:
        """Bit mask of every table label: its own bit, its merge target's bit, or 0 (dropped)."""
        own = {label: 1 << k for k, label in enumerate(self._vocabulary)}
        masks = {label: own.get(self._merge.get(label, label), 0) for label in self._tables.vocabulary}
        masks[""] = 0
        return masks

    def _build_code_masks(self) -> dict[str, dict[tuple[str, str], tuple[int, str]]]:
        """``{table source: {(scope, code): (label bit mask, windows rule)}}``."""
        masks: dict[str, dict[tuple[str, str], tuple[int, str]]] = {}
        for (source, scope, code), row in self._tables.rows.items():
            masks.setdefault(source, {})[(scope, code)] = (self._label_mask[row.label], row.windows)
        return masks

    def table_source(self, source: str) -> str:
        """The table source that ``source`` (a source name from params) maps through."""
        table = self._table_for.get(source, source)
        if table not in self._code_masks and not self._partial:
            raise UnknownSourceError(
                f"no label table for source {source!r} (looked for table source {table!r}); tables "
                f"exist for {sorted(self._code_masks)}; alias it with table_for={{{source!r}: ...}}"
            )
        return table

    def check_sources(self, sources: Sequence[str]) -> None:
        """Raise :class:`UnknownSourceError` naming every source that has no table."""
        missing = [s for s in sources if self._table_for.get(s, s) not in self._code_masks]
        if missing:
            raise UnknownSourceError(
                f"no label table for sources {missing}; tables exist for {sorted(self._code_masks)}"
            )

    def _keep(self, likelihood: float | None) -> bool:
        return likelihood is None or likelihood >= self._min_likelihood

    def _lookup(self, table: str, dataset: str | None, windowed: bool, raw: _RawKey) -> _Lookup:
        """Bit mask and unmapped codes of one raw-label tuple (uncached)."""
        codes = self._code_masks.get(table, {})
        mask = pending = 0
        unmapped: dict[str, None] = {}
        for code_raw, likelihood, scope in raw:
            if not self._keep(likelihood) or (self._rule == "beat" and scope == "interval"):
                continue
            code = normalise_code(code_raw)
            key = f"{dataset}:{code}" if dataset else code
            found = codes.get((scope, key))
            if found is None and dataset:
                found = codes.get((scope, code))
            if found is None and self._rule == "beat" and scope == "record":
                continue  # beat schemes list record rows only for sources whose records are beats (UCR)
            if found is None:
                unmapped[key] = None
                mask |= self._unmapped_mask
            elif scope != "record" or not windowed or found[1] == "always":
                mask |= found[0]
            elif found[1] == "unannotated":
                pending |= found[0]
        if pending and not any(scope == "interval" for _, _, scope in raw):
            mask |= pending
        return self._combine(mask), tuple(unmapped)

    def _combine(self, mask: int) -> int:
        """The rule's mask: unchanged, or (``single``) only the label first in precedence."""
        if self._rule != "single" or not mask:
            return mask
        for label in self._precedence:
            bit = 1 << self._vocabulary.index(label)
            if mask & bit:
                return bit
        return 0

    def _cached(self, table: str, dataset: str | None, windowed: bool, raw: Sequence[RawLabel]) -> _Lookup:
        key = (table, dataset, windowed, tuple(dict.fromkeys((r.code, r.likelihood, r.scope) for r in raw)))
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            hit = self._cache[key] = self._lookup(*key)
        return hit

    def _vectors(self, masks: Sequence[int]) -> UInt8Array:
        """Multi-hot ``uint8 (N, K)`` from bit masks ``(N,)``."""
        k = len(self._vocabulary)
        if k <= _FAST_BITS:
            return ((np.asarray(masks, dtype=np.int64)[:, None] >> self._bits) & 1).astype(np.uint8)
        # PTB-XL's 71 statements do not fit an int64: unpack each mask's little-endian bytes
        width = (k + 7) // 8
        raw = np.frombuffer(b"".join(m.to_bytes(width, "little") for m in masks), dtype=np.uint8)
        bits = np.unpackbits(raw.reshape(len(masks), width), axis=1, bitorder="little")
        return bits[:, :k].astype(np.uint8)

    def map_labels(
        self, source: str, raw: Sequence[RawLabel], dataset: str | None = None, windowed: bool = False
    ) -> MappedLabels:
        """Labels of one record: multi-hot ``uint8 (K,)`` plus its codes that had no table row.

        ``source`` is the source name from params; ``dataset`` is the record's
        ``meta["dataset"]`` for sources whose codes are per dataset (UCR), else None;
        ``windowed`` says the record is one window of a longer recording (record-scope labels
        then follow their rows' ``windows`` rule).
        """
        mask, unmapped = self._cached(self.table_source(source), dataset, windowed, raw)
        return MappedLabels(self._vectors([mask])[0], unmapped)

    def map_batch(
        self,
        sources: Sequence[str],
        raw_lists: Sequence[Sequence[RawLabel]],
        datasets: Sequence[str | None] | None = None,
        windowed: Sequence[bool] | None = None,
    ) -> MappedBatch:
        """Labels of many records: ``uint8 (N, K)`` plus ``{source: {unmapped code: n_records}}``."""
        n = len(sources)
        if len(raw_lists) != n or any(v is not None and len(v) != n for v in (datasets, windowed)):
            raise ValueError("sources, raw_lists, datasets and windowed must have the same length")
        masks = [0] * len(sources)
        counts: dict[str, Counter[str]] = {}
        tables = {s: self.table_source(s) for s in set(sources)}
        for i, (source, raw) in enumerate(zip(sources, raw_lists, strict=True)):
            dataset = datasets[i] if datasets is not None else None
            part = bool(windowed[i]) if windowed is not None else False
            mask, unmapped = self._cached(tables[source], dataset, part, raw)
            masks[i] = mask
            if unmapped:
                counts.setdefault(source, Counter()).update(unmapped)
        return MappedBatch(self._vectors(masks), {s: dict(c) for s, c in counts.items()})

    def map_many(
        self,
        sources: Sequence[str],
        raw_lists: Sequence[Sequence[RawLabel]],
        datasets: Sequence[str | None] | None = None,
        windowed: Sequence[bool] | None = None,
    ) -> UInt8Array:
        """Multi-hot ``uint8 (N, K)`` of many records (see :meth:`map_batch` for unmapped codes)."""
        return self.map_batch(sources, raw_lists, datasets, windowed).labels
