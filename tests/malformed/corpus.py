"""The corpus data model and the per-source writer every builder uses.

:class:`Variant` (one broken input and its expected outcome), :class:`SourceSpec` (a params
source), :class:`Corpus` (the tree and its expectations) and :class:`Source` (writes one
source's files and registers its variants), plus the reasons and sizes several builders share.
"""

from __future__ import annotations

import csv
import io
import os
import re
import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0
MiB = 1 << 20
GiB = 1 << 30
MAT4 = struct.Struct("<5i")
PTBXL_DB = "ptbxl_database.csv"

# Preprocessing rejects a record whose samples are NaN/Inf beyond max_nan_fraction; readers of
# windowed records reject all-invalid windows, whole WFDB records with no valid sample.
NAN_REASON = r"NaN"
TRUNC_REASON = r"holds only \d+ bytes"
OVERSIZE_REASON = r"but the header declares \d+ samples; expected the file to end"
# a MAT v4 file's own header is checked first: its matrix disagrees with the WFDB header's signals
MAT_MISMATCH = r"MAT v4 matrix \d+ x \d+ (holds|is not a whole number)"


@dataclass(frozen=True)
class Variant:
    """One broken input and what must become of it.

    ``target`` is a file path relative to the source root, or a quarantine ``item``; a matching
    quarantine entry has ``source == self.source``, names ``target`` as its item or among its
    files, and a reason matching ``reason``. ``absent``: record ids that must not be in the
    shards (an id ending in ``/`` is a prefix, for windows). ``claimed_bytes``: for allocation
    bombs, the memory the broken claim would take if believed. ``outcome`` is
    ``"quarantined"``, or ``"unmapped"`` for a well-formed record with an unknown label code
    (it lands with that raw code and no unified label; ``absent`` then names the record).
    """

    name: str
    source: str
    kind: str
    category: str
    target: str
    reason: str
    absent: tuple[str, ...] = ()
    claimed_bytes: int = 0
    outcome: str = "quarantined"

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """True when a quarantine entry (``quarantine.json`` row) accounts for this variant."""
        if entry.get("source") != self.source:
            return False
        if self.target != entry.get("item") and self.target not in entry.get("files", ()):
            return False
        return re.search(self.reason, str(entry.get("reason", ""))) is not None


@dataclass(frozen=True)
class SourceSpec:
    """A params source the corpus writes: its kind, the profile it feeds, extra reader options."""

    name: str
    kind: str
    profile: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Corpus:
    """The raw tree (``raw/<source>``), files outside it that escapes point at, and expectations."""

    raw: Path
    outside: Path
    sources: dict[str, SourceSpec]
    variants: list[Variant]
    good: dict[str, list[str]]  # source -> record ids (or id prefixes ending in "/") that must land

    def root(self, source: str) -> Path:
        return self.raw / source

    def overrides(self) -> list[str]:
        """``--set`` values pointing every source at the corpus and every profile at its sources."""
        out: list[str] = []
        for spec in self.sources.values():
            out.append(f"sources.{spec.name}.kind={spec.kind}")
            out.append(f"sources.{spec.name}.root={self.root(spec.name)}")
            out.extend(f"sources.{spec.name}.{k}={_yaml(v)}" for k, v in spec.options.items())
        for profile in sorted({s.profile for s in self.sources.values()}):
            names = [s.name for s in self.sources.values() if s.profile == profile]
            out.append(f"profiles.{profile}.sources=[{', '.join(names)}]")
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of variants by reader kind, then by category."""
        table: dict[str, Counter[str]] = {}
        for v in self.variants:
            table.setdefault(v.kind, Counter())[v.category] += 1
        return {k: dict(sorted(c.items())) for k, c in sorted(table.items())}


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# ---------------------------------------------------------------------------------- writing


class Source:
    """Writes one source's files and registers its variants."""

    def __init__(self, corpus: Corpus, spec: SourceSpec, rng: np.random.Generator) -> None:
        corpus.sources[spec.name] = spec
        self.corpus, self.spec, self.rng = corpus, spec, rng
        self.root = corpus.root(spec.name)
        self.root.mkdir(parents=True, exist_ok=True)
        self.good = corpus.good.setdefault(spec.name, [])

    def write(self, rel: str, data: bytes | str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    def sparse(self, rel: str, size: int, head: bytes = b"") -> Path:
        """A file of ``size`` bytes that takes no disk space beyond ``head`` (zeros after it)."""
        path = self.write(rel, head)
        os.truncate(path, size)
        return path

    def link_outside(self, rel: str, target: Path) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)

    def record_id(self, local: str) -> str:
        return f"{self.spec.name}:{local}"

    def add(
        self,
        category: str,
        name: str,
        target: str,
        reason: str,
        absent: Sequence[str] = (),
        claimed_bytes: int = 0,
        outcome: str = "quarantined",
    ) -> None:
        self.corpus.variants.append(
            Variant(
                name=f"{self.spec.name}/{name}",
                source=self.spec.name,
                kind=self.spec.kind,
                category=category,
                target=target,
                reason=reason,
                absent=tuple(absent),
                claimed_bytes=claimed_bytes,
                outcome=outcome,
            )
        )
