"""Check one profile's shard store against its manifest and against the raw inputs it came from.

:func:`verify_store` reads a :class:`~pipeline.store.base.Store` (local or object storage) and the
readers of the profile's sources (``pipeline.config.build_readers``) and never writes anything.
Every finding names the file or key, what was expected and what was found, and has a *kind* that
says what to do:

* ``corrupt``: published data contradicts the manifest (a shard missing, its bytes changed, record
  counts or array lengths wrong, a record id live twice, unit segments pointing at wrong rows).
  Restore the store or delete it and re-run ingest.
* ``lagging``: a file derived from the manifest (unified labels, quarantine report, ingest report)
  or a shard folder does not match it; an ingest was interrupted (or is running). Re-run ingest.
* ``stale``: raw inputs or parameters changed since the ingest (a file's sha256 differs, a new or
  vanished input, another preprocessing plan or label mapping). Re-run ingest.
* ``accounting``: a raw file the source's reader placed nowhere, or in more than one place
  (a unit, the source metadata, the discovery rejections): a reader's discovery is wrong.

Leftovers that are harmless (``.tmp-*`` folders, temporary JSON files, unreferenced label
stores) are warnings, as are sources whose root is missing (their inputs cannot be checked).
The store is clean (``ok``) when there is no problem of any kind.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.fs import sha256_file
from pipeline.core.records import InputUnit, ReadError
from pipeline.ingest.run import SourceScan, fingerprint, scan_source
from pipeline.sources.base import SourceReader, confined_path, list_files
from pipeline.store.base import Store
from pipeline.store.labels import labels_digest, read_labels
from pipeline.store.local import STRING_FIELDS, array, read_strings
from pipeline.store.manifest import (
    FORMAT_VERSION,
    LABELS_DIR,
    SHARDS_DIR,
    Manifest,
    ShardEntry,
    StoreError,
    UnitEntry,
    live_rows,
)

NUMERIC_FIELDS = ("orig_fs", "orig_len", "valid_len", "clipped")
_SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
KIND_HINTS = {
    "corrupt": "published data contradicts the manifest: restore the store, or delete it and re-run ingest",
    "lagging": "a derived file or shard folder does not match the manifest (an ingest was interrupted "
    "or is running): re-run ingest",
    "stale": "raw inputs or parameters changed since ingest: re-run ingest",
    "accounting": "a raw file its reader placed nowhere or twice: the source reader's discovery is wrong",
}
# Report fields that describe the store's content (not one run) and are compared per source.
_REPORT_SOURCE_FIELDS = ("units_ingested", "units_quarantined", "records", "files_on_disk")


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
class _ShardData:
    """What the checks need from one listed shard: its rows and which of them are live."""

    n_records: int
    live: set[int]
    record_id: list[str]
    unit: list[str]
    provenance: list[str]


@dataclass
class _Ctx:
    store: Store
    result: VerifyResult

    def problem(self, check: str, kind: str, where: str, expected: str, found: str) -> None:
        self.result.problems.append(
            {"check": check, "kind": kind, "where": where, "expected": expected, "found": found}
        )

    def warn(self, check: str, where: str, found: str) -> None:
        self.result.warnings.append({"check": check, "where": where, "found": found})


def verify_store(
    store: Store,
    readers: Mapping[str, SourceReader],
    *,
    plan_digest: str | None = None,
    mapper_digest: str | None = None,
) -> VerifyResult:
    """Check ``store`` against its manifest and the raw inputs of ``readers``; never writes.

    ``plan_digest`` (``SignalPlan.digest()`` of the current params) and ``mapper_digest``
    (``LabelMapper.digest`` of the current tables) are optional: given, a store built with other
    preprocessing or label mapping is reported ``stale``. Raw files are re-hashed (sha256).
    """
    ctx = _Ctx(store, VerifyResult(profile=store.profile, store=store.location()))
    _check_lock(ctx)
    manifest = _check_manifest(ctx)
    if manifest is None:
        return ctx.result
    shards = _check_shards(ctx, manifest)
    _check_unlisted(ctx, manifest)
    _check_duplicates(ctx, shards)
    _check_segments(ctx, manifest, shards)
    _check_labels(ctx, manifest, shards, mapper_digest)
    if plan_digest is not None and manifest.plan_digest and plan_digest != manifest.plan_digest:
        ctx.problem(
            "plan",
            "stale",
            "manifest.json: plan_digest",
            f"{plan_digest[:16]} (the profile's preprocessing now)",
            f"{manifest.plan_digest[:16]}: shards were preprocessed with other params",
        )
    scans = _scan_sources(ctx, manifest, readers)
    quarantine = _check_quarantine(ctx, manifest, scans, readers)
    _check_inputs(ctx, manifest, scans, readers, shards)
    _check_report(ctx, manifest, scans, quarantine)
    _check_debris(ctx, manifest)
    _count_store(ctx, manifest, shards, quarantine)
    return ctx.result


# --- manifest and shards -------------------------------------------------------------------------


def _check_lock(ctx: _Ctx) -> None:
    holder = ctx.store.lock_holder()
    if holder is not None:
        ctx.warn("lock", ".lock", f"an ingest holds the store's lock ({holder}): findings may be transient")


def _check_manifest(ctx: _Ctx) -> Manifest | None:
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


def _check_shards(ctx: _Ctx, manifest: Manifest) -> dict[str, _ShardData]:
    """Hash, record count and array lengths of every listed shard; returns the readable ones."""
    out: dict[str, _ShardData] = {}
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


def _read_shard(ctx: _Ctx, name: str, entry: ShardEntry) -> _ShardData | None:
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
    return _ShardData(n, live, strings["record_id"], strings["unit"], strings["provenance"])


def _check_unlisted(ctx: _Ctx, manifest: Manifest) -> None:
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


def _check_duplicates(ctx: _Ctx, shards: Mapping[str, _ShardData]) -> None:
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


def _check_segments(ctx: _Ctx, manifest: Manifest, shards: Mapping[str, _ShardData]) -> None:
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


def _rows(data: _ShardData, rows: Sequence[int]) -> str:
    return ", ".join(f"[{r}] {data.record_id[r]}" for r in rows[:5])


def _check_segment(
    ctx: _Ctx,
    where: str,
    uid: str,
    shard: str,
    start: int,
    stop: int,
    manifest: Manifest,
    shards: Mapping[str, _ShardData],
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


# --- labels --------------------------------------------------------------------------------------


def _check_labels(
    ctx: _Ctx, manifest: Manifest, shards: Mapping[str, _ShardData], mapper_digest: str | None
) -> None:
    live = {(name, r): d.record_id[r] for name, d in shards.items() for r in d.live}
    rel = manifest.labels.path if manifest.labels is not None else ""
    if not rel:
        if live or manifest.shards:
            ctx.problem("labels", "lagging", "manifest.json: labels", "a labels store entry", "none")
        return
    try:
        labels = read_labels(ctx.store)
    except Exception as exc:  # noqa: BLE001 - an unreadable labels store is the finding
        ctx.problem("labels", "lagging", rel, "a readable labels store", f"{type(exc).__name__}: {exc}")
        return
    if labels is None:
        ctx.problem("labels", "lagging", rel, "the labels store the manifest names", "missing")
        return
    got = {(s, int(r)): rid for s, r, rid in zip(labels.shard, labels.row, labels.record_id, strict=True)}
    missing = sorted(set(live) - set(got))
    extra = sorted(set(got) - set(live))
    wrong = sorted(k for k in set(live) & set(got) if live[k] != got[k])
    for what, keys, ids in (
        ("lacks", missing, live),
        ("has non-live", extra, got),
        ("mislabels", wrong, got),
    ):
        if keys:
            sample = ", ".join(f"{ids[k]} ({k[0]}[{k[1]}])" for k in keys[:5])
            ctx.problem(
                "labels",
                "lagging",
                rel,
                "one row per live record",
                f"{what} {len(keys)} record(s), e.g. {sample}",
            )
    if labels.y.shape != (len(labels.record_id), len(labels.vocabulary)):
        ctx.problem(
            "labels",
            "lagging",
            f"{rel}/y",
            f"shape ({len(labels.record_id)}, {len(labels.vocabulary)})",
            f"shape {labels.y.shape}",
        )
    if mapper_digest is not None and not (missing or extra or wrong):
        expected = labels_digest(mapper_digest, manifest.shards)
        had = manifest.labels.digest if manifest.labels is not None else ""
        if had != expected:
            ctx.problem(
                "labels",
                "stale",
                rel,
                f"labels of the current mapping tables ({expected[:16]})",
                f"labels derived with other tables or settings ({had[:16]})",
            )


# --- inputs and quarantine -------------------------------------------------------------------------


def _scan_sources(
    ctx: _Ctx, manifest: Manifest, readers: Mapping[str, SourceReader]
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


def _expected_quarantine(manifest: Manifest, scans: Mapping[str, SourceScan]) -> list[dict[str, Any]]:
    """What ingest's ``quarantine_entries`` would write now: discovery rejections + unit rejections."""
    entries: list[dict[str, Any]] = []
    for name, scan in scans.items():
        for r in scan.discovery.rejected:
            entries.append(
                {
                    "source": name,
                    "item": r.item,
                    "files": list(r.files),
                    "reason": r.reason,
                    "category": r.category,
                    "stage": "discover",
                }
            )
    for uid in sorted(manifest.units):
        entries.extend(manifest.units[uid].rejections)
    return entries


def _check_quarantine(
    ctx: _Ctx, manifest: Manifest, scans: Mapping[str, SourceScan], readers: Mapping[str, SourceReader]
) -> list[dict[str, Any]]:
    """quarantine.json (and .csv) hold exactly the discovery and unit rejections; returns the JSON."""
    try:
        found: list[dict[str, Any]] = json.loads(ctx.store.read_bytes("quarantine.json").decode("utf-8"))
        written_ns = ctx.store.modified_ns("quarantine.json") or 0
    except (OSError, json.JSONDecodeError) as exc:
        ctx.problem("quarantine", "lagging", "quarantine.json", "the quarantine report", f"unreadable: {exc}")
        return []
    skipped = {n for n, s in scans.items() if s.skipped}
    expected = _expected_quarantine(manifest, scans)
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


def _check_quarantine_csv(ctx: _Ctx, n_entries: int) -> None:
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


def _check_inputs(
    ctx: _Ctx,
    manifest: Manifest,
    scans: Mapping[str, SourceScan],
    readers: Mapping[str, SourceReader],
    shards: Mapping[str, _ShardData],
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
    ctx: _Ctx, manifest: Manifest, name: str, reader: SourceReader, scan: SourceScan
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
    ctx: _Ctx,
    manifest: Manifest,
    name: str,
    reader: SourceReader,
    unit: InputUnit,
    shards: Mapping[str, _ShardData],
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
    manifest: Manifest, entry: UnitEntry, reader: SourceReader, shards: Mapping[str, _ShardData]
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
            rel = Path(path).relative_to(os.path.abspath(reader.root)).as_posix()
        except ValueError:
            continue
        out[rel] = str(cached[2])
    return out, None


# --- reports, debris, counts ----------------------------------------------------------------------


def _check_report(
    ctx: _Ctx, manifest: Manifest, scans: Mapping[str, SourceScan], quarantine: Sequence[Mapping[str, Any]]
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


def _check_debris(ctx: _Ctx, manifest: Manifest) -> None:
    for name in ctx.store.list_names():
        if fnmatch.fnmatchcase(name, ".*.tmp"):
            ctx.warn("debris", name, "temporary file of an interrupted JSON/CSV write")
    current = manifest.labels.path if manifest.labels is not None else ""
    for name in ctx.store.list_names(LABELS_DIR):
        if f"{LABELS_DIR}/{name}" != current:
            ctx.warn("debris", f"{LABELS_DIR}/{name}", "labels store the manifest does not reference")


def _count_store(
    ctx: _Ctx, manifest: Manifest, shards: Mapping[str, _ShardData], quarantine: Sequence[Mapping[str, Any]]
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
