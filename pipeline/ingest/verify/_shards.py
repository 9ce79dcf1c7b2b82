"""Checks of the manifest and the shards it lists: hashes, record counts, array lengths, unit
segments, record ids live once (finding kinds ``corrupt`` and ``lagging``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from pipeline.ingest.verify._result import Checks, ShardData
from pipeline.store.local import STRING_FIELDS, array, read_strings
from pipeline.store.manifest import FORMAT_VERSION, SHARDS_DIR, Manifest, ShardEntry, StoreError, live_rows

NUMERIC_FIELDS = ("orig_fs", "orig_len", "valid_len", "clipped")
_SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_lock(ctx: Checks) -> None:
    holder = ctx.store.lock_holder()
    if holder is not None:
        ctx.warn("lock", ".lock", f"an ingest holds the store's lock ({holder}): findings may be transient")


def check_manifest(ctx: Checks) -> Manifest | None:
    if not ctx.store.has_manifest():
        ctx.problem(
            "manifest",
            "lagging",
            "manifest.json",
            "a manifest",
            "missing: not ingested yet, or never finished",
        )
        return None
    try:
        manifest = ctx.store.load_manifest()
    except StoreError as exc:
        ctx.problem(
            "manifest", "corrupt", "manifest.json", f"readable JSON of format {FORMAT_VERSION}", str(exc)
        )
        return None
    if manifest.profile != ctx.store.profile:
        ctx.problem("manifest", "corrupt", "manifest.json: profile", ctx.store.profile, manifest.profile)
    return manifest


def check_shards(ctx: Checks, manifest: Manifest) -> dict[str, ShardData]:
    """Hash, record count and array lengths of every listed shard; returns the readable ones."""
    out: dict[str, ShardData] = {}
    for name, entry in sorted(manifest.shards.items()):
        if not _SHARD_NAME.fullmatch(name):  # never follow a manifest's path out of shards/
            ctx.problem("shard_name", "corrupt", f"manifest.json: shards[{name!r}]", "part-NNNNNN-NN", name)
            continue
        where = f"{SHARDS_DIR}/{name}"
        if not ctx.store.has_shard(name):
            ctx.problem(
                "shard_missing", "corrupt", where, "a shard folder (listed in the manifest)", "missing"
            )
            continue
        digest, nbytes = ctx.store.shard_digest(name)
        if digest != entry.sha256:
            ctx.problem(
                "shard_hash",
                "corrupt",
                where,
                f"sha256 {entry.sha256} ({entry.nbytes} bytes)",
                f"sha256 {digest} ({nbytes} bytes): its files changed after publishing",
            )
        data = _read_shard(ctx, name, entry)
        if data is not None:
            out[name] = data
    return out


def _read_shard(ctx: Checks, name: str, entry: ShardEntry) -> ShardData | None:
    where = f"{SHARDS_DIR}/{name}"
    n = entry.n_records
    try:
        group = ctx.store.open_shard(name)
        shape = tuple(array(group, "signal").shape)
        lengths = {f: array(group, f).shape for f in (*STRING_FIELDS, *NUMERIC_FIELDS)}
        strings = {f: read_strings(group, f) for f in ("record_id", "unit", "provenance")}
    except Exception as exc:  # noqa: BLE001 - any failure to open is the finding itself
        ctx.problem(
            "shard_unreadable", "corrupt", where, "a readable zarr v3 shard", f"{type(exc).__name__}: {exc}"
        )
        return None
    if len(shape) != 3 or shape[0] != n:
        ctx.problem("shard_records", "corrupt", f"{where}/signal", f"shape ({n}, C, L)", f"shape {shape}")
    for fname, got in lengths.items():
        if got != (n,):
            ctx.problem("shard_records", "corrupt", f"{where}/{fname}", f"shape ({n},)", f"shape {got}")
    dropped = entry.dropped_rows
    bad = [r for r in dropped if not 0 <= r < n]
    if bad:
        ctx.problem(
            "shard_records",
            "corrupt",
            f"manifest.json: shards[{name}].dropped_rows",
            f"rows in 0..{n - 1}",
            f"{bad[:10]}",
        )
    if any(len(v) != n for v in strings.values()):
        return None  # already reported; row-level checks would only repeat it
    live = {int(r) for r in live_rows(n, [r for r in dropped if 0 <= r < n])}
    return ShardData(n, live, strings["record_id"], strings["unit"], strings["provenance"])


def check_unlisted(ctx: Checks, manifest: Manifest) -> None:
    for name in ctx.store.shard_names():
        if name.startswith(".tmp-"):
            ctx.warn(
                "debris",
                f"{SHARDS_DIR}/{name}",
                "temporary shard folder of an interrupted write (next ingest removes it)",
            )
        elif name not in manifest.shards:
            ctx.problem(
                "shard_unlisted",
                "lagging",
                f"{SHARDS_DIR}/{name}",
                "only shards the manifest lists",
                "a shard the manifest does not list (left by an interrupted ingest, which the next "
                "ingest removes, or added behind the manifest's back)",
            )


def check_duplicates(ctx: Checks, shards: Mapping[str, ShardData]) -> None:
    seen: dict[str, list[str]] = {}
    for name, data in sorted(shards.items()):
        for row in sorted(data.live):
            seen.setdefault(data.record_id[row], []).append(f"{name}[{row}]")
    for rid, places in sorted(seen.items()):
        if len(places) > 1:
            ctx.problem(
                "duplicate_record_id",
                "corrupt",
                rid,
                "live in exactly one shard row",
                f"live in {len(places)} rows: {', '.join(places)}",
            )


def check_segments(ctx: Checks, manifest: Manifest, shards: Mapping[str, ShardData]) -> None:
    """Each unit's segments point at live rows of its own; every live row belongs to one unit."""
    claimed: Counter[tuple[str, int]] = Counter()
    for uid, unit in sorted(manifest.units.items()):
        where = f"manifest.json: units[{uid}]"
        segments = unit.segments
        status = unit.status
        if (status == "ingested") != bool(segments) or status not in ("ingested", "quarantined"):
            ctx.problem(
                "unit_status",
                "corrupt",
                where,
                "status ingested with segments, or quarantined without",
                f"status {status!r} with {len(segments)} segment(s)",
            )
        if status == "quarantined" and not unit.rejections:
            ctx.problem(
                "unit_status", "corrupt", where, "a quarantined unit has its reason(s)", "no rejections"
            )
        total = 0
        for shard, start, stop in segments:
            total += int(stop) - int(start)
            _check_segment(ctx, where, uid, str(shard), int(start), int(stop), manifest, shards)
            claimed.update((str(shard), r) for r in range(int(start), int(stop)))
        if total != unit.n_records:
            ctx.problem(
                "unit_records",
                "corrupt",
                where,
                f"n_records {total} (its segments)",
                f"n_records {unit.n_records}",
            )
    for name, data in sorted(shards.items()):
        orphans = sorted(r for r in data.live if claimed[(name, r)] == 0)
        twice = sorted(r for r in data.live if claimed[(name, r)] > 1)
        if orphans:
            ctx.problem(
                "orphan_rows",
                "corrupt",
                f"shards/{name}",
                "every live row in one unit's segment",
                f"{len(orphans)} live row(s) in no unit, e.g. {_rows(data, orphans)}",
            )
        if twice:
            ctx.problem(
                "orphan_rows",
                "corrupt",
                f"shards/{name}",
                "every live row in one unit's segment",
                f"{len(twice)} live row(s) in several units, e.g. {_rows(data, twice)}",
            )


def _rows(data: ShardData, rows: Sequence[int]) -> str:
    return ", ".join(f"[{r}] {data.record_id[r]}" for r in rows[:5])


def _check_segment(
    ctx: Checks,
    where: str,
    uid: str,
    shard: str,
    start: int,
    stop: int,
    manifest: Manifest,
    shards: Mapping[str, ShardData],
) -> None:
    seg = f"{where}: segment {shard}[{start}:{stop}]"
    if shard not in manifest.shards:
        ctx.problem("segment", "corrupt", seg, "a shard the manifest lists", "not in manifest.shards")
        return
    data = shards.get(shard)
    if data is None:
        return  # the shard itself is missing or unreadable: reported once, by the shard checks
    if not 0 <= start < stop <= data.n_records:
        ctx.problem("segment", "corrupt", seg, f"0 <= start < stop <= {data.n_records}", f"{start}:{stop}")
        return
    dead = [r for r in range(start, stop) if r not in data.live]
    if dead:
        ctx.problem("segment", "corrupt", seg, "live rows", f"rows {dead[:10]} are dropped")
    foreign = sorted({data.unit[r] for r in range(start, stop)} - {uid})
    if foreign:
        ctx.problem("segment", "corrupt", seg, f"rows of unit {uid}", f"rows of {foreign[:3]}")
