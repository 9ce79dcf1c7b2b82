"""Maps a params ``kind`` to its reader class, and builds the readers a params file names.

Reader modules are imported lazily (by ``kind``), so one broken reader cannot break all and a
command imports only the readers it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pipeline.sources.base import SourceReader
from pipeline.sources.options import OPTIONS

_KINDS = {
    "ptbxl": ("pipeline.sources.ptbxl", "PtbXlReader"),
    "cinc2017": ("pipeline.sources.cinc2017", "Cinc2017Reader"),
    "cinc2021": ("pipeline.sources.cinc2021", "Cinc2021Reader"),
    "ptb_diagnostic": ("pipeline.sources.ptb_diagnostic", "PtbDiagnosticReader"),
    "code": ("pipeline.sources.code", "CodeReader"),
    "ucr": ("pipeline.sources.ucr", "UcrReader"),
    "wfdb": ("pipeline.sources.wfdb_folder", "WfdbFolderReader"),
    "edf": ("pipeline.sources.edf", "EdfReader"),
}
assert set(_KINDS) == set(OPTIONS), "every kind has a reader and an options model"

KINDS = tuple(_KINDS)


class SourceEntry(Protocol):
    """One ``sources.<name>`` params section (``pipeline.config``'s model inherits the options)."""

    @property
    def kind(self) -> str: ...
    @property
    def root(self) -> Path: ...
    @property
    def enabled(self) -> bool: ...


class HasSources(Protocol):
    """Params holding a ``sources`` section (``pipeline.config.Params``)."""

    @property
    def sources(self) -> Mapping[str, SourceEntry]: ...


def reader_class(kind: str) -> type[SourceReader]:
    if kind not in _KINDS:
        raise ValueError(f"unknown source kind {kind!r}; expected one of {', '.join(_KINDS)}")
    module, cls = _KINDS[kind]
    reader: type[SourceReader] = getattr(importlib.import_module(module), cls)
    return reader


def make_reader(name: str, kind: str, root: Path, options: Mapping[str, Any]) -> SourceReader:
    """Instantiate the reader for ``kind`` with its keyword options (validated by its ``Options``)."""
    return reader_class(kind)(name, root, **options)


def reader_options(src: SourceEntry) -> dict[str, Any]:
    """The keyword options of a source's reader: the fields of its kind's options model
    (so ``kind``, ``root``, ``enabled`` and ``label_table``, which are not the reader's, stay out)."""
    return {field: getattr(src, field) for field in OPTIONS[src.kind].model_fields}


def build_readers(params: HasSources, names: Sequence[str]) -> dict[str, SourceReader]:
    """Readers for the named sources (disabled sources are left out)."""
    readers: dict[str, SourceReader] = {}
    for name in names:
        src = params.sources[name]
        if src.enabled:
            readers[name] = make_reader(name, src.kind, src.root, reader_options(src))
    return readers
