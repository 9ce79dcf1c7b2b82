"""The one rule for "a WFDB annotation file is complete", used by the readers (before
``wfdb.rdann``, which reads a truncated file without complaint and so would silently drop the
labels after the cut) and by the landing check (which waits for a file still arriving).

A MIT-format annotation file is a sequence of 16-bit little-endian words ending in the end-of-file
marker, two zero bytes. Walking the words (skipping the bytes a SKIP or AUX word carries, so an aux
string ending in a NUL byte is not mistaken for the marker), the file is complete when the marker is
its last word, still arriving when the words run out first, and damaged when bytes follow the
marker. Private: import the names from :mod:`pipeline.sources.wfdb`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Far above real files (a day of beats is ~300 kB); keeps a damaged or hostile file from being read
# whole into memory.
MAX_ANNOTATION_BYTES = 64 << 20

# MIT annotation word codes (high 6 bits) that carry extra bytes after them.
_ANN_SKIP = 59
_ANN_AUX = 63


@dataclass(frozen=True)
class AnnotationProblem:
    """Why an annotation file is not complete; ``arriving`` when more bytes could complete it."""

    reason: str
    arriving: bool


def annotation_problem(path: Path, rel: str | None = None) -> AnnotationProblem | None:
    """None when the annotation file at ``path`` is complete, else what is wrong (``rel`` names it).

    Raises OSError when the file cannot be read.
    """
    rel = rel or path.name
    size = path.stat().st_size
    if size > MAX_ANNOTATION_BYTES:
        reason = f"{rel}: {size} bytes, larger than {MAX_ANNOTATION_BYTES}; expected an annotation file"
        return AnnotationProblem(reason, arriving=False)
    data = path.read_bytes()
    end = end_marker(data)
    if end is None:
        reason = f"{rel}: no end-of-file marker (two zero bytes) after {len(data):,} bytes"
        return AnnotationProblem(reason, arriving=True)
    if end + 2 != len(data):
        reason = f"{rel}: {len(data) - end - 2:,} bytes after the end-of-file marker at byte {end:,}"
        return AnnotationProblem(reason, arriving=False)
    return None


def end_marker(data: bytes) -> int | None:
    """Byte offset of the end-of-file word, or None when the words run out before it."""
    pos = 0
    size = len(data)
    while pos + 2 <= size:
        word = data[pos] | (data[pos + 1] << 8)
        if word == 0:
            return pos
        code = word >> 10
        pos += 2
        if code == _ANN_SKIP:
            pos += 4
        elif code == _ANN_AUX:
            length = word & 0x3FF
            pos += length + (length & 1)
    return None
