"""Text for people: what ``ecgpipe demo-data`` wrote and what ``ecgpipe summary`` found.

Plain values in, lines of text out: thousands separated, units named, no Python reprs. The
``--json`` forms print the underlying dicts unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TOP_REASONS = 5


def counts_phrase(counts: Mapping[str, int], unit: str = "") -> str:
    """``{"N": 1200, "A": 80}`` → ``"N 1,200, A 80"`` (in the mapping's order)."""
    suffix = f" {unit}" if unit else ""
    return ", ".join(f"{k} {v:,}{suffix}" for k, v in counts.items()) or "none"


def demo_lines(summary: Any) -> list[str]:
    """What a :class:`pipeline.demo.raw_tree.DemoSummary` says, one line per source."""
    lines = [f"synthetic demo data (seed {summary.seed}) in {summary.out_dir}:"]
    for source, root in summary.roots.items():
        if source in summary.skipped:
            lines.append(f"  {source:<9} {root}: left alone (it holds real data, no demo marker)")
            continue
        by_class = {(f"class {k}" if source == "ucr" else k): n for k, n in summary.counts[source].items()}
        unit = "beats" if source == "ucr" else "records"
        extra = ""
        if source == "ptbxl":
            extra = f"; {summary.ptbxl_patients:,} patients"
        elif source == "ucr" and summary.ucr_split:
            extra = f"; {counts_phrase(summary.ucr_split)}"
        lines.append(
            f"  {source:<9} {sum(by_class.values()):,} {unit} in {root} ({counts_phrase(by_class)}{extra})"
        )
    lines.append(f"  {len(summary.files):,} files; next: `ecgpipe ingest` (or `dvc repro`)")
    return lines


def store_lines(name: str, s: Mapping[str, Any], top: int = TOP_REASONS) -> list[str]:
    """One profile of ``ecgpipe summary``: records per source, label counts, the commonest
    quarantine reasons with counts and where the full list is."""
    if s.get("note"):
        return [f"{name}: {s['note']} ({s['store']})"]
    per_source = s.get("records_per_source", {})
    lines = [f"{name}: {s['records']:,} records ({counts_phrase(per_source)}) in {s['store']}"]
    unified = s.get("unified_label_counts", {})
    if unified:
        lines.append(f"  labels: {counts_phrase(unified)}")
    quarantined: Sequence[Mapping[str, Any]] = s.get("quarantined", [])
    if not quarantined:
        lines.append("  quarantined: none")
        return lines
    by_reason: Mapping[str, int] = s.get("quarantined_by_reason", {})
    ranked = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ranked[:top]
    lines.append(
        f"  quarantined: {len(quarantined):,} inputs; commonest reasons ({len(shown)} of {len(ranked)}):"
    )
    width = len(f"{shown[0][1]:,}") if shown else 1
    lines += [f"    {n:>{width},}  {reason}" for reason, n in shown]
    lines.append(f"  full list: {s['store'].rstrip('/')}/quarantine.json (or `ecgpipe summary --json`)")
    return lines
