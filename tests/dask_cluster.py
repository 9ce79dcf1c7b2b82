"""A real Dask cluster as separate OS processes (not ``LocalCluster``), for tests and benchmarks.

:func:`local_cluster` starts ``dask scheduler`` and ``n_workers`` × ``dask worker`` from this
interpreter's environment, each in its own process group (session), every socket bound to
127.0.0.1 (no dashboard; the HTTP endpoints on random ports), logs in ``work_dir``; it waits
until the scheduler reports every worker, yields a :class:`DaskCluster`, and on exit stops every
process it started (SIGTERM to each group, SIGKILL after a grace period), whatever happened
inside the block.

Workers run with ``--no-nanny`` by default, so each ``dask worker`` process is the process that
runs tasks. With ``nanny=True`` the CLI process is a nanny that spawns the worker as its child. In
both cases :attr:`DaskCluster.worker_pids` comes from the scheduler (``client.run(os.getpid)``),
so it always names the processes that execute tasks.

Workers do not inherit the environment of the process that later submits work to them: pass what
they need in ``env``. ``PREFECT_API_URL`` of the calling process is dropped unless ``env`` sets it,
so a worker never reports to a server by accident. (Prefect also ships the flow's settings, its API
URL included when it has one, with every task; a flow with no API URL of its own, i.e. a temporary
server, makes each worker process start a temporary server of its own: see
tests/test_cluster_ingest.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from tests.pipeline_repo import tool_env

DASK = Path(sys.executable).with_name("dask")
REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class DaskCluster:
    """A running cluster: ``address`` is ``tcp://127.0.0.1:<port>``; ``worker_pids`` are the
    processes that run tasks (one per worker, in worker order); ``process_groups`` are the
    process-group ids of everything :func:`local_cluster` started (scheduler first)."""

    address: str
    scheduler_pid: int
    worker_pids: tuple[int, ...]
    process_groups: tuple[int, ...] = ()
    log_dir: Path | None = None


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def _spawn(name: str, args: Sequence[str], work_dir: Path, env: Mapping[str, str], stack: ExitStack) -> _Proc:
    """Start ``args`` in a new session (its own process group), output to ``work_dir/<name>.log``."""
    log = work_dir / f"{name}.log"
    fh: IO[bytes] = stack.enter_context(log.open("wb"))  # noqa: SIM115 - the ExitStack closes it
    popen = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        list(args), stdout=fh, stderr=subprocess.STDOUT, env=dict(env), cwd=work_dir, start_new_session=True
    )
    return _Proc(name, popen, log)


def _tails(procs: Sequence[_Proc], chars: int = 3000) -> str:
    parts = []
    for p in procs:
        text = p.log.read_text(errors="replace")[-chars:] if p.log.exists() else "(no log)"
        parts.append(f"--- {p.name} (pid {p.popen.pid}, exit {p.popen.poll()}): {p.log}\n{text}")
    return "\n".join(parts)


def _check_alive(procs: Sequence[_Proc], what: str) -> None:
    dead = [p for p in procs if p.popen.poll() is not None]
    if dead:
        raise RuntimeError(f"{', '.join(p.name for p in dead)} exited while {what}\n{_tails(procs)}")


def _scheduler_address(info: Path, procs: Sequence[_Proc], timeout_s: float) -> str:
    """The address the scheduler wrote to its ``--scheduler-file`` (it picks a free port itself)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check_alive(procs, "waiting for the scheduler")
        try:
            address = json.loads(info.read_text())["address"]
        except (OSError, ValueError, KeyError):
            address = None
        if isinstance(address, str) and address.startswith(f"tcp://{HOST}:"):
            return address
        time.sleep(0.1)
    raise TimeoutError(f"the scheduler wrote no address to {info} in {timeout_s:.0f} s\n{_tails(procs)}")


def _wait_for_workers(address: str, n: int, procs: Sequence[_Proc], timeout_s: float) -> tuple[int, ...]:
    """Block until the scheduler lists ``n`` workers; return the pid of each worker process."""
    from distributed import Client

    deadline = time.monotonic() + timeout_s
    with Client(address, timeout=f"{max(timeout_s, 1.0):.0f}s") as client:  # type: ignore[no-untyped-call]  # distributed ships no type hints for Client
        while True:
            _check_alive(procs, f"waiting for {n} workers")
            try:
                client.wait_for_workers(n, timeout=1.0)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    got = len(client.scheduler_info()["workers"])
                    raise TimeoutError(
                        f"{got} of {n} workers joined {address} in {timeout_s:.0f} s\n{_tails(procs)}"
                    ) from None
        pids: dict[str, int] = client.run(os.getpid)
        # worker order: the --name each was started with (w0, w1, ...)
        names = {addr: w["name"] for addr, w in client.scheduler_info(n_workers=-1)["workers"].items()}
    return tuple(pids[a] for a in sorted(pids, key=lambda a: str(names[a])))


def _stop(procs: Sequence[_Proc], grace_s: float) -> None:
    """SIGTERM the workers and wait, then the scheduler; SIGKILL whatever is left after ``grace_s``.

    Workers go first: a worker told to stop while its scheduler is closing too waits on the lost
    connection until its timeout instead of exiting.
    """
    deadline = time.monotonic() + grace_s
    for stage in (procs[1:], procs[:1]):
        for p in stage:
            _signal_group(p.popen.pid, signal.SIGTERM)
        for p in stage:
            with suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
    for p in procs:
        # children a nanny spawned may outlive their parent: kill the whole group regardless
        _signal_group(p.popen.pid, signal.SIGKILL)
        if p.popen.poll() is None:
            p.popen.wait(timeout=30)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def group_members(pgids: Sequence[int]) -> list[int]:
    """Pids of live (non-zombie) processes in any of these process groups."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) in pgids and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def leftover_processes(cluster: DaskCluster, wait_s: float = 10.0) -> list[int]:
    """Processes of ``cluster`` still alive, after waiting up to ``wait_s`` for them to go."""
    pids = {cluster.scheduler_pid, *cluster.worker_pids}
    deadline = time.monotonic() + wait_s
    while True:
        left = sorted(set(group_members(cluster.process_groups)) | {p for p in pids if _alive(p)})
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening_addresses(pids: Sequence[int]) -> list[tuple[str, int]]:
    """(ip, port) of every listening TCP socket the given processes hold."""
    out: list[tuple[str, int]] = []
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                out.append((str(conn.laddr.ip), int(conn.laddr.port)))
    return out


def _scheduler_args(info: Path, idle_timeout_s: float) -> list[str]:
    return [
        str(DASK), "scheduler", "--host", HOST, "--port", "0", "--no-dashboard",
        # the HTTP server (health, metrics) starts even with --no-dashboard, by default on 0.0.0.0:8787
        "--dashboard-address", f"{HOST}:0",
        "--scheduler-file", str(info), "--idle-timeout", f"{idle_timeout_s:.0f}s",
    ]  # fmt: skip


def _worker_args(address: str, i: int, work_dir: Path, nthreads: int, nanny: bool) -> list[str]:
    return [
        str(DASK), "worker", address, "--name", f"w{i}", "--nworkers", "1", "--nthreads", str(nthreads),
        "--host", HOST, "--no-dashboard", "--dashboard-address", f"{HOST}:0",
        "--local-directory", str(work_dir / f"w{i}"),
        # a worker whose scheduler is gone (the test process was killed) exits on its own
        "--death-timeout", "60s", "--nanny" if nanny else "--no-nanny",
    ]  # fmt: skip


def _cluster_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """``env`` over this environment; the repository root on PYTHONPATH so that functions from
    ``tests``/``benchmarks`` modules (pickled by reference) can be loaded by the workers."""
    full = tool_env(env)
    path = full.get("PYTHONPATH")
    full["PYTHONPATH"] = f"{REPO}{os.pathsep}{path}" if path else str(REPO)
    return full


@contextmanager
def local_cluster(
    n_workers: int,
    work_dir: Path,
    env: Mapping[str, str] | None = None,
    nthreads: int = 1,
    *,
    nanny: bool = False,
    startup_timeout_s: float = 90.0,
    stop_grace_s: float = 15.0,
    idle_timeout_s: float = 900.0,
) -> Iterator[DaskCluster]:
    """Start a scheduler and ``n_workers`` single-process workers (``nthreads`` threads each).

    ``env`` is laid over this process's environment (this interpreter's ``bin`` first on PATH, the
    repository root on PYTHONPATH) for every process started; their working directory is
    ``work_dir``. ``idle_timeout_s``: the scheduler exits after that long with no clients
    and no work, so a cluster orphaned by a killed test process does not live forever. Raises
    ``RuntimeError``/``TimeoutError`` with the tail of every process's log if the cluster does not
    come up within ``startup_timeout_s``.
    """
    if n_workers < 1 or nthreads < 1:
        raise ValueError(f"n_workers and nthreads must be >= 1, got {n_workers}, {nthreads}")
    work_dir.mkdir(parents=True, exist_ok=True)
    full_env = _cluster_env(env)
    info = work_dir / "scheduler.json"
    info.unlink(missing_ok=True)  # a stale file from an earlier cluster would name a dead address
    procs: list[_Proc] = []
    with ExitStack() as logs:
        try:
            procs.append(_spawn("scheduler", _scheduler_args(info, idle_timeout_s), work_dir, full_env, logs))
            address = _scheduler_address(info, procs, startup_timeout_s)
            for i in range(n_workers):
                args = _worker_args(address, i, work_dir, nthreads, nanny)
                procs.append(_spawn(f"worker-{i}", args, work_dir, full_env, logs))
            worker_pids = _wait_for_workers(address, n_workers, procs, startup_timeout_s)
            yield DaskCluster(
                address=address,
                scheduler_pid=procs[0].popen.pid,
                worker_pids=worker_pids,
                process_groups=tuple(p.popen.pid for p in procs),
                log_dir=work_dir,
            )
        finally:
            _stop(procs, stop_grace_s)
