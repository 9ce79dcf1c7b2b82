"""WFDB records as editable templates, and the writer that turns mutations into variants.

A :class:`Template` is a real record (or an excerpt) parsed into a :class:`Header` and its
signal file bytes; :func:`emit_wfdb` copies it once per mutation, lets the mutation break the
copy (an :class:`Edit`), writes the result and registers the :class:`Outcome` as a variant.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from tests.malformed.corpus import MAT4, Source


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
INVALID = {"16": b"\x00\x80", "212": b"\x00\x88\x00", "80": b"\x00"}
ZERO = {"16": b"\x00\x00", "212": b"\x00\x00\x00", "80": b"\x80"}


def filled(data: bytes, offset: int, unit: bytes, fraction: float = 1.0) -> bytes:
    """``data`` with the first ``fraction`` of its sample bytes replaced by repeats of ``unit``."""
    body = len(data) - offset
    n = int(body * fraction) // len(unit) * len(unit)
    return data[:offset] + unit * (n // len(unit)) + data[offset + n :]


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


def emit_wfdb(
    src: Source,
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


def write_variant_files(src: Source, path: str, edit: Edit) -> None:
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
    src: Source, template: Template, path: str, change: Callable[[Edit], object] | None = None
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


def copy_record(src: Source, folder: Path, stem: str, dest: str = "", with_atr: bool = False) -> None:
    """Copy a real record byte for byte to ``dest`` under the source root."""
    prefix = f"{dest}/".lstrip("/")
    header = Header.parse((folder / f"{stem}.hea").read_text(encoding="utf-8"))
    names = {f"{stem}.hea", *(s[0] for s in header.signals)}
    if with_atr:
        names.add(f"{stem}.atr")
    for name in sorted(names):
        src.write(f"{prefix}{name}", (folder / name).read_bytes())
