"""Checks of ingest_report.json and leftover files, and the store's counts."""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.ingest.plan import SourceScan
from pipeline.ingest.verify._result import Checks, ShardData
from pipeline.store.manifest import LABELS_DIR, Manifest

_REPORT_SOURCE_FIELDS = ("units_ingested", "units_quarantined", "records", "files_on_disk")


def check_report(
    ctx: Checks, manifest: Manifest, scans: Mapping[str, SourceScan], quarantine: Sequence[Mapping[str, Any]]
) -> None:
    """ingest_report.json agrees with the manifest, the quarantine report and the files on disk."""
    try:
        report = json.loads(ctx.store.read_bytes("ingest_report.json").decode("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        ctx.problem("report", "lagging", "ingest_report.json", "the ingest report", f"unreadable: {exc}")
        return
    live = sum(e.n_records - len(e.dropped_rows) for e in manifest.shards.values())
    top = {
        "records_total": (live, "live rows of the manifest's shards"),
        "quarantined_inputs": (len(quarantine), "entries in quarantine.json"),
        "reconciled": (True, "every input accounted for"),
    }
    for key, (want, what) in top.items():
        if report.get(key) != want:
            ctx.problem(
                "report", "lagging", f"ingest_report.json: {key}", f"{want} ({what})", str(report.get(key))
            )
    for name, scan in scans.items():
        got = report.get("sources", {}).get(name, {})
        if scan.skipped or "skipped" in got:
            continue
        want_src = _source_counts(manifest, name, scan)
        for key in _REPORT_SOURCE_FIELDS:
            if got.get(key) != want_src[key]:
                kind = "stale" if key == "files_on_disk" else "lagging"
                what = "files under the source root" if key == "files_on_disk" else "from the manifest"
                ctx.problem(
                    "report",
                    kind,
                    f"ingest_report.json: sources.{name}.{key}",
                    f"{want_src[key]} ({what})",
                    str(got.get(key)),
                )


def _source_counts(manifest: Manifest, name: str, scan: SourceScan) -> dict[str, int]:
    units = [u for uid, u in manifest.units.items() if uid.split("/", 1)[0] == name]
    status = Counter(u.status for u in units)
    return {
        "units_ingested": status["ingested"],
        "units_quarantined": status["quarantined"],
        "records": sum(u.n_records for u in units),
        "files_on_disk": scan.files_on_disk,
    }


def check_debris(ctx: Checks, manifest: Manifest) -> None:
    for name in ctx.store.list_names():
        if fnmatch.fnmatchcase(name, ".*.tmp"):
            ctx.warn("debris", name, "temporary file of an interrupted JSON/CSV write")
    current = manifest.labels.paths() if manifest.labels is not None else set()
    for name in ctx.store.list_names(LABELS_DIR):
        if f"{LABELS_DIR}/{name}" not in current:
            ctx.warn("debris", f"{LABELS_DIR}/{name}", "labels store the manifest does not reference")


def count_store(
    ctx: Checks, manifest: Manifest, shards: Mapping[str, ShardData], quarantine: Sequence[Mapping[str, Any]]
) -> None:
    status = Counter(u.status for u in manifest.units.values())
    ctx.result.counts.update(
        {
            "shards": len(manifest.shards),
            "records_live": sum(len(d.live) for d in shards.values()),
            "records_dropped": sum(len(e.dropped_rows) for e in manifest.shards.values()),
            "units_ingested": status["ingested"],
            "units_quarantined": status["quarantined"],
            "quarantine_entries": len(quarantine),
        }
    )
