"""One ``ecgpipe ingest`` process of the kill loop: run it to its end, to a named crash point, or until
SIGKILLed, and read back the crash points it reached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from kill_loop_tree import REPO, TreeSpec, overrides

from pipeline.core.crashpoints import CRASH_AT_ENV, CRASH_LOG_ENV

PROFILES = ("ecg12", "lead1_af", "holter")


RUN_TIMEOUT_S = 300.0


@dataclass
class Run:
    """One ``ecgpipe ingest`` process: how it ended and the crash points it reached."""

    profiles: tuple[str, ...]
    returncode: int
    seconds: float
    killed: bool
    trace: list[tuple[str, float]]  # (point, seconds since the process started)
    log_tail: str


@dataclass
class Harness:
    """Where and how ingest runs: the raw tree, the environment (Prefect server), a scratch dir."""

    raw: Path
    work: Path
    env: Mapping[str, str]
    spec: TreeSpec = field(default_factory=TreeSpec)
    ecgpipe: Path = field(default_factory=lambda: Path(sys.executable).parent / "ecgpipe")
    runs: int = 0

    def command(self, store: Path, profiles: Sequence[str]) -> list[str]:
        sets = [a for s in overrides(self.raw, store, self.spec) for a in ("--set", s)]
        profs = [a for p in profiles for a in ("--profile", p)]
        return [str(self.ecgpipe), "ingest", "--params", str(REPO / "params.yaml"), *sets, *profs]

    def run(
        self,
        store: Path,
        profiles: Sequence[str] = PROFILES,
        crash_at: str | None = None,
        kill_after_s: float | None = None,
    ) -> Run:
        """Run ingest to its end, to its crash point, or until SIGKILLed ``kill_after_s`` after it
        reached its first crash point (so that a random kill lands in the part of the run that
        touches the store, whatever the machine's load during interpreter start-up)."""
        self.runs += 1
        tag = f"run-{self.runs:04d}"
        trace, log = self.work / f"{tag}.trace", self.work / f"{tag}.log"
        env = {k: v for k, v in self.env.items() if k not in (CRASH_AT_ENV, CRASH_LOG_ENV)}
        env[CRASH_LOG_ENV] = str(trace)
        if crash_at:
            env[CRASH_AT_ENV] = crash_at
        with log.open("wb") as fh:
            t0 = time.time()
            proc = subprocess.Popen(
                self.command(store, profiles), cwd=REPO, env=env, stdout=fh, stderr=fh, start_new_session=True
            )
            rc = wait_or_kill(proc, kill_after_s, trace)
            seconds = time.time() - t0
        tail = log.read_text(errors="replace")[-3000:]
        return Run(tuple(profiles), rc, seconds, rc == -signal.SIGKILL, read_trace(trace, t0), tail)


def wait_or_kill(proc: subprocess.Popen[bytes], kill_after_s: float | None, trace: Path | None = None) -> int:
    """Wait for ``proc``; SIGKILL its process group ``kill_after_s`` after the first line of
    ``trace`` appeared, if it still runs. The group is always gone afterwards (a killed ingest
    must leave no helper process behind)."""
    try:
        if kill_after_s is not None and _first_point(proc, trace):
            try:
                return proc.wait(timeout=kill_after_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait()


def _first_point(proc: subprocess.Popen[bytes], trace: Path | None) -> bool:
    """Wait until the run logged its first crash point (True) or ended (False)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if trace is None or (trace.exists() and trace.stat().st_size > 0):
            return True
        time.sleep(0.01)
    return False


def read_trace(path: Path, t0: float) -> list[tuple[str, float]]:
    """The crash-point log of a run: (point, seconds since ``t0``); empty if none was reached."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, stamp = line.partition(" ")
        out.append((name, float(stamp) - t0 if stamp else float("nan")))
    return out


def by_profile(trace: Sequence[tuple[str, float]], profiles: Sequence[str]) -> list[list[str]]:
    """Split a run's points into its profiles' parts (profiles run one after the other).

    A profile's part ends with ``commit.done`` and the JSON writes of its relabelling; the next
    profile's starts at its first ``batch.read_unit`` (a run on a fresh store reads in every
    profile). Points after the last boundary belong to the profile that was running.
    """
    parts: list[list[str]] = [[]]
    done = False
    for name, _ in trace:
        if name == "batch.read_unit" and done:
            parts.append([])
            done = False
        done = done or name == "commit.done"
        parts[-1].append(name)
    if len(parts) > len(profiles):
        raise ValueError(f"trace splits into {len(parts)} parts for {len(profiles)} profiles")
    return parts
