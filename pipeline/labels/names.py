"""Names of raw label codes for people, from the label tables' documentation columns.

A table may carry, beside its mapping columns, the code's own name: CinC 2020/21's ``term``
(the SNOMED CT concept's term from the Challenge's dx mapping) and PTB-XL's ``description``
(the SCP-ECG statement from ``scp_statements.csv``). Lineage prints them beside the codes
(``164889003 atrial fibrillation [SNOMED CT]``); nothing here affects the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.labels.tables import _read_csv, normalise_code, table_paths

# documentation column → the code system whose names it holds
NAME_COLUMNS: Mapping[str, str] = {"term": "SNOMED CT", "description": "SCP-ECG"}


@dataclass(frozen=True)
class CodeName:
    """``name`` of a raw code in ``system`` (e.g. "atrial fibrillation", "SNOMED CT")."""

    name: str
    system: str


def code_names(tables_dir: Path) -> dict[tuple[str, str], CodeName]:
    """``(source, code)`` → its name, for every table row that has a name column filled in: the
    coarse scheme's tables (``schemes/coarse/`` under ``tables_dir``) carry the documentation columns;
    a bare folder of tables is read as it is."""
    out: dict[tuple[str, str], CodeName] = {}
    coarse = Path(tables_dir) / "schemes" / "coarse"
    for path in table_paths(coarse if coarse.is_dir() else Path(tables_dir)):
        f = _read_csv(path)
        if "source" not in f.header or "source_code" not in f.header:
            continue  # the vocabulary file
        columns = [(f.header.index(c), system) for c, system in NAME_COLUMNS.items() if c in f.header]
        src, code = f.header.index("source"), f.header.index("source_code")
        for _, fields in f.rows:
            for col, system in columns:
                if col < len(fields) and fields[col].strip():
                    key = (fields[src].strip(), normalise_code(fields[code]))
                    out.setdefault(key, CodeName(fields[col].strip(), system))
    return out


def with_code_names(record_doc: Mapping[str, Any], names: Mapping[tuple[str, str], CodeName]) -> None:
    """Add ``name`` and ``code_system`` to each raw label of a record lineage document, in place
    (``occurrences[*].raw_labels[*]``; codes without a name get ``None``)."""
    for occ in record_doc.get("occurrences", []):
        for lab in occ.get("raw_labels", []):
            found = names.get((str(occ.get("source")), normalise_code(str(lab["code"]))))
            lab["name"] = None if found is None else found.name
            lab["code_system"] = None if found is None else found.system
