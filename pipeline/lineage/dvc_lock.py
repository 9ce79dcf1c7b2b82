"""``dvc.lock`` as typed objects: stages, their deps/outs with DVC's hashes, and the params they read.

Paths are POSIX strings relative to the project root (the folder holding ``dvc.yaml``), exactly as
DVC writes them in the lock. Lookups answer "which stage produced this path": an out equal to the
path or a folder out containing it.

Whether a path on disk still matches the lock (:func:`check_entry`) is a cheap check, not DVC's
full hash: a file is compared by size, then by md5 of its bytes (DVC 3's file hash, lock entries
with ``hash: md5``); a folder by its file count and total size, honouring the root ``.dvcignore``;
a file inside a cached folder out by its md5 in DVC's own ``.dir`` listing from the cache. A folder
edited in place with both counts unchanged is therefore not detected; ``dvc status`` is the
authority there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pathspec
import yaml

LOCK_FILE = "dvc.lock"
PROJECT_FILE = "dvc.yaml"
IGNORE_FILE = ".dvcignore"
# Folders DVC never looks into when it hashes a folder out.
ALWAYS_IGNORED = frozenset({".git", ".hg", ".dvc"})
# Files larger than this are compared by size only (hashing them would dominate a lineage query).
MAX_MD5_BYTES = 256 * 1024 * 1024
_CHUNK = 1024 * 1024
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LockError(ValueError):
    """A missing or malformed ``dvc.lock``, or a path outside the project."""


@dataclass(frozen=True)
class LockEntry:
    """One dep or out of a locked stage: path and DVC's hash fields (``None`` where absent)."""

    path: str
    md5: str | None
    size: int | None
    nfiles: int | None
    hash_name: str | None  # "md5" (DVC 3); None in DVC 2 locks, whose text-file md5 is not raw bytes

    @property
    def is_dir(self) -> bool:
        return (self.md5 or "").endswith(".dir") or self.nfiles is not None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "md5": self.md5, "size": self.size, "nfiles": self.nfiles}


@dataclass(frozen=True)
class LockStage:
    """One stage of the lock (``name`` is DVC's address: ``train@resnet``)."""

    name: str
    cmd: str | tuple[str, ...]
    deps: tuple[LockEntry, ...]
    outs: tuple[LockEntry, ...]
    params: Mapping[str, Mapping[str, Any]]  # params file → {key: value}

    def cmd_json(self) -> str | list[str]:
        return self.cmd if isinstance(self.cmd, str) else list(self.cmd)

    def out(self, path: str) -> LockEntry | None:
        return next((o for o in self.outs if o.path == path), None)


@dataclass(frozen=True)
class Producer:
    """A stage whose out ``out`` is, contains or lies inside the path asked about."""

    stage: LockStage
    out: LockEntry


@dataclass(frozen=True)
class DvcLock:
    """A parsed ``dvc.lock`` with path lookups; ``root`` is the project root."""

    root: Path
    stages: Mapping[str, LockStage]

    def stage(self, name: str) -> LockStage:
        try:
            return self.stages[name]
        except KeyError:
            raise LockError(f"{self.root / LOCK_FILE}: no stage {name!r}") from None

    def producers(self, path: str) -> list[Producer]:
        """Stages with an out equal to ``path`` or a folder out containing it."""
        return [Producer(s, o) for s, o in self._outs() if is_within(path, o.path)]

    def producers_inside(self, path: str) -> list[Producer]:
        """Stages with an out inside the folder ``path`` (``path`` itself is no out)."""
        return [Producer(s, o) for s, o in self._outs() if is_within(o.path, path) and o.path != path]

    def dep_producers(self, path: str, exclude: str | None = None) -> list[Producer]:
        """Stages whose outs feed a dep at ``path``: equal to it, containing it or inside it."""
        return [p for p in [*self.producers(path), *self.producers_inside(path)] if p.stage.name != exclude]

    def out_paths(self) -> list[str]:
        return sorted({o.path for _, o in self._outs()})

    def dep_users(self, path: str) -> list[str]:
        """Stages with a dep equal to, containing or inside ``path``."""
        return [
            s.name
            for s in self.stages.values()
            if any(is_within(path, d.path) or is_within(d.path, path) for d in s.deps)
        ]

    def _outs(self) -> Iterator[tuple[LockStage, LockEntry]]:
        for stage in self.stages.values():
            for out in stage.outs:
                yield stage, out


# --------------------------------------------------------------------------- paths


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``dvc.yaml``."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise LockError(f"{start}: no {PROJECT_FILE} here or in any parent folder (not inside a DVC project)")


def normalise(root: Path, path: Path | str, cwd: Path | None = None) -> str:
    """``path`` (absolute, or relative to ``cwd``, default the current folder) as a POSIX path
    relative to ``root``, the way ``dvc.lock`` spells it."""
    p = Path(path)
    if not p.is_absolute():
        p = (cwd or Path.cwd()) / p
    resolved_root = Path(root).resolve()
    absolute = Path(os.path.normpath(p))
    try:
        rel = absolute.relative_to(resolved_root)
    except ValueError:
        try:
            rel = absolute.resolve().relative_to(resolved_root)
        except ValueError:
            raise LockError(f"{path}: outside the project at {resolved_root}") from None
    return rel.as_posix() if rel.parts else "."


def is_within(path: str, folder: str) -> bool:
    """Whether POSIX ``path`` equals ``folder`` or lies inside it."""
    if folder in ("", "."):
        return True
    return path == folder or PurePosixPath(path).is_relative_to(PurePosixPath(folder))


def display_path(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` when inside it, else absolute."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(Path(path).resolve())


# --------------------------------------------------------------------------- parsing


def load_lock(root: Path) -> DvcLock:
    """Read ``<root>/dvc.lock``; a missing or malformed file raises :class:`LockError`."""
    path = Path(root) / LOCK_FILE
    return parse_lock(_load_yaml(path), Path(root), str(path))


def lock_stages(root: Path) -> dict[str, Any]:
    """The raw ``stages`` mapping of ``<root>/dvc.lock`` as DVC wrote it (empty before the first
    repro), for comparing entries before and after a run; malformed raises :class:`LockError`."""
    path = Path(root) / LOCK_FILE
    if not path.exists():
        return {}
    data = _load_yaml(path) or {}
    stages = data.get("stages", {}) if isinstance(data, Mapping) else None
    if not isinstance(stages, Mapping):
        raise LockError(f"{path}: expected a mapping with 'stages' (dvc.lock schema 2.0)")
    return dict(stages)


def _load_yaml(path: Path) -> Any:
    try:
        # libyaml's loader when present: the pure-Python one takes ~0.3 s on a 3,000-line lock
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 - safe loader
    except OSError as exc:
        raise LockError(f"{path}: cannot read ({exc.strerror}); run `dvc repro` first") from None
    except yaml.YAMLError as exc:
        raise LockError(f"{path}: not valid YAML: {exc}") from None


def parse_lock(data: Any, root: Path, origin: str = LOCK_FILE) -> DvcLock:
    """A :class:`DvcLock` from the YAML-loaded lock mapping (schema 2.0)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("stages"), Mapping):
        raise LockError(f"{origin}: expected a mapping with 'stages' (dvc.lock schema 2.0)")
    stages = {str(name): _stage(str(name), body, origin) for name, body in data["stages"].items()}
    return DvcLock(root=Path(root), stages=stages)


def _stage(name: str, body: Any, origin: str) -> LockStage:
    if not isinstance(body, Mapping):
        raise LockError(f"{origin}: stage {name!r} is not a mapping")
    cmd = body.get("cmd", "")
    params = body.get("params") or {}
    if not isinstance(params, Mapping):
        raise LockError(f"{origin}: stage {name!r}: params is not a mapping")
    return LockStage(
        name=name,
        cmd=str(cmd) if isinstance(cmd, str) else tuple(str(c) for c in cmd),
        deps=tuple(_entry(e, name, origin) for e in body.get("deps") or ()),
        outs=tuple(_entry(e, name, origin) for e in body.get("outs") or ()),
        params={str(f): dict(v or {}) for f, v in params.items()},
    )


def _entry(raw: Any, stage: str, origin: str) -> LockEntry:
    if not isinstance(raw, Mapping) or "path" not in raw:
        raise LockError(f"{origin}: stage {stage!r}: a dep/out without a path: {raw!r}")
    size, nfiles = raw.get("size"), raw.get("nfiles")
    return LockEntry(
        path=str(PurePosixPath(str(raw["path"]))),
        md5=None if raw.get("md5") is None else str(raw["md5"]),
        size=None if size is None else int(size),
        nfiles=None if nfiles is None else int(nfiles),
        hash_name=None if raw.get("hash") is None else str(raw["hash"]),
    )


# --------------------------------------------------------------------------- on-disk check


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
    with open(path, "rb") as fh:
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


def nearby_outs(lock: DvcLock, path: str, limit: int = 8) -> list[str]:
    """Outs sharing the longest leading folders with ``path`` (for "did you mean" messages)."""
    parts = PurePosixPath(path).parts

    def shared(out: str) -> int:
        n = 0
        for a, b in zip(PurePosixPath(out).parts, parts, strict=False):
            if a != b:
                break
            n += 1
        return n

    outs = lock.out_paths()
    best = max((shared(o) for o in outs), default=0)
    if best == 0:
        return outs[:limit]
    return [o for o in outs if shared(o) == best][:limit]
