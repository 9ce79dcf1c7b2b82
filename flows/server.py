"""``ecgpipe server start|stop|status``: one long-lived local Prefect server that every command reuses.

Without a server, each ``ecgpipe ingest``/``land`` (and each DVC stage that runs one) starts Prefect's
temporary server and stops it at exit (≈ 10 s per command). ``ecgpipe server start`` runs Prefect's
own ``prefect server start`` on 127.0.0.1 in its own session, with its output in
``$PREFECT_HOME/server.log`` and its pid, port and API URL in ``$PREFECT_HOME/ecgpipe-server.json``.
The server uses ``$PREFECT_HOME``'s database, the same one the temporary servers use, so runs recorded
before and after share one history.

:func:`use_running_server` (called when ``flows`` is imported) points ``PREFECT_API_URL`` at that
server when it answers ``/api/health``; when none runs, or ``PREFECT_API_URL`` is already set, nothing
changes and Prefect falls back to its temporary server as before. Module-level imports stay in the
standard library: every ``ecgpipe`` command imports this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "ecgpipe-server.json"
LOG_FILE = "server.log"
HOST = "127.0.0.1"
DEFAULT_PORT = 4200


@dataclass(frozen=True)
class ServerState:
    """What ``ecgpipe server start`` recorded: the server's process (group) id, port and API URL."""

    pid: int
    port: int
    api_url: str
    log: str
    started: str


def prefect_home() -> Path:
    """``$PREFECT_HOME`` (``flows`` sets it to ``./.prefect`` unless the caller set it)."""
    return Path(os.environ.get("PREFECT_HOME") or Path.cwd() / ".prefect")


def state_path(home: Path | None = None) -> Path:
    return (home or prefect_home()) / STATE_FILE


def read_state(home: Path | None = None) -> ServerState | None:
    """The recorded server, or None when there is no (readable) state file."""
    path = state_path(home)
    try:
        state = ServerState(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise RuntimeError(f"{path}: not an ecgpipe server state file ({exc}); delete it") from exc
    if not state.api_url.startswith(f"http://{HOST}:"):  # runs would be sent wherever it points
        raise RuntimeError(f"{path}: api_url {state.api_url!r} is not on {HOST}; delete the file")
    return state


def healthy(api_url: str, timeout_s: float = 1.0) -> bool:
    """Whether ``<api_url>/health`` answers 200 (urllib, imported here: only when a state file exists)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout_s) as resp:  # noqa: S310 - our own http URL
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process reuses the pid
        return False
    return True


def running_server(home: Path | None = None) -> ServerState | None:
    """The recorded server when its process is alive and its API answers, else None."""
    try:
        state = read_state(home)
    except RuntimeError:
        return None
    if state is None or not _alive(state.pid) or not healthy(state.api_url):
        return None
    return state


def use_running_server() -> str | None:
    """Set ``PREFECT_API_URL`` to the running ``ecgpipe server``'s API unless the caller set one.

    Returns the URL now in use, or None (no server: Prefect starts its temporary one as before).
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    state = running_server()
    if state is None:
        return None
    os.environ["PREFECT_API_URL"] = state.api_url
    return state.api_url


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_port(port: int | None) -> int:
    """``port`` when given (it must be free), else 4200 when free, else any free port."""
    if port is not None:
        if not _port_free(port):
            raise RuntimeError(f"port {port} on {HOST} is in use; choose another with --port")
        return port
    if _port_free(DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _prefect_command() -> list[str]:
    """``prefect`` from this interpreter's environment (``python -m prefect`` is the same CLI)."""
    return [sys.executable, "-m", "prefect"]


def start(port: int | None = None, timeout_s: float = 120.0, home: Path | None = None) -> ServerState:
    """Start the server (or return the one already running); waits until ``/api/health`` answers.

    The server runs in its own session, so it outlives this command and :func:`stop` can end its
    whole process group. A server that does not become healthy in ``timeout_s`` is stopped and the
    error names the log.
    """
    home = home or prefect_home()
    current = running_server(home)
    if current is not None:
        return current
    home.mkdir(parents=True, exist_ok=True)
    chosen = pick_port(port)
    api_url = f"http://{HOST}:{chosen}/api"
    log = home / LOG_FILE
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)  # the server must not think it is a client of another one
    with log.open("ab") as log_file:
        cmd = [*_prefect_command(), "server", "start", "--host", HOST, "--port", str(chosen), "--no-ui"]
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            cmd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    state = ServerState(proc.pid, chosen, api_url, str(log), started)
    deadline = time.monotonic() + timeout_s
    while not healthy(api_url):
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode} while starting; see {log}")
        if time.monotonic() > deadline:
            _stop_group(proc.pid)
            raise RuntimeError(f"prefect server not healthy on {api_url} after {timeout_s:.0f} s; see {log}")
        time.sleep(0.25)
    from pipeline.core.fs import write_atomic

    write_atomic(state_path(home), json.dumps(asdict(state), indent=2).encode())
    return state


def _stop_group(pid: int, grace_s: float = 20.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after ``grace_s`` if anything is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (``start`` then ``stop`` in one process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(home: Path | None = None) -> ServerState | None:
    """Stop the recorded server (if its process is alive) and remove the state file; returns it."""
    try:
        state = read_state(home)
    except RuntimeError:
        state_path(home).unlink(missing_ok=True)
        return None
    if state is None:
        return None
    if _alive(state.pid):
        _stop_group(state.pid)
    state_path(home).unlink(missing_ok=True)
    return state


def status(home: Path | None = None) -> dict[str, object]:
    """``running`` (bool), and the recorded pid/port/API URL/log when there is a state file."""
    try:
        state = read_state(home)
    except RuntimeError as exc:
        return {"running": False, "problem": str(exc)}
    if state is None:
        return {"running": False, "state_file": str(state_path(home))}
    alive = _alive(state.pid)
    ok = alive and healthy(state.api_url)
    out: dict[str, object] = {"running": ok, **asdict(state)}
    if not ok:
        out["problem"] = "API does not answer /health" if alive else "process not running (stale state file)"
    return out
