"""The deployment's definition: params → schedule, concurrency limit and parameters; prefect.yaml in step
with params; landing/deploy params validation; the flow's helpers that need no server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.cli import main
from flows.landing import landing_profiles, landing_targets
from pipeline.config import ConfigError, load_params

REPO = Path(__file__).resolve().parents[1]


def test_prefect_yaml_deployment_agrees_with_the_deploy_params() -> None:
    params = load_params(REPO / "params.yaml")
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (dep,) = spec["deployments"]
    assert dep["name"] == params.deploy.name
    assert dep["entrypoint"] == "flows/landing.py:landing_pipeline"
    assert dep["schedules"] == [
        {"cron": params.deploy.cron, "timezone": params.deploy.timezone, "active": True}
    ]
    assert dep["concurrency_limit"] == {
        "limit": params.deploy.concurrency_limit,
        "collision_strategy": params.deploy.collision_strategy,
    }
    assert dep["work_pool"]["name"] == params.deploy.work_pool
    assert (REPO / dep["entrypoint"].split(":")[0]).is_file()


@pytest.mark.prefect
def test_served_deployment_takes_cron_limit_and_absolute_params_from_params(tmp_path: Path) -> None:
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    from flows.serve import landing_deployment

    params = load_params(REPO / "params.yaml")
    dep = landing_deployment(params, REPO / "params.yaml", ["landing.settle_s=5"])
    assert dep.name == params.deploy.name and dep.concurrency_limit == params.deploy.concurrency_limit
    assert dep.concurrency_options is not None
    assert dep.concurrency_options.collision_strategy.value == params.deploy.collision_strategy
    (sched,) = dep.schedules or []
    assert isinstance(sched.schedule, CronSchedule)
    assert sched.schedule.cron == params.deploy.cron and sched.schedule.timezone == params.deploy.timezone
    assert dep.parameters == {
        "params_path": str((REPO / "params.yaml").resolve()),
        "overrides": ["landing.settle_s=5"],
    }
    assert dep.entrypoint == "flows.landing.landing_pipeline"  # importable from any working directory

    fast = load_params(REPO / "params.yaml", ["deploy.interval_s=20"])
    (sched,) = landing_deployment(fast, REPO / "params.yaml", []).schedules or []
    assert isinstance(sched.schedule, IntervalSchedule) and sched.schedule.interval.total_seconds() == 20


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("landing.sources=[nope]", "landing.sources names 'nope'"),
        ("deploy.cron=every night", "expected a cron expression"),
        ("deploy.timezone=Mars/Olympus", "unknown time zone"),
        ("deploy.collision_strategy=DROP", "deploy.collision_strategy"),
        ("deploy.concurrency_limit=0", "deploy.concurrency_limit"),
    ],
)
def test_invalid_landing_and_deploy_params_fail_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_params(REPO / "params.yaml", [override])


def test_a_landing_source_whose_kind_cannot_land_is_refused_by_the_landing_commands() -> None:
    # loading params no longer imports the landing code; `ecgpipe land`/`serve` check this first
    params = load_params(REPO / "params.yaml", ["landing.sources=[ptbxl]"])
    with pytest.raises(ConfigError, match="ptbxl' is a ptbxl source"):
        landing_targets(params)
    assert (
        main(["land", "--dry-run", "--params", str(REPO / "params.yaml"), "--set", "landing.sources=[ptbxl]"])
        == 2
    )


def test_landing_targets_map_each_source_to_its_raw_root_and_required_annotations() -> None:
    params = load_params(REPO / "params.yaml")
    targets = {t.source: t for t in landing_targets(params)}
    assert set(targets) == set(params.landing.sources)
    assert targets["mitbih"].annotation_ext == "atr" and targets["cinc2021"].annotation_ext is None
    assert targets["cinc2021"].dest_root == params.sources["cinc2021"].root
    relaxed = load_params(REPO / "params.yaml", ["landing.require_annotations=false"])
    assert all(t.annotation_ext is None for t in landing_targets(relaxed))
    assert landing_profiles(params) == ["ecg12", "holter"]


@pytest.mark.prefect
def test_changed_stages_are_the_lock_entries_that_differ() -> None:
    from flows.landing import changed_stages

    before = {"ingest": {"outs": [{"path": "data/shards", "md5": "a"}]}, "train@x": {"cmd": "t"}}
    after = {"ingest": {"outs": [{"path": "data/shards", "md5": "b"}]}, "train@x": {"cmd": "t"}, "new": {}}
    assert changed_stages(before, after) == ["ingest", "new"]
