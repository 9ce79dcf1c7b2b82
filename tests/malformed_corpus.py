"""Malformed input corpus (issue 6): broken inputs derived from the real shared records.

:func:`build_corpus` writes, under ``<out>/raw/<source>/``, a few good real records of every
source kind plus hundreds of broken variants derived from them, each registered as a
:class:`Variant` with its expected outcome: which file (or quarantine item) must end up in the
quarantine report and a regex its reason must match. Everything is seeded and deterministic:
the same ``seed`` and shared records give byte-identical trees.

Source kinds and their sources (params names):

- ``ptbxl`` (``ptbxl``, ``ptbxl_badcsv``), ``cinc2017`` (``cinc2017``, ``cinc2017_badref``),
  ``cinc2021``, ``ptb_diagnostic``: WFDB headers with ``.dat``/``.mat`` signal files;
- ``code`` (``code``, ``code_nocsv``, ``code_badcsv``, ``code_bigcsv``): CODE-15% HDF5 parts
  ``tracings (N, 4096, 12)`` + ``exam_id (N,)`` and ``exams.csv``, built from real PTB-XL
  12-lead signals resampled to 400 Hz (no public CODE sample exists);
- ``ucr`` (``ucr``): ECG5000 rows in ``.txt``/``.ts``/``.arff``;
- ``wfdb`` (``mitbih``, ``cpsc2021``, ``wfdb_misc``): generic WFDB folders (formats 212, 16,
  80 and MAT v4), the first two cut into 10 s windows.

Categories (what a variant breaks): ``truncated``, ``empty_file``, ``alloc_bomb`` (a header
or dataset claims far more data than the file holds), ``header_non_numeric``,
``header_out_of_range``, ``header_truncated``, ``format_code``, ``lead_count``,
``length_mismatch``, ``nan_inf``, ``flat``, ``bad_encoding``, ``path_escape``,
``missing_file``, ``duplicate``, ``orphan``, ``stray``, ``label`` (malformed or missing
labels), ``unknown_label`` (well-formed but unknown codes: the record lands and mapping leaves
it unlabelled; readers keep raw labels as stated), ``row_length`` (UCR), ``hdf5_shape``,
``annotation``, ``records_file``, ``too_short``.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

SEED = 0
MiB = 1 << 20
GiB = 1 << 30
MAT4 = struct.Struct("<5i")
PTBXL_DB = "ptbxl_database.csv"

# Preprocessing rejects a record whose samples are NaN/Inf beyond max_nan_fraction; readers of
# windowed records reject all-invalid windows, whole WFDB records with no valid sample.
NAN_REASON = r"NaN"
TRUNC_REASON = r"holds only \d+ bytes"
OVERSIZE_REASON = r"but the header declares \d+ samples; expected the file to end"
# a MAT v4 file's own header is checked first: its matrix disagrees with the WFDB header's signals
MAT_MISMATCH = r"MAT v4 matrix \d+ x \d+ (holds|is not a whole number)"


@dataclass(frozen=True)
class Variant:
    """One broken input and what must become of it.

    ``target`` is a file path relative to the source root, or a quarantine ``item``; a matching
    quarantine entry has ``source == self.source``, names ``target`` as its item or among its
    files, and a reason matching ``reason``. ``absent``: record ids that must not be in the
    shards (an id ending in ``/`` is a prefix, for windows). ``claimed_bytes``: for allocation
    bombs, the memory the broken claim would take if believed. ``outcome`` is
    ``"quarantined"``, or ``"unmapped"`` for a well-formed record with an unknown label code
    (it lands with that raw code and no unified label; ``absent`` then names the record).
    """

    name: str
    source: str
    kind: str
    category: str
    target: str
    reason: str
    absent: tuple[str, ...] = ()
    claimed_bytes: int = 0
    outcome: str = "quarantined"

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """True when a quarantine entry (``quarantine.json`` row) accounts for this variant."""
        if entry.get("source") != self.source:
            return False
        if self.target != entry.get("item") and self.target not in entry.get("files", ()):
            return False
        return re.search(self.reason, str(entry.get("reason", ""))) is not None


@dataclass(frozen=True)
class SourceSpec:
    """A params source the corpus writes: its kind, the profile it feeds, extra reader options."""

    name: str
    kind: str
    profile: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Corpus:
    """The raw tree (``raw/<source>``), files outside it that escapes point at, and expectations."""

    raw: Path
    outside: Path
    sources: dict[str, SourceSpec]
    variants: list[Variant]
    good: dict[str, list[str]]  # source -> record ids (or id prefixes ending in "/") that must land

    def root(self, source: str) -> Path:
        return self.raw / source

    def overrides(self) -> list[str]:
        """``--set`` values pointing every source at the corpus and every profile at its sources."""
        out: list[str] = []
        for spec in self.sources.values():
            out.append(f"sources.{spec.name}.kind={spec.kind}")
            out.append(f"sources.{spec.name}.root={self.root(spec.name)}")
            out.extend(f"sources.{spec.name}.{k}={_yaml(v)}" for k, v in spec.options.items())
        for profile in sorted({s.profile for s in self.sources.values()}):
            names = [s.name for s in self.sources.values() if s.profile == profile]
            out.append(f"profiles.{profile}.sources=[{', '.join(names)}]")
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of variants by reader kind, then by category."""
        table: dict[str, Counter[str]] = {}
        for v in self.variants:
            table.setdefault(v.kind, Counter())[v.category] += 1
        return {k: dict(sorted(c.items())) for k, c in sorted(table.items())}


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


# ---------------------------------------------------------------------------------- writing


class _Source:
    """Writes one source's files and registers its variants."""

    def __init__(self, corpus: Corpus, spec: SourceSpec, rng: np.random.Generator) -> None:
        corpus.sources[spec.name] = spec
        self.corpus, self.spec, self.rng = corpus, spec, rng
        self.root = corpus.root(spec.name)
        self.root.mkdir(parents=True, exist_ok=True)
        self.good = corpus.good.setdefault(spec.name, [])

    def write(self, rel: str, data: bytes | str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    def sparse(self, rel: str, size: int, head: bytes = b"") -> Path:
        """A file of ``size`` bytes that takes no disk space beyond ``head`` (zeros after it)."""
        path = self.write(rel, head)
        os.truncate(path, size)
        return path

    def link_outside(self, rel: str, target: Path) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    def record_id(self, local: str) -> str:
        return f"{self.spec.name}:{local}"

    def add(
        self,
        category: str,
        name: str,
        target: str,
        reason: str,
        absent: Sequence[str] = (),
        claimed_bytes: int = 0,
        outcome: str = "quarantined",
    ) -> None:
        self.corpus.variants.append(
            Variant(
                name=f"{self.spec.name}/{name}",
                source=self.spec.name,
                kind=self.spec.kind,
                category=category,
                target=target,
                reason=reason,
                absent=tuple(absent),
                claimed_bytes=claimed_bytes,
                outcome=outcome,
            )
        )


# ---------------------------------------------------------------------------------- WFDB model


@dataclass
class Header:
    """A WFDB header as tokens: record line, signal lines (at most 9 fields), comment lines."""

    record: list[str]
    signals: list[list[str]]
    comments: list[str]

    @classmethod
    def parse(cls, text: str) -> Header:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        body = [ln for ln in lines if not ln.startswith("#")]
        return cls(
            body[0].split(), [ln.split(maxsplit=8) for ln in body[1:]], [c for c in lines if c[0] == "#"]
        )

    def copy(self) -> Header:
        return Header(list(self.record), [list(s) for s in self.signals], list(self.comments))

    def render(self) -> str:
        lines = [" ".join(self.record), *(" ".join(s) for s in self.signals), *self.comments]
        return "\n".join(lines) + "\n"

    @property
    def n_samples(self) -> int:
        return int(self.record[3])

    def set_field(self, index: int, value: str) -> None:
        """Set field ``index`` of every signal line."""
        for sig in self.signals:
            sig[index] = value


def base_format(token: str) -> str:
    match = re.match(r"\d+", token)
    assert match is not None, token
    return match.group(0)


def byte_offset(token: str) -> int:
    match = re.search(r"\+(\d+)$", token)
    return int(match.group(1)) if match else 0


@dataclass
class Template:
    """A real record (or an excerpt of one) to derive variants from: its parsed header, its
    signal files (name as the header writes it -> bytes) and its annotation file, if used."""

    stem: str
    header: Header
    files: dict[str, bytes]
    annotation: bytes | None = None

    def file_rows(self, name: str) -> list[int]:
        return [i for i, s in enumerate(self.header.signals) if s[0] == name]

    def renamed(self, new: str) -> tuple[Header, dict[str, bytes]]:
        """The header and files for a copy called ``new`` (file names follow the record name)."""
        header = self.header.copy()
        suffix = ".mat" if header.record[0].lower().endswith(".mat") else ""
        header.record[0] = new + suffix
        files = {}
        for name, data in self.files.items():
            new_name = new + PurePosixPath(name).suffix
            for sig in header.signals:
                if sig[0] == name:
                    sig[0] = new_name
            files[new_name] = data
        return header, files


def excerpt(header_text: str, files: Mapping[str, bytes], n_frames: int) -> tuple[Header, dict[str, bytes]]:
    """The first ``n_frames`` samples of a record (header count, file bytes and MAT v4 size cut)."""
    header = Header.parse(header_text)
    header.record[3] = str(n_frames)
    out = {}
    for name, data in files.items():
        rows = [s for s in header.signals if s[0] == name]
        fmt, offset = base_format(rows[0][1]), byte_offset(rows[0][1])
        need = -(-n_frames * len(rows) * _BYTES[fmt][0] // _BYTES[fmt][1])
        head = data[:offset]
        if name.endswith(".mat") and offset >= MAT4.size:
            kind, mrows, _, imag, namelen = MAT4.unpack(data[: MAT4.size])
            head = MAT4.pack(kind, mrows, n_frames, imag, namelen) + data[MAT4.size : offset]
        out[name] = head + data[offset : offset + need]
    for sig in header.signals:
        if len(sig) > 6:
            sig[6] = "0"  # the checksum of the full record no longer applies
    return header, out


_BYTES = {"16": (2, 1), "212": (3, 2), "80": (1, 1), "61": (2, 1), "160": (2, 1)}
# Data bytes of one "all invalid" and one "all zero" group of samples, per format.
_INVALID = {"16": b"\x00\x80", "212": b"\x00\x88\x00", "80": b"\x00"}
_ZERO = {"16": b"\x00\x00", "212": b"\x00\x00\x00", "80": b"\x80"}


def _filled(data: bytes, offset: int, unit: bytes, fraction: float = 1.0) -> bytes:
    """``data`` with the first ``fraction`` of its sample bytes replaced by repeats of ``unit``."""
    body = len(data) - offset
    n = int(body * fraction) // len(unit) * len(unit)
    return data[:offset] + unit * (n // len(unit)) + data[offset + n :]


# ---------------------------------------------------------------------------------- mutations


@dataclass
class Edit:
    """A variant under construction: the header (or raw header bytes), files and expectation."""

    template: Template
    header: Header
    files: dict[str, bytes]
    outside: Path
    header_dir: Path
    rng: np.random.Generator
    header_bytes: bytes | None = None
    links: dict[str, Path] = field(default_factory=dict)  # signal file name -> outside target
    sparse_header: int = 0
    atr: bytes | None = None
    sparse_atr: int = 0

    @property
    def fmt(self) -> str:
        return base_format(self.header.signals[0][1])

    @property
    def offset(self) -> int:
        return byte_offset(self.header.signals[0][1])

    def first_file(self) -> str:
        return self.header.signals[0][0]


@dataclass(frozen=True)
class Outcome:
    category: str
    reason: str
    claimed_bytes: int = 0


Mutation = Callable[[Edit], Outcome | None]


def m_truncated(e: Edit) -> Outcome:
    name = e.first_file()
    data = e.files[name]
    cut = int(len(data) * float(e.rng.uniform(0.1, 0.9)))
    e.files[name] = data[:cut]
    return Outcome("truncated", TRUNC_REASON)


def m_truncated_one_byte(e: Edit) -> Outcome:
    name = e.first_file()
    e.files[name] = e.files[name][:-1]
    return Outcome("truncated", TRUNC_REASON)


def m_empty_signal(e: Edit) -> Outcome:
    e.files[e.first_file()] = b""
    return Outcome("empty_file", r"holds only 0 bytes")


def m_empty_header(e: Edit) -> Outcome:
    e.header_bytes = b""
    return Outcome("empty_file", r"no record line")


def m_comments_only_header(e: Edit) -> Outcome:
    e.header_bytes = b"\n\n# nothing but comments\n   \n"
    return Outcome("empty_file", r"no record line")


def m_samples_2e31(e: Edit) -> Outcome:
    e.header.record[3] = str(2**31)
    return Outcome(
        "alloc_bomb", rf"declares {2**31} samples .*{TRUNC_REASON}", 2**31 * len(e.header.signals) * 8
    )


def m_samples_1e15(e: Edit) -> Outcome:
    e.header.record[3] = str(10**15)
    return Outcome("alloc_bomb", rf"declares {10**15} samples", 10**15 * len(e.header.signals) * 8)


def m_spf_huge(e: Edit) -> Outcome:
    for sig in e.header.signals:
        fmt = sig[1]
        sig[1] = re.sub(r"^(\d+)(x\d+)?", lambda m: f"{m.group(1)}x1000000", fmt)
    claimed = e.header.n_samples * 10**6 * len(e.header.signals) * 8
    return Outcome("alloc_bomb", TRUNC_REASON, claimed)


def m_offset_huge(e: Edit) -> Outcome:
    for sig in e.header.signals:
        sig[1] = re.sub(r"(\+\d+)?$", "+4294967296", sig[1], count=1)
    return Outcome("alloc_bomb", TRUNC_REASON, 2**32)


def m_many_signals(e: Edit) -> Outcome:
    n = 20_000
    line = list(e.header.signals[0])
    e.header.signals = [list(line) for _ in range(n)]
    e.header.record[1] = str(n)
    return Outcome("alloc_bomb", TRUNC_REASON, e.header.n_samples * n * 8)


def m_header_oversized(size: int) -> Mutation:
    """A header of ``size`` bytes (sparse: its record lines, then zeros)."""

    def mutate(e: Edit) -> Outcome:
        e.sparse_header = size
        return Outcome("alloc_bomb", r"header is \d+ bytes; expected at most", size)

    return mutate


def _record_field(index: int, value: str, category: str, reason: str) -> Mutation:
    def mutate(e: Edit) -> Outcome:
        while len(e.header.record) <= index:
            e.header.record.append("0")
        e.header.record[index] = value
        return Outcome(category, reason)

    return mutate


def _signal_field(index: int, value: str, category: str, reason: str) -> Mutation:
    def mutate(e: Edit) -> Outcome:
        for sig in e.header.signals:
            while len(sig) <= index:
                sig.append("0")
        e.header.set_field(index, value)
        return Outcome(category, reason)

    return mutate


def m_nsig_plus_one(e: Edit) -> Outcome:
    n = len(e.header.signals)
    e.header.record[1] = str(n + 1)
    return Outcome("lead_count", rf"declares {n + 1} signals but the header has {n} signal lines")


def m_nsig_minus_one(e: Edit) -> Outcome:
    n = len(e.header.signals)
    e.header.record[1] = str(n - 1)
    return Outcome("lead_count", rf"declares {n - 1} signals but the header has {n} signal lines")


def m_more_leads_than_data(e: Edit) -> Outcome:
    e.header.signals.append(list(e.header.signals[-1]))
    e.header.record[1] = str(len(e.header.signals))
    return Outcome("lead_count", TRUNC_REASON)


def m_fewer_leads_than_data(e: Edit) -> Outcome | None:
    if len(e.header.signals) < 2:
        return None
    last = e.header.signals.pop()
    if not any(s[0] == last[0] for s in e.header.signals):
        return None  # the dropped lead had a file of its own: nothing left over in the others
    e.header.record[1] = str(len(e.header.signals))
    return Outcome("lead_count", rf"{OVERSIZE_REASON}|{MAT_MISMATCH}")


def m_half_samples(e: Edit) -> Outcome:
    e.header.record[3] = str(e.header.n_samples // 2)
    return Outcome("length_mismatch", rf"{OVERSIZE_REASON}|{MAT_MISMATCH}")


def m_format_unknown(e: Edit) -> Outcome:
    for sig in e.header.signals:
        sig[1] = re.sub(r"^\d+", "999", sig[1])
    return Outcome("format_code", r"field format = '999.*expected one of the WFDB formats")


def m_format_garbage(e: Edit) -> Outcome:
    e.header.set_field(1, "int16le")
    return Outcome("format_code", r"field format = 'int16le'")


def m_format_wrong_width(e: Edit) -> Outcome:
    other = {"16": "212", "212": "16", "80": "16"}[e.fmt]
    for sig in e.header.signals:
        sig[1] = re.sub(r"^\d+", other, sig[1])
    # 16 read as 212 leaves a third of the file over (MAT v4 files say they hold int16 first)
    reason = rf"{OVERSIZE_REASON}|MAT v4 int16 matrix" if other == "212" else TRUNC_REASON
    return Outcome("format_code", reason)


def m_format_flac(e: Edit) -> Outcome:
    for sig in e.header.signals:
        sig[1] = re.sub(r"^\d+", "516", sig[1])
    return Outcome("format_code", r"wfdb could not decode|MAT v4")


def m_format_61_on_mat(e: Edit) -> Outcome | None:
    if not e.first_file().endswith(".mat"):
        return None
    for sig in e.header.signals:
        sig[1] = re.sub(r"^\d+", "61", sig[1])
    return Outcome("format_code", r"MAT v4 int16 matrix.*expected format 16")


def m_mixed_formats(e: Edit) -> Outcome | None:
    rows = e.template.file_rows(e.template.header.signals[0][0])
    if len(rows) < 2:
        return None
    sig = e.header.signals[rows[1]]
    sig[1] = re.sub(r"^\d+", "80" if e.fmt != "80" else "16", sig[1])
    return Outcome("format_code", r"signals stored in one file have different formats")


def m_units_pressure(e: Edit) -> Outcome:
    for sig in e.header.signals:
        sig[2] = re.sub(r"(/.*)?$", "/mmHg", sig[2], count=1)
    return Outcome("format_code", r"not in volts|no voltage channel")


def m_signal_escape(e: Edit) -> Outcome:
    rel = os.path.relpath(e.outside / "secret.dat", e.header_dir)
    e.header.set_field(0, rel)
    return Outcome("path_escape", r"escapes the source root")


def m_signal_absolute(e: Edit) -> Outcome:
    e.header.set_field(0, str(e.outside / "secret.dat"))
    return Outcome("path_escape", r"is absolute|escapes the source root")


# A unit file linked out of the root: the reader refuses it as escaping; the ingest refuses even to
# hash it and reports it as gone.
LINK_OUT_REASON = r"escapes the source root|disappeared before reading"


def m_signal_symlink(e: Edit) -> Outcome:
    e.links[e.first_file()] = e.outside / "secret.dat"
    return Outcome("path_escape", LINK_OUT_REASON)


def m_signal_nul(e: Edit) -> Outcome:
    e.header.set_field(0, "bad\x00name.dat")
    return Outcome("bad_encoding", r"NUL|null byte")


def m_signal_missing(e: Edit) -> Outcome:
    e.header.set_field(0, "nothere.dat")
    return Outcome("missing_file", r"does not exist|is missing")


def m_signal_tilde(e: Edit) -> Outcome:
    e.header.signals[0][0] = "~"
    return Outcome("missing_file", r"has no file \('~'\)")


def m_header_random(e: Edit) -> Outcome:
    e.header_bytes = e.rng.integers(0, 256, size=600, dtype=np.uint8).tobytes()
    return Outcome("bad_encoding", r"expected")


def m_header_utf16(e: Edit) -> Outcome:
    e.header_bytes = e.header.render().encode("utf-16")
    return Outcome("bad_encoding", r"number of signals|expected")


def m_header_nul(e: Edit) -> Outcome:
    e.header.record[3] = e.header.record[3][:1] + "\x00" + e.header.record[3][1:]
    return Outcome("bad_encoding", r"number of samples")


def m_multi_segment(e: Edit) -> Outcome:
    e.header.record[0] = e.header.record[0] + "/2"
    return Outcome("header_out_of_range", r"multi-segment is unsupported")


def m_record_line_name_only(e: Edit) -> Outcome:
    e.header.record = e.header.record[:1]
    return Outcome("header_truncated", r"number of signals")


def m_signal_line_no_format(e: Edit) -> Outcome:
    for sig in e.header.signals:
        del sig[1:]
    return Outcome("header_truncated", r"field format")


def m_all_invalid(e: Edit) -> Outcome:
    for name in list(e.files):
        e.files[name] = _filled(e.files[name], e.offset, _INVALID[e.fmt])
    return Outcome("nan_inf", NAN_REASON)


def m_partly_invalid(e: Edit) -> Outcome:
    name = e.first_file()
    e.files[name] = _filled(e.files[name], e.offset, _INVALID[e.fmt], 0.3)
    return Outcome("nan_inf", NAN_REASON)


def m_flat(e: Edit) -> Outcome:
    for name in list(e.files):
        e.files[name] = _filled(e.files[name], e.offset, _ZERO[e.fmt])
    return Outcome("flat", r"flat-line lead")


def m_mat_v5(e: Edit) -> Outcome | None:
    name = e.first_file()
    if not name.endswith(".mat"):
        return None
    data = e.files[name]
    e.files[name] = b"MATLAB 5.0 MAT-file, Platform: GLNXA64".ljust(128, b" ") + data[128:]
    return Outcome("format_code", r"MATLAB v5 file")


def m_mat_double(e: Edit) -> Outcome | None:
    name = e.first_file()
    if not name.endswith(".mat"):
        return None
    data = e.files[name]
    _, rows, cols, imag, namelen = MAT4.unpack(data[: MAT4.size])
    e.files[name] = MAT4.pack(0, rows, cols, imag, namelen) + data[MAT4.size :]
    return Outcome("format_code", r"MAT v4 type code 0")


def m_mat_small_dims(e: Edit) -> Outcome | None:
    name = e.first_file()
    if not name.endswith(".mat"):
        return None
    data = e.files[name]
    kind, rows, cols, imag, namelen = MAT4.unpack(data[: MAT4.size])
    e.files[name] = MAT4.pack(kind, rows, cols // 3, imag, namelen) + data[MAT4.size :]
    return Outcome("lead_count", rf"{MAT_MISMATCH}.*; the header declares")


def _as_is(category: str, reason: str) -> Mutation:
    """A template that is broken as it stands (e.g. too short for its profile)."""

    def mutate(e: Edit) -> Outcome:
        return Outcome(category, reason)

    return mutate


def m_missing_lead(e: Edit) -> Outcome:
    for i, sig in enumerate(e.header.signals):
        while len(sig) < 9:
            sig.append("0")
        sig[8] = f"X{i}"
    return Outcome("lead_count", r"missing lead\(s\)")


GENERIC: dict[str, Mutation] = {
    "truncated": m_truncated,
    "truncated_one_byte": m_truncated_one_byte,
    "empty_signal": m_empty_signal,
    "empty_header": m_empty_header,
    "comments_only_header": m_comments_only_header,
    "samples_2e31": m_samples_2e31,
    "samples_1e15": m_samples_1e15,
    "samples_per_frame_1e6": m_spf_huge,
    "byte_offset_4g": m_offset_huge,
    "signals_20000": m_many_signals,
    "header_17mb": m_header_oversized(17 * MiB),
    "samples_text": _record_field(3, "many", "header_non_numeric", r"number of samples = 'many'"),
    "samples_negative": _record_field(
        3, "-1000", "header_out_of_range", r"number of samples = '-1000'; expected an integer >= 0"
    ),
    "fs_zero": _record_field(2, "0", "header_out_of_range", r"sampling frequency = '0'; expected a positive"),
    "fs_negative": _record_field(2, "-500", "header_out_of_range", r"sampling frequency = '-500'"),
    "fs_text": _record_field(2, "fast", "header_non_numeric", r"sampling frequency = 'fast'"),
    "fs_nan": _record_field(2, "nan", "header_non_numeric", r"sampling frequency = 'nan'"),
    "fs_overflow": _record_field(2, "1e999", "header_out_of_range", r"'1e999'; expected a finite number"),
    "nsig_text": _record_field(1, "twelve", "header_non_numeric", r"number of signals = 'twelve'"),
    "nsig_huge": _record_field(1, "999999999", "header_out_of_range", r"number of signals .*at most 100000"),
    "nsig_plus_one": m_nsig_plus_one,
    "nsig_minus_one": m_nsig_minus_one,
    "more_leads_than_data": m_more_leads_than_data,
    "fewer_leads_than_data": m_fewer_leads_than_data,
    "half_the_samples": m_half_samples,
    "format_unknown": m_format_unknown,
    "format_garbage": m_format_garbage,
    "format_wrong_width": m_format_wrong_width,
    "format_flac": m_format_flac,
    "format_61_on_mat": m_format_61_on_mat,
    "mixed_formats": m_mixed_formats,
    "gain_text": _signal_field(2, "high/mV", "header_non_numeric", r"field gain = 'high'"),
    "gain_nan": _signal_field(2, "nan/mV", "header_non_numeric", r"field gain = 'nan'"),
    "adc_resolution_65": _signal_field(3, "65", "header_out_of_range", r"ADC resolution = '65'"),
    "adc_zero_text": _signal_field(4, "zero", "header_non_numeric", r"ADC zero = 'zero'"),
    "baseline_text": _signal_field(2, "1000(base)/mV", "header_non_numeric", r"field baseline = 'base'"),
    "checksum_text": _signal_field(6, "sum", "header_non_numeric", r"field checksum = 'sum'"),
    "init_value_text": _signal_field(5, "start", "header_non_numeric", r"field initial value = 'start'"),
    "block_size_negative": _signal_field(7, "-4", "header_out_of_range", r"field block size = '-4'"),
    "units_pressure": m_units_pressure,
    "signal_path_escape": m_signal_escape,
    "signal_path_absolute": m_signal_absolute,
    "signal_symlink_outside": m_signal_symlink,
    "signal_name_nul": m_signal_nul,
    "signal_missing": m_signal_missing,
    "signal_tilde": m_signal_tilde,
    "header_random_bytes": m_header_random,
    "header_utf16": m_header_utf16,
    "header_nul": m_header_nul,
    "multi_segment": m_multi_segment,
    "record_line_name_only": m_record_line_name_only,
    "signal_line_no_format": m_signal_line_no_format,
    "all_invalid": m_all_invalid,
    "mat_v5": m_mat_v5,
    "mat_type_double": m_mat_double,
    "mat_small_dims": m_mat_small_dims,
}
# Whole records only (windowed sources see NaN per window, some windows stay clean).
WHOLE_ONLY: dict[str, Mutation] = {"partly_invalid": m_partly_invalid, "flat_zero": m_flat}


def emit_wfdb(
    src: _Source,
    templates: Sequence[Template],
    mutations: Mapping[str, Mutation],
    path_of: Callable[[int], str],
    key_of: Callable[[str], str] = lambda path: path,
    windowed: bool = False,
    on_write: Callable[[str, Template], None] | None = None,
) -> None:
    """Write one variant per mutation, each derived from a (seeded) choice among ``templates``.

    ``path_of(i)`` is the i-th variant's record path below the root (``patient900/s9000_re``);
    ``key_of(path)`` the local id its records get; ``on_write(path, template)`` adds what the
    source keeps outside the record (a CSV row, a label line). Windowed records are expected
    absent under ``<id>/`` as well.
    """
    for i, (label, mutate) in enumerate(mutations.items()):
        template = templates[int(src.rng.integers(len(templates)))]
        path = path_of(i)
        folder, name = posixpath.split(path)
        header, files = template.renamed(name)
        edit = Edit(template, header, files, src.corpus.outside, src.root / folder, src.rng)
        outcome = mutate(edit)
        if outcome is None:
            continue
        write_variant_files(src, path, edit)
        if on_write is not None:
            on_write(path, template)
        record = src.record_id(key_of(path))
        absent = [record, f"{record}/"] if windowed else [record]
        src.add(outcome.category, label, f"{path}.hea", outcome.reason, absent, outcome.claimed_bytes)


def write_variant_files(src: _Source, path: str, edit: Edit) -> None:
    """Write the header, signal files (or links out of the root) and annotations of ``edit``."""
    folder = posixpath.dirname(path)
    prefix = f"{folder}/" if folder else ""
    if edit.sparse_header:
        src.sparse(f"{path}.hea", edit.sparse_header, edit.header.render().encode())
    else:
        src.write(f"{path}.hea", edit.header_bytes if edit.header_bytes is not None else edit.header.render())
    for file_name, data in edit.files.items():
        if file_name in edit.links:
            src.link_outside(f"{prefix}{file_name}", edit.links[file_name])
        else:
            src.write(f"{prefix}{file_name}", data)
    atr = edit.atr if edit.atr is not None else edit.template.annotation
    if edit.sparse_atr:
        src.sparse(f"{path}.atr", edit.sparse_atr)
    elif atr is not None:
        src.write(f"{path}.atr", atr)


def write_template(
    src: _Source, template: Template, path: str, change: Callable[[Edit], object] | None = None
) -> None:
    """Write a copy of ``template`` as the record at ``path``, after ``change`` if given."""
    folder, name = posixpath.split(path)
    header, files = template.renamed(name)
    edit = Edit(template, header, files, src.corpus.outside, src.root / folder, src.rng)
    if change is not None:
        change(edit)
    write_variant_files(src, path, edit)


def load_template(folder: Path, stem: str, n_frames: int | None = None, atr: bool = False) -> Template:
    text = (folder / f"{stem}.hea").read_text(encoding="utf-8")
    header = Header.parse(text)
    files = {s[0]: (folder / s[0]).read_bytes() for s in header.signals}
    if n_frames is not None:
        header, files = excerpt(text, files, n_frames)
    annotation = (folder / f"{stem}.atr").read_bytes() if atr else None
    return Template(stem, header, files, annotation)


def copy_record(src: _Source, folder: Path, stem: str, dest: str = "", with_atr: bool = False) -> None:
    """Copy a real record byte for byte to ``dest`` under the source root."""
    prefix = f"{dest}/".lstrip("/")
    header = Header.parse((folder / f"{stem}.hea").read_text(encoding="utf-8"))
    names = {f"{stem}.hea", *(s[0] for s in header.signals)}
    if with_atr:
        names.add(f"{stem}.atr")
    for name in sorted(names):
        src.write(f"{prefix}{name}", (folder / name).read_bytes())


# ---------------------------------------------------------------------------------- PTB-XL


def _csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def build_ptbxl(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _Source(corpus, SourceSpec("ptbxl", "ptbxl", "ecg12"), rng)
    base = shared / "ptbxl"
    with open(base / PTBXL_DB, newline="", encoding="utf-8") as fh:
        table = csv.DictReader(fh)
        columns = list(table.fieldnames or [])
        real = {int(r["ecg_id"]): r for r in table}
    src.write("scp_statements.csv", (base / "scp_statements.csv").read_bytes())
    rows: list[dict[str, str]] = []
    for ecg_id in (1, 2, 3, 4, 5):
        rows.append(dict(real[ecg_id]))
        for rate, folder in ((100, "records100"), (500, "records500")):
            if rate == 500 and ecg_id > 3:
                continue
            suffix = "lr" if rate == 100 else "hr"
            copy_record(src, base / folder / "00000", f"{ecg_id:05d}_{suffix}", f"{folder}/00000")
        src.good.append(src.record_id(f"{ecg_id:05d}"))
        if ecg_id <= 3:
            src.add(
                "duplicate", f"both_rates_{ecg_id}", f"records100/00000/{ecg_id:05d}_lr.hea", r"is read from"
            )

    templates = [load_template(base / "records100" / "00000", f"{i:05d}_lr") for i in range(6, 11)]
    next_id = [1000]

    def new_row(stem_rel: str, template_id: int) -> dict[str, str]:
        next_id[0] = max(next_id[0] + 1, int(PurePosixPath(stem_rel).name[:5]))
        row = dict(real[template_id])
        row.update(
            ecg_id=str(next_id[0]), filename_lr=stem_rel, filename_hr=f"records500/01000/{next_id[0]}_hr"
        )
        rows.append(row)
        return row

    # Signal and header variants: one ecg_id each, files under records100/01000/.
    def add_row(path: str, template: Template) -> None:
        new_row(path, templates.index(template) + 6)

    mutations = {**GENERIC, **WHOLE_ONLY}
    emit_wfdb(
        src,
        templates,
        mutations,
        lambda i: f"records100/01000/{1001 + i:05d}_lr",
        lambda p: p[-8:-3],
        on_write=add_row,
    )
    next_id[0] = 1000 + len(mutations)

    def record_files(template_index: int) -> tuple[int, str]:
        """Write a good copy of a template as the next ecg_id; returns (ecg_id, its stem path)."""
        ecg_id = next_id[0] + 1
        path = f"records100/01000/{ecg_id:05d}_lr"
        write_template(src, templates[template_index], path)
        return ecg_id, path

    def plain(label: str, category: str, reason: str, **changes: str) -> None:
        t_index = int(rng.integers(len(templates)))
        ecg_id, stem = record_files(t_index)
        new_row(stem, 6 + t_index).update(changes)
        outcome = "unmapped" if category == "unknown_label" else "quarantined"
        src.add(category, label, f"{stem}.hea", reason, [src.record_id(f"{ecg_id:05d}")], outcome=outcome)

    plain("scp_not_a_dict", "label", r"is not a dict literal", scp_codes="NORM")
    plain("scp_text_likelihood", "label", r"is not a dict literal", scp_codes="{'NORM': 'high'}")
    plain("scp_infinite_likelihood", "label", r"is not a dict literal", scp_codes="{'NORM': 1e999}")
    plain("scp_call", "label", r"is not a dict literal", scp_codes="{'NORM': float('nan')}")
    plain("scp_huge", "label", r"scp_codes is \d+ characters", scp_codes="{'" + "N" * 20000 + "': 100.0}")
    plain("scp_nested", "label", r"is not a dict literal", scp_codes="[" * 3000 + "]" * 3000)
    plain("scp_unknown_code", "unknown_label", r".", scp_codes="{'ZZZ_NOT_AN_SCP_CODE': 100.0}")
    # Rows that cannot be used: their files are then files with no row.
    plain("ecg_id_text", "label", r"record file with no row in ptbxl_database.csv", ecg_id="twelve")
    plain("ecg_id_negative", "label", r"record file with no row in ptbxl_database.csv", ecg_id="-7")
    plain("ecg_id_repeated", "duplicate", r"record file with no row in ptbxl_database.csv", ecg_id="1")

    def bad_path(label: str, category: str, value: str, reason: str) -> None:
        next_id[0] += 1
        row = dict(real[7])
        row.update(ecg_id=str(next_id[0]), filename_lr=value, filename_hr="")
        rows.append(row)
        src.add(
            category, label, f"{PTBXL_DB}:ecg_id={next_id[0]}", reason, [src.record_id(f"{next_id[0]:05d}")]
        )

    bad_path("filename_escape", "path_escape", "../../outside/secret", r"escapes the source root")
    bad_path("filename_absolute", "path_escape", str(corpus.outside / "secret"), r"is absolute")
    bad_path("filename_nul", "bad_encoding", "records100/00000/00001\x00_lr", r"NUL")

    # Two rows naming the same files: the first row's record lands, the second is a duplicate.
    first_id, stem = record_files(0)
    new_row(stem, 6)
    src.good.append(src.record_id(f"{first_id:05d}"))
    new_row(stem, 7)
    src.add(
        "duplicate",
        "rows_share_files",
        f"{PTBXL_DB}:ecg_id={next_id[0]}",
        rf"names the files of ecg_id {first_id}",
        [src.record_id(f"{next_id[0]:05d}")],
    )

    # Files with no row, an incomplete record, a stray file.
    copy_record(src, base / "records100" / "00000", "00011_lr", "records100/00000")
    src.add("orphan", "no_csv_row", "records100/00000/00011_lr.dat", r"record file with no row")
    next_id[0] += 1
    incomplete = f"{next_id[0]:05d}_lr"
    row = dict(real[8])
    row.update(ecg_id=str(next_id[0]), filename_lr=f"records100/01000/{incomplete}", filename_hr="")
    rows.append(row)
    write_template(src, templates[0], f"records100/01000/{incomplete}", lambda e: e.files.clear())
    src.add("missing_file", "dat_missing", f"records100/01000/{incomplete}.hea", r"incomplete record")
    src.write("records100/notes.bin", rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
    src.add("stray", "stray_binary", "records100/notes.bin", r"not a PTB-XL record or metadata file")

    src.write(PTBXL_DB, _csv_text(columns, rows))

    # A second source whose database CSV is not UTF-8: its rows are unusable, so are its records.
    bad = _Source(corpus, SourceSpec("ptbxl_badcsv", "ptbxl", "ecg12"), rng)
    head, body = _csv_text(columns, [dict(real[9])]).split("\n", 1)
    bad.write(PTBXL_DB, head.encode() + b"\n# caf\xe9\n" + body.encode())
    copy_record(bad, base / "records100" / "00000", "00009_lr", "records100/00000")
    bad.add("bad_encoding", "csv_not_utf8", PTBXL_DB, r"unreadable CSV")
    bad.add(
        "bad_encoding",
        "csv_not_utf8_record",
        "records100/00000/00009_lr.hea",
        r"no row in",
        [bad.record_id("00009")],
    )


# ---------------------------------------------------------------------------------- CinC 2017


def _reference(lines: Sequence[tuple[str, str]]) -> bytes:
    return "".join(f"{name},{label}\r\n" for name, label in lines).encode()


def build_cinc2017(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _Source(corpus, SourceSpec("cinc2017", "cinc2017", "lead1_af"), rng)
    base = shared / "cinc2017" / "training2017"
    real = dict(line.split(",") for line in (base / "REFERENCE.csv").read_text().split())
    labels: list[tuple[str, str]] = []
    for name in ("A00001", "A00002", "A00003", "A00004"):
        copy_record(src, base, name)
        labels.append((name, real[name]))
        src.good.append(src.record_id(name))
    templates = [load_template(base, f"A{i:05d}") for i in range(5, 9)]

    def add_label(path: str, template: Template) -> None:
        labels.append((path, real[template.stem]))

    emit_wfdb(src, templates, {**GENERIC, **WHOLE_ONLY}, lambda i: f"B{i:05d}", on_write=add_label)

    def plain(name: str, stem: str = "A00009", dest: str = "") -> str:
        copy_record(src, base, stem, dest)
        prefix = f"{dest}/".lstrip("/")
        for suffix in (".hea", ".mat"):
            os.replace(src.root / f"{prefix}{stem}{suffix}", src.root / f"{prefix}{name}{suffix}")
        header = Header.parse((src.root / f"{prefix}{name}.hea").read_text())
        header.record[0] = name
        header.signals[0][0] = f"{name}.mat"
        src.write(f"{prefix}{name}.hea", header.render())
        return f"{prefix}{name}.hea"

    src.add("label", "no_label_line", plain("C00001"), r"no label line for C00001", [src.record_id("C00001")])
    plain("C00002")
    labels += [("C00002", "N"), ("C00002", "A")]
    src.add(
        "label", "conflicting_labels", "C00002.hea", r"conflicting label lines", [src.record_id("C00002")]
    )
    plain("C00003")
    labels.append(("C00003", ""))
    src.add("label", "empty_label", "C00003.hea", r"no label line for C00003", [src.record_id("C00003")])
    plain("C00004")
    labels.append(("C00004", "Z"))
    src.add(
        "unknown_label", "unknown_label", "C00004.hea", r".", [src.record_id("C00004")], outcome="unmapped"
    )
    plain("A00001", "A00001", "copies")
    src.add(
        "duplicate", "same_name_in_subfolder", "copies/A00001.hea", r"record A00001 is also at A00001.hea"
    )
    src.write("C00005.mat", (base / "A00010.mat").read_bytes())
    src.add("orphan", "mat_without_header", "C00005.mat", r"signal file with no header")
    plain("C00006")
    os.remove(src.root / "C00006.mat")
    labels.append(("C00006", "N"))
    src.add("missing_file", "header_without_mat", "C00006.hea", r"does not exist", [src.record_id("C00006")])
    src.write("REFERENCE-v3.csv", _reference(labels[:4]))
    src.add("stray", "other_label_version", "REFERENCE-v3.csv", r"this label file is not used")
    src.write("notes.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "notes.bin", r"not part of a CinC 2017 record")
    src.write("REFERENCE.csv", _reference(labels))

    # A second source whose label file is 1 GiB: refused unread, its records have no labels.
    big = _Source(corpus, SourceSpec("cinc2017_badref", "cinc2017", "lead1_af"), rng)
    copy_record(big, base, "A00011")
    big.sparse("REFERENCE.csv", GiB, b"A00011,N\r\n")
    big.add("alloc_bomb", "label_file_1gb", "REFERENCE.csv", r"larger than", claimed_bytes=GiB)
    big.add(
        "label",
        "label_file_refused",
        "A00011.hea",
        r"no REFERENCE.csv for this record",
        [big.record_id("A00011")],
    )


# ---------------------------------------------------------------------------------- CinC 2021


def build_cinc2021(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _Source(corpus, SourceSpec("cinc2021", "cinc2021", "ecg12"), rng)
    base = shared / "cinc2021"
    for name in ("E00271", "HR06000", "JS01048", "A0689"):
        copy_record(src, base, name)
        src.good.append(src.record_id(name))
    templates = [load_template(base, s) for s in ("E03823", "HR06001", "JS01048", "A2712")]
    emit_wfdb(src, templates, {**GENERIC, **WHOLE_ONLY}, lambda i: f"Q{i:05d}")

    def unknown_dx(edit: Edit) -> None:
        edit.header.comments = [c for c in edit.header.comments if "Dx" not in c] + ["#Dx: 999999999"]

    write_template(src, templates[1], "Q90001", unknown_dx)
    src.add(
        "unknown_label",
        "unknown_snomed_code",
        "Q90001.hea",
        r".",
        [src.record_id("Q90001")],
        outcome="unmapped",
    )
    copy_record(src, base, "E00271", "copies")
    src.add(
        "duplicate", "same_name_in_subfolder", "copies/E00271.hea", r"record E00271 is also at E00271.hea"
    )
    src.write("Q90002.mat", (base / "JS02990.mat").read_bytes())
    src.add("orphan", "mat_without_header", "Q90002.mat", r"signal file with no header")
    write_template(src, templates[2], "Q90003", lambda e: e.files.clear())
    src.add("missing_file", "header_without_mat", "Q90003.hea", r"does not exist", [src.record_id("Q90003")])
    src.write("notes.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "notes.bin", r"not part of a CinC 2020/2021 record")


# ---------------------------------------------------------------------------------- PTB Diagnostic


def build_ptb_diagnostic(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _Source(corpus, SourceSpec("ptb_diagnostic", "ptb_diagnostic", "ecg12"), rng)
    base = shared / "ptb_diagnostic" / "patient001"
    copy_record(src, base, "s0010_re", "patient001")
    src.good.append(src.record_id("patient001/s0010_re"))
    template = load_template(base, "s0010_re", n_frames=12_000)
    emit_wfdb(src, [template], {**GENERIC, **WHOLE_ONLY}, lambda i: f"patient{900 + i}/s{9000 + i}_re")

    def xyz_cut(edit: Edit) -> Outcome:
        edit.files = {k: v[:999] if k.endswith(".xyz") else v for k, v in edit.files.items()}
        return Outcome("truncated", TRUNC_REASON)

    def xyz_missing(edit: Edit) -> Outcome:
        edit.files = {k: v for k, v in edit.files.items() if not k.endswith(".xyz")}
        return Outcome("missing_file", r"does not exist")

    extra = {"xyz_truncated": xyz_cut, "xyz_missing": xyz_missing}
    emit_wfdb(src, [template], extra, lambda i: f"patient{800 + i}/s{8000 + i}_re")
    src.write("patient999/s9999_re.xyz", template.files["s0010_re.xyz"])
    src.add("orphan", "xyz_without_header", "patient999/s9999_re.xyz", r"signal file with no header")
    src.write("patient001/notes.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "patient001/notes.bin", r"not part of a PTB Diagnostic record")


# ---------------------------------------------------------------------------------- CODE-15%

CODE_COLUMNS = (
    "exam_id", "age", "is_male", "nn_predicted_age", "1dAVb", "RBBB", "LBBB", "SB", "ST", "AF",
    "patient_id", "death", "timey", "normal_ecg", "trace_file",
)  # fmt: skip


def code_tracing(shared: Path, ecg_id: int) -> npt.NDArray[np.float32]:
    """A real PTB-XL 500 Hz 10 s record as a CODE-15% tracing ``(4096, 12)``: resampled to
    400 Hz (4000 samples), zero-padded 48 samples on each side, stored as 2 x mV."""
    folder = shared / "ptbxl" / "records500" / "00000"
    header = Header.parse((folder / f"{ecg_id:05d}_hr.hea").read_text())
    raw = np.frombuffer((folder / f"{ecg_id:05d}_hr.dat").read_bytes(), dtype="<i2")
    mv = raw.reshape(-1, len(header.signals)).astype(np.float64) / 1000.0
    x400 = resample_poly(mv, 4, 5, axis=0)
    out = np.zeros((4096, 12), dtype=np.float32)
    out[48 : 48 + x400.shape[0]] = (2.0 * x400).astype(np.float32)
    return out


def write_part(path: Path, exam_ids: Sequence[int], tracings: npt.NDArray[np.float32]) -> None:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("tracings", data=tracings)
        handle.create_dataset("exam_id", data=np.asarray(exam_ids, dtype=np.int64))


def _exam_row(exam_id: int | str, **labels: str) -> dict[str, str]:
    row = {c: "0" for c in CODE_COLUMNS}
    row.update(
        exam_id=str(exam_id), age="61", is_male="True", nn_predicted_age="58.2", patient_id=f"p{exam_id}"
    )
    row.update(death="False", timey="", normal_ecg="False", trace_file="exams_part0.hdf5")
    row.update(labels)
    return row


def build_code(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _Source(corpus, SourceSpec("code", "code", "ecg12"), rng)
    real = [code_tracing(shared, i) for i in range(1, 9)]
    rows: list[dict[str, str]] = []
    ids: list[int] = []
    traces: list[npt.NDArray[np.float32]] = []

    def exam(exam_id: int, tracing: npt.NDArray[np.float32], row: dict[str, str] | None = None) -> None:
        ids.append(exam_id)
        traces.append(tracing)
        if row is not None:
            rows.append(row)

    for i in range(6):
        exam(1001 + i, real[i], _exam_row(1001 + i, AF="1" if i == 2 else "0", RBBB="1.0" if i == 3 else "0"))
        src.good.append(src.record_id(str(1001 + i)))
    part = "exams_part0.hdf5"

    def rejected(
        exam_id: int, category: str, label: str, reason: str, row: dict[str, str] | None, tracing: Any = None
    ) -> None:
        exam(exam_id, real[6] if tracing is None else tracing, row)
        src.add(category, label, src.record_id(str(exam_id)), reason, [src.record_id(str(exam_id))])

    rejected(2001, "label", "no_csv_row", r"exam_id 2001 has no row", None)
    rows.append(_exam_row(2002))
    rejected(2002, "duplicate", "two_csv_rows", r"exam_id 2002 has 2 rows", _exam_row(2002))
    rejected(2003, "label", "label_value_2", r"AF = '2'; expected 0/1", _exam_row(2003, AF="2"))
    rejected(2004, "label", "label_value_text", r"SB = 'maybe'", _exam_row(2004, SB="maybe"))
    rejected(
        2005,
        "path_escape",
        "trace_file_escape",
        r"escapes the source root",
        _exam_row(2005, trace_file="../../outside/x.hdf5"),
    )
    rejected(
        2006,
        "path_escape",
        "trace_file_absolute",
        r"is absolute",
        _exam_row(2006, trace_file=str(corpus.outside / "x.hdf5")),
    )
    rejected(
        2007,
        "label",
        "trace_file_other_part",
        r"trace_file names exams_part9.hdf5",
        _exam_row(2007, trace_file="exams_part9.hdf5"),
    )
    nan = real[6].copy()
    nan[:] = np.nan
    rejected(2008, "nan_inf", "all_nan", NAN_REASON, _exam_row(2008), nan)
    part_nan = real[6].copy()
    part_nan[48:1500] = np.nan
    rejected(2009, "nan_inf", "partly_nan", NAN_REASON, _exam_row(2009), part_nan)
    inf = real[6].copy()
    inf[100:900, 3] = np.inf
    rejected(2010, "nan_inf", "inf", NAN_REASON, _exam_row(2010), inf)
    rejected(2011, "flat", "all_zero", r"flat-line lead", _exam_row(2011), np.zeros((4096, 12), np.float32))
    exam(1001, real[7])  # the same exam id again in the part: the second is a duplicate
    src.add("duplicate", "exam_id_repeated", src.record_id("1001"), r"exam_id 1001 appears again at row \d+")
    exam(0, np.zeros((4096, 12), np.float32))  # the dataset padding every real part ends with
    write_part(src.root / part, ids, np.stack(traces))

    small = np.stack(real[:2])
    ok_ids = np.array([3001, 3002], dtype=np.int64)
    group = object()  # stands for an HDF5 group where a dataset belongs
    shapes: list[tuple[str, str, dict[str, Any]]] = [
        (r"'tracings' has shape \(2, 49152\)", "tracings_2d", {"tracings": small.reshape(2, -1)}),
        (r"'tracings' has shape \(2, 4096, 8\)", "tracings_8_leads", {"tracings": small[:, :, :8]}),
        (
            r"'tracings' has shape \(2, 12, 4096\)",
            "tracings_leads_first",
            {"tracings": small.transpose(0, 2, 1)},
        ),
        (
            r"'tracings' has shape \(2, 0, 12\)",
            "tracings_no_samples",
            {"tracings": np.zeros((2, 0, 12), np.float32)},
        ),
        (r"'tracings' has dtype int16", "tracings_int16", {"tracings": (small * 1000).astype(np.int16)}),
        (r"'tracings' has shape \(2,\)", "tracings_strings", {"tracings": np.array([b"ecg", b"ecg"])}),
        (r"no dataset 'tracings'", "no_tracings", {"tracings": None}),
        (r"no dataset 'tracings'", "tracings_is_group", {"tracings": group}),
        (r"no dataset 'exam_id'", "no_exam_id", {"exam_id": None}),
        (r"'exam_id' has shape \(3,\)", "exam_id_too_long", {"exam_id": np.array([3001, 3002, 3003])}),
        (r"'exam_id' has shape \(2,\) dtype float64", "exam_id_float", {"exam_id": ok_ids.astype(float)}),
        (
            r"'exam_id' has shape \(2,\) dtype \|S4",
            "exam_id_strings",
            {"exam_id": np.array([b"3001", b"3002"])},
        ),
    ]
    for reason, label, changes in shapes:
        rel = f"exams_{label}.hdf5"
        with h5py.File(src.root / rel, "w") as handle:
            for name, data in {"tracings": small, "exam_id": ok_ids, **changes}.items():
                if data is group:
                    handle.create_group(name)
                elif data is not None:
                    handle.create_dataset(name, data=data)
        src.add("hdf5_shape", label, rel, reason)

    # Datasets whose shape claims far more than the file stores: unwritten chunks read as the fill
    # value, or zeros compressed a thousand-fold.
    bombs: list[tuple[str, dict[str, Any], int]] = [
        (
            "claims_2e31_exams",
            {"tracings": (2**31, 4096, 12), "exam_id": (2**31,)},
            2**31 * (8 + 4096 * 12 * 4),
        ),
        ("claims_2e31_samples", {"tracings": (2, 2**31, 12)}, 2 * 2**31 * 12 * 4),
    ]
    for label, claims, claimed in bombs:
        rel = f"exams_{label}.hdf5"
        with h5py.File(src.root / rel, "w") as handle:
            handle.create_dataset(
                "tracings", shape=claims["tracings"], dtype=np.float32, chunks=(1, 4096, 12)
            )
            if "exam_id" in claims:
                handle.create_dataset("exam_id", shape=claims["exam_id"], dtype=np.int64, chunks=(4096,))
            else:
                handle.create_dataset("exam_id", data=ok_ids)
        src.add("alloc_bomb", label, rel, r"stores \d+ bytes", claimed_bytes=claimed)
    rel = "exams_zeros_compressed.hdf5"
    with h5py.File(src.root / rel, "w") as handle:
        zeros = np.zeros((2, 2**20, 12), np.float32)
        handle.create_dataset(
            "tracings", data=zeros, chunks=(1, 2**16, 12), compression="gzip", compression_opts=9
        )
        handle.create_dataset("exam_id", data=ok_ids)
    src.add("alloc_bomb", "zeros_compressed_1000x", rel, r"stores \d+ bytes", claimed_bytes=zeros.nbytes)

    def raw_unit(label: str, category: str, reason: str, data: bytes) -> None:
        rel = f"exams_{label}.hdf5"
        src.write(rel, data)
        src.add(category, label, rel, reason)

    whole = (src.root / part).read_bytes()
    raw_unit("truncated_hdf5", "truncated", r"cannot open as HDF5", whole[: len(whole) // 2])
    raw_unit("empty_hdf5", "empty_file", r"cannot open as HDF5", b"")
    raw_unit("text_as_hdf5", "bad_encoding", r"cannot open as HDF5", b"exam_id,tracings\n1,2\n")
    src.link_outside("exams_linked_outside.hdf5", corpus.outside / "part.hdf5")
    src.add("path_escape", "part_symlink_outside", "exams_linked_outside.hdf5", LINK_OUT_REASON)
    src.write("notes.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "notes.bin", r"not a CODE file")
    src.write("exams.csv", _csv_text(CODE_COLUMNS, rows))

    # Sources whose exam table is missing, lacks label columns, or claims 300 MB.
    for name, table, reason, claimed in (
        ("code_nocsv", None, r"CSV not found", 0),
        (
            "code_badcsv",
            _csv_text(
                [c for c in CODE_COLUMNS if c != "AF"],
                [{k: v for k, v in _exam_row(1001).items() if k != "AF"}],
            ),
            r"missing label columns \['AF'\]",
            0,
        ),
        ("code_bigcsv", "", r"larger than", GiB),
    ):
        other = _Source(corpus, SourceSpec(name, "code", "ecg12"), rng)
        write_part(other.root / "exams_part0.hdf5", [1001, 0], np.stack([real[0], np.zeros_like(real[0])]))
        if table:
            other.write("exams.csv", table)
        elif table == "":
            other.sparse("exams.csv", GiB, ",".join(CODE_COLUMNS).encode() + b"\n")
        category = "alloc_bomb" if claimed else ("missing_file" if table is None else "label")
        other.add(category, "exam_table", "exams_part0.hdf5", reason, [other.record_id("1001")], claimed)


# ---------------------------------------------------------------------------------- UCR


def build_ucr(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _Source(corpus, SourceSpec("ucr", "ucr", "beats140"), rng)
    base = shared / "ucr_ecg5000"
    lines = (base / "ECG5000_TRAIN.txt").read_text().splitlines()
    src.write("ECG5000_TRAIN.txt", "\n".join(lines[:40]) + "\n")
    src.good += [src.record_id(f"ECG5000_TRAIN/{i:05d}") for i in range(40)]
    for ext in ("ts", "arff"):
        src.write(f"ECG5000_TRAIN.{ext}", (base / f"ECG5000_TRAIN.{ext}").read_bytes())
        src.add(
            "duplicate",
            f"same_split_as_{ext}",
            f"ECG5000_TRAIN.{ext}",
            r"same dataset\+split as ECG5000_TRAIN.txt",
        )

    # Row variants inside one .txt file: good rows with broken ones at seeded positions.
    rows = [ln.split() for ln in lines[40:100]]
    bad: list[tuple[str, str, str, list[str]]] = []

    def row_with(i: int, column: int, value: str) -> list[str]:
        out = list(rows[i])
        out[column] = value
        return out

    bad += [
        ("row_139_values", "row_length", r"139 values; expected 140", rows[0][:-1]),
        ("row_141_values", "row_length", r"141 values; expected 140", rows[1] + ["0.1"]),
        ("row_5000_values", "row_length", r"5000 values; expected 140", rows[2][:1] + ["0.5"] * 5000),
        ("row_label_only", "row_length", r"no values", rows[3][:1]),
        ("row_text_value", "header_non_numeric", r"value 17 is 'abc', not a number", row_with(4, 17, "abc")),
        ("row_hex_value", "header_non_numeric", r"value 3 is '0x1F'", row_with(5, 3, "0x1F")),
        ("row_comma_decimal", "header_non_numeric", r"value 9 is '0,5'", row_with(6, 9, "0,5")),
        ("row_nan", "nan_inf", NAN_REASON, row_with(7, 20, "nan")),
        ("row_missing_marker", "nan_inf", NAN_REASON, row_with(8, 21, "?")),
        ("row_inf", "nan_inf", NAN_REASON, row_with(9, 22, "inf")),
        ("row_overflow_float64", "nan_inf", NAN_REASON, row_with(10, 23, "-1e999")),
        ("row_overflow_float32", "nan_inf", NAN_REASON, row_with(11, 24, "1e39")),
    ]
    out_rows = [list(r) for r in rows[20:60]]
    unknown: list[tuple[str, list[str]]] = [
        ("row_unknown_class_9", row_with(12, 0, "9")),
        ("row_text_class", row_with(13, 0, "abnormal")),
    ]
    positions = sorted(
        rng.choice(len(out_rows) + len(bad) + len(unknown), len(bad) + len(unknown), replace=False).tolist()
    )
    pending = [(b[0], b[1], b[2], b[3]) for b in bad] + [(n, "unknown_label", r".", r) for n, r in unknown]
    order = rng.permutation(len(pending)).tolist()
    final: list[list[str]] = []
    it = iter(out_rows)
    assigned: dict[int, tuple[str, str, str, list[str]]] = {}
    for slot, p in zip(positions, order, strict=True):
        assigned[slot] = pending[p]
    for slot in range(len(out_rows) + len(pending)):
        if slot in assigned:
            label, category, reason, row = assigned[slot]
            final.append(row)
            item = src.record_id(f"ROWS_TRAIN/{slot:05d}")
            outcome = "unmapped" if category == "unknown_label" else "quarantined"
            src.add(
                category, label, item, reason if outcome == "quarantined" else r".", [item], outcome=outcome
            )
        else:
            final.append(next(it))
            src.good.append(src.record_id(f"ROWS_TRAIN/{slot:05d}"))
    src.write("ROWS_TRAIN.txt", "\n".join(" ".join(r) for r in final) + "\n")

    arff = (base / "ECG5000_TRAIN.arff").read_text().splitlines()
    data_at = next(i for i, ln in enumerate(arff) if ln.lower().startswith("@data"))
    arff_head, arff_rows = arff[: data_at + 1], arff[data_at + 1 : data_at + 11]
    ts = (base / "ECG5000_TRAIN.ts").read_text().splitlines()
    ts_at = next(i for i, ln in enumerate(ts) if ln.lower().startswith("@data"))
    ts_head, ts_rows = ts[: ts_at + 1], ts[ts_at + 1 : ts_at + 11]

    def row_file(
        name: str, head: list[str], good: list[str], broken: list[tuple[str, str, str, str]]
    ) -> None:
        body = list(good)
        for label, category, reason, line in broken:
            body.append(line)
            item = src.record_id(f"{name}/{len(body) - 1:05d}")
            src.add(category, label, item, reason, [item])
        src.write(f"{name}.{'arff' if head is arff_head else 'ts'}", "\n".join(head + body) + "\n")
        src.good.extend(src.record_id(f"{name}/{i:05d}") for i in range(len(good)))

    row_file(
        "ROWSA_TRAIN",
        arff_head,
        arff_rows,
        [
            (
                "arff_undeclared_class",
                "label",
                r"class '7' not in the declared classes",
                arff_rows[0].rsplit(",", 1)[0] + ",7",
            ),
            ("arff_139_values", "row_length", r"139 values; expected 140", arff_rows[1].split(",", 1)[1]),
            ("arff_missing_value", "nan_inf", NAN_REASON, "?," + arff_rows[2].split(",", 1)[1]),
        ],
    )
    row_file(
        "ROWST_TRAIN",
        ts_head,
        ts_rows,
        [
            ("ts_two_separators", "row_length", r"2 ':' separators", ts_rows[0] + ":1"),
            ("ts_no_separator", "row_length", r"0 ':' separators", ts_rows[1].rsplit(":", 1)[0]),
            (
                "ts_undeclared_class",
                "label",
                r"class 'X' not in the declared classes",
                ts_rows[2].rsplit(":", 1)[0] + ":X",
            ),
            ("ts_139_values", "row_length", r"139 values; expected 140", ts_rows[3].split(",", 1)[1]),
        ],
    )

    good_txt = "\n".join(lines[:3]) + "\n"
    files: list[tuple[str, str, str, str, bytes]] = [
        ("F01_TRAIN.txt", "empty_file", "empty_file", r"empty file", b""),
        ("F02_TRAIN.txt", "whitespace_only", "empty_file", r"empty file", b" \n\t\n\n"),
        (
            "F03_TRAIN.txt",
            "nul_bytes",
            "bad_encoding",
            r"binary content",
            good_txt.encode()[:200] + b"\x00\x00" + good_txt.encode()[200:],
        ),
        (
            "F04_TRAIN.txt",
            "utf16",
            "bad_encoding",
            r"binary content \(NUL bytes\)",
            good_txt.encode("utf-16"),
        ),
        (
            "F05_TRAIN.txt",
            "latin1",
            "bad_encoding",
            r"not UTF-8 text at byte",
            good_txt.replace("1.", "\xe9", 1).encode("latin-1"),
        ),
        (
            "F06_TRAIN.txt",
            "random_bytes",
            "bad_encoding",
            r"binary content|not UTF-8",
            rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        ),
        (
            "F07_TRAIN.arff",
            "arff_no_data",
            "header_truncated",
            r"not an ARFF file",
            "\n".join(arff_head[:-1]).encode(),
        ),
        (
            "F08_TRAIN.arff",
            "arff_string_attribute",
            "header_non_numeric",
            r"attribute 2 has type 'string'",
            "\n".join(
                [
                    arff_head[0],
                    arff_head[1],
                    "@attribute att1 numeric",
                    "@attribute att2 string",
                    "@attribute target {1,2}",
                    "@data",
                    "0.1,abc,1",
                ]
            ).encode(),
        ),
        (
            "F09_TRAIN.arff",
            "arff_attribute_no_type",
            "header_truncated",
            r"has no type",
            b"@relation x\n@attribute att1\n@attribute target {1}\n@data\n0.1,1\n",
        ),
        ("F10_TRAIN.arff", "arff_no_rows", "empty_file", r"no data rows", "\n".join(arff_head).encode()),
        (
            "F11_TRAIN.ts",
            "ts_data_before_header",
            "header_truncated",
            r"data before @data",
            "\n".join(ts_rows[:2] + ts_head).encode(),
        ),
        (
            "F12_TRAIN.ts",
            "ts_no_data_line",
            "header_truncated",
            r"no @data line",
            "\n".join(ts_head[:-1]).encode(),
        ),
        (
            "F13_TRAIN.ts",
            "ts_timestamps",
            "header_out_of_range",
            r"@timeStamps true is unsupported",
            "\n".join(ts_head).replace("@timeStamps false", "@timeStamps true").encode(),
        ),
        (
            "F14_TRAIN.ts",
            "ts_multivariate",
            "header_out_of_range",
            r"@univariate false",
            "\n".join(ts_head + ts_rows[:2]).replace("@univariate true", "@univariate false").encode(),
        ),
        (
            "F15_TRAIN.ts",
            "ts_series_length_text",
            "header_non_numeric",
            r"@seriesLength 'long'",
            "\n".join(ts_head + ts_rows[:2]).replace("@seriesLength 140", "@seriesLength long").encode(),
        ),
        (
            "F16_TRAIN.ts",
            "ts_series_length_1e10",
            "alloc_bomb",
            r"140 values; expected 10000000000",
            "\n".join(ts_head + ts_rows[:2])
            .replace("@seriesLength 140", "@seriesLength 10000000000")
            .encode(),
        ),
        ("notes.csv", "not_a_ucr_name", "stray", r"not a UCR file", b"a,b\n1,2\n"),
        ("F18_TRAIN.json", "unknown_extension", "stray", r"not a UCR file", b"{}"),
    ]
    for rel, label, category, reason, data in files:
        src.write(rel, data)
        claimed = 10**10 * 4 if category == "alloc_bomb" else 0
        src.add(category, label, rel, reason, claimed_bytes=claimed)
    src.sparse("F19_TRAIN.txt", 300 * MiB, good_txt.encode())
    src.add("alloc_bomb", "file_300mb", "F19_TRAIN.txt", r"larger than", claimed_bytes=300 * MiB)


# ---------------------------------------------------------------------------------- generic WFDB


def _atr_mutations(template: Template) -> dict[str, Callable[[Edit], Outcome]]:
    assert template.annotation is not None
    atr = template.annotation

    def truncated(e: Edit) -> Outcome:
        e.atr = atr[: len(atr) // 3]
        return Outcome("annotation", r"end-of-file marker")

    def empty(e: Edit) -> Outcome:
        e.atr = b""
        return Outcome("annotation", r"end-of-file marker")

    def garbage(e: Edit) -> Outcome:
        e.atr = e.rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() + b"\x00\x00"
        # caught by the word walk (marker early, or words running past the end) or by wfdb.rdann
        return Outcome("annotation", r"annotation")

    def bomb(e: Edit) -> Outcome:
        e.sparse_atr = 200 * MiB
        return Outcome("alloc_bomb", r"larger than", 200 * MiB)

    return {"atr_truncated": truncated, "atr_empty": empty, "atr_garbage": garbage, "atr_200mb": bomb}


def _wfdb_generic() -> dict[str, Mutation]:
    """GENERIC for discovery-time header readers: the oversized header is 1 GiB (nothing hashes
    a header rejected at discovery, and a claim that large shows in any memory measurement)."""
    return {
        ("header_1gb" if k == "header_17mb" else k): (m_header_oversized(GiB) if k == "header_17mb" else v)
        for k, v in GENERIC.items()
    }


def _wfdb_source(corpus: Corpus, name: str, rng: np.random.Generator, options: Mapping[str, Any]) -> _Source:
    return _Source(corpus, SourceSpec(name, "wfdb", "holter", options), rng)


def build_mitbih(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _wfdb_source(corpus, "mitbih", rng, {})
    base = shared / "mitbih"
    copy_record(src, base, "100", with_atr=True)
    copy_record(src, base, "106")
    src.good += [src.record_id("100/"), src.record_id("106/")]
    t100 = load_template(base, "100", n_frames=21_600, atr=True)
    t106 = load_template(base, "106", n_frames=21_600)
    emit_wfdb(src, [t100, t106], _wfdb_generic(), lambda i: f"m1_{i:03d}", windowed=True)
    emit_wfdb(src, [t100], _atr_mutations(t100), lambda i: f"m2_{i:03d}", windowed=True)
    emit_wfdb(src, [t106], {"missing_lead": m_missing_lead}, lambda i: f"m3_{i:03d}", windowed=True)
    short = load_template(base, "106", n_frames=1800)
    too_short = {"shorter_than_a_window": _as_is("too_short", r"fewer than one window")}
    emit_wfdb(src, [short], too_short, lambda i: f"m4_{i:03d}", windowed=True)
    # A RECORDS file in a subfolder governs it: a header it does not list, an entry with no header.
    write_template(src, t106, "listed/106")
    src.good.append(src.record_id("listed/106/"))
    write_template(src, load_template(base, "108", n_frames=21_600), "listed/108")
    src.write("listed/RECORDS", "106\nghost\n")
    src.add(
        "records_file",
        "header_not_listed",
        "listed/108.hea",
        r"not listed in listed/RECORDS",
        [src.record_id("listed/108/")],
    )
    src.add(
        "records_file",
        "listed_without_header",
        "listed/ghost",
        r"listed in listed/RECORDS but listed/ghost.hea does not exist",
    )
    write_template(src, t106, "bomb/106")
    src.sparse("bomb/RECORDS", GiB, b"106\n")
    src.add("alloc_bomb", "records_file_1gb", "bomb/RECORDS", r"larger than", claimed_bytes=GiB)
    src.good.append(src.record_id("bomb/106/"))
    src.write("stray.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "stray.bin", r"no WFDB header names this file")


def build_cpsc2021(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _wfdb_source(corpus, "cpsc2021", rng, {})
    base = shared / "cpsc2021"
    for stem in ("data_8_2", "data_21_7"):
        copy_record(src, base, stem, with_atr=True)
        src.good.append(src.record_id(f"{stem}/"))
    template = load_template(base, "data_21_8", n_frames=12_000, atr=True)
    mutations = {**_wfdb_generic(), **_atr_mutations(template)}
    emit_wfdb(src, [template], mutations, lambda i: f"data_9_{i:03d}", windowed=True)


def build_wfdb_misc(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _wfdb_source(corpus, "wfdb_misc", rng, {"annotation_ext": None})
    base = shared / "wfdb_misc"
    for stem in ("a103l", "v102s", "3000003_0003"):
        copy_record(src, base, stem)
        src.good.append(src.record_id(stem))
    fmt80 = load_template(base, "3000003_0003")
    fmt212 = load_template(base, "v102s", n_frames=15_000)
    mat = load_template(base, "a103l", n_frames=15_000)
    mat_only = ("mat_v5", "mat_type_double", "mat_small_dims", "format_61_on_mat")
    mutations = {k: v for k, v in {**_wfdb_generic(), **WHOLE_ONLY}.items() if k not in mat_only}
    emit_wfdb(src, [fmt80, fmt212, mat], mutations, lambda i: f"x1_{i:03d}")
    emit_wfdb(src, [mat], {k: GENERIC[k] for k in mat_only}, lambda i: f"x2_{i:03d}")
    tiny = load_template(base, "3000003_0003", n_frames=3)
    emit_wfdb(src, [tiny], {"three_samples": _as_is("too_short", r"too short")}, lambda i: f"x3_{i:03d}")


# ---------------------------------------------------------------------------------- entry point


BUILDERS: tuple[Callable[[Corpus, Path, np.random.Generator], None], ...] = (
    build_ptbxl,
    build_cinc2017,
    build_cinc2021,
    build_ptb_diagnostic,
    build_code,
    build_ucr,
    build_mitbih,
    build_cpsc2021,
    build_wfdb_misc,
)


def build_corpus(shared: Path, out: Path, seed: int = SEED) -> Corpus:
    """Write the corpus under ``out`` (``out/raw/<source>``, ``out/outside``) and return it."""
    outside = out / "outside"
    outside.mkdir(parents=True)
    (outside / "secret.dat").write_bytes(b"\x01\x02" * 50_000)
    (outside / "secret.hea").write_text("secret 1 500 50000\nsecret.dat 16 1000/mV 16 0 0 0 0 I\n")
    write_part(outside / "part.hdf5", [1001], np.zeros((1, 4096, 12), np.float32))
    corpus = Corpus(raw=out / "raw", outside=outside, sources={}, variants=[], good={})
    rng = np.random.default_rng(seed)
    for build in BUILDERS:
        build(corpus, shared, np.random.default_rng(rng.integers(2**63)))
    names = [v.name for v in corpus.variants]
    duplicates = [n for n, c in Counter(names).items() if c > 1]
    assert not duplicates, f"variant names repeat: {duplicates}"
    return corpus
