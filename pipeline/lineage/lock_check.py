"""Whether a path on disk still matches its ``dvc.lock`` entry: a cheap check, not DVC's full hash.

A file is compared by size, then by md5 of its bytes (DVC 3's file hash, lock entries with
``hash: md5``); a folder by its file count and total size, honouring the root ``.dvcignore``;
a file inside a cached folder out by its md5 in DVC's own ``.dir`` listing from the cache. A folder
edited in place with both counts unchanged is therefore not detected; ``dvc status`` is the
authority there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pathspec

from pipeline.lineage.dvc_lock import LockEntry, is_within

IGNORE_FILE = ".dvcignore"
# Folders DVC never looks into when it hashes a folder out.
ALWAYS_IGNORED = frozenset({".git", ".hg", ".dvc"})
# Files larger than this are compared by size only (hashing them would dominate a lineage query).
MAX_MD5_BYTES = 256 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class EntryState:
    """Whether a dep/out on disk still matches its lock entry.

    ``status``: ``unchanged`` | ``modified`` | ``missing``; ``method`` says what was compared.
    """

    status: str
    method: str
    size: int | None = None
    nfiles: int | None = None
    md5: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "method": self.method,
            "size_now": self.size,
            "nfiles_now": self.nfiles,
            "md5_now": self.md5,
            "detail": self.detail,
        }


def load_ignore(root: Path) -> pathspec.GitIgnoreSpec | None:
    """The root ``.dvcignore`` as gitignore-style patterns, or None when there is none."""
    path = Path(root) / IGNORE_FILE
    if not path.is_file():
        return None
    return pathspec.GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8").splitlines())


def md5_file(path: Path) -> str:
    h = hashlib.md5()  # noqa: S324 - DVC's content hash, not a security measure
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def dir_stats(root: Path, rel: str, ignore: pathspec.GitIgnoreSpec | None) -> tuple[int, int]:
    """(file count, total bytes) under ``root/rel`` the way DVC counts a folder out."""
    count, total = 0, 0
    base = Path(root) / rel
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d not in ALWAYS_IGNORED]
        here = Path(dirpath)
        if ignore is not None:
            dirnames[:] = [d for d in dirnames if not ignore.match_file(f"{_rel(root, here / d)}/")]
        for name in filenames:
            p = here / name
            if ignore is not None and ignore.match_file(_rel(root, p)):
                continue
            count += 1
            total += p.stat().st_size
    return count, total


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


def check_entry(root: Path, entry: LockEntry, ignore: pathspec.GitIgnoreSpec | None) -> EntryState:
    """Compare the path of ``entry`` on disk with the lock (see the module docstring)."""
    path = Path(root) / entry.path
    if not path.exists():
        return EntryState("missing", "exists", detail=f"{entry.path} is not on disk")
    if entry.is_dir or path.is_dir():
        return _check_dir(root, entry, ignore)
    return check_file(path, entry.md5, entry.size, exact_md5=entry.hash_name == "md5")


def _check_dir(root: Path, entry: LockEntry, ignore: pathspec.GitIgnoreSpec | None) -> EntryState:
    path = Path(root) / entry.path
    if not path.is_dir():
        return EntryState("modified", "type", detail="the lock has a folder, the disk a file")
    nfiles, size = dir_stats(root, entry.path, ignore)
    same = nfiles == entry.nfiles and size == entry.size
    detail = (
        "" if same else f"lock: {entry.nfiles} files, {entry.size} bytes; now {nfiles} files, {size} bytes"
    )
    return EntryState(
        "unchanged" if same else "modified", "nfiles+size", size=size, nfiles=nfiles, detail=detail
    )


def check_file(path: Path, md5: str | None, size: int | None, exact_md5: bool = True) -> EntryState:
    """A file against an expected md5/size: size first, then md5 when the file is not huge."""
    if path.is_dir():
        return EntryState("modified", "type", detail="the lock has a file, the disk a folder")
    now = path.stat().st_size
    if size is not None and now != size:
        return EntryState("modified", "size", size=now, detail=f"lock: {size} bytes; now {now} bytes")
    if md5 is None or not exact_md5 or now > MAX_MD5_BYTES:
        return EntryState("unchanged", "size", size=now)
    digest = md5_file(path)
    if digest != md5:
        return EntryState("modified", "md5", size=now, md5=digest, detail=f"lock md5 {md5}, now {digest}")
    return EntryState("unchanged", "md5", size=now, md5=digest)


# --------------------------------------------------------------------------- DVC cache listings


def cache_dir(root: Path) -> Path:
    """The DVC cache folder: ``cache.dir`` of ``.dvc/config.local`` or ``.dvc/config``, else
    ``.dvc/cache``."""
    dvc = Path(root) / ".dvc"
    for name in ("config.local", "config"):
        configured = _config_cache_dir(dvc / name)
        if configured is not None:
            p = Path(configured)
            return p if p.is_absolute() else (dvc / p)
    return dvc / "cache"


def _config_cache_dir(path: Path) -> str | None:
    if not path.is_file():
        return None
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        head = re.fullmatch(r"\[\s*([^\]]+?)\s*\]", text)
        if head:
            section = head.group(1).strip("'\" ")
            continue
        key, sep, value = text.partition("=")
        if sep and section == "cache" and key.strip() == "dir":
            return value.strip()
    return None


def dir_listing(root: Path, md5: str) -> dict[str, str] | None:
    """``{relpath: md5}`` of a cached folder out from DVC's ``.dir`` object, or None when not cached."""
    if not md5.endswith(".dir") or len(md5) < 3:
        return None
    base = cache_dir(root)
    for candidate in (base / "files" / "md5" / md5[:2] / md5[2:], base / md5[:2] / md5[2:]):
        if candidate.is_file():
            try:
                entries = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                return None
            return {str(e["relpath"]): str(e["md5"]) for e in entries if "relpath" in e and "md5" in e}
    return None


def check_inside(root: Path, out: LockEntry, path: str) -> EntryState:
    """A file ``path`` inside the folder out ``out``, against DVC's cached listing of that folder."""
    full = Path(root) / path
    if not full.exists():
        return EntryState("missing", "exists", detail=f"{path} is not on disk")
    listing = dir_listing(root, out.md5 or "")
    rel = PurePosixPath(path).relative_to(out.path).as_posix()
    if listing is None:
        return EntryState("unknown", "none", detail=f"{out.path} is not in the DVC cache (cache: false?)")
    if full.is_dir():
        return _check_subfolder(root, out.path, rel, {k: v for k, v in listing.items() if is_within(k, rel)})
    if rel not in listing:
        return EntryState("modified", "listing", detail=f"{path} is not in the locked listing of {out.path}")
    return check_file(full, listing[rel], None, exact_md5=out.hash_name == "md5")


def _check_subfolder(root: Path, out_path: str, rel: str, listing: Mapping[str, str]) -> EntryState:
    """A folder inside a cached folder out: same files as the locked listing, each with its md5."""
    base = Path(root) / out_path
    ignore = load_ignore(root)
    now: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(base / rel):
        dirnames[:] = [d for d in dirnames if d not in ALWAYS_IGNORED]
        for name in filenames:
            p = Path(dirpath) / name
            if ignore is None or not ignore.match_file(_rel(Path(root), p)):
                now[p.relative_to(base).as_posix()] = p
    if set(now) != set(listing):
        extra, gone = sorted(set(now) - set(listing)), sorted(set(listing) - set(now))
        return EntryState(
            "modified",
            "listing",
            nfiles=len(now),
            detail=f"files not in the lock: {extra[:3]}; locked files gone: {gone[:3]}",
        )
    size = sum(p.stat().st_size for p in now.values())
    if size > MAX_MD5_BYTES:
        return EntryState("unchanged", "listing", size=size, nfiles=len(now))
    changed = sorted(k for k, p in now.items() if md5_file(p) != listing[k])
    if changed:
        return EntryState("modified", "md5", size=size, nfiles=len(now), detail=f"changed: {changed[:3]}")
    return EntryState("unchanged", "md5", size=size, nfiles=len(now))
