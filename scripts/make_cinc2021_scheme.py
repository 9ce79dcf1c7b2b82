"""Write the ``cinc2021_scored`` and ``code6`` schemes (``data/labels/schemes/``) from the coarse tables.

Usage: ``python scripts/make_cinc2021_scheme.py <labels root, e.g. data/labels>``

``cinc2021_scored``: the 26 classes the PhysioNet/CinC Challenge 2021 scores, after its
equivalent pairs (``weights.csv`` of physionetchallenges/evaluation-2021 names the classes, pairs
joined with ``|``: CRBBB|RBBB 713427006|59118001, PAC|SVPB 284470004|63593006, PVC|VPB
427172004|17338001, and CLBBB|LBBB 733534002|164909002, which makes 30 scored codes 26 classes).
Every SNOMED code of the coarse ``cinc2021.csv`` gets a row: a scored code its class, the others
an empty label (known, not scored).

``code6``: CODE's six abnormalities (1dAVb RBBB LBBB SB AF ST), with the CinC 2021 SNOMED codes
and PTB-XL statements of the same meaning (first-degree AV block, complete and unspecified
right/left bundle-branch block, sinus bradycardia, atrial fibrillation, sinus tachycardia).
Incomplete blocks, flutter and other brady/tachycardias are not the same finding and stay out.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

# weights.csv column order (evaluation-2021), with the abbreviations of dx_mapping_scored.csv
SCORED = (
    ("164889003", "AF", "atrial fibrillation"),
    ("164890007", "AFL", "atrial flutter"),
    ("6374002", "BBB", "bundle branch block"),
    ("426627000", "Brady", "bradycardia"),
    ("733534002|164909002", "CLBBB|LBBB", "complete left bundle branch block = left bundle branch block"),
    ("713427006|59118001", "CRBBB|RBBB", "complete right bundle branch block = right bundle branch block"),
    ("270492004", "IAVB", "1st degree av block"),
    ("713426002", "IRBBB", "incomplete right bundle branch block"),
    ("39732003", "LAD", "left axis deviation"),
    ("445118002", "LAnFB", "left anterior fascicular block"),
    ("164947007", "LPR", "prolonged pr interval"),
    ("251146004", "LQRSV", "low qrs voltages"),
    ("111975006", "LQT", "prolonged qt interval"),
    ("698252002", "NSIVCB", "nonspecific intraventricular conduction disorder"),
    ("426783006", "NSR", "sinus rhythm"),
    ("284470004|63593006", "PAC|SVPB", "premature atrial contraction = supraventricular premature beats"),
    ("10370003", "PR", "pacing rhythm"),
    ("365413008", "PRWP", "poor R wave progression"),
    ("427172004|17338001", "PVC|VPB", "premature ventricular contractions = ventricular premature beats"),
    ("164917005", "QAb", "qwave abnormal"),
    ("47665007", "RAD", "right axis deviation"),
    ("427393009", "SA", "sinus arrhythmia"),
    ("426177001", "SB", "sinus bradycardia"),
    ("427084000", "STach", "sinus tachycardia"),
    ("164934002", "TAb", "t wave abnormal"),
    ("59931005", "TInv", "t wave inversion"),
)
CODE6 = (
    ("1dAVb", "first-degree atrioventricular block", ("270492004",), ("1AVB",)),
    ("RBBB", "right bundle-branch block", ("713427006", "59118001"), ("CRBBB",)),
    ("LBBB", "left bundle-branch block", ("733534002", "164909002"), ("CLBBB",)),
    ("SB", "sinus bradycardia", ("426177001",), ("SBRAD",)),
    ("AF", "atrial fibrillation", ("164889003",), ("AFIB",)),
    ("ST", "sinus tachycardia", ("427084000",), ("STACH",)),
)


def _write(path: Path, header: list[str], rows: list[list[str]], comment: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        f.write(comment)
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def coarse_codes(root: Path) -> list[tuple[str, str]]:
    """``(code, term)`` of every row of the coarse scheme's ``cinc2021.csv``."""
    with (root / "schemes" / "coarse" / "cinc2021.csv").open(newline="", encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#")]
    return [(r["source_code"], r["term"]) for r in csv.DictReader(lines)]


def write_cinc2021(root: Path, comment: str) -> None:
    folder = root / "schemes" / "cinc2021_scored"
    folder.mkdir(parents=True, exist_ok=True)
    vocab = [[label, f"{abbr}: {term}"] for label, abbr, term in SCORED]
    _write(folder / "vocabulary.csv", ["label", "definition"], vocab, comment)
    settings = [["rule", "multilabel"], ["description", "PhysioNet/CinC Challenge 2021 scored classes (26)"],
                ["unmapped", "ignore"]]  # fmt: skip
    _write(folder / "scheme.csv", ["key", "value"], settings, comment)
    class_of = {code: label for label, _, _ in SCORED for code in label.split("|")}
    rows = []
    for code, term in coarse_codes(root):
        label = class_of.get(code, "")
        note = (
            "scored class" + (" (equivalent pair)" if "|" in label else "") if label else "not scored in 2021"
        )
        rows.append(["cinc2021", "record", code, label, note, term])
    _write(
        folder / "cinc2021.csv", ["source", "scope", "source_code", "label", "note", "term"], rows, comment
    )


def write_code6(root: Path, comment: str) -> None:
    folder = root / "schemes" / "code6"
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "vocabulary.csv", ["label", "definition"], [[c, d] for c, d, _, _ in CODE6], comment)
    settings = [["rule", "multilabel"], ["description", "CODE's six abnormalities (Ribeiro et al. 2020)"],
                ["unmapped", "ignore"]]  # fmt: skip
    _write(folder / "scheme.csv", ["key", "value"], settings, comment)
    header = ["source", "scope", "source_code", "label", "note"]
    code = [["code", "record", c, c, d] for c, d, _, _ in CODE6]
    code.append(["code", "record", "normal_ecg", "", "CODE-15% normal ECG flag: none of the six"])
    _write(folder / "code.csv", header, code, comment)
    snomed = [
        ["cinc2021", "record", s, c, f"same finding as CODE {c}"] for c, _, codes, _ in CODE6 for s in codes
    ]
    _write(folder / "cinc2021.csv", header, snomed, comment)
    scp = [
        ["ptbxl", "record", s, c, f"same finding as CODE {c}"]
        for c, _, _, statements in CODE6
        for s in statements
    ]
    _write(folder / "ptbxl.csv", header, scp, comment)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(argv[1])
    comment = "# generated by: python scripts/make_cinc2021_scheme.py data/labels (rules: its docstring)\n"
    write_cinc2021(root, comment)
    write_code6(root, comment)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
