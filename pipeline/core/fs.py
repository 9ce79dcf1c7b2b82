"""File-system rules written once: the atomic write, the file sha256 (streamed, or with the bytes
read once), the fsync of a folder and the exclusive writer lock.

Every file the pipeline replaces (store JSON, checkpoints, reports, split indexes, ``RECORDS``) goes
through :func:`atomic_writer`: bytes go to a hidden temporary file in the destination folder
(``.<name>.<8 hex><suffix>``, so a store or checkpoint folder can find the debris of a killed write
by its suffix), which is fsynced, renamed over the destination, and then the folder is fsynced so
the rename itself survives a power cut. A kill at any moment leaves the old file or the new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.core.crashpoints import crash_point

TEMP_SUFFIX = ".tmp"


class LockHeldError(RuntimeError):
    """Another process (or another open in this one) holds the lock; ``holder`` is its stamp."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path}: held by {holder}")
        self.path = path
        self.holder = holder


def temp_path(path: Path, suffix: str = TEMP_SUFFIX) -> Path:
    """The hidden temporary name beside ``path`` that an atomic write of ``path`` uses."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")


@contextmanager
def atomic_writer(
    path: Path, *, suffix: str = TEMP_SUFFIX, crash_at: str | None = None
) -> Iterator[BinaryIO]:
    """Yield a binary file whose bytes replace ``path`` atomically when the block ends normally.

    The temporary file is fsynced and renamed over ``path``, then the folder is fsynced. Replacing a
    file keeps its permission bits; a new file gets the umask's. ``crash_at`` names the test crash
    point (:mod:`pipeline.core.crashpoints`) reached between the fsync and the rename. An exception
    in the block removes the temporary file and leaves ``path`` as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, suffix)
    try:
        with tmp.open("xb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _keep_mode(path, tmp)
        if crash_at is not None:
            crash_point(crash_at)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, suffix: str = TEMP_SUFFIX, crash_at: str | None = None) -> None:
    """Replace ``path`` by ``data`` with :func:`atomic_writer` (readers see old or new, never half)."""
    with atomic_writer(path, suffix=suffix, crash_at=crash_at) as fh:
        fh.write(data)


def _keep_mode(path: Path, tmp: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    tmp.chmod(mode)


def fsync_dir(folder: Path) -> None:
    """Make renames and new entries in ``folder`` durable (a no-op where folders cannot be opened)."""
    if os.name == "posix":
        fsync_file(folder)


def fsync_file(path: Path) -> None:
    """Flush one file's (or, on POSIX, folder's) bytes to disk, e.g. files a library wrote unsynced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks (memory stays flat for large files)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(frozen=True)
class ReadFile:
    """A file's bytes with the size and mtime (ns) of the open file they were read from, and
    (when asked for) their sha256: what a reader decodes is exactly what was hashed."""

    data: bytes
    size: int
    mtime_ns: int
    sha256: str | None


def read_file(path: Path, *, sha256: bool = True, max_bytes: int | None = None) -> ReadFile | None:
    """Read a whole file once and hash the same bytes (one pass instead of hash, then read again).

    Returns None, reading nothing, when the file is larger than ``max_bytes`` (the caller then
    streams it instead of holding it in memory). Raises ``OSError`` as ``open`` does.
    """
    with path.open("rb") as fh:
        info = os.fstat(fh.fileno())
        if max_bytes is not None and info.st_size > max_bytes:
            return None
        data = fh.read()
    digest = hashlib.sha256(data).hexdigest() if sha256 else None
    return ReadFile(data, info.st_size, info.st_mtime_ns, digest)


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``path`` (created if missing) for the block.

    Never waits: raises :class:`LockHeldError` with the holder's stamp (``"pid <n>"``, or
    ``"unknown"`` while a holder is between locking and stamping). The stamp is cleared on release so
    a lock file never names a process that has finished.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise LockHeldError(path, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
