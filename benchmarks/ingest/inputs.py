"""The benchmark's input: real 500 Hz PTB-XL records replicated under new ``ecg_id`` values into a PTB-XL
tree (headers renamed, ``.dat`` hard-linked), and the byte counts of WFDB trees and stores."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from pipeline.sources.ptbxl import DATABASE, STATEMENTS

REPO = Path(__file__).resolve().parents[2]


SHARED_DATA = Path(os.environ.get("ECGPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))


PROFILE = "ecg12"


SOURCE = "ptbxl"


TREE_VERSION = 1  # bump when the replicated tree's layout changes, so cached trees are rebuilt


MB = 1 << 20


def source_rows(source: Path) -> tuple[list[str], list[dict[str, str]]]:
    """``ptbxl_database.csv`` columns and the rows whose 500 Hz ``.hea`` and ``.dat`` exist."""
    with (source / DATABASE).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = [dict(r) for r in reader if _has_hr_files(source, r.get("filename_hr") or "")]
    return columns, rows


def _has_hr_files(source: Path, stem: str) -> bool:
    return bool(stem) and (source / f"{stem}.hea").is_file() and (source / f"{stem}.dat").is_file()


def replica_stem(ecg_id: int, rate_dir: str, suffix: str) -> str:
    """PTB-XL path of a record without extension: ``records500/01000/01234_hr``."""
    return f"{rate_dir}/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_{suffix}"


def rename_header(text: str, old: str, new: str) -> str:
    """WFDB header text with record ``old`` (and its signal files ``old.*``) renamed ``new``."""
    out = []
    for line in text.splitlines(keepends=True):
        token, sep, rest = line.partition(" ")
        if token == old or token.startswith(f"{old}."):
            token = new + token[len(old) :]
        out.append(token + sep + rest)
    return "".join(out)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (no extra disk); copy where links are impossible."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def replicate_record(source: Path, dest: Path, row: Mapping[str, str], ecg_id: int) -> dict[str, str]:
    """Copy one 500 Hz record under a new ``ecg_id``; returns its CSV row."""
    old_stem = row["filename_hr"]
    new_stem = replica_stem(ecg_id, "records500", "hr")
    (dest / new_stem).parent.mkdir(parents=True, exist_ok=True)
    header = (source / f"{old_stem}.hea").read_text(encoding="utf-8")
    renamed = rename_header(header, PurePosixPath(old_stem).name, PurePosixPath(new_stem).name)
    (dest / f"{new_stem}.hea").write_text(renamed, encoding="utf-8")
    link_or_copy(source / f"{old_stem}.dat", dest / f"{new_stem}.dat")
    # The 100 Hz path names where PTB-XL would keep it; no file is there, so the reader skips it.
    lr_stem = replica_stem(ecg_id, "records100", "lr")
    return {**row, "ecg_id": str(ecg_id), "filename_hr": new_stem, "filename_lr": lr_stem}


def build_input(source: Path, dest: Path, n: int) -> Path:
    """A PTB-XL tree at ``dest`` with ``ecg_id`` 1..n cycling over the source's 500 Hz records.

    Reused when a previous run built the same tree (a stamp file records n and the source).
    """
    stamp = {"version": TREE_VERSION, "n": n, "source": str(source.resolve())}
    marker = dest / ".bench-input.json"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == stamp:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    columns, rows = source_rows(source)
    if not rows:
        raise SystemExit(f"{source}: no 500 Hz PTB-XL records (records500/...) with a {DATABASE} row")
    dest.mkdir(parents=True)
    new_rows = [
        replicate_record(source, dest, rows[(k - 1) % len(rows)], k)
        for k in tqdm(range(1, n + 1), desc=f"input tree {n}", unit="rec", leave=False)
    ]
    with (dest / DATABASE).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(new_rows)
    shutil.copyfile(source / STATEMENTS, dest / STATEMENTS)
    marker.write_text(json.dumps(stamp), encoding="utf-8")
    return dest


def raw_wfdb_bytes(root: Path) -> dict[str, int]:
    """Record count and bytes of the ``.dat`` and ``.hea`` files under ``root``."""
    dat = hea = n = 0
    for path in root.rglob("*"):
        if path.suffix == ".dat":
            dat += path.stat().st_size
            n += 1
        elif path.suffix == ".hea":
            hea += path.stat().st_size
    return {"n_records": n, "dat_bytes": dat, "hea_bytes": hea, "raw_bytes": dat + hea}


def tree_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def input_rows(root: Path) -> list[dict[str, str]]:
    with (root / DATABASE).open(newline="", encoding="utf-8") as fh:
        return [dict(r) for r in csv.DictReader(fh)]
