"""Take complete, settled records from the landing zone into their sources' raw roots.

New files arrive in ``<landing_root>/<source>/...``, partially written and in any order. Each
call of :func:`take_landed` takes only records that are complete (:mod:`pipeline.landing.check`)
and whose every file was last modified at least ``settle_s`` seconds ago and did not change
while it was checked; everything else stays where it is, reported with a category and a reason.

Moving a record
    Files keep their sub-path: ``<landing_root>/<source>/<sub>/x.dat`` goes to
    ``<dest_root>/<sub>/x.dat``. Signal and annotation files go first and the header last, so a
    reader scanning the destination never sees a header without its data. Each file appears
    atomically under its final name: a hard link (``os.link``: same filesystem, never replaces an
    existing file) or else a copy to a hidden temporary name beside it, fsync, ``os.replace``.
    The landing copy is kept until the ledger row is committed, then deleted. When a ``RECORDS``
    file governs the destination folder (the wfdb reader excludes unlisted records), the record
    is appended to it by an atomic rewrite.

Exactly once
    The ledger (:mod:`pipeline.landing.ledger`) is written after the move and before the landing
    copy is deleted, so every crash leaves a state the next run resolves without taking twice:
    files at the destination but no row (identical files are adopted, the row written, reported
    taken); a row but the landing copy still there (identical: deleted, ``already_taken``);
    a record dropped again with other content, or a destination file that differs, is left as
    ``conflict`` naming the earlier take. Raw data is never overwritten.

Categories of what is left: ``incomplete``, ``settling`` (also hidden and temporary files, which
are never taken on their own), ``orphan`` (a signal/annotation file with no header yet),
``conflict``, ``unknown_source``, ``invalid``, and ``error`` (an OS error while moving; the
record is retried next run).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.core.fs import fsync_dir, sha256_file, temp_path, write_atomic
from pipeline.landing.check import COMPLETE, HEADER_SUFFIX, INCOMPLETE, RecordCheck, check_record
from pipeline.landing.ledger import LandingLedger, LedgerEntry, LedgerFile, ledger_lock
from pipeline.sources.base import list_files
from pipeline.sources.wfdb_folder import RECORDS_FILE, parse_records_file

LANDING_KINDS = ("wfdb", "cinc2021", "ptb_diagnostic")
CATEGORIES = ("incomplete", "settling", "orphan", "conflict", "unknown_source", "invalid", "error")

# Signal files the destination reader groups with a header (None: any file the header names).
_SIGNAL_SUFFIXES: dict[str, tuple[str, ...] | None] = {
    "wfdb": None,
    "cinc2021": (".mat",),
    "ptb_diagnostic": (".dat", ".xyz"),
}
# Comment fields without which a header is not whole yet: CinC labels live in "# Dx:".
_REQUIRED_COMMENTS: dict[str, tuple[str, ...]] = {"cinc2021": ("dx",)}
_DATA_SUFFIXES = frozenset({".dat", ".mat", ".xyz", ".atr"})
_TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", "~")
_COPY_CHUNK = 1 << 20
_TEMP = ".landing-tmp"  # suffix of a copy or RECORDS rewrite in flight (hidden, beside its destination)
_MARKDOWN_ROWS = 50


@dataclass(frozen=True)
class LandingTarget:
    """One source that can receive files through the landing zone.

    ``source`` is the params source name and the landing subfolder; ``kind`` its reader kind;
    ``dest_root`` its raw root (``sources.<source>.root``, created if missing);
    ``annotation_ext`` an annotation extension every record must bring (wfdb sources such as
    MIT-BIH ``atr``), None when none is required.
    """

    source: str
    kind: str
    dest_root: Path
    annotation_ext: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in LANDING_KINDS:
            raise ValueError(
                f"landing target {self.source!r}: kind {self.kind!r} cannot land; expected one of "
                f"{', '.join(LANDING_KINDS)} (self-contained records)"
            )
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", self.source):
            raise ValueError(f"landing target source {self.source!r} must be a plain folder name")
        if self.annotation_ext is not None and not re.fullmatch(r"\w+", self.annotation_ext):
            raise ValueError(f"annotation_ext {self.annotation_ext!r} must be a bare extension such as 'atr'")


@dataclass(frozen=True)
class TakenRecord:
    """A record taken by this run (or, in ``already_taken``, by an earlier one).

    ``files`` are in move order (header last) with sha256, size in bytes and destination path;
    ``note`` says how it was resolved when that was not a plain move (e.g. a crash recovery).
    """

    source: str
    record_key: str
    files: tuple[LedgerFile, ...]
    taken_utc: str
    run_id: str
    note: str = ""

    @property
    def size(self) -> int:
        """Total bytes of the record's files."""
        return sum(f.size for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "record_key": self.record_key,
            "taken_utc": self.taken_utc,
            "run_id": self.run_id,
            "note": self.note,
            "files": [
                {"path": f.rel_path, "dest": f.dest_path, "sha256": f.sha256, "size": f.size}
                for f in self.files
            ],
        }

    @classmethod
    def of(cls, entry: LedgerEntry, note: str = "") -> TakenRecord:
        return cls(entry.source, entry.record_key, entry.files, entry.taken_utc, entry.run_id, note)


@dataclass(frozen=True)
class LeftItem:
    """Something left in the landing zone: a record (``item`` = record key) or a single file or
    folder (``item`` = its path relative to the source folder, or to the landing root for
    ``unknown_source``), with its category (one of :data:`CATEGORIES`) and the reason."""

    source: str
    item: str
    category: str
    reason: str
    files: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "item": self.item,
            "category": self.category,
            "reason": self.reason,
            "files": list(self.files),
        }


@dataclass(frozen=True)
class LandingReport:
    """What one take did. In a dry run ``taken`` lists what would be taken and nothing moved."""

    run_id: str
    dry_run: bool
    now_utc: str
    taken: tuple[TakenRecord, ...] = ()
    already_taken: tuple[TakenRecord, ...] = ()
    left: tuple[LeftItem, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Records/files per outcome: ``taken``, ``already_taken`` and every left category."""
        out = {"taken": len(self.taken), "already_taken": len(self.already_taken)}
        out.update(dict.fromkeys(CATEGORIES, 0))
        for item in self.left:
            out[item.category] = out.get(item.category, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict of the whole report."""
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "now_utc": self.now_utc,
            "counts": self.counts,
            "taken": [t.as_dict() for t in self.taken],
            "already_taken": [t.as_dict() for t in self.already_taken],
            "left": [item.as_dict() for item in self.left],
        }

    def markdown(self, max_rows: int = _MARKDOWN_ROWS) -> str:
        """A short Markdown summary (counts, taken records, what was left and why)."""
        verb = "would take" if self.dry_run else "took"
        counts = self.counts
        lines = [
            f"### Landing run `{self.run_id}`{' (dry run)' if self.dry_run else ''} at {self.now_utc}",
            "",
            f"{verb} {counts['taken']} record(s); {counts['already_taken']} already taken; "
            f"{len(self.left)} item(s) left.",
            "",
            "| outcome | count |",
            "|---|---:|",
            *(f"| {name} | {n} |" for name, n in counts.items() if n),
        ]
        if self.taken:
            lines += ["", "| source | record | files | bytes | note |", "|---|---|---:|---:|---|"]
            lines += [
                f"| {t.source} | {_cell(t.record_key)} | {len(t.files)} | {t.size:,} | {_cell(t.note)} |"
                for t in self.taken[:max_rows]
            ]
            lines += _more(len(self.taken), max_rows)
        if self.left:
            lines += ["", "| source | left | category | reason |", "|---|---|---|---|"]
            lines += [
                f"| {i.source} | {_cell(i.item)} | {i.category} | {_cell(i.reason)} |"
                for i in self.left[:max_rows]
            ]
            lines += _more(len(self.left), max_rows)
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _more(total: int, shown: int) -> list[str]:
    return ["", f"... and {total - shown} more (see the JSON report)"] if total > shown else []


# --------------------------------------------------------------------------- entry points


def take_landed(
    landing_root: Path,
    targets: Sequence[LandingTarget],
    ledger_path: Path,
    *,
    settle_s: float,
    verify_checksums: bool = True,
    run_id: str | None = None,
    now: float | None = None,
    dry_run: bool = False,
) -> LandingReport:
    """Take every complete, settled record under ``landing_root`` into its target's raw root.

    ``settle_s``: seconds a file must have been unmodified (by mtime, relative to ``now``, which
    defaults to ``time.time()``). ``verify_checksums`` checks the headers' 16-bit signal
    checksums. ``run_id`` is written into the ledger (default: generated). ``dry_run`` classifies
    only: nothing is moved, deleted or written, and the ledger lock is not taken.

    Raises :class:`pipeline.landing.ledger.LedgerLockedError` at once when another take holds
    the ledger, :class:`pipeline.landing.ledger.LedgerVersionError` for a ledger of another
    schema, ``ValueError`` for bad targets.
    """
    if not settle_s >= 0:
        raise ValueError(f"settle_s must be >= 0 seconds, got {settle_s}")
    by_source = _checked_targets(landing_root, targets)
    now = time.time() if now is None else float(now)
    run_id = run_id or f"take-{_utc(now, compact=True)}-{uuid.uuid4().hex[:6]}"
    if dry_run:
        with LandingLedger(ledger_path, readonly=True) as ledger:
            return _Take(Path(landing_root), ledger, settle_s, verify_checksums, now, run_id, True).run(
                by_source
            )
    with ledger_lock(ledger_path), LandingLedger(ledger_path) as ledger:
        return _Take(Path(landing_root), ledger, settle_s, verify_checksums, now, run_id, False).run(
            by_source
        )


def landing_status(
    landing_root: Path,
    targets: Sequence[LandingTarget],
    ledger_path: Path,
    *,
    settle_s: float,
    verify_checksums: bool = True,
    now: float | None = None,
) -> LandingReport:
    """What a take would do now: :func:`take_landed` with ``dry_run=True``."""
    return take_landed(
        landing_root,
        targets,
        ledger_path,
        settle_s=settle_s,
        verify_checksums=verify_checksums,
        now=now,
        dry_run=True,
    )


def _checked_targets(landing_root: Path, targets: Sequence[LandingTarget]) -> dict[str, LandingTarget]:
    by_source: dict[str, LandingTarget] = {}
    for target in targets:
        if target.source in by_source:
            raise ValueError(f"landing target {target.source!r} is given twice")
        landing = os.path.realpath(Path(landing_root) / target.source)
        dest = os.path.realpath(target.dest_root)
        if _inside(dest, landing) or _inside(landing, dest):
            raise ValueError(
                f"landing target {target.source!r}: destination {target.dest_root} and landing folder "
                f"{landing} overlap; expected separate folders"
            )
        by_source[target.source] = target
    return by_source


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _utc(seconds: float, compact: bool = False) -> str:
    fmt = "%Y%m%dT%H%M%SZ" if compact else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.fromtimestamp(seconds, UTC).strftime(fmt)


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class _Stat:
    size: int
    mtime: float
    mtime_ns: int


@dataclass
class _Listing:
    """A source folder: regular files with their stat, and entries that are never taken."""

    files: dict[str, _Stat] = field(default_factory=dict)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # hidden / temporary
    strange: list[tuple[str, str]] = field(default_factory=list)  # links, devices, ...


def _temporary(name: str) -> str | None:
    """Why a file or folder name is never taken (hidden or an editor/upload temp), or None."""
    if name.startswith("."):
        return "hidden"
    for suffix in _TEMP_SUFFIXES:
        if name.endswith(suffix):
            return f"temporary ({suffix})"
    return None


def _walk(folder: Path) -> _Listing:
    listing = _Listing()
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            entries = sorted(os.scandir(folder / prefix), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            rel = posixpath.join(prefix, entry.name) if prefix else entry.name
            why = _temporary(entry.name)
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
                listing.files[rel] = _Stat(info.st_size, info.st_mtime, info.st_mtime_ns)
            else:
                listing.strange.append((rel, "not a regular file"))
    return listing


# --------------------------------------------------------------------------- the take


class _Skip(Exception):
    """A record is left this run; carries its category and reason."""

    def __init__(self, category: str, reason: str) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason


class _Take:
    """State of one run over all targets."""

    def __init__(
        self,
        landing_root: Path,
        ledger: LandingLedger,
        settle_s: float,
        verify_checksums: bool,
        now: float,
        run_id: str,
        dry_run: bool,
    ) -> None:
        self.landing_root = landing_root
        self.ledger = ledger
        self.settle_s = settle_s
        self.verify_checksums = verify_checksums
        self.now = now
        self.run_id = run_id
        self.dry_run = dry_run
        self.taken: list[TakenRecord] = []
        self.already: list[TakenRecord] = []
        self.left: list[LeftItem] = []

    def run(self, targets: dict[str, LandingTarget]) -> LandingReport:
        # Destination roots are created only by a move (dest.parent.mkdir below): an empty source root
        # would turn "skipped: root does not exist" into an empty source and change the store's report.
        self._unknown_entries(targets)
        for source in sorted(targets):
            if (self.landing_root / source).is_dir():
                _SourceTake(self, targets[source]).run()
        return LandingReport(
            run_id=self.run_id,
            dry_run=self.dry_run,
            now_utc=_utc(self.now),
            taken=tuple(self.taken),
            already_taken=tuple(self.already),
            left=tuple(self.left),
        )

    def _unknown_entries(self, targets: dict[str, LandingTarget]) -> None:
        """Report everything in the landing root that is not a target's folder."""
        if not self.landing_root.is_dir():
            return
        for entry in sorted(os.scandir(self.landing_root), key=lambda e: e.name):
            if entry.name in targets and entry.is_dir():
                continue
            why = _temporary(entry.name)
            if why is not None:
                self.left.append(LeftItem("", entry.name, "settling", f"{why} entry; ignored, never taken"))
            elif entry.is_dir(follow_symlinks=False):
                files = tuple(posixpath.join(entry.name, f) for f in list_files(Path(entry.path)))
                known = ", ".join(sorted(targets)) or "none"
                reason = f"folder {entry.name!r} is not a landing target (targets: {known})"
                self.left.append(LeftItem(entry.name, entry.name, "unknown_source", reason, files))
            else:
                reason = "directly in the landing root; expected <landing_root>/<source>/..."
                self.left.append(LeftItem("", entry.name, "unknown_source", reason, (entry.name,)))


class _SourceTake:
    """One target's landing folder within a run."""

    def __init__(self, take: _Take, target: LandingTarget) -> None:
        self.take = take
        self.target = target
        self.source = target.source
        self.folder = take.landing_root / target.source
        self.listing = _walk(self.folder)
        self._dest_names: dict[str, str] | None = None
        self._taken_names: dict[str, str] = {}

    # ------------------------------------------------------------------ classification

    def run(self) -> None:
        for rel, why in self.listing.ignored:
            self._leave(rel, "settling", f"{why} file or folder; ignored, never taken on its own", (rel,))
        for rel, why in self.listing.strange:
            self._leave(rel, "invalid", why, (rel,))
        checks = [self._check(h) for h in sorted(f for f in self.listing.files if f.endswith(HEADER_SUFFIX))]
        owner = self._claims(checks)
        for check in checks:
            clash = [f for f in check.files[:-1] if owner.get(f, check.header) != check.header]
            self._record(check, clash, owner)
        for rel in sorted(self.listing.files):
            if rel not in owner:
                self._unclaimed(rel)

    def _check(self, header_rel: str) -> RecordCheck:
        return check_record(
            self.folder,
            header_rel,
            annotation_ext=self.target.annotation_ext,
            signal_suffixes=_SIGNAL_SUFFIXES[self.target.kind],
            required_comments=_REQUIRED_COMMENTS.get(self.target.kind, ()),
            verify_checksums=self.take.verify_checksums,
        )

    def _claims(self, checks: list[RecordCheck]) -> dict[str, str]:
        """Owner header of each present file: a header owns itself, then, in sorted order, the
        first header naming a file owns it."""
        owner = {c.header: c.header for c in checks}
        for check in checks:
            for rel in check.files[:-1]:
                if rel in self.listing.files:
                    owner.setdefault(rel, check.header)
        return owner

    def _record(self, check: RecordCheck, clash: list[str], owner: dict[str, str]) -> None:
        present = tuple(f for f in check.files if f in self.listing.files and owner.get(f) == check.header)
        try:
            entry = self.take.ledger.get(self.source, check.record_key)
            if entry is not None:
                self._known(check, present, entry)
                return
            if clash:
                names = ", ".join(f"{f} (belongs to {owner[f]})" for f in clash)
                raise _Skip("invalid", f"{check.header}: names files of another record: {names}")
            if check.status != COMPLETE:
                raise _Skip(check.status, check.reason)
            late = [f for f in check.files if f not in present]
            if late:
                raise _Skip("settling", f"{late[0]} appeared while the folder was scanned; taken next run")
            self._settled(present)
            self._name_is_free(check.record_key)
            self._take(check, present)
        except _Skip as skip:
            self._leave(check.record_key, skip.category, skip.reason, present)
        except OSError as exc:
            reason = f"{exc.filename or check.header}: {exc.strerror or exc}; retried next run"
            self._leave(check.record_key, "error", reason, present)

    def _settled(self, files: Iterable[str]) -> None:
        """Raise ``settling`` when a file was modified less than ``settle_s`` ago."""
        ages = {f: self.take.now - self.listing.files[f].mtime for f in files}
        young = {f: age for f, age in ages.items() if age < self.take.settle_s}
        if young:
            rel, age = min(young.items(), key=lambda kv: kv[1])
            raise _Skip(
                "settling",
                f"{rel} modified {max(age, 0):.0f} s ago; waits until unchanged for "
                f"settle_s={self.take.settle_s:g} s",
            )

    def _name_is_free(self, key: str) -> None:
        """CinC readers identify a record by its name alone: a second folder holding the same name
        would be rejected there as a duplicate, so it is a conflict here."""
        if self.target.kind != "cinc2021":
            return
        name = PurePosixPath(key).name
        if self._dest_names is None:
            root = self.target.dest_root
            headers = [f for f in list_files(root) if f.endswith(HEADER_SUFFIX)] if root.is_dir() else []
            self._dest_names = {PurePosixPath(h).stem: h[: -len(HEADER_SUFFIX)] for h in headers}
        for names, where in ((self._dest_names, "the destination"), (self._taken_names, "this run")):
            if names.get(name, key) != key:
                raise _Skip(
                    "conflict",
                    f"record name {name} already exists as {names[name]} in {where}; "
                    "the cinc2021 reader identifies records by name",
                )

    # ------------------------------------------------------------------ known records

    def _known(self, check: RecordCheck, present: tuple[str, ...], entry: LedgerEntry) -> None:
        """A record key already in the ledger: identical files are removed, others are a conflict."""
        earlier = f"taken at {entry.taken_utc} by run {entry.run_id}"
        self._settled(present)
        hashes = {f: sha256_file(self.folder / f) for f in present}
        differ = [f for f in present if (e := entry.file(f)) is None or e.sha256 != hashes[f]]
        if not differ:
            self._dest_still_there(entry)
            failed = self._remove(present)
            self.take.already.append(
                TakenRecord.of(entry, self._gone_note("dropped again identical", failed))
            )
            return
        if check.status == INCOMPLETE:
            raise _Skip(INCOMPLETE, f"{check.reason} (record {check.record_key} was {earlier})")
        detail = ", ".join(
            f"{f}: not part of that take" if entry.file(f) is None else f"{f}: sha256 {hashes[f][:12]}..."
            for f in differ
        )
        raise _Skip(
            "conflict",
            f"record {check.record_key} was {earlier} with different content ({detail}); "
            "left untouched, raw data is never overwritten",
        )

    def _unclaimed(self, rel: str) -> None:
        """A file no header names: a leftover of an earlier take, or an orphan."""
        try:
            self._unclaimed_file(rel)
        except OSError as exc:
            self._leave(rel, "error", f"{rel}: {exc.strerror or exc}; retried next run", (rel,))

    def _unclaimed_file(self, rel: str) -> None:
        entry = self.take.ledger.find_file(self.source, rel)
        try:
            self._settled([rel])
        except _Skip as skip:
            self._leave(rel, skip.category, skip.reason, (rel,))
            return
        if entry is not None:
            taken = entry.file(rel)
            assert taken is not None
            if taken.sha256 == sha256_file(self.folder / rel):
                try:
                    self._dest_still_there(entry)
                except _Skip as skip:
                    self._leave(rel, skip.category, skip.reason, (rel,))
                    return
                failed = self._remove((rel,))
                self.take.already.append(
                    TakenRecord.of(entry, self._gone_note(f"leftover file {rel}", failed))
                )
                return
            reason = (
                f"{rel} was taken with record {entry.record_key} at {entry.taken_utc} by run {entry.run_id} "
                "with different content; left untouched"
            )
            self._leave(rel, "conflict", reason, (rel,))
            return
        self._leave(rel, "orphan", self._orphan_reason(rel), (rel,))

    def _orphan_reason(self, rel: str) -> str:
        path = PurePosixPath(rel)
        header = path.with_suffix(HEADER_SUFFIX).as_posix()
        taken = self.take.ledger.get(self.source, path.with_suffix("").as_posix())
        if taken is not None:
            return (
                f"its record {taken.record_key} was taken at {taken.taken_utc} by run {taken.run_id} without "
                "this file; it is not part of what this source's landing target requires"
            )
        if path.suffix in _DATA_SUFFIXES or path.suffix == f".{self.target.annotation_ext}":
            return f"waiting for its header {header}"
        return "no header names this file; the landing zone takes records only (a header and its files)"

    def _dest_still_there(self, entry: LedgerEntry) -> None:
        """Before a landing copy of a taken record is deleted, make sure it is not the last copy."""
        missing = [f.dest_path for f in entry.files if not os.path.isfile(f.dest_path)]
        if missing:
            raise _Skip(
                "conflict",
                f"record {entry.record_key} was taken at {entry.taken_utc} by run {entry.run_id} but "
                f"{missing[0]} is gone from the destination; the landing copy is kept (remove the "
                "ledger row to take it again)",
            )

    def _gone_note(self, what: str, failed: str) -> str:
        if self.take.dry_run:
            return f"{what}; dry run: would be removed from the landing zone"
        return f"{what}; {failed or 'removed from the landing zone'}"

    # ------------------------------------------------------------------ moving

    def _take(self, check: RecordCheck, present: tuple[str, ...]) -> None:
        files = tuple(self._ledger_file(rel) for rel in present)
        at_dest = self._at_destination(files)
        note = ""
        if len(at_dest) == len(files):
            note = "destination already held identical files (an earlier take stopped before its ledger row)"
        elif at_dest:
            note = f"resumed: {len(at_dest)} file(s) were already at the destination"
        self._not_in_ledger(files)
        if self.take.dry_run:
            self._taken(
                check, files, "dry run: complete and settled, would be taken" + (f"; {note}" if note else "")
            )
            return
        self._unchanged(present)
        try:
            self._move(files, at_dest)
            self._append_records(check.record_key)
        except OSError as exc:
            raise _Skip(
                "error", f"moving to {self.target.dest_root} failed: {exc}; retried next run"
            ) from exc
        entry = LedgerEntry(self.source, check.record_key, files, _utc(self.take.now), self.take.run_id)
        self.take.ledger.add(entry)
        self._taken(check, files, "; ".join(filter(None, [note, self._remove(present)])))

    def _not_in_ledger(self, files: tuple[LedgerFile, ...]) -> None:
        """A file path belongs to one record: one taken before with another record is a conflict."""
        for f in files:
            entry = self.take.ledger.find_file(self.source, f.rel_path)
            if entry is not None:
                raise _Skip(
                    "conflict",
                    f"{f.rel_path} was taken with record {entry.record_key} at {entry.taken_utc} by run "
                    f"{entry.run_id}; left untouched",
                )

    def _taken(self, check: RecordCheck, files: tuple[LedgerFile, ...], note: str) -> None:
        self._taken_names[PurePosixPath(check.record_key).name] = check.record_key
        self.take.taken.append(
            TakenRecord(self.source, check.record_key, files, _utc(self.take.now), self.take.run_id, note)
        )

    def _ledger_file(self, rel: str) -> LedgerFile:
        path = self.folder / rel
        return LedgerFile(
            rel, sha256_file(path), self.listing.files[rel].size, str(self.target.dest_root / rel)
        )

    def _at_destination(self, files: tuple[LedgerFile, ...]) -> set[str]:
        """Files already at the destination with identical content; a different one is a conflict."""
        same = set()
        for f in files:
            dest = Path(f.dest_path)
            if not os.path.lexists(dest):
                continue
            if not dest.is_file() or dest.is_symlink() or sha256_file(dest) != f.sha256:
                raise _Skip(
                    "conflict",
                    f"destination {dest} already exists with different content; "
                    "raw data is never overwritten",
                )
            same.add(f.rel_path)
        return same

    def _unchanged(self, present: tuple[str, ...]) -> None:
        """Raise ``settling`` when a file's size or mtime changed since the listing (it was being
        written while the record was checked)."""
        for rel in present:
            before = self.listing.files[rel]
            try:
                now = os.lstat(self.folder / rel)
            except FileNotFoundError:
                raise _Skip("settling", f"{rel} disappeared during the check; retried next run") from None
            if (now.st_size, now.st_mtime_ns) != (before.size, before.mtime_ns):
                raise _Skip(
                    "settling",
                    f"{rel} changed during the check ({before.size:,} -> {now.st_size:,} bytes); "
                    "retried next run",
                )

    def _move(self, files: tuple[LedgerFile, ...], at_dest: set[str]) -> None:
        """Place the files at the destination, header last, then make the renames durable."""
        folders: set[Path] = set()
        for f in files:
            if f.rel_path in at_dest:
                continue
            dest = Path(f.dest_path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            _place(self.folder / f.rel_path, dest, f.sha256)
            # the new entry and any folder made for it: durable up to the raw root's parent
            folders.update(
                p for p in (dest.parent, *dest.parent.parents) if _inside(str(p), str(self.target.dest_root))
            )
            folders.add(self.target.dest_root.parent)
        for folder in sorted(folders, reverse=True):
            fsync_dir(folder)

    def _append_records(self, key: str) -> None:
        """List ``key`` in the ``RECORDS`` file governing its destination folder, if any."""
        if self.target.kind != "wfdb":
            return
        root = self.target.dest_root
        folder = posixpath.dirname(key)
        while True:
            records = root / folder / RECORDS_FILE if folder else root / RECORDS_FILE
            if records.is_file():
                break
            if not folder:
                return
            folder = posixpath.dirname(folder)
        rel = posixpath.join(folder, RECORDS_FILE) if folder else RECORDS_FILE
        text = records.read_text(encoding="utf-8", errors="replace")
        if parse_records_file(rel, text).lists(key):
            return
        entry = posixpath.relpath(key, folder) if folder else key
        newline = "" if not text or text.endswith("\n") else "\n"
        write_atomic(records, f"{text}{newline}{entry}\n".encode(), suffix=_TEMP)

    def _remove(self, rels: Iterable[str]) -> str:
        """Delete landing files (in the order given: header last); never in a dry run. Returns
        ``""`` or what could not be deleted (the next run reports those as already taken)."""
        if self.take.dry_run:
            return ""
        failed = []
        for rel in rels:
            try:
                (self.folder / rel).unlink(missing_ok=True)
            except OSError as exc:
                failed.append(f"{rel} ({exc.strerror or exc})")
        return f"could not remove from the landing zone: {', '.join(failed)}" if failed else ""

    def _leave(self, item: str, category: str, reason: str, files: tuple[str, ...]) -> None:
        self.take.left.append(LeftItem(self.source, item, category, reason, files))


# --------------------------------------------------------------------------- file helpers


def _place(src: Path, dest: Path, sha256: str) -> None:
    """Make ``dest`` appear atomically with ``src``'s bytes, never replacing an existing file.

    A hard link shares the landing file's inode (no copy, landing copy kept until the ledger row);
    across filesystems the bytes are copied to a hidden temporary name, fsynced, checked against
    ``sha256`` and renamed.
    """
    try:
        os.link(src, dest, follow_symlinks=False)
        return
    except FileExistsError:
        raise _Skip("conflict", f"destination {dest} appeared during the take; left untouched") from None
    except OSError:
        pass  # another filesystem, or one without hard links: copy
    tmp = temp_path(dest, _TEMP)
    try:
        digest = _copy_fsync(src, tmp)
        if digest != sha256:
            raise _Skip("settling", f"{src.name} changed while it was copied; retried next run")
        info = os.stat(src)
        os.utime(tmp, ns=(info.st_atime_ns, info.st_mtime_ns))
        if os.path.lexists(dest):
            raise _Skip("conflict", f"destination {dest} appeared during the take; left untouched")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_fsync(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` (created new), fsync it and return the sha256 of the bytes copied."""
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        while block := fin.read(_COPY_CHUNK):
            h.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest()
