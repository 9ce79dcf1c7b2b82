"""A real Prefect server (SQLite, 127.0.0.1, a free port) for integration tests, and small API helpers.

:func:`prefect_server` starts ``prefect server start`` in its own process group with its own
``PREFECT_HOME`` and database, waits until ``/api/health`` answers, yields the API URL, and stops
the whole group (server and its children) when the block exits, whatever happened inside.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.pipeline_repo import tool_env

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for the server and its clients: own home, no analytics, this interpreter's tools."""
    extra = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    if api_url:
        extra["PREFECT_API_URL"] = api_url
    return tool_env(extra)


def stop_group(proc: subprocess.Popen[Any], grace_s: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace_s``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


@contextmanager
def prefect_server(home: Path, startup_timeout_s: float = 120.0) -> Iterator[str]:
    """Start a Prefect server on 127.0.0.1; yields its API URL (``http://127.0.0.1:<port>/api``)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = (home / "server.log").open("w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=server_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: _healthy(api, proc), startup_timeout_s, f"Prefect server on {api}", home / "server.log"
        )
        yield api
    finally:
        stop_group(proc)
        log.close()


def _healthy(api: str, proc: subprocess.Popen[Any]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"prefect server exited with {proc.returncode} before it was healthy")
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str, log: Path | None = None) -> T:
    """Poll ``check`` every second until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(1.0)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{tail}")


def api_post(api: str, path: str, body: dict[str, Any]) -> Any:
    resp = httpx.post(f"{api}{path}", json=body, timeout=30)
    resp.raise_for_status()
    return resp.json()


def api_get(api: str, path: str) -> Any:
    resp = httpx.get(f"{api}{path}", timeout=30)
    resp.raise_for_status()
    return resp.json()


def flow_runs(api: str, deployment_id: str) -> list[dict[str, Any]]:
    """Every flow run of a deployment, oldest first."""
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200}
    runs: list[dict[str, Any]] = api_post(api, "/flow_runs/filter", body)
    return runs


def deployment_by_name(api: str, flow_name: str, name: str) -> dict[str, Any] | None:
    try:
        got: dict[str, Any] = api_get(api, f"/deployments/name/{flow_name}/{name}")
    except httpx.HTTPStatusError:
        return None
    return got


def events(api: str, prefix: str, since: str, resource_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Events whose name starts with ``prefix`` since an ISO time (optionally about these resources)."""
    flt: dict[str, Any] = {"event": {"prefix": [prefix]}, "occurred": {"since": since}}
    if resource_ids:
        flt["resource"] = {"id": resource_ids}
    page = api_post(api, "/events/filter", {"filter": flt, "limit": 50})  # the server's page size cap
    found: list[dict[str, Any]] = list(page.get("events", []))
    while page.get("next_page"):
        resp = httpx.get(page["next_page"], timeout=30)
        resp.raise_for_status()
        page = resp.json()
        found.extend(page.get("events", []))
    return found
