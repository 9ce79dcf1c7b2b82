"""Maps a params ``kind`` to its reader class (imported lazily so one broken reader cannot break all)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pipeline.sources.base import SourceReader

_KINDS = {
    "ptbxl": ("pipeline.sources.ptbxl", "PtbXlReader"),
    "cinc2017": ("pipeline.sources.cinc2017", "Cinc2017Reader"),
    "cinc2021": ("pipeline.sources.cinc2021", "Cinc2021Reader"),
    "ptb_diagnostic": ("pipeline.sources.ptb_diagnostic", "PtbDiagnosticReader"),
    "code": ("pipeline.sources.code", "CodeReader"),
    "ucr": ("pipeline.sources.ucr", "UcrReader"),
    "wfdb": ("pipeline.sources.wfdb_folder", "WfdbFolderReader"),
}

KINDS = tuple(_KINDS)


def reader_class(kind: str) -> type[SourceReader]:
    if kind not in _KINDS:
        raise ValueError(f"unknown source kind {kind!r}; expected one of {', '.join(_KINDS)}")
    module, cls = _KINDS[kind]
    reader: type[SourceReader] = getattr(importlib.import_module(module), cls)
    return reader


def make_reader(name: str, kind: str, root: Path, options: dict[str, Any]) -> SourceReader:
    """Instantiate the reader for ``kind`` with its validated keyword options."""
    return reader_class(kind)(name, root, **options)
