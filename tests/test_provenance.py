"""Stage run records: written by any `ecgpipe` command run as a DVC stage, with the git state of the code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.core.provenance import (
    FLOW_RUN_ENV,
    code_version,
    output_patterns,
    record_name,
    stage_context,
)

REPO = Path(__file__).resolve().parents[1]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True)


def test_record_names_keep_the_stage_address_and_drop_the_dvc_file_prefix() -> None:
    assert record_name("train@resnet") == "train@resnet.json"
    assert record_name("sub/dvc.yaml:train@resnet") == "train@resnet.json"
    assert record_name("weird name/x") == "weird_name_x.json"


def test_stage_context_needs_both_dvc_variables() -> None:
    assert stage_context({"DVC_STAGE": "ingest"}) is None
    assert stage_context({"DVC_STAGE": "ingest", "DVC_ROOT": "/p"}) == ("ingest", Path("/p"))


def test_dirty_means_code_changed_not_a_dvc_output(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    foreach: [a]\n    do:\n      cmd: x\n      outs:\n"
        "        - out/${item}.csv:\n            cache: false\n      metrics:\n        - m.json\n"
    )
    (tmp_path / "out").mkdir()
    for name in ("out/a.csv", "m.json", "code.py"):
        (tmp_path / name).write_text("1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "init")
    assert output_patterns(tmp_path) == ["dvc.lock", "out/*.csv", "m.json"]
    (tmp_path / "out" / "a.csv").write_text("2\n")
    (tmp_path / "m.json").write_text("2\n")
    clean = code_version(tmp_path)
    assert clean["git_dirty"] is False and clean["dirty_files"] == [] and len(clean["git_commit"]) == 40
    (tmp_path / "code.py").write_text("2\n")
    assert code_version(tmp_path)["dirty_files"] == ["code.py"]


def test_a_command_run_as_a_dvc_stage_writes_its_record_and_a_failing_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVC_STAGE", "summary@x")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv(FLOW_RUN_ENV, "0b8e-run")
    params = ["--params", str(REPO / "params.yaml"), "--set", f"ingest.store={tmp_path / 'none'}"]
    assert main(["summary", *params]) == 0
    rec = json.loads((tmp_path / "provenance" / "summary@x.json").read_text())
    assert rec["stage"] == "summary@x" and rec["argv"] == ["ecgpipe", "summary", *params]
    assert rec["prefect_flow_run_id"] == "0b8e-run" and rec["started_utc"] <= rec["finished_utc"]
    assert "git_commit" in rec and "git_dirty" in rec
    monkeypatch.setenv("DVC_STAGE", "split@nope")
    assert main(["split", "nope", *params]) != 0
    assert not (tmp_path / "provenance" / "split@nope.json").exists()
