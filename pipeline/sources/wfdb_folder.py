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
    Signals are float32 ``(C, T)`` in mV. With ``voltage_only`` channels that are not ECG (units
    not a voltage: ``NU`` plethysmograms, ``mmHg`` pressures, ``%``; or named ``ABP``, ``PLETH``,
    ``RESP``, ... whatever their units, see :func:`~pipeline.sources.wfdb.is_ecg_signal`) are
    dropped and named in ``meta["dropped_channels"]``. Multi-rate records (``spf`` samples per
    frame) are read sample for sample: ``fs_hz`` is the frame rate times the kept channels'
    largest ``spf`` (``meta["frame_fs_hz"]`` keeps the frame rate), never an average per frame.

    Multi-segment records (a master header naming segments) are read as one recording: segments
    concatenated, signals matched by name across the segments of a variable layout, NaN over gaps
    (``~``) and where a segment lacks a signal; the master's annotation file is attached. Each
    segment header is reported as "part of" its master (no file of it is read twice). When two
    headers name the same signal file, the one whose record name is the file's stem reads it; the
    other is a duplicate.

    Without ``window_s`` one :class:`Record` per recording; with ``window_s`` one per window (see
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

import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import ClassVar

from pipeline.core.leads import canonical_leads
from pipeline.core.records import (
    Discovery,
    InputUnit,
    Provenance,
    ReadError,
    Record,
    Rejection,
)
from pipeline.sources.base import SourceReader, list_files, resolved_root
from pipeline.sources.options import WfdbFolderOptions
from pipeline.sources.wfdb import (
    MultiSegmentHeader,
    WfdbHeader,
    is_ecg_signal,
    load_segments,
    mv_factor,
    read_any_header,
    read_segmented,
    read_signals,
    sample_rate_hz,
    signal_files,
)
from pipeline.sources.wfdb_annotations import read_annotation_track
from pipeline.sources.wfdb_records import RecordBase, channel_name, whole, windows
from pipeline.sources.wfdb_scan import (
    HEADER_SUFFIX,
    DuplicateHeader,
    Scan,
    missing_listed,
    stem,
    stem_owners_first,
)
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
    # 3: raw labels carry their scope and span (every beat with its sample, rhythms with the part of
    # their interval inside the window, header classes as record scope): signals unchanged, stored raw
    # labels not, so every WFDB unit is read again. 2: multi-rate signals at their true rate,
    # multi-segment records, named non-ECG channels dropped.
    version: ClassVar[str] = "3"

    Options: ClassVar[type[WfdbFolderOptions]] = WfdbFolderOptions
    options: WfdbFolderOptions

    # ------------------------------------------------------------------ discovery

    def discover(self) -> Discovery:
        files = list_files(self.root)
        scan = Scan(remaining=set(files))
        metadata = [f for f in files if METADATA_NAME.fullmatch(posixpath.basename(f))]
        scan.remaining.difference_update(metadata)
        lists: dict[str, RecordsList] = {}
        if self.options.use_records_file:
            lists, refused = self._records_lists(metadata)
            scan.rejected.extend(refused)
            refused_files = {r.item for r in refused}
            metadata = [f for f in metadata if f not in refused_files]
        listed = []
        for header in self._headers(scan.remaining):
            governing = governing_list(header, lists)
            if governing is not None and not governing.lists(header[: -len(HEADER_SUFFIX)]):
                self._reject_record(scan, header, f"not listed in {governing.file}", "excluded")
            else:
                listed.append(header)
        parsed = self._parsed(scan, listed)
        for master in [h for h, p in parsed.items() if isinstance(p, MultiSegmentHeader)]:
            self._add_master(scan, master, parsed)
        for header in stem_owners_first(parsed):
            single = parsed[header]
            if header in scan.remaining and isinstance(single, WfdbHeader):
                self._add_unit(scan, header, single)
        scan.rejected.extend(missing_listed(lists, files))
        for rel in sorted(scan.remaining):
            scan.rejected.append(self._leftover(rel, scan))
        units = sorted(scan.units, key=lambda u: u.key)
        return Discovery(tuple(units), tuple(metadata), tuple(scan.rejected))

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

    def _parsed(self, scan: Scan, headers: list[str]) -> dict[str, WfdbHeader | MultiSegmentHeader]:
        """Each header parsed once; an unreadable one is rejected with its reason."""
        parsed: dict[str, WfdbHeader | MultiSegmentHeader] = {}
        for rel in headers:
            try:
                parsed[rel] = read_any_header(self.resolve(rel), rel)
            except ReadError as exc:
                self._reject_record(scan, rel, str(exc), "error")
        return parsed

    def _add_unit(self, scan: Scan, header_rel: str, header: WfdbHeader) -> None:
        key = header_rel[: -len(HEADER_SUFFIX)]
        try:
            data_files = self._signal_file_paths(header, header_rel, scan)
        except DuplicateHeader as dup:
            self._reject_record(scan, header_rel, str(dup), "duplicate")
            return
        except ReadError as exc:
            self._reject_record(scan, header_rel, str(exc), "error")
            return
        self._claim_unit(scan, key, [header_rel, *data_files])

    def _claim_unit(self, scan: Scan, key: str, files: list[str]) -> None:
        """A unit of ``files`` (header first) plus its annotation file when present."""
        if self.options.annotation_ext is not None:
            annotation = f"{key}.{self.options.annotation_ext}"
            if annotation in scan.remaining and annotation not in files:
                files.append(annotation)
        scan.remaining.difference_update(files)
        scan.owner.update(dict.fromkeys(files, key))
        scan.units.append(InputUnit(key=key, files=tuple(dict.fromkeys(files))))
        scan.record_fate[key] = (
            f"belongs to record {key} but is not read (annotation_ext={self.options.annotation_ext!r})",
            "excluded",
        )

    def _add_master(self, scan: Scan, master_rel: str, parsed: Mapping[str, object]) -> None:
        """A multi-segment record: one unit of the master, its segment headers and their signal
        files; each segment header is also reported as part of the master, never read alone."""
        key = master_rel[: -len(HEADER_SUFFIX)]
        master = parsed[master_rel]
        assert isinstance(master, MultiSegmentHeader)
        folder = posixpath.dirname(master_rel)
        segment_rels = [posixpath.join(folder, f"{n}{HEADER_SUFFIX}") for n in master.segment_headers()]
        files = [master_rel]
        try:
            for rel in segment_rels:
                segment = parsed.get(rel)
                if rel not in scan.remaining or not isinstance(segment, WfdbHeader):
                    raise ReadError(
                        f"{master_rel}: segment {rel} is missing, unreadable or part of another record; "
                        "expected a single-segment header beside the master"
                    )
                files += [rel, *self._signal_file_paths(segment, rel, scan)]
        except ReadError as exc:
            self._reject_record(scan, master_rel, str(exc), "error")
            for rel in segment_rels:  # never read alone: they are parts of a refused record
                if rel in scan.remaining:
                    reason = f"part of multi-segment record {key}, which is refused: {exc}"
                    self._reject_record(scan, rel, reason, "error")
            return
        self._claim_unit(scan, key, files)
        for rel in segment_rels:
            reason = f"part of multi-segment record {key}; read as one recording with it"
            scan.rejected.append(Rejection(item=rel, files=(), reason=reason, category="excluded"))

    def _signal_file_paths(self, header: WfdbHeader, header_rel: str, scan: Scan) -> list[str]:
        """Root-relative paths of the header's signal files; each must exist and be unclaimed
        (:class:`DuplicateHeader` when another record took it)."""
        folder = posixpath.dirname(header_rel)
        paths = []
        for name in signal_files(header):
            full = self.resolve(posixpath.join(folder, name))
            rel = full.relative_to(resolved_root(self.root)).as_posix()
            if rel in scan.owner:
                raise DuplicateHeader(
                    f"{header_rel}: names signal file {rel}, which record {scan.owner[rel]} reads (its "
                    "header's name matches the file); this header is another description of the same data"
                )
            if rel not in scan.remaining:
                raise ReadError(
                    f"{header_rel}: signal file {name!r} is missing or already belongs to another record; "
                    "expected a file beside the header"
                )
            paths.append(rel)
        return paths

    def _reject_record(self, scan: Scan, header_rel: str, reason: str, category: str) -> None:
        """Reject a header; the files named like its record follow it (see :meth:`_leftover`)."""
        key = header_rel[: -len(HEADER_SUFFIX)]
        scan.reject(header_rel, reason, category)
        scan.record_fate[key] = (f"belongs to record {key}, rejected: {reason}", category)

    def _leftover(self, rel: str, scan: Scan) -> Rejection:
        """Why a file that is neither in a unit nor metadata was not read."""
        fate = scan.record_fate.get(stem(rel))
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
        parsed = read_any_header(header_path, header_rel)
        segmented = None
        if isinstance(parsed, MultiSegmentHeader):
            segmented = load_segments(parsed, header_path.parent, posixpath.dirname(header_rel))
            header = segmented.combined
        else:
            header = parsed
        keep, dropped = self._channels(header, header_rel)
        try:
            if segmented is None:
                signal = read_signals(header, header_path.parent, self.root, keep)
            else:
                signal = read_segmented(segmented, keep, header_path.parent, self.root)
        except (OSError, ValueError) as exc:
            raise ReadError(f"{header_rel}: cannot read the signals: {exc}") from exc
        if signal.shape[1] == 0:
            raise ReadError(f"{header_rel}: the record holds no samples; expected at least one")
        fs_hz = sample_rate_hz(header, keep)
        track = self._annotations(unit, header.fs_hz, fs_hz).ending_before(signal.shape[1])
        base = RecordBase(
            record_id=self.record_id(unit.key),
            fs_hz=fs_hz,
            leads=canonical_leads([channel_name(header, i) for i in keep]),
            patient_id=self._patient(unit.key),
            header_labels=header_comment_labels(header.comments) if self.options.header_labels else (),
            meta=self._meta(header, keep, dropped, fs_hz),
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
        keep = [i for i, s in enumerate(header.signals) if is_ecg_signal(s)]
        dropped = [i for i in range(header.n_sig) if i not in keep]
        if not keep:
            units = ", ".join(f"{channel_name(header, i)} [{s.units}]" for i, s in enumerate(header.signals))
            raise ReadError(
                f"{header_rel}: no voltage channel left after dropping non-voltage ones ({units}); "
                "expected at least one ECG channel in mV, uV or V"
            )
        return keep, dropped

    def _meta(self, header: WfdbHeader, keep: list[int], dropped: list[int], fs_hz: float) -> dict[str, str]:
        meta = {"fs_hz": repr(fs_hz), "record_name": header.record_name}
        if fs_hz != header.fs_hz:
            meta["frame_fs_hz"] = repr(header.fs_hz)
        if dropped:
            meta["dropped_channels"] = ",".join(channel_name(header, i) for i in dropped)
        units = [
            "mV" if mv_factor(header.signals[i].units) is not None else header.signals[i].units for i in keep
        ]
        if any(u != "mV" for u in units):
            meta["units"] = ",".join(units)
        return meta

    def _annotations(self, unit: InputUnit, frame_fs_hz: float, fs_hz: float) -> AnnotationTrack:
        """The unit's annotations, sample indices at ``fs_hz``; empty when it has none.

        WFDB annotation times count frames (``frame_fs_hz``) unless the file states its own rate."""
        ext = self.options.annotation_ext
        if ext is None:
            return AnnotationTrack.empty()
        rel = f"{unit.key}.{ext}"
        if rel not in unit.files:
            return AnnotationTrack.empty()
        return read_annotation_track(self.resolve(rel), ext, fs_hz, rel, frame_fs_hz)

    def _patient(self, key: str) -> str | None:
        if self.options.patient_regex is None:
            return key
        match = re.search(self.options.patient_regex, key)
        return match.group(1) if match else None
