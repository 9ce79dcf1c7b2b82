"""CinC 2020/2021 source (``cinc2021``): 12-lead WFDB records whose labels are ``#Dx`` SNOMED codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.malformed.corpus import Corpus, Source, SourceSpec
from tests.malformed.mutations import GENERIC, WHOLE_ONLY
from tests.malformed.wfdb import Edit, copy_record, emit_wfdb, load_template, write_template


def build_cinc2021(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = Source(corpus, SourceSpec("cinc2021", "cinc2021", "ecg12"), rng)
    base = shared / "cinc2021"
    for name in ("E00271", "HR06000", "JS01048", "A0689"):
        copy_record(src, base, name)
        src.good.append(src.record_id(name))
    templates = [load_template(base, s) for s in ("E03823", "HR06001", "JS01048", "A2712")]
    emit_wfdb(src, templates, {**GENERIC, **WHOLE_ONLY}, lambda i: f"Q{i:05d}")

    def unknown_dx(edit: Edit) -> None:
        edit.header.comments = [c for c in edit.header.comments if "Dx" not in c] + ["#Dx: 999999999"]

    write_template(src, templates[1], "Q90001", unknown_dx)
    src.add(
        "unknown_label",
        "unknown_snomed_code",
        "Q90001.hea",
        r".",
        [src.record_id("Q90001")],
        outcome="unmapped",
    )
    copy_record(src, base, "E00271", "copies")
    src.add(
        "duplicate", "same_name_in_subfolder", "copies/E00271.hea", r"record E00271 is also at E00271.hea"
    )
    src.write("Q90002.mat", (base / "JS02990.mat").read_bytes())
    src.add("orphan", "mat_without_header", "Q90002.mat", r"signal file with no header")
    write_template(src, templates[2], "Q90003", lambda e: e.files.clear())
    src.add("missing_file", "header_without_mat", "Q90003.hea", r"does not exist", [src.record_id("Q90003")])
    src.write("notes.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "notes.bin", r"not part of a CinC 2020/2021 record")
