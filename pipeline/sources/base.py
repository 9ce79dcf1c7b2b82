"""Base class every source reader implements, and small helpers readers share."""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pipeline.core.errors import PipelineError
from pipeline.core.records import Discovery, InputUnit, Provenance, ReadError, Record, Rejection
from pipeline.sources.options import ReaderOptions


class SourceLayoutError(PipelineError):
    """A source whose structure is wrong as a whole (a required column missing, the label file
    unreadable): raised by ``discover``, it fails the ingest with this one message (file, column,
    what was expected) instead of quarantining every record for the same cause."""


class SourceReader(abc.ABC):
    """Reads one source kind under ``root``.

    Subclasses set ``kind`` (the ``sources.<name>.kind`` value in params) and ``version``
    (bump it whenever ``read`` would produce different output for the same files: it is part
    of every unit's fingerprint, so a bump re-ingests that source) and ``Options`` (their
    options model, :mod:`pipeline.sources.options`; ``pipeline.config`` inherits it). The reader
    takes ``name``, ``root`` and the options as keywords, validated by ``Options`` (a
    ``pydantic.ValidationError``, a ``ValueError``, names the bad one) into ``self.options``.
    Instances must be picklable (they travel to worker processes).
    """

    kind: ClassVar[str]
    version: ClassVar[str]
    Options: ClassVar[type[ReaderOptions]] = ReaderOptions
    decodes_loaded: ClassVar[bool] = False  # True where read_loaded decodes the bytes it is given

    def __init__(self, name: str, root: Path, **options: Any) -> None:
        self.name = name
        self.root = Path(root)
        self.options = self.Options(**options)

    @property
    def reader_id(self) -> str:
        return f"{self.kind}@{self.version}"

    @abc.abstractmethod
    def discover(self) -> Discovery:
        """List the readable units under ``root``; never reads signal data.

        Every file under ``root`` must end up in exactly one of: a unit's ``files``,
        ``metadata_files`` or ``rejected`` (with a reason).
        """

    @abc.abstractmethod
    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        """Yield the records of one unit (several for windowed or multi-row units).

        Raise :class:`ReadError` when the whole unit is unreadable; yield a :class:`Rejection`
        for one bad part (a UCR row, a window) while the rest of the unit still yields records.
        ``provenance`` (files + sha256 + reader id) is built by the caller; attach it to every
        record (windows: with ``parent_id`` and ``window`` filled via ``dataclasses.replace``).
        """

    def read_loaded(
        self, unit: InputUnit, provenance: Provenance, loaded: Mapping[str, bytes]
    ) -> Iterator[Record | Rejection]:
        """:meth:`read`, given ``loaded``: bytes of the unit's files (root-relative path → bytes) that
        the caller has already read once to hash them. Readers that can decode from them set
        ``decodes_loaded`` and override this, so that ingest reads each file once; the result must
        equal :meth:`read`'s. The default reads the files again."""
        return self.read(unit, provenance)

    def record_id(self, local_id: str) -> str:
        """The globally unique id ``<source name>:<local id>``."""
        return f"{self.name}:{local_id}"

    def resolve(self, rel: str) -> Path:
        """Absolute path of a file named relative to the root, refusing paths that escape it."""
        return confined_path(self.root, rel)


def confined_path(root: Path, rel: str) -> Path:
    """Join ``rel`` to ``root``; raise :class:`ReadError` if the result leaves ``root``.

    Paths come from CSVs and headers, which are untrusted input. Symbolic links are resolved,
    so a link pointing outside the root is refused too.
    """
    if "\x00" in rel:
        raise ReadError(f"path {rel!r} contains a NUL byte; expected a file name")
    if PurePosixPath(rel).is_absolute() or Path(rel).is_absolute():
        raise ReadError(f"path {rel!r} is absolute; expected a path relative to {root}")
    base = resolved_root(root)
    # PTH118: string paths on purpose: realpath of the joined string, then a prefix test on strings,
    # is the confinement rule (Path's / would drop ``base`` when ``rel`` is absolute)
    full = os.path.realpath(os.path.join(base, rel))  # noqa: PTH118 - see above
    if full != base and not full.startswith(base.rstrip(os.sep) + os.sep):
        raise ReadError(f"path {rel!r} escapes the source root {root}")
    return Path(full)


class ConfinedPaths:
    """:func:`confined_path` for many files under one root, resolving each folder once.

    Resolving a path walks (``lstat``) every component; files of one folder share all but the last,
    so each folder's resolution is kept and only the file name is checked for a link. Hold one for
    a bounded job (a discovery, a batch), not for the life of a process: a folder replaced by a link
    later is then seen by the next job. Same results and errors as :func:`confined_path`.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._base = resolved_root(root)
        self._prefix = self._base.rstrip(os.sep) + os.sep
        self._folders: dict[str, str] = {}

    def __call__(self, rel: str) -> Path:
        head, tail = os.path.split(rel)
        if not head or not tail or tail in (".", "..") or "\x00" in rel or rel.startswith("/"):
            return confined_path(self.root, rel)  # the plain rule (and its errors) for the odd cases
        folder = self._folders.get(head)
        if folder is None:
            # PTH118: string paths, as confined_path builds them (see there)
            folder = self._folders[head] = os.path.realpath(os.path.join(self._base, head))  # noqa: PTH118
        full = os.path.join(folder, tail)  # noqa: PTH118 - see above
        if os.path.islink(full):  # noqa: PTH114 - a str path, kept as str (no Path per file)
            full = os.path.realpath(full)
        if full != self._base and not full.startswith(self._prefix):
            raise ReadError(f"path {rel!r} escapes the source root {self.root}")
        return Path(full)


def resolved_root(root: Path | str) -> str:
    """The configured root with its links resolved: the one trusted place, resolved once.

    A user may point a source at a symlink (a large download kept outside the repository); the
    root is trusted as given, and only paths *inside* it are confined (:func:`confined_path`).
    Root-relative paths must be computed against this string, never against ``root`` as written.
    """
    return _resolved_root(str(root))


@lru_cache(maxsize=256)
def _resolved_root(root: str) -> str:
    # Resolving the root once per process instead of once per file saves ~0.15 ms a file.
    return os.path.realpath(root)


def list_files(root: Path) -> list[str]:
    """All regular files under ``root`` as sorted POSIX paths relative to it (hidden files skipped)."""
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file():
            out.append(rel.as_posix())
    return sorted(out)
