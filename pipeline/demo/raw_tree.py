"""Built-in demo data: a seeded synthetic raw tree in the real on-disk formats.

``write_demo_data(out_dir)`` writes three sources that the real readers read unchanged:

- ``ptbxl/``: ``ptbxl_database.csv`` (the real PTB-XL columns), ``scp_statements.csv`` (the real
  rows for the SCP codes used), ``records100/00000/NNNNN_lr.{hea,dat}`` and
  ``records500/00000/NNNNN_hr.{hea,dat}``: 12 leads, WFDB format 16, 1000 adu/mV, 10 s. The
  100 Hz file is the 500 Hz signal decimated with an anti-aliasing filter, as in PTB-XL.
- ``cinc2017/training2017/``: ``A00001.{hea,mat}`` … (MATLAB v4 ``val`` int16 ``(1, N)``,
  header ``16+24``, 300 Hz, 9–61 s), ``REFERENCE.csv`` (CRLF, ``A00001,N``) and ``RECORDS``.
- ``ucr/``: ``ECG5000_TRAIN.txt`` and ``ECG5000_TEST.txt``: 140-sample beats (250 Hz, R peak
  at sample 50) z-normalised per beat, the class in column 0, ``%16.7e`` fixed width, rows
  sorted by class like the real file.

Signals come from :mod:`pipeline.demo.synth`. Every record draws from its own generator seeded by
``(seed, source, index)``, and nothing depends on the clock, so one seed gives byte-identical
files. This module never reads the real data.

Modules: :mod:`pipeline.demo.formats` (shared writers), :mod:`pipeline.demo.ptbxl_tree`,
:mod:`pipeline.demo.cinc_tree` and :mod:`pipeline.demo.ucr_tree` (one per source); this module
holds the entry point and the markers that tell a demo tree from real data.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.demo.cinc_tree import CINC_FRACTIONS, write_cinc2017
from pipeline.demo.formats import split_counts
from pipeline.demo.marker import MARKER
from pipeline.demo.ptbxl_tree import PTBXL_COLUMNS, SCP_STATEMENT_ROWS, SCP_STATEMENTS_HEADER, write_ptbxl
from pipeline.demo.ucr_tree import write_ucr

__all__ = [
    "CINC_FRACTIONS",
    "GENERATOR_VERSION",
    "MARKER",
    "PTBXL_COLUMNS",
    "SCP_STATEMENTS_HEADER",
    "SCP_STATEMENT_ROWS",
    "DemoSummary",
    "source_state",
    "split_counts",
    "write_demo_data",
]

GENERATOR_VERSION = "1"
_README_MARK = "Synthetic demo data written by `ecgpipe demo-data`"


@dataclass(frozen=True)
class DemoSummary:
    """What ``write_demo_data`` wrote.

    ``roots`` maps each source to the folder a reader is pointed at (mirroring
    ``shared/data/{ptbxl,cinc2017,ucr_ecg5000}``); ``counts`` maps source → class → records
    (PTB-XL by synthetic class NORM/AF/MI/BBB/NOISY, CinC by its label N/A/O/~, UCR by class
    1–5 over both splits); ``files`` lists every file written, sorted.
    """

    out_dir: Path
    seed: int
    roots: Mapping[str, Path]
    counts: Mapping[str, Mapping[str, int]]
    ucr_split: Mapping[str, int]
    ptbxl_patients: int
    files: tuple[Path, ...] = field(repr=False)
    skipped: tuple[str, ...] = ()  # sources whose folder holds real data, left untouched

    def total(self, source: str) -> int:
        """Number of records (beats for UCR) written for ``source``."""
        return sum(self.counts[source].values())


def _readme(seed: int, n_ptbxl: int, n_cinc: int, n_ucr: int) -> str:
    return (
        f"{_README_MARK} (pipeline/demo/raw_tree.py).\n"
        "No real patient: every signal comes from the seeded model in pipeline/demo/synth.py.\n"
        "The layouts mirror PTB-XL, PhysioNet/CinC 2017 and UCR ECG5000 so the real readers read them.\n"
        f"generator version {GENERATOR_VERSION}, seed {seed}, "
        f"ptbxl {n_ptbxl}, cinc2017 {n_cinc}, ucr {n_ucr}\n"
    )


def _marker_text(source: str, seed: int, n: int) -> str:
    return f"{_README_MARK}\nsource={source} seed={seed} n={n}\n"


def source_state(root: Path, marker: str) -> str:
    """``"write"`` (absent, empty, or an older demo tree), ``"current"`` (this exact demo tree is
    there) or ``"foreign"`` (the folder holds files a demo run did not write: real data)."""
    if not root.exists() or not any(root.iterdir()):
        return "write"
    stamp = root / MARKER
    if not stamp.is_file():
        return "foreign"
    return "current" if stamp.read_text(encoding="ascii", errors="replace") == marker else "write"


def write_demo_data(
    out_dir: Path,
    seed: int = 0,
    n_ptbxl: int = 240,
    n_cinc2017: int = 240,
    n_ucr: int = 300,
    progress: bool = False,
) -> DemoSummary:
    """Write the synthetic raw tree under ``out_dir`` (``ptbxl/``, ``cinc2017/``, ``ucr/`` and
    a README) and return what was written. Same arguments, same bytes."""
    for name, value in (("seed", seed), ("n_ptbxl", n_ptbxl), ("n_cinc2017", n_cinc2017), ("n_ucr", n_ucr)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if n_cinc2017 > 99999 or n_ptbxl > 99999:
        raise ValueError("at most 99999 records per source (5-digit record names)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    roots = {"ptbxl": out / "ptbxl", "cinc2017": out / "cinc2017", "ucr": out / "ucr"}
    sizes = {"ptbxl": n_ptbxl, "cinc2017": n_cinc2017, "ucr": n_ucr}
    markers = {name: _marker_text(name, seed, sizes[name]) for name in roots}
    states = {name: source_state(root, markers[name]) for name, root in roots.items()}
    readme = out / "README.txt"
    readme.write_text(_readme(seed, n_ptbxl, n_cinc2017, n_ucr), encoding="ascii", newline="\n")
    for name, root in roots.items():
        if states[name] == "write":
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            # The marker goes first, with a value no finished run has, so an interrupted run is
            # recognised as a demo tree and rewritten, never mistaken for real data.
            (root / MARKER).write_text(f"{_README_MARK}\nincomplete\n", encoding="ascii")
    ptbxl_counts, n_patients, ptbxl_files = (
        write_ptbxl(roots["ptbxl"], seed, n_ptbxl, progress) if states["ptbxl"] != "foreign" else ({}, 0, [])
    )
    cinc_counts, cinc_files = (
        write_cinc2017(roots["cinc2017"], seed, n_cinc2017, progress)
        if states["cinc2017"] != "foreign"
        else ({}, [])
    )
    ucr_counts, ucr_split, ucr_files = (
        write_ucr(roots["ucr"], seed, n_ucr) if states["ucr"] != "foreign" else ({}, {}, [])
    )
    stamps = [root / MARKER for name, root in roots.items() if states[name] != "foreign"]
    for stamp in stamps:
        stamp.write_text(markers[stamp.parent.name], encoding="ascii")
    return DemoSummary(
        out_dir=out,
        seed=seed,
        roots=roots,
        counts={"ptbxl": ptbxl_counts, "cinc2017": cinc_counts, "ucr": ucr_counts},
        ucr_split=ucr_split,
        ptbxl_patients=n_patients,
        files=tuple(sorted([*ptbxl_files, *cinc_files, *ucr_files, readme, *stamps])),
        skipped=tuple(name for name, state in states.items() if state == "foreign"),
    )
