"""Check of the unified labels store against the live records of the shards."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.ingest.verify._result import Checks, ShardData
from pipeline.store.labels import labels_digest, read_labels
from pipeline.store.manifest import Manifest


def check_labels(
    ctx: Checks, manifest: Manifest, shards: Mapping[str, ShardData], mapper_digest: str | None
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
