"""``dvc.lock`` as typed objects: stages, their deps/outs with DVC's hashes, and the params they read.

Paths are POSIX strings relative to the project root (the folder holding ``dvc.yaml``), exactly as
DVC writes them in the lock. Lookups answer "which stage produced this path": an out equal to the
path or a folder out containing it. Whether a path on disk still matches its lock entry is
:mod:`pipeline.lineage.lock_check`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

LOCK_FILE = "dvc.lock"
PROJECT_FILE = "dvc.yaml"
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
