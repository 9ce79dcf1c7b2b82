"""Write the six PTB-XL benchmark schemes (``data/labels/schemes/ptbxl_<task>/``) from ``scp_statements.csv``.

Usage: ``python scripts/make_ptbxl_schemes.py <scp_statements.csv> <labels root, e.g. data/labels>``

The tasks are those of Strodthoff et al. 2021 (helme/ecg_ptbxl_benchmarking, ``utils.py``
``compute_label_aggregations``), with every statement of a record kept whatever its likelihood
(the benchmark iterates over all keys of ``scp_codes``):

- ``all``: every SCP statement (71) is its own label;
- ``diagnostic``: statements with ``diagnostic == 1`` (44), each its own label;
- ``subdiagnostic``: a diagnostic statement maps to its ``diagnostic_subclass`` (23 labels);
- ``superdiagnostic``: a diagnostic statement maps to its ``diagnostic_class`` (5 labels);
- ``form``: statements with ``form == 1`` (19); ``rhythm``: ``rhythm == 1`` (12).

Labels are in sorted order, the column order of the benchmark's ``MultiLabelBinarizer``. Every
statement has a row in every task's table; statements outside a task have an empty label (known,
no label), so no PTB-XL code is ever reported unmapped.
"""

from __future__ import annotations

import csv
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.core.fs import sha256_file
from pipeline.sources.options import PTBXL_QUALITY_COLUMNS

TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
SUPERCLASS_NAMES = {
    "NORM": "normal ECG",
    "MI": "myocardial infarction",
    "STTC": "ST/T change",
    "CD": "conduction disturbance",
    "HYP": "hypertrophy",
}


def _is_set(value: str) -> bool:
    return value.strip() not in ("", "0", "0.0")


def read_statements(path: Path) -> list[dict[str, str]]:
    """Rows of ``scp_statements.csv`` with the unnamed first column (the SCP code) as ``code``."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        needed = ("description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")
        missing = [c for c in needed if c not in fields]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; expected PTB-XL scp_statements.csv")
        return [{**row, "code": row[fields[0]].strip()} for row in reader]


def task_label(task: str) -> Callable[[dict[str, str]], str]:
    """The label one statement has in ``task`` (``""``: the statement is not part of the task)."""
    rules: dict[str, Callable[[dict[str, str]], str]] = {
        "all": lambda r: r["code"],
        "diagnostic": lambda r: r["code"] if _is_set(r["diagnostic"]) else "",
        "subdiagnostic": lambda r: r["diagnostic_subclass"].strip() if _is_set(r["diagnostic"]) else "",
        "superdiagnostic": lambda r: r["diagnostic_class"].strip() if _is_set(r["diagnostic"]) else "",
        "form": lambda r: r["code"] if _is_set(r["form"]) else "",
        "rhythm": lambda r: r["code"] if _is_set(r["rhythm"]) else "",
    }
    return rules[task]


def _definition(task: str, label: str, rows: list[dict[str, str]]) -> str:
    if task == "superdiagnostic":
        return SUPERCLASS_NAMES.get(label, label)
    if task == "subdiagnostic":
        codes = sorted(r["code"] for r in rows if task_label(task)(r) == label)
        return "diagnostic subclass of " + " ".join(codes)
    return next(r["description"].strip() for r in rows if r["code"] == label)


def write_task(task: str, rows: list[dict[str, str]], root: Path, header: list[str]) -> int:
    """Write one task's folder; returns its number of labels."""
    folder = root / "schemes" / f"ptbxl_{task}"
    folder.mkdir(parents=True, exist_ok=True)
    rule = task_label(task)
    labels = sorted({rule(r) for r in rows} - {""})
    with (folder / "vocabulary.csv").open("w", newline="", encoding="utf-8") as f:
        f.writelines(header)
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["label", "definition"])
        writer.writerows([label, _definition(task, label, rows)] for label in labels)
    with (folder / "scheme.csv").open("w", newline="", encoding="utf-8") as f:
        f.writelines(header)
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["key", "value"])
        writer.writerow(["rule", "multilabel"])
        writer.writerow(
            ["description", f"PTB-XL benchmark task '{task}' (Strodthoff et al. 2021), {len(labels)} labels"]
        )
        writer.writerow(["unmapped", "ignore"])
    with (folder / "ptbxl.csv").open("w", newline="", encoding="utf-8") as f:
        f.writelines(header)
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["source", "scope", "source_code", "label", "note", "description"])
        for r in rows:
            label = rule(r)
            note = f"task {task}" if label else f"not a {task} statement"
            writer.writerow(["ptbxl", "record", r["code"], label, note, r["description"].strip()])
        for code in PTBXL_QUALITY_COLUMNS:  # the reader's signal-quality raw labels: known, no task label
            writer.writerow(["ptbxl", "record", code, "", "signal-quality column, not an SCP statement", ""])
    return len(labels)


def main(argv: list[str]) -> int:
    """Entry point: ``argv`` is ``[script, scp_statements.csv, labels root]``."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, root = Path(argv[1]), Path(argv[2])
    rows = read_statements(source)
    header = [
        f"# generated by: python {shlex.join(argv)}\n",
        f"# input: PTB-XL scp_statements.csv, sha256 {sha256_file(source)}\n",
        "# rules: see the docstring of scripts/make_ptbxl_schemes.py\n",
    ]
    for task in TASKS:
        print(f"ptbxl_{task}: {write_task(task, rows, root, header)} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
