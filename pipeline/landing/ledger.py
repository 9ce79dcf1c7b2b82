"""The landing ledger: an sqlite file recording every record taken from the landing zone.

One row per taken record, unique on ``(source, record_key)`` (the record key is the header's
path relative to ``<landing_root>/<source>`` without ``.hea``), plus one row per file with its
sha256, size in bytes and destination path. The ``ledger_meta`` table holds the schema version;
a ledger of another version is refused with an error naming the file. Each record is written in
one transaction (sqlite's default rollback journal, synchronous writes).

A take holds :func:`ledger_lock` for its whole run: an exclusive, non-blocking ``flock`` on
``<ledger>.lock``. A second take fails at once with :class:`LedgerLockedError`, naming the
ledger and the pid written into the lock file by the holder.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from pipeline.core.errors import PipelineError
from pipeline.core.fs import LockHeldError, exclusive_lock

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE taken (
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    taken_utc TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (source, record_key)
);
CREATE TABLE taken_files (
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    rel_path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    dest_path TEXT NOT NULL,
    PRIMARY KEY (source, rel_path),
    FOREIGN KEY (source, record_key) REFERENCES taken (source, record_key)
);
CREATE INDEX taken_files_record ON taken_files (source, record_key);
"""


class LedgerError(PipelineError, RuntimeError):
    """The ledger cannot be used (unreadable, another schema version, a duplicate row)."""


class LedgerVersionError(LedgerError):
    """The ledger file has another schema version (or is not a landing ledger)."""


class LedgerLockedError(LedgerError):
    """Another take holds the ledger's lock."""


@dataclass(frozen=True)
class LedgerFile:
    """One taken file: ``rel_path`` relative to the landing source folder (and to the source's
    raw root, where it now lives at ``dest_path``), its sha256 and size in bytes."""

    rel_path: str
    sha256: str
    size: int
    dest_path: str


@dataclass(frozen=True)
class LedgerEntry:
    """One taken record: its files in move order (header last), UTC time and the take's run id."""

    source: str
    record_key: str
    files: tuple[LedgerFile, ...]
    taken_utc: str
    run_id: str

    def file(self, rel_path: str) -> LedgerFile | None:
        return next((f for f in self.files if f.rel_path == rel_path), None)


class LandingLedger:
    """The ledger at ``path`` (created with its schema when missing).

    ``readonly`` opens an existing file without writing to it; a missing file then reads as an
    empty ledger (nothing is created), which is what a dry run needs.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._conn = self._connect()
        try:
            self._check_schema()
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.readonly and not self.path.exists():
                conn = sqlite3.connect(":memory:", isolation_level=None)
            elif self.readonly:
                uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot open the landing ledger: {exc}") from exc
        return conn

    def _check_schema(self) -> None:
        try:
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: not an sqlite landing ledger: {exc}") from exc
        if not tables:
            if self.readonly and self.path.exists():
                raise LedgerVersionError(f"{self.path}: empty file, not a landing ledger")
            self._create_schema()
            return
        if "ledger_meta" not in tables:
            raise LedgerVersionError(
                f"{self.path}: not a landing ledger (tables {sorted(tables)}, no schema version row)"
            )
        row = self._conn.execute("SELECT value FROM ledger_meta WHERE key = 'schema_version'").fetchone()
        version = None if row is None else str(row[0])
        if version != SCHEMA_VERSION:
            raise LedgerVersionError(
                f"{self.path}: landing ledger schema version {version}; this code reads version "
                f"{SCHEMA_VERSION}"
            )

    def _create_schema(self) -> None:
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(
                "INSERT INTO ledger_meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ queries

    def get(self, source: str, record_key: str) -> LedgerEntry | None:
        """The entry of ``(source, record_key)``, or None when it was never taken."""
        row = self._conn.execute(
            "SELECT taken_utc, run_id FROM taken WHERE source = ? AND record_key = ?", (source, record_key)
        ).fetchone()
        if row is None:
            return None
        files = self._conn.execute(
            "SELECT rel_path, sha256, size, dest_path FROM taken_files "
            "WHERE source = ? AND record_key = ? ORDER BY position",
            (source, record_key),
        ).fetchall()
        return LedgerEntry(
            source=source,
            record_key=record_key,
            files=tuple(LedgerFile(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in files),
            taken_utc=str(row[0]),
            run_id=str(row[1]),
        )

    def find_file(self, source: str, rel_path: str) -> LedgerEntry | None:
        """The entry whose files include ``rel_path`` (relative to the landing source folder)."""
        row = self._conn.execute(
            "SELECT record_key FROM taken_files WHERE source = ? AND rel_path = ?", (source, rel_path)
        ).fetchone()
        return None if row is None else self.get(source, str(row[0]))

    def entries(self, source: str | None = None) -> list[LedgerEntry]:
        """Every entry (of one source when given), ordered by source and record key."""
        if source is None:
            rows = self._conn.execute("SELECT source, record_key FROM taken ORDER BY source, record_key")
        else:
            rows = self._conn.execute(
                "SELECT source, record_key FROM taken WHERE source = ? ORDER BY record_key", (source,)
            )
        keys = rows.fetchall()
        return [e for s, k in keys if (e := self.get(str(s), str(k))) is not None]

    # ------------------------------------------------------------------ writes

    def add(self, entry: LedgerEntry) -> None:
        """Write ``entry`` and its files in one transaction.

        Raises :class:`LedgerError` when the record or one of its files is already in the ledger.
        """
        if self.readonly:
            raise LedgerError(
                f"{self.path}: opened read-only; cannot record {entry.source}:{entry.record_key}"
            )
        try:
            with self._transaction():
                self._conn.execute(
                    "INSERT INTO taken (source, record_key, taken_utc, run_id) VALUES (?, ?, ?, ?)",
                    (entry.source, entry.record_key, entry.taken_utc, entry.run_id),
                )
                self._conn.executemany(
                    "INSERT INTO taken_files "
                    "(source, record_key, position, rel_path, sha256, size, dest_path) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (entry.source, entry.record_key, i, f.rel_path, f.sha256, f.size, f.dest_path)
                        for i, f in enumerate(entry.files)
                    ],
                )
        except sqlite3.IntegrityError as exc:
            raise LedgerError(
                f"{self.path}: {entry.source}:{entry.record_key} (or one of its files) is already "
                f"recorded: {exc}"
            ) from exc

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LandingLedger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def lock_path(ledger_path: Path) -> Path:
    """``<ledger>.lock``, the file a take locks."""
    ledger_path = Path(ledger_path)
    return ledger_path.with_name(ledger_path.name + ".lock")


@contextmanager
def ledger_lock(ledger_path: Path) -> Iterator[None]:
    """Hold the exclusive take lock of ``ledger_path`` (``flock`` on ``<ledger>.lock``).

    Never waits: raises :class:`LedgerLockedError` naming the ledger and the holder's pid when
    another process (or another open of the lock file in this process) holds it.
    """
    path = lock_path(ledger_path)
    try:
        with exclusive_lock(path):
            yield
    except LockHeldError as exc:
        raise LedgerLockedError(
            f"{ledger_path}: another landing take holds the lock {path} ({exc.holder}); "
            "expected one take at a time"
        ) from None
