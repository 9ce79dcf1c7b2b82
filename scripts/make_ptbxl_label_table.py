"""Write the coarse PTB-XL table (``data/labels/schemes/coarse/ptbxl.csv``) from ``scp_statements.csv``.

Usage: ``python scripts/make_ptbxl_label_table.py <scp_statements.csv> <out.csv>``

One row per SCP statement. The unified label follows the statement's diagnostic class and
subclass, so the table stays right when PTB-XL's own hierarchy is the reference:

- diagnostic class NORM -> NORM, MI -> MI;
- class CD with a bundle-branch-block subclass (CLBBB, CRBBB, IRBBB, ILBBB) -> BBB;
- any other diagnostic class (STTC, HYP, the rest of CD) -> OTHER;
- rhythm statements AFIB and AFLT -> AF;
- PACE (pacemaker rhythm) -> OTHER, as paced rhythms are in the CinC 2021 and WFDB tables;
- every other rhythm or form statement (SR, STACH, PVC, ...) -> no unified label, because
  PTB-XL states sinus rhythm and form findings beside its diagnostic statements, and a record's
  abnormality is already carried by those.

A diagnostic class outside NORM/MI/STTC/HYP/CD stops the script: a new PTB-XL release with
another class needs a human decision, not a guess.

After the SCP statements, one row per signal-quality column of ``ptbxl_database.csv``
(``static_noise``, ``burst_noise``, ``baseline_drift``, ``electrodes_problems``) -> NOISY: the reader
states a record-scope raw label of that name when the column is non-empty, for the columns named in
``sources.<ptbxl>.noise_columns`` (default: all but ``baseline_drift``), so that param, not this table,
chooses which problems count.
"""

from __future__ import annotations

import csv
import shlex
import sys
from pathlib import Path

from pipeline.core.fs import sha256_file
from pipeline.sources.options import PTBXL_QUALITY_COLUMNS

BBB_SUBCLASSES = frozenset({"CLBBB", "CRBBB", "IRBBB", "ILBBB"})
AF_RHYTHMS = frozenset({"AFIB", "AFLT"})
PACED = frozenset({"PACE"})
DIRECT_CLASSES = {"NORM": "NORM", "MI": "MI"}
OTHER_CLASSES = frozenset({"STTC", "HYP", "CD"})
REQUIRED_COLUMNS = ("description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")
OUT_COLUMNS = (
    "source",
    "scope",
    "source_code",
    "label",
    "note",
    "description",
    "statement_kind",
    "diagnostic_class",
    "diagnostic_subclass",
)


def _is_set(value: str) -> bool:
    """PTB-XL marks statement kinds with ``1.0`` and leaves the others empty."""
    return value.strip() not in ("", "0", "0.0")


def statement_kind(row: dict[str, str]) -> str:
    """``diagnostic``, ``form``, ``rhythm`` or a ``+``-joined combination (``diagnostic+form``)."""
    kinds = [kind for kind in ("diagnostic", "form", "rhythm") if _is_set(row[kind])]
    return "+".join(kinds)


def unified_label(code: str, diagnostic_class: str, subclass: str) -> tuple[str, str]:
    """The unified label of one SCP statement and a note saying which rule gave it."""
    if diagnostic_class in DIRECT_CLASSES:
        return DIRECT_CLASSES[diagnostic_class], f"diagnostic class {diagnostic_class}"
    if diagnostic_class == "CD" and subclass in BBB_SUBCLASSES:
        return "BBB", f"diagnostic class CD, bundle-branch-block subclass {subclass}"
    if diagnostic_class in OTHER_CLASSES:
        return "OTHER", f"diagnostic class {diagnostic_class} (subclass {subclass})"
    if diagnostic_class:
        raise ValueError(f"SCP code {code}: unknown diagnostic class {diagnostic_class!r}; extend the rules")
    if code in AF_RHYTHMS:
        return "AF", "rhythm statement: atrial fibrillation or flutter"
    if code in PACED:
        return "OTHER", "paced rhythm: abnormal, OTHER as in the CinC 2021 and WFDB tables"
    return "", "no diagnostic class: rhythm/form statement carries no unified label"


def read_statements(path: Path) -> list[dict[str, str]]:
    """Rows of ``scp_statements.csv``; the unnamed first column (the SCP code) becomes ``code``."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in fields]
        if not fields or missing:
            raise ValueError(f"{path}: missing columns {missing}; expected PTB-XL scp_statements.csv")
        code_column = fields[0]
        rows = []
        for row in reader:
            row["code"] = row[code_column].strip()
            rows.append(row)
    return rows


# Descriptions of the reader's signal-quality columns, keyed by them so a column added there fails here.
QUALITY_DESCRIPTIONS = {
    "static_noise": "static noise",
    "burst_noise": "burst noise",
    "baseline_drift": "baseline drift",
    "electrodes_problems": "electrode problems",
}


LEADS_NOTE = "(the column names the leads affected)"


def quality_rows() -> list[tuple[str, ...]]:
    """The rows of the signal-quality raw labels: each -> NOISY (which count: the reader's param)."""
    note = "signal-quality column non-empty (record scope; counted when in sources.ptbxl.noise_columns)"
    return [
        (
            "ptbxl",
            "record",
            code,
            "NOISY",
            note,
            f"{QUALITY_DESCRIPTIONS[code]} {LEADS_NOTE}",
            "quality",
            "",
            "",
        )
        for code in PTBXL_QUALITY_COLUMNS
    ]


def table_rows(statements: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """One output row per SCP statement, in the input's order, then the signal-quality rows."""
    out: list[tuple[str, ...]] = []
    for row in statements:
        diagnostic_class = row["diagnostic_class"].strip()
        subclass = row["diagnostic_subclass"].strip()
        label, note = unified_label(row["code"], diagnostic_class, subclass)
        description = row["description"].strip()
        out.append(
            (
                "ptbxl",
                "record",
                row["code"],
                label,
                note,
                description,
                statement_kind(row),
                diagnostic_class,
                subclass,
            )
        )
    return out + quality_rows()


def write_table(rows: list[tuple[str, ...]], out: Path, command: str, input_sha256: str) -> None:
    """Write the table with comment lines recording how it was made."""
    with out.open("w", newline="", encoding="utf-8") as f:
        f.write(f"# generated by: {command}\n")
        f.write(f"# input: PTB-XL scp_statements.csv, sha256 {input_sha256}\n")
        f.write("# rules: see the docstring of scripts/make_ptbxl_label_table.py and data/labels/README.md\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(OUT_COLUMNS)
        writer.writerows(rows)


def main(argv: list[str]) -> int:
    """Entry point: ``argv`` is ``[script, scp_statements.csv, out.csv]``."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, out = Path(argv[1]), Path(argv[2])
    rows = table_rows(read_statements(source))
    digest = sha256_file(source)
    write_table(rows, out, "python " + shlex.join(argv), digest)
    print(f"wrote {len(rows)} SCP statements to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
