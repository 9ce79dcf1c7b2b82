"""Prefect asset materialisation events for shards and models, so lineage is queryable from the API.

Asset keys are ``file://`` URIs of the artifact's absolute path (a shard folder, a checkpoint).
Each materialisation event names its upstream assets (a shard: the raw source roots that fed it;
a model: the live shards of its profile and its split index) and carries metadata (record count,
sha256 or the DVC md5, the flow-run id, the git commit). Query them with
``POST /api/events/filter`` and ``{"filter": {"event": {"prefix": ["prefect.asset."]}}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect.assets import Asset, AssetProperties, add_asset_metadata, materialize

from pipeline.store.root import is_url

MATERIALIZED_BY = "ecgpipe"


def file_asset(path: Path | str, name: str | None = None, description: str | None = None) -> Asset:
    """The asset of a file or folder: key ``file:///abs/path``, or the object's URL as it is
    (``s3://bucket/...``) for a store on object storage."""
    uri = str(path) if is_url(path) else Path(path).resolve().as_uri()
    props = AssetProperties(name=name, description=description) if name or description else None
    return Asset(key=uri, properties=props)


def publish(assets: Mapping[Asset, Mapping[str, Any]], upstream: Sequence[Asset], task_name: str) -> None:
    """Emit one materialisation event per asset (with its metadata), naming ``upstream`` as deps.

    ``materialize`` fixes its assets when the task is defined, and these are only known once the
    shards or models exist, so the task is built here, per call.
    """
    if not assets:
        return

    def record() -> None:
        for asset, meta in assets.items():
            add_asset_metadata(asset, dict(meta))

    task = materialize(*assets, asset_deps=list(upstream), by=MATERIALIZED_BY, name=task_name)(record)
    task()
