"""Helpers the WFDB-based readers share: grouping files into records, documentation files,
header comment fields, lead names, rejections, and reading a unit's ECG in mV.

The WFDB byte formats themselves (header, decode, MAT v4, annotations) live in
:mod:`pipeline.sources.wfdb`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.core.leads import canonical_leads
from pipeline.core.records import ReadError, Rejection
from pipeline.sources.base import confined_path
from pipeline.sources.wfdb import (
    FloatArray,
    WfdbHeader,
    header_bytes_text,
    mv_factor,
    parse_header,
    read_header,
    read_signals,
    signal_files,
)

# --------------------------------------------------------------------------- reader helpers

# Files a PhysioNet download ships beside its records that are documentation or indexes, not
# signal data: WFDB readers list them as metadata rather than quarantining them.
_DOC_NAMES = frozenset(
    {"records", "annotators", "controls", "license", "license.txt", "sha256sums.txt", "readme", "index.html"}
)
_DOC_SUFFIXES = frozenset({".md", ".html", ".htm", ".pdf", ".txt"})


def is_documentation(rel: str) -> bool:
    """True for index and documentation files (``RECORDS``, ``LICENSE.txt``, ``README.md``)."""
    path = PurePosixPath(rel)
    return path.name.lower() in _DOC_NAMES or path.suffix.lower() in _DOC_SUFFIXES


def comment_fields(comments: tuple[str, ...]) -> dict[str, str]:
    """``Key: value`` comment lines as ``{"key": "value"}`` (keys lower-cased, first one wins).

    ``#Age: 80``, ``# Age: 78`` and ``# age: 81`` all give ``{"age": ...}``.
    """
    fields: dict[str, str] = {}
    for comment in comments:
        key, sep, value = comment.partition(":")
        if sep and key.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def lead_names(header: WfdbHeader) -> tuple[str, ...]:
    """Canonical lead names from the signal descriptions (``AVR`` → ``aVR``); an empty
    description becomes ``sig<i>``."""
    return canonical_leads([s.description or f"sig{i}" for i, s in enumerate(header.signals)])


def orphan_rejections(orphans: Iterable[str]) -> list[Rejection]:
    """A rejection for each signal file that has no header beside it."""
    out = []
    for rel in orphans:
        header = PurePosixPath(rel).with_suffix(".hea").as_posix()
        out.append(Rejection(rel, (rel,), f"{rel}: signal file with no header; expected {header}"))
    return out


def duplicate_name(stem: str, files: tuple[str, ...], seen: Mapping[str, str]) -> Rejection | None:
    """A ``duplicate`` rejection when a record of the same name was already taken at ``seen[name]``.

    CinC releases identify records by name alone, so the same name in two folders is one record.
    """
    name = PurePosixPath(stem).name
    if name not in seen:
        return None
    reason = f"{files[0]}: record {name} is also at {seen[name]}, which is read instead"
    return Rejection(stem, files, reason, category="duplicate")


def split_others(
    others: Iterable[str], is_metadata: Callable[[str], bool], expected: str
) -> tuple[list[str], list[Rejection]]:
    """Files that are not part of a record: metadata where ``is_metadata``, else a rejection
    saying ``<file>: not part of <expected>``."""
    metadata: list[str] = []
    rejected: list[Rejection] = []
    for rel in others:
        if is_metadata(rel):
            metadata.append(rel)
        else:
            rejected.append(Rejection(rel, (rel,), f"{rel}: not part of {expected}"))
    return metadata, rejected


def read_unit_ecg(
    root: Path, files: tuple[str, ...], loaded: Mapping[str, bytes] | None = None
) -> tuple[WfdbHeader, FloatArray]:
    """Header and ``(C, T)`` mV signals of a unit whose first file is its ``.hea``.

    ``loaded``: bytes of the unit's files the caller has already read (root-relative path →
    bytes, see :meth:`pipeline.sources.base.SourceReader.read_loaded`); those are not read again.
    """
    header_rel = files[0]
    if loaded is not None and header_rel in loaded:
        header = parse_header(header_bytes_text(loaded[header_rel], header_rel), header_rel)
    else:
        header = read_header(confined_path(root, header_rel), header_rel)
    return header, read_ecg(header, header_rel, root, files, loaded)


def read_ecg(
    header: WfdbHeader,
    header_rel: str,
    root: Path,
    allowed: Collection[str],
    loaded: Mapping[str, bytes] | None = None,
) -> FloatArray:
    """Float32 ``(C, T)`` mV signals of the header at ``header_rel`` (relative to ``root``).

    Raises :class:`ReadError` when a channel is not a voltage, or when the header names a
    signal file outside ``allowed`` (the unit's files, so provenance covers every byte read).
    Signal files in ``loaded`` (root-relative path → bytes already read) are decoded from those bytes.
    """
    directory = PurePosixPath(header_rel).parent
    given: dict[str, tuple[str, bytes]] = {}
    for name in signal_files(header):
        rel = (directory / name).as_posix()
        if loaded is not None and rel in loaded and rel in allowed:
            given[name] = (rel, loaded[rel])
            continue
        if rel not in allowed and not confined_path(Path(root), rel).is_file():
            raise ReadError(f"{rel}: signal file named by header {header_rel} does not exist")
        if rel not in allowed:
            raise ReadError(
                f"{header_rel}: header names signal file {rel}, which is not among {sorted(allowed)}"
            )
    multi_rate = [f"{s.description or i} (x{s.samples_per_frame})" for i, s in enumerate(header.signals)]
    if any(s.samples_per_frame != 1 for s in header.signals):
        # These readers state the header's frame rate as the record's rate; reading such a record
        # sample for sample needs per-signal rates (kind wfdb does it), averaging would be wrong data.
        raise ReadError(
            f"{header_rel}: signals stored at several samples per frame ({', '.join(multi_rate)}); "
            "expected one sample per frame (read multi-rate records with a source of kind wfdb)"
        )
    not_voltage = [
        f"{s.description or i} ({s.units})"
        for i, s in enumerate(header.signals)
        if mv_factor(s.units) is None
    ]
    if not_voltage:
        raise ReadError(
            f"{header_rel}: channels {', '.join(not_voltage)} are not in volts; expected ECG in mV"
        )
    return read_signals(header, Path(root) / directory, root, loaded=given or None)


@dataclass(frozen=True)
class WfdbFileSets:
    """Files under a root grouped into WFDB records by folder and stem.

    ``records`` maps a record's stem path (``patient001/s0010_re``) to its files (the header
    first, then the signal files found beside it); ``orphans`` are signal files with no header;
    ``others`` are files of neither kind.
    """

    records: dict[str, tuple[str, ...]]
    orphans: tuple[str, ...]
    others: tuple[str, ...]


def group_wfdb_files(files: Iterable[str], signal_suffixes: tuple[str, ...]) -> WfdbFileSets:
    """Group relative POSIX paths into records: ``<stem>.hea`` plus ``<stem><suffix>`` for each
    of ``signal_suffixes`` (e.g. ``(".dat", ".xyz")``), matched case-sensitively like WFDB."""
    by_stem: dict[str, dict[str, str]] = {}
    others = []
    for rel in files:
        path = PurePosixPath(rel)
        if path.suffix == ".hea" or path.suffix in signal_suffixes:
            stem = path.with_suffix("").as_posix()
            by_stem.setdefault(stem, {})[path.suffix] = rel
        else:
            others.append(rel)
    records: dict[str, tuple[str, ...]] = {}
    orphans: list[str] = []
    for stem, found in sorted(by_stem.items()):
        signals = [found[s] for s in signal_suffixes if s in found]
        if ".hea" in found:
            records[stem] = (found[".hea"], *signals)
        else:
            orphans.extend(signals)
    return WfdbFileSets(records, tuple(orphans), tuple(others))
