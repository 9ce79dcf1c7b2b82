"""What :func:`pipeline.ingest.verify.verify_store` returns (:class:`VerifyResult`, with its
Markdown report) and what every check writes its findings into (:class:`Checks`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.store.base import Store

KIND_HINTS = {
    "corrupt": "published data contradicts the manifest: restore the store, or delete it and re-run ingest",
    "lagging": "a derived file or shard folder does not match the manifest (an ingest was interrupted "
    "or is running): re-run ingest",
    "stale": "raw inputs or parameters changed since ingest: re-run ingest",
    "accounting": "a raw file its reader placed nowhere or twice: the source reader's discovery is wrong",
}
# Report fields that describe the store's content (not one run) and are compared per source.


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_store`.

    ``problems`` and ``warnings`` are dicts with ``check``, ``kind``, ``where``, ``expected`` and
    ``found`` (warnings: ``check``, ``where``, ``found``); ``counts`` are the store's and the
    inputs' tallies (records, shards, units, files by placement, quarantine entries).
    """

    profile: str
    store: str
    problems: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> dict[str, int]:
        """Problem count per kind (``corrupt``, ``lagging``, ``stale``, ``accounting``)."""
        return dict(Counter(p["kind"] for p in self.problems))

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "store": self.store,
            "ok": self.ok,
            "problem_kinds": self.kinds(),
            "problems": self.problems,
            "warnings": self.warnings,
            "counts": self.counts,
        }

    def markdown(self, max_rows: int = 20) -> str:
        """A report: verdict, counts, problems grouped by kind (``max_rows`` each), warnings."""
        verdict = "clean" if self.ok else f"**{len(self.problems)} problem(s)** {self.kinds()}"
        lines = [f"## verify {self.profile}: {verdict}", "", f"store: `{self.store}`", ""]
        lines += ["| count | value |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in self.counts.items()]
        for kind, hint in KIND_HINTS.items():
            rows = [p for p in self.problems if p["kind"] == kind]
            if not rows:
                continue
            lines += ["", f"### {kind} ({len(rows)}): {hint}", ""]
            lines += ["| check | where | expected | found |", "|---|---|---|---|"]
            lines += [
                f"| {p['check']} | {_cell(p['where'])} | {_cell(p['expected'])} | {_cell(p['found'])} |"
                for p in rows[:max_rows]
            ]
            if len(rows) > max_rows:
                lines.append(f"| ... | {len(rows) - max_rows} more (see --json) | | |")
        if self.warnings:
            lines += ["", f"### warnings ({len(self.warnings)})", ""]
            lines += [f"- {w['check']}: {w['where']}: {w['found']}" for w in self.warnings[:max_rows]]
            if len(self.warnings) > max_rows:
                lines.append(f"- ... {len(self.warnings) - max_rows} more (see --json)")
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass
class ShardData:
    """What the checks need from one listed shard: its rows and which of them are live."""

    n_records: int
    live: set[int]
    record_id: list[str]
    unit: list[str]
    provenance: list[str]


@dataclass
class Checks:
    store: Store
    result: VerifyResult

    def problem(self, check: str, kind: str, where: str, expected: str, found: str) -> None:
        self.result.problems.append(
            {"check": check, "kind": kind, "where": where, "expected": expected, "found": found}
        )

    def warn(self, check: str, where: str, found: str) -> None:
        self.result.warnings.append({"check": check, "where": where, "found": found})
