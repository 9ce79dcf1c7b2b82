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

import os
import posixpath
import time
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from pipeline.core.fs import fsync_dir, sha256_file, temp_path, write_atomic
from pipeline.landing.check import COMPLETE, HEADER_SUFFIX, RecordCheck, check_record
from pipeline.landing.files import TEMP_SUFFIX, inside, utc
from pipeline.landing.files import copy_fsync as _copy_fsync  # looked up here by _place: tests fail it
from pipeline.landing.folder import Run, SourceFolder
from pipeline.landing.ledger import LandingLedger, LedgerEntry, LedgerFile, ledger_lock
from pipeline.landing.report import (
    CATEGORIES,
    LANDING_KINDS,
    LandingReport,
    LandingTarget,
    LeftItem,
    Skip,
    TakenRecord,
)
from pipeline.sources.wfdb_text import RECORDS_FILE, parse_records_file

__all__ = [
    "CATEGORIES",
    "LANDING_KINDS",
    "LandingReport",
    "LandingTarget",
    "LeftItem",
    "TakenRecord",
    "landing_status",
    "take_landed",
]

# Signal files the destination reader groups with a header (None: any file the header names).
_SIGNAL_SUFFIXES: dict[str, tuple[str, ...] | None] = {
    "wfdb": None,
    "cinc2021": (".mat",),
    "ptb_diagnostic": (".dat", ".xyz"),
}
# Comment fields without which a header is not whole yet: CinC labels live in "# Dx:".
_REQUIRED_COMMENTS: dict[str, tuple[str, ...]] = {"cinc2021": ("dx",)}


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
    run_id = run_id or f"take-{utc(now, compact=True)}-{uuid.uuid4().hex[:6]}"
    if dry_run:
        with LandingLedger(ledger_path, readonly=True) as ledger:
            return _run(
                Run(Path(landing_root), ledger, settle_s, verify_checksums, now, run_id, True), by_source
            )
    with ledger_lock(ledger_path), LandingLedger(ledger_path) as ledger:
        return _run(
            Run(Path(landing_root), ledger, settle_s, verify_checksums, now, run_id, False), by_source
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
        if inside(dest, landing) or inside(landing, dest):
            raise ValueError(
                f"landing target {target.source!r}: destination {target.dest_root} and landing folder "
                f"{landing} overlap; expected separate folders"
            )
        by_source[target.source] = target
    return by_source


def _run(run: Run, targets: dict[str, LandingTarget]) -> LandingReport:
    # Destination roots are created only by a move (dest.parent.mkdir below): an empty source root
    # would turn "skipped: root does not exist" into an empty source and change the store's report.
    run.unknown_entries(targets)
    for source in sorted(targets):
        if (run.landing_root / source).is_dir():
            _SourceTake(run, targets[source]).run()
    return LandingReport(
        run_id=run.run_id,
        dry_run=run.dry_run,
        now_utc=utc(run.now),
        taken=tuple(run.taken),
        already_taken=tuple(run.already),
        left=tuple(run.left),
    )


# --------------------------------------------------------------------------- taking a new record


class _SourceTake(SourceFolder):
    """One target's landing folder within a run: checks its headers and takes new, complete records."""

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
                raise Skip("invalid", f"{check.header}: names files of another record: {names}")
            if check.status != COMPLETE:
                raise Skip(check.status, check.reason)
            late = [f for f in check.files if f not in present]
            if late:
                raise Skip("settling", f"{late[0]} appeared while the folder was scanned; taken next run")
            self._settled(present)
            self._name_is_free(check.record_key)
            self._take(check, present)
        except Skip as skip:
            self._leave(check.record_key, skip.category, skip.reason, present)
        except OSError as exc:
            reason = f"{exc.filename or check.header}: {exc.strerror or exc}; retried next run"
            self._leave(check.record_key, "error", reason, present)

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
            raise Skip("error", f"moving to {self.target.dest_root} failed: {exc}; retried next run") from exc
        entry = LedgerEntry(self.source, check.record_key, files, utc(self.take.now), self.take.run_id)
        self.take.ledger.add(entry)
        self._taken(check, files, "; ".join(filter(None, [note, self._remove(present)])))

    def _not_in_ledger(self, files: tuple[LedgerFile, ...]) -> None:
        """A file path belongs to one record: one taken before with another record is a conflict."""
        for f in files:
            entry = self.take.ledger.find_file(self.source, f.rel_path)
            if entry is not None:
                raise Skip(
                    "conflict",
                    f"{f.rel_path} was taken with record {entry.record_key} at {entry.taken_utc} by run "
                    f"{entry.run_id}; left untouched",
                )

    def _taken(self, check: RecordCheck, files: tuple[LedgerFile, ...], note: str) -> None:
        self._taken_names[PurePosixPath(check.record_key).name] = check.record_key
        self.take.taken.append(
            TakenRecord(self.source, check.record_key, files, utc(self.take.now), self.take.run_id, note)
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
                raise Skip(
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
                raise Skip("settling", f"{rel} disappeared during the check; retried next run") from None
            if (now.st_size, now.st_mtime_ns) != (before.size, before.mtime_ns):
                raise Skip(
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
                p for p in (dest.parent, *dest.parent.parents) if inside(str(p), str(self.target.dest_root))
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
        write_atomic(records, f"{text}{newline}{entry}\n".encode(), suffix=TEMP_SUFFIX)


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
        raise Skip("conflict", f"destination {dest} appeared during the take; left untouched") from None
    except OSError:
        pass  # another filesystem, or one without hard links: copy
    tmp = temp_path(dest, TEMP_SUFFIX)
    try:
        digest = _copy_fsync(src, tmp)
        if digest != sha256:
            raise Skip("settling", f"{src.name} changed while it was copied; retried next run")
        info = src.stat()
        os.utime(tmp, ns=(info.st_atime_ns, info.st_mtime_ns))
        if os.path.lexists(dest):
            raise Skip("conflict", f"destination {dest} appeared during the take; left untouched")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
