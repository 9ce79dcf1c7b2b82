"""Named label schemes: one folder per scheme under ``<labels root>/schemes/<name>/``.

A scheme folder holds ``vocabulary.csv`` (``label,definition``, in multi-hot column order),
``scheme.csv`` (``key,value``: ``rule`` = ``multilabel`` | ``single`` | ``beat``,
``description``, ``unmapped``) and one mapping table per table source
(``<source>.csv``, see :mod:`pipeline.labels.tables`). ``coarse`` is the default scheme.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.labels.tables import LabelTableError, LabelTables, load_tables, table_paths

DEFAULT_SCHEME = "coarse"
SCHEME_FILE = "scheme.csv"
SCHEME_KEYS = ("rule", "description", "unmapped")
RULES = ("multilabel", "single", "beat")


@dataclass(frozen=True)
class Scheme:
    """A validated scheme: its tables (vocabulary included), combination rule and settings.

    ``rule`` is ``multilabel`` (OR of every label), ``single`` (the first label in vocabulary
    order wins) or ``beat`` (beat-scope labels, plus record rows of single-beat sources);
    ``unmapped`` is the policy for codes with no row (``ignore`` or ``OTHER``).
    """

    name: str
    folder: Path
    tables: LabelTables
    rule: str
    description: str
    unmapped: str

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return self.tables.vocabulary


def scheme_folder(root: Path, name: str) -> Path:
    """The folder of scheme ``name`` under the labels ``root`` (``data/labels``).

    A ``root`` that is itself a scheme folder (it holds ``vocabulary.csv``, no ``schemes/``)
    stands for the default scheme, so a hand-made table folder still works.
    """
    if not (root / "schemes").is_dir() and (root / "vocabulary.csv").is_file():
        if name != DEFAULT_SCHEME:
            raise LabelTableError(
                f"{root}: a single table folder holds only the {DEFAULT_SCHEME!r} scheme, not {name!r}"
            )
        return root
    folder = root / "schemes" / name
    if not folder.is_dir():
        raise LabelTableError(
            f"no label scheme {name!r}: {folder} does not exist; schemes: {scheme_names(root)}"
        )
    return folder


def scheme_names(root: Path) -> list[str]:
    """The schemes shipped under ``root``, sorted by name (the default scheme first)."""
    names = sorted(p.name for p in (root / "schemes").glob("*") if (p / "vocabulary.csv").is_file())
    return sorted(names, key=lambda n: n != DEFAULT_SCHEME)


def _settings(path: Path) -> dict[str, str]:
    """``key -> value`` of ``scheme.csv`` (comment lines at the top allowed); errors name the line."""
    if not path.is_file():
        return {}
    settings: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    header_seen = False
    for number, fields in enumerate(csv.reader(lines), start=1):
        if not fields or fields[0].lstrip().startswith("#"):
            continue
        if not header_seen:
            if tuple(f.strip() for f in fields[:2]) != ("key", "value"):
                raise LabelTableError(f"{path}:{number}: header {','.join(fields)!r}; expected key,value")
            header_seen = True
            continue
        key = fields[0].strip()
        if key not in SCHEME_KEYS or len(fields) != 2:
            raise LabelTableError(
                f"{path}:{number}: {','.join(fields)!r}; expected one of {SCHEME_KEYS} and a value"
            )
        settings[key] = fields[1].strip()
    return settings


def load_scheme(root: Path, name: str) -> Scheme:
    """Read and validate scheme ``name`` under the labels ``root`` (errors name file and line)."""
    folder = scheme_folder(root, name)
    settings = _settings(folder / SCHEME_FILE)
    rule = settings.get("rule", "multilabel")
    if rule not in RULES:
        raise LabelTableError(f"{folder / SCHEME_FILE}: rule {rule!r}; expected one of {RULES}")
    unmapped = settings.get("unmapped", "ignore")
    if unmapped not in ("ignore", "OTHER"):
        raise LabelTableError(f"{folder / SCHEME_FILE}: unmapped {unmapped!r}; expected ignore or OTHER")
    tables = load_tables(table_paths(folder))
    if rule == "single":
        _check_single(tables)
    return Scheme(name, folder, tables, rule, settings.get("description", ""), unmapped)


def _check_single(tables: LabelTables) -> None:
    """Under ``single``, one code may not reach two labels through rows of different scopes."""
    seen: dict[tuple[str, str], tuple[str, str, int]] = {}
    for (source, _, code), row in sorted(tables.rows.items()):
        if not row.label:
            continue
        earlier = seen.setdefault((source, code), (row.label, row.file, row.line))
        if earlier[0] != row.label:
            raise LabelTableError(
                f"{row.file}:{row.line}: ({source}, {code!r}) maps to {row.label!r} here but to "
                f"{earlier[0]!r} at {earlier[1]}:{earlier[2]}; a single-label scheme needs one label per code"
            )


def check_schemes(root: Path, names: Sequence[str]) -> list[Scheme]:
    """Load every named scheme (errors name file and line), before any work is done with them."""
    return [load_scheme(root, name) for name in names]
