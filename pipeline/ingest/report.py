"""Human and machine summaries of a profile's store: counts, labels, quarantine."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pipeline.store.base import Store
from pipeline.store.labels import read_labels
from pipeline.store.local import raw_labels_from_json, read_strings


def profile_summary(store: Store) -> dict[str, Any]:
    """Record count, per-source counts, unified and raw label counts, quarantine with reasons."""
    manifest = store.load_manifest()
    per_source: Counter[str] = Counter()
    raw: dict[str, Counter[str]] = {}
    for name, entry in sorted(manifest.shards.items()):
        group = store.open_shard(name)
        rows = entry.live_rows()
        sources = read_strings(group, "source")
        labels = read_strings(group, "raw_labels")
        for i in rows:
            src = sources[i]
            per_source[src] += 1
            counter = raw.setdefault(src, Counter())
            counter.update({lab.code for lab in raw_labels_from_json(labels[i])})
    quarantine = store.read_json("quarantine.json", [])
    unified: dict[str, int] = {}
    lab = read_labels(store)
    if lab is not None:
        unified = {v: int(c) for v, c in zip(lab.vocabulary, lab.y.sum(axis=0), strict=True)}
    return {
        "profile": store.profile,
        "store": store.location(),
        "records": int(sum(per_source.values())),
        "records_per_source": dict(sorted(per_source.items())),
        "unified_label_counts": unified,
        "raw_label_counts": {s: dict(sorted(c.items())) for s, c in sorted(raw.items())},
        "schemes": scheme_summary(store),
        "quarantined": [
            {k: e[k] for k in ("source", "item", "category", "stage", "reason")} for e in quarantine
        ],
        "quarantined_by_reason": _reason_counts(quarantine),
        "quarantined_by_category": dict(Counter(str(e["category"]) for e in quarantine)),
    }


def scheme_summary(store: Store) -> dict[str, Any]:
    """Per derived label scheme: label counts and the codes with no row, per source.

    ``unmapped`` is ``{source: {code: n_records}}``; ``unmapped_per_source`` sums it per source
    (records stating a code the scheme's tables do not know, e.g. PTB-XL codes under ``cinc2017``).
    """
    manifest = store.load_manifest()
    if manifest.labels is None:
        return {}
    out: dict[str, Any] = {}
    for name in [None, *sorted(manifest.labels.schemes)]:
        lab = read_labels(store, name)
        if lab is None:
            continue
        counts = {v: int(c) for v, c in zip(lab.vocabulary, lab.y.sum(axis=0), strict=True)}
        unmapped = {s: dict(sorted(c.items())) for s, c in sorted(lab.unmapped.items())}
        out[lab.scheme] = {
            "label_counts": counts,
            "unmapped_per_source": {s: int(sum(c.values())) for s, c in unmapped.items()},
            "unmapped": unmapped,
        }
    return out


_SPECIFIC = re.compile(r"\S*[/\\]\S*|\S+\.(hea|dat|mat|csv|txt|ts|arff|tsv|hdf5|atr)\b|\d+(\.\d+)?")


def _reason_counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Counts of reasons with file names and numbers masked, so alike reasons group together."""
    c = Counter(f"{e['source']}: {e['category']}: {_SPECIFIC.sub('*', e['reason'])[:100]}" for e in entries)
    return dict(c.most_common())


def ingest_markdown(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table per profile: what each source contributed and what was quarantined."""
    lines = ["# ECG ingest summary", ""]
    for profile, rep in reports.items():
        lines += [
            f"## {profile}",
            "",
            f"records: **{rep['records_total']}** total, {rep['records_processed_this_run']} processed now; "
            f"units unchanged {rep['units_unchanged']}, vanished {rep['units_vanished']}; "
            f"not ingested {rep['quarantined_by_category']}; reconciled: **{rep['reconciled']}**",
            "",
            "| source | files | units | ingested | quarantined | records | note |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for name, s in rep["sources"].items():
            if "skipped" in s:
                lines.append(f"| {name} | | | | | | skipped: {s['skipped']} ({s.get('root', '')}) |")
                continue
            lines.append(
                f"| {name} | {s['files_on_disk']} | {s['units_on_disk']} | {s['units_ingested']} | "
                f"{s['units_quarantined']} | {s['records']} | "
                f"{'' if s['reconciled'] else 'NOT RECONCILED'} |"
            )
        lines.append("")
    return "\n".join(lines)


def ingest_metrics(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Flat per-profile numbers for ``dvc metrics show``."""
    out: dict[str, Any] = {}
    for profile, rep in reports.items():
        out[profile] = {
            "records": rep["records_total"],
            "records_processed_this_run": rep["records_processed_this_run"],
            "quarantined_inputs": rep["quarantined_inputs"],
            "reconciled": int(bool(rep["reconciled"])),
        }
    return out
