"""PTB Diagnostic source (``ptb_diagnostic``): WFDB records in patient folders, with ``.xyz`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.malformed.corpus import TRUNC_REASON, Corpus, Source, SourceSpec
from tests.malformed.mutations import GENERIC, WHOLE_ONLY
from tests.malformed.wfdb import Edit, Outcome, copy_record, emit_wfdb, load_template


def build_ptb_diagnostic(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = Source(corpus, SourceSpec("ptb_diagnostic", "ptb_diagnostic", "ecg12"), rng)
    base = shared / "ptb_diagnostic" / "patient001"
    copy_record(src, base, "s0010_re", "patient001")
    src.good.append(src.record_id("patient001/s0010_re"))
    template = load_template(base, "s0010_re", n_frames=12_000)
    emit_wfdb(src, [template], {**GENERIC, **WHOLE_ONLY}, lambda i: f"patient{900 + i}/s{9000 + i}_re")

    def xyz_cut(edit: Edit) -> Outcome:
        edit.files = {k: v[:999] if k.endswith(".xyz") else v for k, v in edit.files.items()}
        return Outcome("truncated", TRUNC_REASON)

    def xyz_missing(edit: Edit) -> Outcome:
        edit.files = {k: v for k, v in edit.files.items() if not k.endswith(".xyz")}
        return Outcome("missing_file", r"does not exist")

    extra = {"xyz_truncated": xyz_cut, "xyz_missing": xyz_missing}
    emit_wfdb(src, [template], extra, lambda i: f"patient{800 + i}/s{8000 + i}_re")
    src.write("patient999/s9999_re.xyz", template.files["s0010_re.xyz"])
    src.add("orphan", "xyz_without_header", "patient999/s9999_re.xyz", r"signal file with no header")
    src.write("patient001/notes.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "patient001/notes.bin", r"not part of a PTB Diagnostic record")
