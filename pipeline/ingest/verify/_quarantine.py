"""Check of quarantine.json (and its CSV copy) against the discovery and unit rejections ingest
would write now.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pipeline.ingest.commit import quarantine_of
from pipeline.ingest.plan import SourceScan
from pipeline.ingest.verify._result import Checks
from pipeline.sources.base import SourceReader
from pipeline.store.manifest import Manifest


def check_quarantine(
    ctx: Checks, manifest: Manifest, scans: Mapping[str, SourceScan], readers: Mapping[str, SourceReader]
) -> list[dict[str, Any]]:
    """quarantine.json (and .csv) hold exactly the discovery and unit rejections; returns the JSON."""
    try:
        found: list[dict[str, Any]] = json.loads(ctx.store.read_bytes("quarantine.json").decode("utf-8"))
        written_ns = ctx.store.modified_ns("quarantine.json") or 0
    except (OSError, json.JSONDecodeError) as exc:
        ctx.problem("quarantine", "lagging", "quarantine.json", "the quarantine report", f"unreadable: {exc}")
        return []
    skipped = {n for n, s in scans.items() if s.skipped}
    expected = quarantine_of(scans, manifest)
    have = Counter(_key(e) for e in found if not _unverifiable(e, skipped))
    want = Counter(_key(e) for e in expected)
    for key in sorted((want - have).elements()):
        e = json.loads(key)
        ctx.problem(
            "quarantine",
            _quarantine_kind(e, readers, written_ns),
            "quarantine.json",
            f"an entry for {e['source']}: {e['item']}",
            f"none (rejected at {e['stage']}: {e['reason']})",
        )
    for key in sorted((have - want).elements()):
        e = json.loads(key)
        ctx.problem(
            "quarantine",
            _quarantine_kind(e, readers, written_ns),
            "quarantine.json",
            "only current rejections",
            f"an entry for {e['source']}: {e['item']} ({e['reason']}) that neither the manifest "
            "nor the source's discovery has",
        )
    _check_quarantine_csv(ctx, len(found))
    return found


def _key(entry: Mapping[str, Any]) -> str:
    fields = ("source", "item", "files", "reason", "category", "stage")
    return json.dumps({k: entry.get(k) for k in fields}, sort_keys=True)


def _unverifiable(entry: Mapping[str, Any], skipped: set[str]) -> bool:
    """A discovery entry of a source that cannot be discovered now (its root is missing)."""
    return entry.get("stage") == "discover" and entry.get("source") in skipped


def _quarantine_kind(entry: Mapping[str, Any], readers: Mapping[str, SourceReader], written_ns: int) -> str:
    """``stale`` for a discovery rejection whose files changed (or went) after quarantine.json
    was written (the raw tree changed since ingest), else ``lagging`` (the report was cut short
    or edited). A rejection naming no file (a malformed table row) counts as stale."""
    if entry.get("stage") != "discover":
        return "lagging"
    reader = readers.get(str(entry.get("source")))
    files = [str(f) for f in entry.get("files", [])]
    if reader is None or not files:
        return "stale"
    for rel in files:
        try:
            if (reader.root / rel).stat().st_mtime_ns > written_ns:
                return "stale"
        except OSError:
            return "stale"
    return "lagging"


def _check_quarantine_csv(ctx: Checks, n_entries: int) -> None:
    try:
        n_rows = max(len(ctx.store.read_bytes("quarantine.csv").decode("utf-8").splitlines()) - 1, 0)
    except OSError:
        ctx.problem("quarantine", "lagging", "quarantine.csv", "the CSV copy of quarantine.json", "missing")
        return
    if n_rows < n_entries:  # a reason may hold a newline, so the CSV can only have more lines
        ctx.problem(
            "quarantine",
            "lagging",
            "quarantine.csv",
            f">= {n_entries} rows (as quarantine.json)",
            f"{n_rows} rows",
        )
