"""CinC 2017 source (``cinc2017``): single-lead MAT v4 records + REFERENCE.csv."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.malformed.corpus import Corpus, Source, SourceSpec
from tests.malformed.mutations import GENERIC, WHOLE_ONLY
from tests.malformed.wfdb import Header, Template, copy_record, emit_wfdb, load_template


def _reference(lines: Sequence[tuple[str, str]]) -> bytes:
    return "".join(f"{name},{label}\r\n" for name, label in lines).encode()


def _renamed_copy(src: Source, base: Path, name: str, stem: str = "A00009", dest: str = "") -> str:
    """Copy real record ``stem`` as ``name`` (under ``dest``); returns its header path."""
    copy_record(src, base, stem, dest)
    prefix = f"{dest}/".lstrip("/")
    for suffix in (".hea", ".mat"):
        (src.root / f"{prefix}{stem}{suffix}").replace(src.root / f"{prefix}{name}{suffix}")
    header = Header.parse((src.root / f"{prefix}{name}.hea").read_text())
    header.record[0] = name
    header.signals[0][0] = f"{name}.mat"
    src.write(f"{prefix}{name}.hea", header.render())
    return f"{prefix}{name}.hea"


def _label_and_file_variants(src: Source, base: Path, labels: list[tuple[str, str]]) -> None:
    """Good signals with broken label lines, duplicates, orphans and strays; appends to ``labels``."""
    no_line = _renamed_copy(src, base, "C00001")
    src.add("label", "no_label_line", no_line, r"no label line for C00001", [src.record_id("C00001")])
    _renamed_copy(src, base, "C00002")
    labels += [("C00002", "N"), ("C00002", "A")]
    src.add(
        "label", "conflicting_labels", "C00002.hea", r"conflicting label lines", [src.record_id("C00002")]
    )
    _renamed_copy(src, base, "C00003")
    labels.append(("C00003", ""))
    src.add("label", "empty_label", "C00003.hea", r"no label line for C00003", [src.record_id("C00003")])
    _renamed_copy(src, base, "C00004")
    labels.append(("C00004", "Z"))
    src.add(
        "unknown_label", "unknown_label", "C00004.hea", r".", [src.record_id("C00004")], outcome="unmapped"
    )
    _renamed_copy(src, base, "A00001", "A00001", "copies")
    src.add(
        "duplicate", "same_name_in_subfolder", "copies/A00001.hea", r"record A00001 is also at A00001.hea"
    )
    src.write("C00005.mat", (base / "A00010.mat").read_bytes())
    src.add("orphan", "mat_without_header", "C00005.mat", r"signal file with no header")
    _renamed_copy(src, base, "C00006")
    (src.root / "C00006.mat").unlink()
    labels.append(("C00006", "N"))
    src.add("missing_file", "header_without_mat", "C00006.hea", r"does not exist", [src.record_id("C00006")])
    src.write("REFERENCE-v3.csv", _reference(labels[:4]))
    src.add("stray", "other_label_version", "REFERENCE-v3.csv", r"this label file is not used")
    src.write("notes.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "notes.bin", r"not part of a CinC 2017 record")


def build_cinc2017(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    """Write the ``cinc2017`` source. A label file refused unread (too large) fails the whole ingest
    (tests/test_structural_errors.py), so it is not in this corpus."""
    src = Source(corpus, SourceSpec("cinc2017", "cinc2017", "lead1_af"), rng)
    base = shared / "cinc2017" / "training2017"
    real = dict(line.split(",") for line in (base / "REFERENCE.csv").read_text().split())
    labels: list[tuple[str, str]] = []
    for name in ("A00001", "A00002", "A00003", "A00004"):
        copy_record(src, base, name)
        labels.append((name, real[name]))
        src.good.append(src.record_id(name))
    templates = [load_template(base, f"A{i:05d}") for i in range(5, 9)]

    def add_label(path: str, template: Template) -> None:
        labels.append((path, real[template.stem]))

    emit_wfdb(src, templates, {**GENERIC, **WHOLE_ONLY}, lambda i: f"B{i:05d}", on_write=add_label)
    _label_and_file_variants(src, base, labels)
    src.write("REFERENCE.csv", _reference(labels))
