"""``ecgpipe serve``: the landing deployment, scheduled from params, served by this process.

The deployment runs :func:`flows.landing.landing_pipeline` on ``deploy.cron`` (in
``deploy.timezone``) or every ``deploy.interval_s`` seconds when that is set, at most
``deploy.concurrency_limit`` runs at a time (a run that would exceed it waits, ``ENQUEUE``, or is
cancelled, ``CANCEL_NEW``). Each run gets the absolute params path and the ``--set`` overrides
given to ``ecgpipe serve``, so runs do not depend on the worker's working directory.
``prefect.yaml`` defines the same deployment for ``prefect deploy`` with a process work pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval, Schedule
from prefect.types.entrypoint import EntrypointType

from flows.landing import landing_pipeline
from pipeline.config import DeployParams, Params

TAGS = ["ecgpipe", "landing"]


def schedule_for(cfg: DeployParams) -> Schedule:
    """``deploy.interval_s`` when set (demos, tests), else ``deploy.cron`` in ``deploy.timezone``."""
    if cfg.interval_s is not None:
        return Interval(cfg.interval_s, timezone=cfg.timezone)
    return Cron(cfg.cron, timezone=cfg.timezone)


def landing_deployment(params: Params, params_path: Path, overrides: Sequence[str]) -> RunnerDeployment:
    """The deployment object ``ecgpipe serve`` registers (schedule, limit, parameters from params)."""
    cfg = params.deploy
    limit = ConcurrencyLimitConfig(
        limit=cfg.concurrency_limit, collision_strategy=ConcurrencyLimitStrategy(cfg.collision_strategy)
    )
    parameters: dict[str, Any] = {"params_path": str(params_path.resolve()), "overrides": list(overrides)}
    deployment = landing_pipeline.to_deployment(
        name=cfg.name,
        schedules=[schedule_for(cfg)],
        concurrency_limit=limit,
        parameters=parameters,
        tags=TAGS,
        description="Take complete records from the landing zone, ingest them, then dvc repro.",
        # the module path works from any working directory (the package is installed)
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    assert isinstance(deployment, RunnerDeployment)  # to_deployment is sync-compatible: sync here
    return deployment


def serve_landing(params: Params, params_path: Path, overrides: Sequence[str]) -> None:
    """Register the deployment and run its scheduled and manual runs until interrupted."""
    serve(landing_deployment(params, params_path, overrides), limit=params.deploy.concurrency_limit)
