"""The kill loop's raw tree (real records copied from ``../shared/data``) and the params overrides that
point ingest at it and at a store."""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

UNUSED_SOURCES = ("cinc2021", "ptb_diagnostic", "code", "ucr", "cpsc2021")


@dataclass(frozen=True)
class TreeSpec:
    n_cinc2017: int = 150
    n_ptbxl: int = 20
    mitbih: tuple[str, ...] = ("100",)
    batch_units: int = 16


def build_raw_tree(shared: Path, dest: Path, spec: TreeSpec) -> Path:
    """Copy real records from ``shared`` into ``dest/<source>`` (copies, never links: tests that
    change raw files must not touch the shared set); returns ``dest``."""
    _cinc2017_tree(shared / "cinc2017" / "training2017", dest / "cinc2017", spec.n_cinc2017)
    _ptbxl_tree(shared / "ptbxl", dest / "ptbxl", spec.n_ptbxl)
    (dest / "mitbih").mkdir(parents=True)
    for record in spec.mitbih:
        for f in sorted((shared / "mitbih").glob(f"{record}.*")):
            shutil.copy(f, dest / "mitbih" / f.name)
    return dest


def _cinc2017_tree(src: Path, dest: Path, n: int) -> None:
    """Records A00001..An, a truncated record A(n+1) (quarantined when read) and an orphan
    signal file A(n+2).mat with no header (rejected at discovery)."""
    dest.mkdir(parents=True)
    for i in range(1, n + 3):
        name = f"A{i:05d}"
        if i <= n + 1:
            shutil.copy(src / f"{name}.hea", dest / f"{name}.hea")
        data = (src / f"{name}.mat").read_bytes()
        (dest / f"{name}.mat").write_bytes(data[:200] if i == n + 1 else data)
    lines = (src / "REFERENCE.csv").read_bytes().split(b"\r\n")
    (dest / "REFERENCE.csv").write_bytes(b"\r\n".join(lines[: n + 1]) + b"\r\n")


def _ptbxl_tree(src: Path, dest: Path, n: int) -> None:
    """ecg_id 1..n at 500 Hz and 100 Hz (the 100 Hz copies are quarantined as duplicates)."""
    dest.mkdir(parents=True)
    rows = list(csv.reader(io.StringIO((src / "ptbxl_database.csv").read_text(encoding="utf-8"))))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows[: n + 1])
    (dest / "ptbxl_database.csv").write_text(buf.getvalue(), encoding="utf-8")
    shutil.copy(src / "scp_statements.csv", dest / "scp_statements.csv")
    for i in range(1, n + 1):
        for folder, suffix in (("records500", "hr"), ("records100", "lr")):
            for ext in (".hea", ".dat"):
                f = src / folder / "00000" / f"{i:05d}_{suffix}{ext}"
                if f.exists():
                    (dest / folder / "00000").mkdir(parents=True, exist_ok=True)
                    shutil.copy(f, dest / folder / "00000" / f.name)


def overrides(raw: Path, store: Path, spec: TreeSpec) -> list[str]:
    """``--set`` values pointing the repo's params at the tree and a store (other sources off)."""
    sets = [
        f"ingest.store={store}",
        f"ingest.smoke_store={store.with_name(store.name + '_smoke')}",
        f"ingest.batch_units={spec.batch_units}",
        "ingest.task_runner=threads",  # a crash point kills its own process: every batch must be in it
        f"sources.cinc2017.root={raw / 'cinc2017'}",
        f"sources.ptbxl.root={raw / 'ptbxl'}",
        f"sources.mitbih.root={raw / 'mitbih'}",
    ]
    return sets + [f"sources.{s}.enabled=false" for s in UNUSED_SOURCES]


def load_tree_params(raw: Path, store: Path, spec: TreeSpec) -> Any:
    from pipeline.config import load_params

    return load_params(REPO / "params.yaml", overrides(raw, store, spec))
