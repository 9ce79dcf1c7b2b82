"""Where an artifact came from: the DVC stage chain back to raw files, as one JSON document.

:func:`artifact_lineage` finds the stage whose out is (or contains) the artifact in ``dvc.lock``,
then walks the chain stage by stage through deps that are outs of other stages, down to the
leaves (raw folders, label tables, code). For each stage it reports the locked command, params,
deps (data and code) and outs with their hashes, whether each path on disk still matches the lock
(:func:`pipeline.lineage.lock_check.check_entry`: size then md5 for files, file count and size for folders),
and the code version from the stage's provenance record (:mod:`pipeline.core.provenance`), which is
``consistent_with_lock`` when its md5 is the one the lock holds.

Then the data: the shards that feed the artifact (for a model-side artifact only the shards and
rows its split index uses; for a path inside the store that shard or profile) with their sha256,
record counts and the Prefect flow-run ids that wrote them, and every raw file behind those
records with its sha256, grouped by source. Per-record arrays are read a whole shard at a time.

The document (``format`` :data:`FORMAT`)::

    artifact   {path, kind, exists, stage, out, inside_out, state}
    stages     [{name, depth, cmd, params, code_version, deps: {data, code}, outs, upstream}]
    leaves     {data: [...], code: [...]}       deps no stage produces
    shards     {scope, indexes, items, flow_run_ids, n_records}
    raw_files  {n_files, n_records, by_source: {source: {root, readers, n_files, n_records, files}}}
    checks     what "state" compares; warnings  [str]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.lineage import dvc_lock as dl
from pipeline.lineage import lock_check as lc
from pipeline.lineage.query import LineageContext, LineageError, StoreLayout
from pipeline.lineage.shards import data_lineage
from pipeline.lineage.stages import (
    artifact_json,
    leaves,
    stage_chain,
    stage_json,
    stage_warnings,
    start_producers,
)

# LineageError and StoreLayout are part of this module's API (ecgpipe lineage imports them from here).
__all__ = ["CHECKS", "FORMAT", "LineageError", "StoreLayout", "artifact_lineage"]

FORMAT = "ecgpipe.lineage.artifact/1"
CHECKS = (
    "state compares the path on disk with dvc.lock: a file by size, then md5 of its bytes (files over "
    f"{lc.MAX_MD5_BYTES // 2**20} MiB by size only); a folder by file count and total size, honouring "
    ".dvcignore (an in-place edit keeping both is not seen: `dvc status` is exact); a file inside a "
    "cached folder out by md5 against DVC's .dir listing in the cache"
)


def artifact_lineage(
    project_root: Path, path: Path | str, layout: StoreLayout, cwd: Path | None = None
) -> dict[str, Any]:
    """The lineage document of ``path`` (absolute, or relative to ``cwd``, default the project root)
    in the DVC project at ``project_root``; raises :class:`LineageError` when no stage produces it."""
    root = Path(project_root).resolve()
    lock = dl.load_lock(root)
    rel = dl.normalise(root, path, cwd or root)
    start = start_producers(lock, rel, root)
    ctx = LineageContext(root=root, lock=lock, ignore=lc.load_ignore(root))
    artifact = artifact_json(ctx, rel, start)
    order = stage_chain(lock, [p.stage.name for p in start])
    stages = [stage_json(ctx, lock.stage(name), depth) for name, depth in order.items()]
    shards, raw = data_lineage(ctx, rel, list(order), layout)
    warnings = stage_warnings(stages) + ctx.warnings
    return {
        "format": FORMAT,
        "project_root": str(root),
        "artifact": artifact,
        "stages": stages,
        "leaves": leaves(stages),
        "shards": shards,
        "raw_files": raw,
        "checks": CHECKS,
        "warnings": warnings,
    }
