"""Generic reader for any folder of WFDB records (MIT-BIH, CPSC 2021, Challenge 2015, MIMIC, ...).

Discovery
    Records come from the ``RECORDS`` files when ``use_records_file`` is set: a header is
    governed by the ``RECORDS`` file in its own folder or the nearest folder above it, and
    is a record only when that file lists it (entries are record names relative to the
    ``RECORDS`` file's folder; entries ending in ``/`` list a whole subfolder). Headers that no
    ``RECORDS`` file governs, or all headers when ``use_records_file`` is off, are found by the
    glob ``pattern``. A unit is one record: its ``.hea``, its signal file(s) and its annotation
    file ``<record>.<annotation_ext>`` when present; ``unit.key`` is the record name (the
    header's path below the root without ``.hea``) and ``unit.files[0]`` its header.
    ``RECORDS``/``ANNOTATORS``/README-like files are metadata; every other file is rejected
    with a reason (not listed in ``RECORDS``, part of a rejected record, an annotation file of
    another annotator, or not named by any header).

Reading
    Signals are float32 ``(C, T)`` in mV at the header's ``fs_hz``. With ``voltage_only``
    channels whose units are not a voltage (``NU`` plethysmograms, respiration, ``mmHg``
    pressures) are dropped and named in ``meta["dropped_channels"]``. Without ``window_s`` one
    :class:`Record` per recording; with ``window_s`` one per window (see
    :mod:`pipeline.sources.windows`), with local id ``<record>/w<start>`` (start sample
    zero-padded to the number of digits of the recording's sample count).

Raw labels (in this order, repeats removed)
    1. beat symbols of the annotation file inside the recording/window (``N``, ``A``, ``V``);
    2. rhythms in effect, the aux notes of rhythm changes (``(AFIB``, ``(N``);
    3. with ``header_labels``, the header comment lines that read as labels (see
       :func:`~pipeline.sources.wfdb_text.header_comment_labels`): CPSC 2021 ``persistent atrial
       fibrillation``, Challenge 2015 ``Asystole`` and ``False alarm``.

Patients
    ``patient_regex`` (one group, searched in the record name, i.e. its path below the root
    without ``.hea``) gives the patient id, e.g. ``data_(\\d+)_\\d+`` for CPSC 2021. Without it
    the record name is the patient id, right for MIT-BIH-like databases that hold one record
    per patient. A record the regex does not match gets no patient id (None).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pipeline.core.leads import canonical_leads
from pipeline.core.records import (
    Discovery,
    InputUnit,
    Provenance,
    ReadError,
    Record,
    Rejection,
)
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.options import WfdbFolderOptions
from pipeline.sources.wfdb import (
    WfdbHeader,
    mv_factor,
    read_header,
    read_signals,
    signal_files,
)
from pipeline.sources.wfdb_annotations import read_annotation_track
from pipeline.sources.wfdb_records import RecordBase, channel_name, whole, windows
from pipeline.sources.wfdb_text import (
    MAX_RECORDS_BYTES,
    METADATA_NAME,
    RECORDS_FILE,
    RecordsList,
    governing_list,
    header_comment_labels,
    parse_records_file,
)
from pipeline.sources.windows import AnnotationTrack

HEADER_SUFFIX = ".hea"


def _stem(rel: str) -> str:
    """A file's record name: its path without the last extension."""
    return posixpath.splitext(rel)[0]


@dataclass
class _Scan:
    """Discovery state: files still unaccounted for and what has been decided so far."""

    remaining: set[str]
    units: list[InputUnit] = dataclasses.field(default_factory=list)
    rejected: list[Rejection] = dataclasses.field(default_factory=list)
    # record name -> (reason, category) for records whose leftover files share their fate
    record_fate: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)

    def reject(self, rel: str, reason: str, category: str = "error") -> None:
        self.remaining.discard(rel)
        self.rejected.append(Rejection(item=rel, files=(rel,), reason=reason, category=category))


class WfdbFolderReader(SourceReader):
    """Any folder of single-segment WFDB records, optionally cut into windows.

    Options: ``pattern`` (glob for headers below ``root``), ``use_records_file`` (list records
    from ``RECORDS`` files), ``annotation_ext`` (annotator extension read with ``wfdb.rdann``;
    None reads none), ``window_s``/``hop_s`` (window length and step in seconds; ``hop_s``
    defaults to ``window_s``), ``keep_partial`` (keep a last shorter window),
    ``header_labels`` (take labels from header comments), ``voltage_only`` (drop non-voltage
    channels), ``patient_regex`` (one group giving the patient id from the record name).
    """

    kind: ClassVar[str] = "wfdb"
    # "2": raw labels carry their scope and span (every beat with its sample, rhythms with the
    # part of their interval inside the window, header classes as record scope). Signals are
    # unchanged, but stored raw labels are not, so every WFDB unit must be read again.
    version: ClassVar[str] = "2"

    Options: ClassVar[type[WfdbFolderOptions]] = WfdbFolderOptions
    options: WfdbFolderOptions

    # ------------------------------------------------------------------ discovery

    def discover(self) -> Discovery:
        files = list_files(self.root)
        scan = _Scan(remaining=set(files))
        metadata = [f for f in files if METADATA_NAME.fullmatch(posixpath.basename(f))]
        scan.remaining.difference_update(metadata)
        lists: dict[str, RecordsList] = {}
        if self.options.use_records_file:
            lists, refused = self._records_lists(metadata)
            scan.rejected.extend(refused)
            refused_files = {r.item for r in refused}
            metadata = [f for f in metadata if f not in refused_files]
        for header in self._headers(scan.remaining):
            governing = governing_list(header, lists)
            if governing is not None and not governing.lists(header[: -len(HEADER_SUFFIX)]):
                self._reject_record(scan, header, f"not listed in {governing.file}", "excluded")
            else:
                self._add_unit(scan, header)
        scan.rejected.extend(self._missing_listed(lists, files))
        for rel in sorted(scan.remaining):
            scan.rejected.append(self._leftover(rel, scan))
        return Discovery(tuple(scan.units), tuple(metadata), tuple(scan.rejected))

    def _records_lists(self, metadata: list[str]) -> tuple[dict[str, RecordsList], list[Rejection]]:
        """The ``RECORDS`` files by folder (``""`` is the root), and those refused as too large
        (they govern nothing: the headers of their folder are found by ``pattern``)."""
        lists = {}
        refused = []
        for rel in metadata:
            if posixpath.basename(rel) == RECORDS_FILE:
                path = self.resolve(rel)
                size = path.stat().st_size
                if size > MAX_RECORDS_BYTES:
                    reason = f"{rel}: {size} bytes, larger than {MAX_RECORDS_BYTES}; expected record names"
                    refused.append(Rejection(item=rel, files=(rel,), reason=reason))
                    continue
                parsed = parse_records_file(rel, path.read_text(encoding="utf-8", errors="replace"))
                lists[parsed.folder] = parsed
        return lists, refused

    def _headers(self, candidates: set[str]) -> list[str]:
        """Headers matched by ``pattern`` among the files not yet accounted for, sorted."""
        matched = {p.relative_to(self.root).as_posix() for p in self.root.glob(self.options.pattern)}
        return sorted(f for f in matched & candidates if f.endswith(HEADER_SUFFIX))

    def _add_unit(self, scan: _Scan, header_rel: str) -> None:
        key = header_rel[: -len(HEADER_SUFFIX)]
        try:
            header = read_header(self.resolve(header_rel))
            data_files = self._signal_file_paths(header, header_rel, scan.remaining)
        except ReadError as exc:
            self._reject_record(scan, header_rel, str(exc), "error")
            return
        files = [header_rel, *data_files]
        if self.options.annotation_ext is not None:
            annotation = f"{key}.{self.options.annotation_ext}"
            if annotation in scan.remaining and annotation != header_rel:
                files.append(annotation)
        scan.remaining.difference_update(files)
        scan.units.append(InputUnit(key=key, files=tuple(dict.fromkeys(files))))
        scan.record_fate[key] = (
            f"belongs to record {key} but is not read (annotation_ext={self.options.annotation_ext!r})",
            "excluded",
        )

    def _signal_file_paths(self, header: WfdbHeader, header_rel: str, available: set[str]) -> list[str]:
        """Root-relative paths of the header's signal files; each must exist and be unclaimed."""
        folder = posixpath.dirname(header_rel)
        paths = []
        for name in signal_files(header):
            full = self.resolve(posixpath.join(folder, name))
            rel = full.relative_to(self.root.resolve()).as_posix()
            if rel not in available:
                raise ReadError(
                    f"{header_rel}: signal file {name!r} is missing or already belongs to another record; "
                    "expected a file beside the header"
                )
            paths.append(rel)
        return paths

    def _reject_record(self, scan: _Scan, header_rel: str, reason: str, category: str) -> None:
        """Reject a header; the files named like its record follow it (see :meth:`_leftover`)."""
        key = header_rel[: -len(HEADER_SUFFIX)]
        scan.reject(header_rel, reason, category)
        scan.record_fate[key] = (f"belongs to record {key}, rejected: {reason}", category)

    def _missing_listed(self, lists: Mapping[str, RecordsList], files: list[str]) -> list[Rejection]:
        """Records a ``RECORDS`` file lists whose header does not exist or which would leave the root
        (no file under the root to account for)."""
        present = set(files)
        missing = [
            Rejection(
                item=key,
                files=(),
                reason=f"listed in {listing.file} but {key}{HEADER_SUFFIX} does not exist",
            )
            for listing in lists.values()
            for key in sorted(listing.records)
            if f"{key}{HEADER_SUFFIX}" not in present
        ]
        escaping = [
            Rejection(
                item=entry,
                files=(),
                reason=f"listed in {listing.file} but {entry!r} leaves the source root; expected a record "
                "name under it",
            )
            for listing in lists.values()
            for entry in listing.escaping
        ]
        return missing + escaping

    def _leftover(self, rel: str, scan: _Scan) -> Rejection:
        """Why a file that is neither in a unit nor metadata was not read."""
        fate = scan.record_fate.get(_stem(rel))
        if fate is not None:
            return Rejection(item=rel, files=(rel,), reason=fate[0], category=fate[1])
        if rel.endswith(HEADER_SUFFIX):
            reason = f"header not matched by pattern {self.options.pattern!r}"
            return Rejection(item=rel, files=(rel,), reason=reason, category="excluded")
        reason = "no WFDB header names this file; expected a record's signal or annotation file"
        return Rejection(item=rel, files=(rel,), reason=reason)

    # ------------------------------------------------------------------ reading

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        header_rel = f"{unit.key}{HEADER_SUFFIX}"
        if header_rel not in unit.files:
            raise ReadError(
                f"unit {unit.key}: files {unit.files} hold no {header_rel}; expected the record's header"
            )
        header_path = self.resolve(header_rel)
        header = read_header(header_path)
        try:
            signal = read_signals(header, header_path.parent, self.root)
        except (OSError, ValueError) as exc:
            raise ReadError(f"{header_rel}: cannot read the signals: {exc}") from exc
        if signal.shape[1] == 0:
            raise ReadError(f"{header_rel}: the record holds no samples; expected at least one")
        keep, dropped = self._channels(header, header_rel)
        signal = np.ascontiguousarray(signal[keep])
        track = self._annotations(unit, header.fs_hz).ending_before(signal.shape[1])
        base = RecordBase(
            record_id=self.record_id(unit.key),
            fs_hz=header.fs_hz,
            leads=canonical_leads([channel_name(header, i) for i in keep]),
            patient_id=self._patient(unit.key),
            header_labels=header_comment_labels(header.comments) if self.options.header_labels else (),
            meta=self._meta(header, keep, dropped),
            provenance=provenance,
        )
        if self.options.window_s is None:
            yield from whole(self.name, base, signal, track, unit.files)
        else:
            assert self.options.hop is not None  # set whenever window_s is (the options model's rule)
            spacing = (self.options.window_s, self.options.hop, self.options.keep_partial)
            yield from windows(self.name, base, signal, track, unit.files, spacing)

    def _channels(self, header: WfdbHeader, header_rel: str) -> tuple[list[int], list[int]]:
        """Indices of the channels kept and dropped (non-voltage ones, with ``voltage_only``)."""
        if not self.options.voltage_only:
            return list(range(header.n_sig)), []
        keep = [i for i, s in enumerate(header.signals) if mv_factor(s.units) is not None]
        dropped = [i for i in range(header.n_sig) if i not in keep]
        if not keep:
            units = ", ".join(f"{channel_name(header, i)} [{s.units}]" for i, s in enumerate(header.signals))
            raise ReadError(
                f"{header_rel}: no voltage channel left after dropping non-voltage ones ({units}); "
                "expected at least one channel in mV, uV or V"
            )
        return keep, dropped

    def _meta(self, header: WfdbHeader, keep: list[int], dropped: list[int]) -> dict[str, str]:
        meta = {"fs_hz": repr(header.fs_hz), "record_name": header.record_name}
        if dropped:
            meta["dropped_channels"] = ",".join(channel_name(header, i) for i in dropped)
        units = [
            "mV" if mv_factor(header.signals[i].units) is not None else header.signals[i].units for i in keep
        ]
        if any(u != "mV" for u in units):
            meta["units"] = ",".join(units)
        return meta

    def _annotations(self, unit: InputUnit, fs_hz: float) -> AnnotationTrack:
        """The unit's annotations, sample indices at ``fs_hz``; empty when it has none."""
        ext = self.options.annotation_ext
        if ext is None:
            return AnnotationTrack.empty()
        rel = f"{unit.key}.{ext}"
        if rel not in unit.files:
            return AnnotationTrack.empty()
        return read_annotation_track(self.resolve(rel), ext, fs_hz, rel)

    def _patient(self, key: str) -> str | None:
        if self.options.patient_regex is None:
            return key
        match = re.search(self.options.patient_regex, key)
        return match.group(1) if match else None
