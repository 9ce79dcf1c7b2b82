"""The landing zone's file system side: listing a source folder, names never taken, copying with fsync.

May import: the standard library only.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", "~")
COPY_CHUNK = 1 << 20
TEMP_SUFFIX = ".landing-tmp"  # suffix of a copy or RECORDS rewrite in flight (hidden, beside its destination)


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def utc(seconds: float, compact: bool = False) -> str:
    fmt = "%Y%m%dT%H%M%SZ" if compact else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.fromtimestamp(seconds, UTC).strftime(fmt)


@dataclass(frozen=True)
class Stat:
    size: int
    mtime: float
    mtime_ns: int


@dataclass
class Listing:
    """A source folder: regular files with their stat, and entries that are never taken."""

    files: dict[str, Stat] = field(default_factory=dict)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # hidden / temporary
    strange: list[tuple[str, str]] = field(default_factory=list)  # links, devices, ...


def temporary(name: str) -> str | None:
    """Why a file or folder name is never taken (hidden or an editor/upload temp), or None."""
    if name.startswith("."):
        return "hidden"
    for suffix in TEMP_SUFFIXES:
        if name.endswith(suffix):
            return f"temporary ({suffix})"
    return None


def walk(folder: Path) -> Listing:
    listing = Listing()
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            entries = sorted(os.scandir(folder / prefix), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            rel = posixpath.join(prefix, entry.name) if prefix else entry.name
            why = temporary(entry.name)
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if why is not None:
                listing.ignored.append((rel + ("/" if stat.S_ISDIR(info.st_mode) else ""), why))
            elif stat.S_ISLNK(info.st_mode):
                listing.strange.append((rel, "symbolic link; the landing zone takes regular files only"))
            elif stat.S_ISDIR(info.st_mode):
                pending.append(rel)
            elif stat.S_ISREG(info.st_mode):
                listing.files[rel] = Stat(info.st_size, info.st_mtime, info.st_mtime_ns)
            else:
                listing.strange.append((rel, "not a regular file"))
    return listing


def copy_fsync(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` (created new), fsync it and return the sha256 of the bytes copied."""
    h = hashlib.sha256()
    with src.open("rb") as fin, dest.open("xb") as fout:
        while block := fin.read(COPY_CHUNK):
            h.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest()
