"""Shared by the landing-check tests (``tests/test_landing_check*.py``): the real record of every
landing kind with its check options, and copying one into a scratch folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CINC: dict[str, Any] = {"signal_suffixes": (".mat",), "required_comments": ("dx",)}
PTB: dict[str, Any] = {"signal_suffixes": (".dat", ".xyz")}

# (shared folder, record, signal file to cut, check options) for every landing kind.
REAL: list[tuple[str, str, str, dict[str, Any]]] = [
    ("mitbih", "100", "100.dat", {"annotation_ext": "atr"}),  # format 212, 2 signals, with .atr
    ("cpsc2021", "data_8_2", "data_8_2.dat", {"annotation_ext": "atr"}),  # format 16, fractional gain
    ("cinc2021", "E00271", "E00271.mat", CINC),  # MAT v4 16+24, record name with .mat
    ("cinc2021", "HR06000", "HR06000.mat", CINC),  # 16x1+24, wfdb-rewritten
    ("ptb_diagnostic/patient001", "s0010_re", "s0010_re.xyz", PTB),  # two signal files
]


def copy_record(shared: Path, folder: str, record: str, dest: Path) -> Path:
    """Writable copies of a record's files in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in (shared / folder).glob(f"{record}.*"):
        shutil.copyfile(src, dest / src.name)
    return dest
