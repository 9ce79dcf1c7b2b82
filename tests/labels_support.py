"""Shared by the unified-label tests (``tests/test_labels.py``, ``tests/test_label_rules.py``): the
committed tables, the default mapper and small helpers."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import numpy as np

from pipeline.core.records import RawLabel
from pipeline.labels.mapping import LabelMapper
from pipeline.labels.tables import LabelTables, load_tables, table_paths

REPO = Path(__file__).resolve().parents[1]
LABEL_DIR = REPO / "data" / "labels" / "schemes" / "coarse"
SCRIPT = REPO / "scripts" / "make_ptbxl_label_table.py"
DEFAULT_VOCABULARY = ("NORM", "AF", "MI", "BBB", "OTHER", "NOISY")
# The 30 scored SNOMED codes of the 2021 challenge (dx_mapping_scored.csv; the 27 of 2020 plus
# 6374002, 733534002 and 365413008).
SCORED_2021 = (
    "164889003 164890007 6374002 426627000 733534002 713427006 270492004 713426002 39732003 "
    "445118002 164909002 251146004 698252002 426783006 284470004 10370003 365413008 427172004 "
    "164947007 111975006 164917005 47665007 59118001 427393009 426177001 427084000 63593006 "
    "164934002 59931005 17338001"
).split()
VOCAB_CSV = "# test vocabulary\nlabel,definition\nNORM,normal\nAF,af\nOTHER,other\n"


def make_tables() -> LabelTables:
    """The committed label tables (``data/labels``)."""
    return load_tables(table_paths(LABEL_DIR))


def make_mapper(tables: LabelTables) -> LabelMapper:
    """The default vocabulary's mapper; MIT-BIH and CPSC 2021 use the ``wfdb`` table."""
    return LabelMapper(tables, DEFAULT_VOCABULARY, table_for={"mitbih": "wfdb", "cpsc2021": "wfdb"})


def labels_of(mapper: LabelMapper, row: np.ndarray) -> set[str]:
    return {label for label, bit in zip(mapper.vocabulary, row, strict=True) if bit}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def ptbxl_raw_labels(shared_data: Path) -> list[tuple[RawLabel, ...]]:
    with (shared_data / "ptbxl" / "ptbxl_database.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [tuple(RawLabel(k, float(v)) for k, v in ast.literal_eval(r["scp_codes"]).items()) for r in rows]


WFDB_RECORD_CLASSES = (
    "paroxysmal atrial fibrillation",
    "persistent atrial fibrillation",
    "non atrial fibrillation",
)


def wfdb_label(code: str, sample: int = 0) -> RawLabel:
    """A WFDB code at the scope the reader states it: header class (record), rhythm (interval), else beat."""
    if code in WFDB_RECORD_CLASSES:
        return RawLabel(code)
    scope = "interval" if code.strip().strip("\x00").startswith("(") else "beat"
    return RawLabel(code, scope=scope, span=(sample, sample + 1))
