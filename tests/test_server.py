"""``ecgpipe server start|stop|status`` with a real Prefect server on 127.0.0.1, and its reuse by a flow.

Each test uses its own ``PREFECT_HOME`` under tmp_path and a free port, and stops the server it
started (in ``finally``), whatever happened in between.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import server
from tests.prefect_server import api_post, free_port, server_env

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.prefect]


def _ecgpipe(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI's entry point in a fresh interpreter, ``home`` as PREFECT_HOME, no API URL."""
    env = {**server_env(home), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A PREFECT_HOME whose server, if a test started one, is stopped afterwards."""
    path = tmp_path / "prefect-home"
    try:
        yield path
    finally:
        server.stop(path)


def test_start_status_stop_manage_one_server_and_leave_no_state_behind(home: Path) -> None:
    port = free_port()
    started = _ecgpipe(home, "server", "start", "--port", str(port))
    assert started.returncode == 0, started.stderr
    state = server.read_state(home)
    assert state is not None and state.port == port and state.api_url == f"http://127.0.0.1:{port}/api"
    assert server.healthy(state.api_url)
    assert (home / "server.log").stat().st_size > 0  # the server's own output goes to the log

    status = _ecgpipe(home, "server", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["running"] is True

    again = _ecgpipe(home, "server", "start")  # a second start reuses the running server
    assert again.returncode == 0 and f"pid {state.pid}" in again.stdout

    stopped = _ecgpipe(home, "server", "stop")
    assert stopped.returncode == 0 and f"pid {state.pid}" in stopped.stdout
    assert server.read_state(home) is None
    assert not server.healthy(state.api_url)
    with pytest.raises(ProcessLookupError):
        os.killpg(state.pid, 0)  # the whole process group is gone
    gone = _ecgpipe(home, "server", "status")
    assert gone.returncode == 1 and json.loads(gone.stdout)["running"] is False


def test_stale_state_file_is_reported_and_not_used(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    stale = {"pid": int(dead.stdout), "port": free_port(), "log": "x", "started": "then"}
    stale["api_url"] = f"http://127.0.0.1:{stale['port']}/api"
    server.state_path(home).write_text(json.dumps(stale))
    report = server.status(home)
    assert report["running"] is False and "stale" in str(report["problem"])
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert server.use_running_server() is None
    assert "PREFECT_API_URL" not in os.environ


def test_ingest_uses_the_running_server_and_records_a_no_op_run_without_the_flow_engine(
    home: Path, tmp_path: Path
) -> None:
    state = server.start(free_port(), home=home)
    raw = tmp_path / "ucr"
    raw.mkdir()
    (raw / "ECG_TRAIN.txt").write_text("".join(f"{1 + i % 2} " + " 0.5" * 140 + "\n" for i in range(4)))
    args = [
        "--profile",
        "beats140",
        "--set",
        f"ingest.store={tmp_path / 'store'}",
        "--set",
        f"sources.ucr.root={raw}",
    ]
    # no PREFECT_API_URL in the environment: the command finds the server through PREFECT_HOME
    first = _ecgpipe(home, "ingest", *args)
    assert first.returncode == 0, first.stderr
    assert "4 records in the store (4 processed in this run)" in first.stdout
    assert "temporary server" not in first.stdout + first.stderr
    second = _ecgpipe(home, "ingest", *args, "--metrics", str(tmp_path / "metrics.json"))
    assert second.returncode == 0, second.stderr
    assert "4 records in the store (0 processed in this run)" in second.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["beats140"]["records"] == 4

    runs = api_post(
        state.api_url,
        "/flow_runs/filter",
        {"flows": {"name": {"any_": ["ingest"]}}, "sort": "START_TIME_ASC"},
    )
    assert [(r["state_type"], "no-op" in r["tags"]) for r in runs] == [
        ("COMPLETED", False),
        ("COMPLETED", True),
    ]
    assert runs[1]["parameters"]["profiles"] == ["beats140"]
    subflows = api_post(state.api_url, "/flow_runs/filter", {"flows": {"name": {"any_": ["ingest-profile"]}}})
    assert len(subflows) == 1  # the first run processed records in its subflow; the no-op has none
    arts = api_post(state.api_url, "/artifacts/filter", {"artifacts": {"key": {"any_": ["ingest-summary"]}}})
    assert {a["flow_run_id"] for a in arts} == {r["id"] for r in runs}
    logs = api_post(state.api_url, "/logs/filter", {"logs": {"flow_run_id": {"any_": [runs[1]["id"]]}}})
    assert any("beats140: 0 units to process" in line["message"] for line in logs)


def test_a_state_file_pointing_off_this_machine_is_refused(home: Path) -> None:
    home.mkdir(parents=True)
    state = {
        "pid": os.getpid(),
        "port": 80,
        "api_url": "http://example.org:80/api",
        "log": "x",
        "started": "then",
    }
    server.state_path(home).write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match="not on 127.0.0.1"):
        server.read_state(home)
    assert server.running_server(home) is None
