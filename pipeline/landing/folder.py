"""One landing run's state, and the decisions about a source folder's files that move nothing new.

:class:`Run` holds a run's settings and outcome lists; :class:`SourceFolder` is one target's
landing folder within it and decides what is left and why for files that are not a new record to
take: records already in the ledger (dropped again, or a conflict), leftovers of an earlier take,
orphans, records not yet settled. Taking a new record is :mod:`pipeline.landing.take`.

May import: ``pipeline.landing.check``, ``.files``, ``.ledger``, ``.report``; ``pipeline.sources.base``;
``pipeline.core``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from pipeline.core.fs import sha256_file
from pipeline.landing.check import HEADER_SUFFIX, INCOMPLETE, RecordCheck
from pipeline.landing.files import temporary, walk
from pipeline.landing.ledger import LandingLedger, LedgerEntry
from pipeline.landing.report import LandingTarget, LeftItem, Skip, TakenRecord
from pipeline.sources.base import list_files

_DATA_SUFFIXES = frozenset({".dat", ".mat", ".xyz", ".atr"})


class Run:
    """State of one run over all targets: its settings and what it has taken and left so far."""

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

    def unknown_entries(self, targets: dict[str, LandingTarget]) -> None:
        """Report everything in the landing root that is not a target's folder."""
        if not self.landing_root.is_dir():
            return
        for entry in sorted(os.scandir(self.landing_root), key=lambda e: e.name):
            if entry.name in targets and entry.is_dir():
                continue
            why = temporary(entry.name)
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


class SourceFolder:
    """One target's landing folder within a run: its listing and the decisions that move nothing."""

    def __init__(self, take: Run, target: LandingTarget) -> None:
        self.take = take
        self.target = target
        self.source = target.source
        self.folder = take.landing_root / target.source
        self.listing = walk(self.folder)
        self._dest_names: dict[str, str] | None = None
        self._taken_names: dict[str, str] = {}

    def _leave(self, item: str, category: str, reason: str, files: tuple[str, ...]) -> None:
        self.take.left.append(LeftItem(self.source, item, category, reason, files))

    def _settled(self, files: Iterable[str]) -> None:
        """Raise ``settling`` when a file was modified less than ``settle_s`` ago."""
        ages = {f: self.take.now - self.listing.files[f].mtime for f in files}
        young = {f: age for f, age in ages.items() if age < self.take.settle_s}
        if young:
            rel, age = min(young.items(), key=lambda kv: kv[1])
            raise Skip(
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
                raise Skip(
                    "conflict",
                    f"record name {name} already exists as {names[name]} in {where}; "
                    "the cinc2021 reader identifies records by name",
                )

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
            raise Skip(INCOMPLETE, f"{check.reason} (record {check.record_key} was {earlier})")
        detail = ", ".join(
            f"{f}: not part of that take" if entry.file(f) is None else f"{f}: sha256 {hashes[f][:12]}..."
            for f in differ
        )
        raise Skip(
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
        except Skip as skip:
            self._leave(rel, skip.category, skip.reason, (rel,))
            return
        if entry is not None:
            taken = entry.file(rel)
            assert taken is not None
            if taken.sha256 == sha256_file(self.folder / rel):
                try:
                    self._dest_still_there(entry)
                except Skip as skip:
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
        missing = [f.dest_path for f in entry.files if not Path(f.dest_path).is_file()]
        if missing:
            raise Skip(
                "conflict",
                f"record {entry.record_key} was taken at {entry.taken_utc} by run {entry.run_id} but "
                f"{missing[0]} is gone from the destination; the landing copy is kept (remove the "
                "ledger row to take it again)",
            )

    def _gone_note(self, what: str, failed: str) -> str:
        if self.take.dry_run:
            return f"{what}; dry run: would be removed from the landing zone"
        return f"{what}; {failed or 'removed from the landing zone'}"

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
