"""Ingest survives SIGKILL anywhere, and two ingests on one store never corrupt it (issue 6).

The kill loop of ``scripts/kill_loop.py`` with a reduced count: every named crash point of
:mod:`pipeline.core.crashpoints` once (mid-read, mid shard write, between rename and manifest, inside
a JSON write, between manifest and reports, before relabelling) plus one kill at a random time,
each on real records in three profiles, each followed by a re-run of ``ecgpipe ingest`` (a real
subprocess against a real Prefect server). After each kill the store may lag but is never
corrupt; after each re-run every profile verifies clean and equals the uninterrupted run's store
record for record. ``scripts/kill_loop.py`` runs the full count (40 points by default).

Two ingests started together on one store: the first to hold a store lock is frozen (SIGSTOP)
while it holds it, so the other certainly meets the lock; it must refuse at once (exit 2,
``error: ... another ingest is writing this store``), and the store the first one finishes must
verify clean and equal a single run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.crashpoints import POINTS
from tests.script_module import load_script

REPO = Path(__file__).resolve().parents[1]
CI_POINTS = 10  # every named point once, plus one random time
SEED = 6


kl = load_script("kill_loop")


@pytest.fixture(scope="module")
def loop(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A raw tree of real records, a Prefect server, and the uninterrupted reference run."""
    work = tmp_path_factory.mktemp("kill-loop")
    raw = kl.build_raw_tree(shared_data, work / "raw", kl.TreeSpec())
    with kl.prefect_env(work / "prefect") as env:
        killer = kl.KillLoop(kl.Harness(raw=raw, work=work, env=env), log=lambda _: None, seed=SEED)
        killer.reference()
        yield killer


@pytest.mark.shared_data
@pytest.mark.prefect
def test_reference_run_reaches_every_crash_point_in_every_profile(loop: Any) -> None:
    for profile, counts in loop.counts.items():
        assert set(counts) == set(POINTS), f"{profile} reached only {sorted(counts)}"
    assert loop.counts["lead1_af"]["shard.after_rename"] >= 5, "the CinC profile must write several shards"
    assert all(n > 0 for n in loop.result.reference["records"].values())
    assert loop.result.reference["quarantine_entries"]["lead1_af"] == 2  # truncated record + orphan .mat


@pytest.mark.shared_data
@pytest.mark.prefect
@pytest.mark.slow
def test_sigkill_at_every_crash_point_and_a_random_time_then_rerun_restores_the_store(loop: Any) -> None:
    rounds = kl.plan_rounds(loop.counts, loop.window, CI_POINTS, SEED)
    for i, kills in enumerate(rounds):
        loop.round(i, kills)
    result = loop.result
    s = result.summary()
    errors = [k["error"] for k in result.kills if "error" in k]
    assert not errors, errors
    assert s["points_killed"] == CI_POINTS >= 8
    assert s["named_points_covered"] == sorted(POINTS)
    assert s["random_points_killed"] >= 1
    corrupt = [(k["phase"], k["problem_kinds_after_kill"]) for k in result.kills if k["corrupt_after_kill"]]
    assert not corrupt, f"a kill left a corrupt store (not merely an unfinished one): {corrupt}"
    for rerun in result.reruns:
        assert rerun["returncode"] == 0, rerun.get("log_tail")
        for profile, v in rerun["verify"].items():
            assert v["ok"], f"round {rerun['round']} {profile}: verify not clean after the re-run: {v}"
        for profile, c in rerun["compare"].items():
            assert not c["differences"], f"round {rerun['round']} {profile}: differs from the reference: {c}"
            assert c["records"] == loop.result.reference["records"][profile]
    assert s["records_lost"] == s["records_duplicated"] == s["records_extra"] == 0
    assert kl.passed(result)


@pytest.mark.shared_data
@pytest.mark.prefect
@pytest.mark.slow
def test_two_ingests_started_together_one_refuses_on_the_lock_and_the_store_is_intact(loop: Any) -> None:
    loop.concurrent()
    c = loop.result.concurrent
    holder = c["frozen_while_holding_the_lock"]
    assert holder is not None, f"neither ingest reached a store lock: exit codes {c['returncodes']}"
    loser = 1 - holder
    assert c["returncodes"][holder] == 0, "the ingest that held the lock must finish after it resumes"
    assert c["returncodes"][loser] == 2 and c["lock_refusals"][loser], c["refusal_lines"]
    assert c["refusal_lines"][loser].startswith("error: ")
    assert "another ingest is writing this store (holder: pid " in c["refusal_lines"][loser]
    assert all(v["ok"] for v in c["verify"].values()), c["verify"]
    assert not any(x["differences"] for x in c["compare"].values()), c["compare"]
    assert kl.concurrent_ok(c)


# --- the hook itself (no ingest) ------------------------------------------------------------------

_TWICE = (
    "from pipeline.core.crashpoints import crash_point as c; "
    "c('commit.done'); c('commit.done'); print('ran on')"
)


def _hook(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ECGPIPE_TEST_CRASH")}
    return subprocess.run(
        [sys.executable, "-c", _TWICE], env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_crash_point_kills_its_process_at_the_nth_time_and_logs_each_point(tmp_path: Path) -> None:
    log = tmp_path / "points.log"
    env = {"ECGPIPE_TEST_CRASH_AT": "commit.done:2", "ECGPIPE_TEST_CRASH_LOG": str(log)}
    proc = _hook(env, tmp_path)
    assert proc.returncode == -signal.SIGKILL
    assert "ran on" not in proc.stdout
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["commit.done", "commit.done"]


def test_crash_point_is_a_no_op_unless_armed_and_rejects_a_bad_spec(tmp_path: Path) -> None:
    assert _hook({}, tmp_path).stdout.strip() == "ran on"
    assert _hook({"ECGPIPE_TEST_CRASH_AT": "commit.done:3"}, tmp_path).stdout.strip() == "ran on"
    bad = _hook({"ECGPIPE_TEST_CRASH_AT": "commit.finished:1"}, tmp_path)
    assert bad.returncode == 1 and "expected <point>:<n>" in bad.stderr and "commit.done" in bad.stderr
