"""The scheduled landing deployment against a real Prefect server on 127.0.0.1 (started and stopped here).

On a shrunken, reproduced copy of this repository: ``ecgpipe serve`` registers the deployment with a
short interval schedule; a CinC 2021 record arrives half-written (its ``.mat`` cut short), and the
scheduled run leaves it; once complete it is taken by a later scheduled run, ingested into the
``ecg12`` shards, and ``dvc repro`` retrains the ResNet on it. ``ecgpipe lineage --record`` then
resolves the record to its shard and to that model, and the Prefect API holds the runs and the asset
materialisation events. The ``prefect.yaml`` deployment is then deployed to a process work pool and a
run triggered by hand is executed by a worker: with nothing new it changes nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.store.local import ShardStore, read_strings
from tests.pipeline_repo import copy_of, run
from tests.prefect_server import (
    api_get,
    deployment_by_name,
    events,
    flow_runs,
    prefect_server,
    server_env,
    stop_group,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.prefect, pytest.mark.shared_data]

FLOW = "landing-pipeline"
DEPLOYMENT = "landing-nightly"
RECORD = "A0689"  # CinC 2021 (CPSC 2018), 12 leads, 500 Hz, 10 s, Dx 164889003 (AF)
RECORD_ID = f"cinc2021:{RECORD}"


@pytest.fixture(scope="module")
def project(reproduced_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the reproduced repo whose landing settles in 2 s and whose schedule is every 20 s."""
    repo = copy_of(reproduced_repo, tmp_path_factory.mktemp("landing") / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["landing"]["settle_s"] = 2.0
    params["deploy"]["interval_s"] = 20.0
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "test schedule"], repo)
    return repo


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("prefect-home")
    with prefect_server(home) as url:
        yield url, home


def _reports(repo: Path) -> list[dict[str, Any]]:
    folder = repo / "data" / "landing_reports"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def _report_where(repo: Path, key: str, category: str | None = None) -> dict[str, Any] | None:
    """The first landing report listing RECORD under ``key`` ("taken" or "left" with ``category``)."""
    for rep in _reports(repo):
        for item in rep.get(key, []):
            if RECORD in json.dumps(item) and (category is None or item.get("category") == category):
                return rep
    return None


def _finished(api: str, run_id: str) -> dict[str, Any] | None:
    got: dict[str, Any] = api_get(api, f"/flow_runs/{run_id}")
    state = got["state"]["type"]
    if state in ("FAILED", "CRASHED", "CANCELLED"):
        raise AssertionError(f"flow run {run_id} ended {state}: {got['state'].get('message')}")
    return got if state == "COMPLETED" else None


def _shard_and_row(repo: Path, record_id: str) -> tuple[str, int] | None:
    store = ShardStore(repo / "data" / "shards" / "ecg12", "ecg12")
    for name in sorted(store.load_manifest().shards):
        ids = read_strings(store.open_shard(name), "record_id")
        if record_id in ids:
            return name, ids.index(record_id)
    return None


def _no_overlap(runs: list[dict[str, Any]]) -> None:
    spans = sorted((r["start_time"], r["end_time"]) for r in runs if r["start_time"] and r["end_time"])
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, f"two runs of the deployment overlapped: one ended {end}, the next began {start}"


def _lock_stages(repo: Path) -> dict[str, Any]:
    stages: dict[str, Any] = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return stages


def _serve_until_taken(
    project: Path, url: str, home: Path, shared_data: Path, lock_before: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """``ecgpipe serve`` while RECORD lands half-written (a run leaves it, changing nothing), then
    complete (a later run takes it): the deployment, the finished run that took it, the ``.mat`` bytes."""
    served = home / "serve.log"
    log = served.open("w")  # noqa: SIM115 - closed in finally
    serve = subprocess.Popen(
        ["ecgpipe", "serve"], cwd=project, env=server_env(home, url), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        dep = wait_for(lambda: deployment_by_name(url, FLOW, DEPLOYMENT), 120, "the deployment", served)
        assert dep["global_concurrency_limit"]["limit"] == 1
        assert dep["concurrency_options"]["collision_strategy"] == "ENQUEUE"
        assert dep["schedules"][0]["schedule"]["interval"] == 20.0

        landing = project / "data" / "landing" / "cinc2021"
        landing.mkdir(parents=True)
        src_mat = (shared_data / "cinc2021" / f"{RECORD}.mat").read_bytes()
        (landing / f"{RECORD}.hea").write_bytes((shared_data / "cinc2021" / f"{RECORD}.hea").read_bytes())
        (landing / f"{RECORD}.mat").write_bytes(src_mat[: len(src_mat) // 2])  # still arriving

        left = wait_for(lambda: _report_where(project, "left", "incomplete"), 240, "a run leaving it", served)
        wait_for(lambda: _finished(url, left["flow_run_id"]), 300, "the run that left it", served)
        assert _shard_and_row(project, RECORD_ID) is None
        # a run that took nothing changed nothing: no stage re-ran
        assert _lock_stages(project) == lock_before
        (landing / f"{RECORD}.mat").write_bytes(src_mat)

        taken = wait_for(lambda: _report_where(project, "taken"), 300, "a run taking the record", served)
        assert taken["flow_run_id"] != left["flow_run_id"]
        done = wait_for(lambda: _finished(url, taken["flow_run_id"]), 600, "that run to end", served)
    finally:
        stop_group(serve)
        log.close()
    return dep, done, src_mat


def _check_asset_events(url: str, since: str, project: Path, shard: str) -> None:
    """Materialisation events for the shard (upstream: the raw root) and the retrained model."""
    shard_key = (project / "data" / "shards" / "ecg12" / "shards" / shard).resolve().as_uri()
    model_key = (project / "models" / "resnet" / "best.pt").resolve().as_uri()
    evs = events(url, "prefect.asset.materialization.succeeded", since, [shard_key, model_key])
    keys = {e["resource"]["prefect.resource.id"]: e for e in evs}
    assert shard_key in keys and model_key in keys, sorted(keys)
    related = {r["prefect.resource.id"] for r in keys[model_key]["related"]}
    assert shard_key in related


def test_scheduled_run_takes_a_completed_record_ingests_it_and_retrains_and_lineage_finds_it(
    project: Path, api: tuple[str, Path], shared_data: Path
) -> None:
    url, home = api
    since = datetime.now(UTC).isoformat()
    lock_before = _lock_stages(project)
    dep, done, src_mat = _serve_until_taken(project, url, home, shared_data, lock_before)

    # the record, byte-identical, moved into the raw tree; nothing half-taken left behind
    raw = project / "data" / "raw" / "cinc2021"
    landing = project / "data" / "landing" / "cinc2021"
    assert (raw / f"{RECORD}.mat").read_bytes() == src_mat and not any(landing.iterdir())
    found = _shard_and_row(project, RECORD_ID)
    assert found is not None, "the taken record is not in the ecg12 shards"
    shard, row = found
    manifest = ShardStore(project / "data" / "shards" / "ecg12", "ecg12").load_manifest()
    writer = manifest.shards[shard].run
    assert api_get(url, f"/flow_runs/{writer}")["parent_task_run_id"] is not None  # the ingest subflow

    # dvc repro ran in the flow: the ResNet retrained on the new shards, the pipeline is up to date
    lock_after = _lock_stages(project)
    assert lock_after["train@resnet"] != lock_before["train@resnet"]
    assert lock_after["train@crnn"] == lock_before["train@crnn"]  # lead1_af shards did not change
    assert "up to date" in run(["dvc", "status"], project).stdout
    prov = json.loads((project / "provenance" / "train@resnet.json").read_text())
    assert prov["prefect_flow_run_id"] == done["id"]

    # lineage: the record → raw files, shard and row, split, and the model trained after it
    lin = json.loads(run(["ecgpipe", "lineage", "--record", RECORD_ID, "--json"], project).stdout)
    text = json.dumps(lin)
    assert shard in text and f"{RECORD}.mat" in text and "models/resnet" in text

    _check_asset_events(url, since, project, shard)
    # the deployment's concurrency limit held: no two of its runs overlapped
    _no_overlap(flow_runs(url, dep["id"]))


def test_prefect_yaml_deploys_to_a_process_pool_and_a_manual_run_with_nothing_new_changes_nothing(
    project: Path, api: tuple[str, Path]
) -> None:
    url, home = api
    env = server_env(home, url)
    spec = yaml.safe_load((project / "prefect.yaml").read_text())["deployments"][0]
    pool = spec["work_pool"]["name"]
    run(["prefect", "work-pool", "create", pool, "--type", "process", "--overwrite"], project, env=env)
    run(["prefect", "--no-prompt", "deploy", "--all"], project, env=env)
    dep = deployment_by_name(url, FLOW, spec["name"])
    assert dep is not None and dep["work_pool_name"] == pool and dep["global_concurrency_limit"]["limit"] == 1
    assert dep["schedules"][0]["schedule"]["cron"] == spec["schedules"][0]["cron"]

    lock_before = (project / "dvc.lock").read_text()
    shards_before = (project / "data" / "shards" / "ecg12" / "manifest.json").read_bytes()
    out = run(["prefect", "deployment", "run", f"{FLOW}/{spec['name']}"], project, env=env).stdout
    run_id = next(w for w in out.split() if len(w) == 36 and w.count("-") == 4)
    worker = subprocess.Popen(
        ["prefect", "worker", "start", "--pool", pool, "--run-once"], cwd=project, env=env,
        stdout=(home / "worker.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _finished(url, run_id), 600, "the manual run", home / "worker.log")
    finally:
        stop_group(worker)
    assert (project / "dvc.lock").read_text() == lock_before
    assert (project / "data" / "shards" / "ecg12" / "manifest.json").read_bytes() == shards_before
    shutil.rmtree(project / "data" / "landing", ignore_errors=True)
