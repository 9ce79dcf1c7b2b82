"""Input discovery of ``ecgpipe predict``: files and folders → units to read, in output order.

Each input becomes a root (the folder given, or a given file's folder); records get stable ids
relative to it, a record reached twice is listed once, and an id an earlier input used is prefixed
with ``input<position>:``. A WFDB record whose path has a known source's layout gets the id the
store gives it, ``<source>:<id>`` (:func:`store_id`), so predictions join the store and lineage.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from pipeline.core.records import Rejection
from pipeline.export.predict.files import file_entry, header_entry, other_entry
from pipeline.export.predict.units import (
    SIGNAL_SUFFIXES,
    Entry,
    InputRoot,
    InputScan,
    PredictUnit,
    Skipped,
    entry_files,
    entry_id,
)
from pipeline.sources.base import list_files


def discover_inputs(inputs: Sequence[Path]) -> InputScan:
    """Find the records under ``inputs`` (files and/or folders) and choose a reader for each.

    Raises ``FileNotFoundError`` naming an input that is neither a file nor a folder. Never
    reads signal data; WFDB headers are parsed to learn which files a record uses.
    """
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    seen_files: dict[str, str] = {}  # real path of a primary file -> id it was listed under
    used_ids: set[str] = set()
    for position, path in enumerate(inputs, start=1):
        root, found = _scan_input(Path(path), position)
        for entry in found:
            if isinstance(entry, Skipped):
                skipped.append(entry)
                continue
            primary = os.path.realpath(root.root / entry_files(entry)[0])
            if primary in seen_files:
                again = f"already listed as {seen_files[primary]}"
                is_file = Path(path).is_file()
                skipped.append(
                    Skipped(root.given, again) if is_file else root.skipped(entry_files(entry)[0], again)
                )
                continue
            entry = _unique_id(_with_store_id(entry), root.position, used_ids)
            seen_files[primary] = entry_id(entry)
            entries.append(entry)
    return InputScan(tuple(entries), tuple(skipped))


# Record paths (header path without ``.hea``) of a source's own layout, and the group that is the
# source reader's local id (ptbxl.py: the 5-digit ecg_id; cinc2017.py: the record name).
# tests/test_predict_inputs.py checks them against the readers on the demo tree.
SOURCE_LAYOUTS = (
    ("ptbxl", re.compile(r"(?:^|.*/)records(?:100|500)/\d{5}/(\d{5})_(?:lr|hr)")),
    ("cinc2017", re.compile(r"(?:^|.*/)(A\d{5})")),
)


def store_id(uid: str) -> str | None:
    """``<source>:<id>`` for a WFDB record path laid out as a known source stores it, else None."""
    for source, pattern in SOURCE_LAYOUTS:
        match = pattern.fullmatch(uid)
        if match:
            return f"{source}:{match.group(1)}"
    return None


def _with_store_id(entry: Entry) -> Entry:
    """The unit under its store id; its whole path counts (a header given alone keeps its folders)."""
    if isinstance(entry, PredictUnit) and entry.kind == "wfdb":
        sid = store_id(f"{entry.root.as_posix()}/{entry.uid}")
        if sid is not None:
            return dataclasses.replace(entry, uid=sid)
    return entry


def _scan_input(path: Path, position: int) -> tuple[InputRoot, list[Entry | Skipped]]:
    if path.is_dir():
        root = InputRoot(position, path.resolve(), str(path), str(path))
        return root, _scan_folder(root)
    if path.is_file():
        parent = path.parent
        root = InputRoot(position, parent.resolve(), "" if str(parent) == "." else str(parent), str(path))
        return root, [file_entry(root, path.name)]
    raise FileNotFoundError(f"{path}: no such file or folder")


def _unique_id(entry: Entry, position: int, used_ids: set[str]) -> Entry:
    """The entry, its id prefixed with ``input<position>:`` when an earlier input used it."""
    uid = entry_id(entry)
    if uid in used_ids:
        uid = f"input{position}:{uid}"
    used_ids.add(uid)
    if isinstance(entry, PredictUnit):
        return dataclasses.replace(entry, uid=uid)
    assert isinstance(entry.item, Rejection)  # discovery makes no records
    return dataclasses.replace(entry, record_id=uid, item=dataclasses.replace(entry.item, item=uid))


def _scan_folder(root: InputRoot) -> list[Entry | Skipped]:
    """One entry per record or rejected file, and the skipped files, in file order.

    Headers go first so that the signal files they name are claimed before the other files
    are classified; every file ends up in exactly one entry.
    """
    files = list_files(root.root)
    available = set(files)
    found: dict[str, Entry | Skipped] = {}
    claimed: set[str] = set()
    for rel in files:
        if rel.endswith(".hea"):
            entry = header_entry(root, rel, available)
            found[rel] = entry
            claimed.update(entry_files(entry))
    records = {rel[: -len(".hea")] for rel in files if rel.endswith(".hea")}
    for rel in files:
        stem = PurePosixPath(rel).with_suffix("").as_posix()
        if rel in claimed:
            continue
        if stem in records and PurePosixPath(rel).suffix.lower() not in SIGNAL_SUFFIXES:
            found[rel] = root.skipped(rel, f"{rel}: belongs to record {stem}; not needed to score it")
        else:
            found[rel] = other_entry(root, rel, explicit=False)
    return [found[rel] for rel in files if rel in found]
