"""What a landing run reports: the targets it takes into, the records taken, what is left and why.

May import: ``pipeline.landing.ledger``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.landing.ledger import LedgerEntry, LedgerFile

LANDING_KINDS = ("wfdb", "cinc2021", "ptb_diagnostic")
CATEGORIES = ("incomplete", "settling", "orphan", "conflict", "unknown_source", "invalid", "error")
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


class Skip(Exception):
    """A record is left this run; carries its category and reason."""

    def __init__(self, category: str, reason: str) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason
