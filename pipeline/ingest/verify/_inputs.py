"""Checks of the raw inputs: each source discovered as the last ingest did, every raw file in
exactly one place, every unit ingested or quarantined from the files it was read from (sha256).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.fs import sha256_file
from pipeline.core.records import InputUnit, ReadError
from pipeline.ingest.plan import SourceScan, fingerprint, scan_source
from pipeline.ingest.verify._result import Checks, ShardData
from pipeline.sources.base import SourceReader, confined_path, list_files
from pipeline.store.manifest import Manifest, UnitEntry


def scan_sources(
    ctx: Checks, manifest: Manifest, readers: Mapping[str, SourceReader]
) -> dict[str, SourceScan]:
    """Discover each source as the last ingest did (with its ``--limit``, for a smoke store)."""
    limit = manifest.runs[-1].limit if manifest.runs else None
    scans: dict[str, SourceScan] = {}
    for name, reader in readers.items():
        scan = scan_source(name, reader, int(limit) if limit is not None else None)
        if scan.skipped:
            ctx.warn("inputs", str(reader.root), f"source {name} not checked: {scan.skipped}")
        scans[name] = scan
    known = set(readers)
    gone = sorted({uid.split("/", 1)[0] for uid in manifest.units} - known)
    for name in gone:
        ctx.problem(
            "inputs",
            "stale",
            f"manifest.json: units[{name}/...]",
            f"sources of the profile: {sorted(known)}",
            f"units of source {name}, which no longer feeds this profile",
        )
    return scans


def check_inputs(
    ctx: Checks,
    manifest: Manifest,
    scans: Mapping[str, SourceScan],
    readers: Mapping[str, SourceReader],
    shards: Mapping[str, ShardData],
) -> None:
    """Every raw file in exactly one place; every unit ingested or quarantined with its files unchanged."""
    for name, scan in scans.items():
        if scan.skipped:
            continue
        reader = readers[name]
        _check_placements(ctx, manifest, name, reader, scan)
        on_disk = {f"{name}/{u.key}" for u in scan.discovery.units}
        limited = _limited_units(manifest, name, scan)
        for unit in scan.discovery.units:
            _check_unit(ctx, manifest, name, reader, unit, shards)
        for uid in sorted(u for u in manifest.units if u.split("/", 1)[0] == name):
            if uid not in on_disk and uid not in limited:
                ctx.problem(
                    "inputs",
                    "stale",
                    f"{name}: {uid.split('/', 1)[1]}",
                    "its files under the source root",
                    "gone since ingest (its records are still live)"
                    if manifest.units[uid].segments
                    else "gone since ingest",
                )


def _limited_units(manifest: Manifest, name: str, scan: SourceScan) -> set[str]:
    """Manifest units of a smoke store's source that ``--limit`` left out this time."""
    if not scan.limited_out:
        return set()
    keys = {f"{name}/{u.key}" for u in scan.discovery.units}
    return {u for u in manifest.units if u.split("/", 1)[0] == name and u not in keys}


def _check_placements(
    ctx: Checks, manifest: Manifest, name: str, reader: SourceReader, scan: SourceScan
) -> None:
    """Each raw file is in exactly one place; tallies the places in ``counts`` (``files_*``)."""
    places: dict[str, list[str]] = {}
    for unit in scan.discovery.units:
        known = manifest.units.get(f"{name}/{unit.key}")
        status = known.status if known is not None else "new"
        for f in unit.files:
            places.setdefault(f, []).append(f"{status} unit {unit.key}")
    for f in scan.discovery.metadata_files:
        places.setdefault(f, []).append("source metadata")
    for rej in scan.discovery.rejected:
        for f in rej.files:
            places.setdefault(f, []).append(f"rejected at discovery ({rej.item})")
    for f in scan.limited_out_files:
        places.setdefault(f, []).append("left out by --limit")
    tally: Counter[str] = Counter()
    for rel in list_files(reader.root):
        got = places.get(rel, [])
        tally["files_on_disk"] += 1
        if len(got) != 1:
            ctx.problem(
                "accounting",
                "accounting",
                str(reader.root / rel),
                "in exactly one of: an input unit, the source metadata, the discovery rejections",
                f"in {len(got)}: {'; '.join(got)}" if got else "in none",
            )
        for place in got:
            tally[_PLACE_COUNTS[place.split(" ", 1)[0]]] += 1
    for key, n in tally.items():
        ctx.result.counts[key] = ctx.result.counts.get(key, 0) + n


_PLACE_COUNTS = {
    "ingested": "files_in_ingested_units",
    "quarantined": "files_in_quarantined_units",
    "new": "files_not_ingested_yet",
    "source": "files_metadata",
    "rejected": "files_rejected_at_discovery",
    "left": "files_left_out_by_limit",
}


def _check_unit(
    ctx: Checks,
    manifest: Manifest,
    name: str,
    reader: SourceReader,
    unit: InputUnit,
    shards: Mapping[str, ShardData],
) -> None:
    uid = f"{name}/{unit.key}"
    entry = manifest.units.get(uid)
    where = f"{name}: {unit.key}"
    if entry is None:
        ctx.problem(
            "inputs",
            "stale",
            where,
            "ingested or quarantined (in the manifest)",
            f"not in the manifest: new since the last ingest ({', '.join(unit.files)})",
        )
        return
    hashes = tuple((rel, _sha256_or_missing(reader.root, rel)) for rel in unit.files)
    if fingerprint(reader.reader_id, hashes, unit.extra, manifest.plan_digest) == entry.fingerprint:
        return
    before, reader_then = _ingested_as(manifest, entry, reader, shards)
    ctx.problem(
        "inputs",
        "stale",
        where,
        "the inputs it was ingested from",
        f"stale: re-run ingest; {_why_changed(dict(hashes), before, reader_then, reader.reader_id)}",
    )


def _why_changed(
    now: Mapping[str, str], before: Mapping[str, str], reader_then: str | None, reader_now: str
) -> str:
    """Which files of a unit changed, went or came since ingest (or that the reader changed)."""
    gone = [rel for rel in before if now.get(rel, "missing") == "missing"]
    changed = [
        f"{rel} (sha256 at ingest {before[rel][:12]}, now {h[:12]})"
        for rel, h in now.items()
        if rel in before and h not in ("missing", before[rel])
    ]
    new = [rel for rel, h in now.items() if before and rel not in before and h != "missing"]
    parts = [
        *(["file(s) changed: " + "; ".join(changed)] if changed else []),
        *([f"file(s) removed since ingest: {', '.join(gone)}"] if gone else []),
        *([f"file(s) new in the unit: {', '.join(new)}"] if new else []),
    ]
    if parts:
        return "; ".join(parts)
    if reader_then is not None and reader_then != reader_now:
        return f"reader changed: ingested by {reader_then}, now {reader_now}"
    return "its metadata (its rows in the source's shared tables) changed"


def _sha256_or_missing(root: Path, rel: str) -> str:
    """sha256 as ingest hashes it: a missing file, or a link out of the source root, is "missing"."""
    try:
        return sha256_file(confined_path(root, rel))
    except (OSError, ReadError):
        return "missing"


def _ingested_as(
    manifest: Manifest, entry: UnitEntry, reader: SourceReader, shards: Mapping[str, ShardData]
) -> tuple[dict[str, str], str | None]:
    """File sha256 and reader id as ingested: from a record's provenance, else (quarantined
    units have no record) the sha256 from the stat cache and no reader id."""
    for shard, start, _stop in entry.segments:
        data = shards.get(str(shard))
        if data is not None and int(start) < data.n_records:
            prov = json.loads(data.provenance[int(start)])
            return {str(f): str(h) for f, h in prov.get("files", [])}, str(prov.get("reader"))
    out: dict[str, str] = {}
    for path, cached in manifest.file_cache.items():
        try:
            # PTH100: cache keys are abspath()s (ingest.plan); Path.resolve would follow links and miss them
            rel = Path(path).relative_to(os.path.abspath(reader.root)).as_posix()  # noqa: PTH100 - see above
        except ValueError:
            continue
        out[rel] = str(cached[2])
    return out, None
