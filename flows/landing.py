"""The scheduled flow: take complete records from the landing zone → ingest → ``dvc repro``.

1. ``take-landed``: :func:`pipeline.landing.take.take_landed` moves every complete, settled record from
   ``landing.root/<source>/`` into ``sources.<source>.root`` (a ledger makes each record taken
   once); the rest stays for the next run. The report goes to ``landing.reports/`` as JSON and to
   the Prefect UI as the ``landing-report`` artifact.
2. ``ingest`` (a subflow) for the profiles the landing sources feed: new records become new shards
   (one materialisation event each); unchanged stores are left byte-identical.
3. ``dvc repro`` in the project (``deploy.repro``): DVC re-runs the stages whose inputs changed, so
   models retrain only when shards changed. Its output streams into the flow-run log, and every
   stage records this flow-run id in ``provenance/<stage>.json``. Models whose ``dvc.lock`` entry
   changed get a materialisation event naming the shards they were trained on.

Deployed by ``ecgpipe serve`` (flows/serve.py) or ``prefect deploy`` (prefect.yaml) with a
concurrency limit of one run at a time; the store, ledger and DVC locks back that up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.assets import file_asset, publish
from flows.ingest import flow_run_id, ingest
from pipeline.config import ConfigError, Params, WfdbSource, load_params
from pipeline.core.provenance import FLOW_RUN_ENV
from pipeline.landing.take import LANDING_KINDS, LandingReport, LandingTarget, take_landed
from pipeline.lineage.dvc_lock import lock_stages
from pipeline.store.local import ShardStore, write_json_atomic


def landing_targets(params: Params) -> list[LandingTarget]:
    """One target per ``landing.sources`` entry: its kind, raw root and required annotation file.

    Only self-contained record kinds can land: PTB-XL, CinC 2017, CODE and UCR keep labels or signals
    in shared tables that a landed file could only half-update (a ConfigError names the source).
    """
    targets = []
    for name in params.landing.sources:
        src = params.sources[name]
        if src.kind not in LANDING_KINDS:
            raise ConfigError(
                f"landing.sources: {name!r} is a {src.kind} source, whose labels or signals live in shared "
                "tables; the landing zone takes self-contained record kinds only "
                f"({', '.join(LANDING_KINDS)})"
            )
        required = isinstance(src, WfdbSource) and params.landing.require_annotations
        ann = src.annotation_ext if isinstance(src, WfdbSource) and required else None
        targets.append(LandingTarget(source=name, kind=src.kind, dest_root=src.root, annotation_ext=ann))
    return targets


def landing_profiles(params: Params) -> list[str]:
    """Profiles fed by at least one landing source, in params order."""
    fed = set(params.landing.sources)
    return [p for p, prof in params.profiles.items() if fed & set(prof.sources)]


def take_from_params(params: Params, run_id: str | None, dry_run: bool = False) -> LandingReport:
    """:func:`pipeline.landing.take.take_landed` with the ``landing`` params."""
    cfg = params.landing
    return take_landed(
        cfg.root,
        landing_targets(params),
        cfg.ledger,
        settle_s=cfg.settle_s,
        verify_checksums=cfg.verify_checksums,
        run_id=run_id,
        dry_run=dry_run,
    )


@task(name="take-landed")
def take(params: Params, run_id: str | None) -> LandingReport:
    return take_from_params(params, run_id)


def _save_report(params: Params, report: LandingReport, run_id: str | None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = params.landing.reports / f"{stamp}-{run_id or 'local'}.json"
    write_json_atomic(path, {"flow_run_id": run_id, **report.to_json()})
    return path


def changed_stages(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Stages whose lock entry (cmd, deps, params, outs) differs: the ones ``dvc repro`` re-ran."""
    return sorted(name for name, entry in after.items() if before.get(name) != entry)


@task(name="dvc-repro")
def dvc_repro(project: Path, run_id: str | None) -> tuple[list[str], dict[str, Any]]:
    """Run ``dvc repro`` in ``project``, streaming its output to the log; the stages it re-ran and
    the ``dvc.lock`` stages it left."""
    log = get_run_logger()
    before = lock_stages(project)
    env = {**os.environ, FLOW_RUN_ENV: run_id or ""}
    tail: list[str] = []
    with subprocess.Popen(
        ["dvc", "repro"],  # noqa: S607 - the project's dvc, from the environment's PATH
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                log.info("dvc: %s", line)
                tail = [*tail[-40:], line]
    if proc.returncode != 0:
        raise RuntimeError(f"dvc repro failed in {project} (exit {proc.returncode}):\n" + "\n".join(tail))
    after = lock_stages(project)
    return changed_stages(before, after), after


def _publish_models(params: Params, lock: dict[str, Any], stages: Sequence[str], run_id: str | None) -> None:
    """A materialisation event per re-trained model, upstream = its profile's live shards + split index."""
    for name in (s.split("@", 1)[1] for s in stages if s.startswith("train@")):
        if name not in params.train.models:
            continue
        profile = params.train.models[name].profile
        store = ShardStore(params.ingest.store / profile, profile)
        shards = sorted(store.load_manifest().shards)
        upstream = [file_asset(store.shard_path(s), name=f"{profile}/{s}") for s in shards]
        upstream.append(file_asset(params.split.out_dir / f"{name}.csv", name=f"split/{name}"))
        outs = {o["path"]: o.get("md5") for o in lock.get(f"train@{name}", {}).get("outs", [])}
        ckpt = params.train.out_dir / name / "best.pt"
        meta = {
            "model": name,
            "profile": profile,
            "dvc_md5": outs.get(f"models/{name}"),
            "flow_run_id": run_id,
        }
        publish({file_asset(ckpt, name=f"model/{name}"): meta}, upstream, task_name=f"publish-model-{name}")


@flow(name="landing-pipeline", log_prints=True)
def landing_pipeline(
    params_path: str = "params.yaml", overrides: Sequence[str] = (), repro: bool | None = None
) -> dict[str, Any]:
    """Take landed records, ingest the profiles they feed, then ``dvc repro`` (see module docstring)."""
    log = get_run_logger()
    params = load_params(Path(params_path), overrides)
    project = Path(params_path).resolve().parent
    run_id = flow_run_id()
    report = take(params, run_id)
    saved = _save_report(params, report, run_id)
    create_markdown_artifact(
        report.markdown(), key="landing-report", description="Landing zone: taken and left"
    )
    log.info("landing: %s (report %s)", report.counts, saved)
    profiles = landing_profiles(params)
    ingested = ingest(params_path, list(overrides), None, profiles) if profiles else {}
    run_repro = params.deploy.repro if repro is None else repro
    stages, lock = dvc_repro(project, run_id) if run_repro else ([], {})
    if stages:
        log.info("dvc repro re-ran: %s", ", ".join(stages))
        _publish_models(params, lock, stages, run_id)
    return {
        "landing": report.to_json(),
        "report_file": str(saved),
        "ingest": {p: r.get("records_processed_this_run", 0) for p, r in ingested.items()},
        "repro_stages": stages,
    }
