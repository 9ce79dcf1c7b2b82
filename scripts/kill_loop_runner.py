"""The kill loop itself: a reference run, rounds of kills each followed by one re-run that must restore
the reference, and two ingests at once on one store."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kill_loop_compare import Comparison, compare, snapshot
from kill_loop_harness import PROFILES, RUN_TIMEOUT_S, Harness, Run, by_profile, wait_or_kill
from kill_loop_plan import KillPoint, LoopResult, phase_of
from kill_loop_tree import REPO, load_tree_params

from pipeline.core.crashpoints import CRASH_AT_ENV, CRASH_LOG_ENV

LOCK_MESSAGE = "another ingest is writing this store"


class KillLoop:
    """Reference run, then rounds of kills each followed by one re-run; see the module docstring."""

    def __init__(self, harness: Harness, log: Callable[[str], None] = print, seed: int = 0) -> None:
        self.h = harness
        self.log = log
        self.rng = random.Random(seed)
        self.result = LoopResult()
        self.ref: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, Counter[str]] = {}
        self.window = (0.0, 0.0)

    def reference(self) -> None:
        store = self.h.work / "reference" / "store"
        run = self.h.run(store)
        if run.returncode != 0:
            raise RuntimeError(f"the reference ingest failed ({run.returncode}):\n{run.log_tail}")
        parts = by_profile(run.trace, PROFILES)
        self.counts = {p: Counter(part) for p, part in zip(PROFILES, parts, strict=True)}
        first = run.trace[0][1] if run.trace else 0.0
        # random kills fall between the first crash point and the end of the run (Harness.run)
        self.window = (0.0, run.seconds - first)
        self.ref = {p: snapshot(store, p) for p in PROFILES}
        self.result.reference = {
            "seconds": round(run.seconds, 2),
            "first_crash_point_s": round(first, 2),
            "records": {p: len(s["ids"]) for p, s in self.ref.items()},
            "quarantine_entries": {p: len(s["quarantine"]) for p, s in self.ref.items()},
            "crash_points_reached": {p: dict(c) for p, c in self.counts.items()},
        }
        self.log(f"reference: {run.seconds:.1f} s, records {self.result.reference['records']}")

    def round(self, index: int, kills: Sequence[KillPoint]) -> None:
        store = self.h.work / f"round-{index:03d}" / "store"
        for kp in kills:
            self.kill(index, kp, store)
        self.rerun(index, store)

    def kill(self, index: int, kp: KillPoint, store: Path, attempts: int = 3) -> None:
        """One kill; a random one that came after the run had ended is drawn again, sooner, on
        a fresh store (the finished run proved nothing about crashes), at most ``attempts`` times."""
        for _ in range(attempts):
            run = self._kill_once(index, kp, store)
            if run.killed or kp.kind == "named":
                return
            shutil.rmtree(store)
            kp = KillPoint("random", delay_s=round(self.rng.uniform(0.0, kp.delay_s or 0.0), 3))

    def _kill_once(self, index: int, kp: KillPoint, store: Path) -> Run:
        profiles = PROFILES[PROFILES.index(kp.profile) :] if kp.profile else PROFILES
        spec = f"{kp.point}:{kp.n}" if kp.kind == "named" else None
        run = self.h.run(store, profiles, crash_at=spec, kill_after_s=kp.delay_s)
        kinds = self._kinds_after_kill(store)
        corrupt = {p: k for p, k in kinds.items() if k.get("corrupt") or k.get("accounting")}
        entry = {
            **asdict(kp),
            "round": index,
            "killed": run.killed,
            "returncode": run.returncode,
            "phase": phase_of(kp, run),
            "seconds": round(run.seconds, 2),
            "problem_kinds_after_kill": kinds,
            "corrupt_after_kill": bool(corrupt),
        }
        if kp.kind == "named" and not run.killed:
            entry["error"] = f"never reached the crash point (exit {run.returncode}): {run.log_tail[-800:]}"
        self.result.kills.append(entry)
        self.log(
            f"round {index}: kill {kp.label()}: {entry['phase']}, exit {run.returncode}"
            f"{', CORRUPT ' + str(corrupt) if corrupt else ''}"
        )
        return run

    def rerun(self, index: int, store: Path) -> None:
        run = self.h.run(store)
        verified, compared = self.check(store)
        self.result.reruns.append(
            {
                "round": index,
                "returncode": run.returncode,
                "seconds": round(run.seconds, 2),
                "verify": verified,
                "compare": compared,
                **({"log_tail": run.log_tail[-1500:]} if run.returncode else {}),
            }
        )
        bad = [p for p in PROFILES if not verified[p]["ok"] or compared[p]["differences"]]
        self.log(
            f"round {index}: re-run exit {run.returncode}, {'NOT CLEAN ' + str(bad) if bad else 'clean'}"
        )

    def check(self, store: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verify each profile and compare it with the reference."""
        from pipeline.cli.verify import verify_profile

        params = load_tree_params(self.h.raw, store, self.h.spec)
        verified: dict[str, Any] = {}
        compared: dict[str, Any] = {}
        for p in PROFILES:
            res = verify_profile(params, p)
            debris = [w["where"] for w in res.warnings if w["check"] == "debris"]
            verified[p] = {"ok": res.ok, "kinds": res.kinds(), "problems": res.problems[:5], "debris": debris}
            try:
                compared[p] = asdict(compare(snapshot(store, p), self.ref[p]))
            except (OSError, ValueError, KeyError) as exc:
                compared[p] = asdict(Comparison([f"unreadable: {exc}"], 0, len(self.ref[p]["ids"]), 0, 0))
        return verified, compared

    def _kinds_after_kill(self, store: Path) -> dict[str, dict[str, int]]:
        from pipeline.cli.verify import verify_profile

        params = load_tree_params(self.h.raw, store, self.h.spec)
        return {p: verify_profile(params, p).kinds() for p in PROFILES}

    def concurrent(self) -> None:
        """Two ingests on one fresh store, started together; then verify and compare.

        Left alone they may never meet: a start-up seconds slower (two interpreters importing
        Prefect on a busy machine) lets one finish before the other takes its first lock. So the
        first to hold a store's lock (its first crash point is inside the lock) is frozen with
        SIGSTOP until the other has exited, then resumed: the other must refuse at once, clearly,
        and the frozen one must finish the store as if it had been alone.
        """
        store = self.h.work / "concurrent" / "store"
        logs = [self.h.work / f"concurrent-{i}.log" for i in range(2)]
        traces = [self.h.work / f"concurrent-{i}.trace" for i in range(2)]
        t0 = time.time()
        procs = [self._start(store, log, trace) for log, trace in zip(logs, traces, strict=True)]
        frozen = _freeze_first_to_lock(procs, traces)
        rcs: list[int | None] = [None, None]
        try:
            if frozen is not None:
                other = 1 - frozen
                rcs[other] = wait_or_kill(procs[other], None)
                os.killpg(procs[frozen].pid, signal.SIGCONT)
            for i, proc in enumerate(procs):
                if rcs[i] is None:
                    rcs[i] = wait_or_kill(proc, None)
        finally:
            for proc in procs:
                wait_or_kill(proc, 0.0)
        texts = [log.read_text(errors="replace") for log in logs]
        verified, compared = self.check(store)
        self.result.concurrent = {
            "returncodes": rcs,
            "frozen_while_holding_the_lock": frozen,
            "seconds": round(time.time() - t0, 2),
            "lock_refusals": [LOCK_MESSAGE in t for t in texts],
            "refusal_lines": [_error_line(t) for t in texts],
            "verify": verified,
            "compare": compared,
        }
        self.log(f"concurrent: exit codes {rcs}, lock refusals {self.result.concurrent['lock_refusals']}")

    def _start(self, store: Path, log: Path, trace: Path) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in self.h.env.items() if k not in (CRASH_AT_ENV, CRASH_LOG_ENV)}
        env[CRASH_LOG_ENV] = str(trace)
        with log.open("wb") as fh:
            return subprocess.Popen(
                self.h.command(store, PROFILES),
                cwd=REPO,
                env=env,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
            )


def _freeze_first_to_lock(procs: Sequence[subprocess.Popen[bytes]], traces: Sequence[Path]) -> int | None:
    """SIGSTOP the first process to log a crash point (it holds a store lock then); its index,
    or None if both ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        for i, (proc, trace) in enumerate(zip(procs, traces, strict=True)):
            if proc.poll() is None and trace.exists() and trace.stat().st_size > 0:
                os.killpg(proc.pid, signal.SIGSTOP)
                return i
        time.sleep(0.005)
    return None


def _error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("error:") or LOCK_MESSAGE in ln]
    return lines[-1][-300:] if lines else ""
