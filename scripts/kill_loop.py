"""Kill ``ecgpipe ingest`` with SIGKILL at many points, re-run it, and prove nothing was lost.

usage: .venv/bin/python scripts/kill_loop.py [--points 40] [--seed 0] [--work DIR] [--keep]
                                             [--out benchmarks/reliability/kill_loop.json]

A raw tree of real records is built from ``../shared/data`` (CinC 2017, PTB-XL at both rates, one
MIT-BIH record, plus a truncated record and an orphan signal file so that the quarantine has both
kinds of entry) and ingested into three profiles (``ecg12``, ``lead1_af``, ``holter``) with small
batches, so every profile writes several shards. One uninterrupted run is the reference. Then:

* **named points**: ingest is started with ``ECGPIPE_TEST_CRASH_AT=<point>:<n>``
  (:mod:`pipeline.core.crashpoints`) and kills itself the ``n``-th time it reaches ``<point>``: mid-way
  through a batch's reads, mid-way through a shard write, between a shard's rename and the manifest
  write, inside a JSON write between write and rename, between the manifest and the reports, after
  the reports and before the unified labels. ``n`` is drawn (seeded) from the times the reference
  run reached that point in that profile.
* **random times**: ingest is SIGKILLed (its whole process group) a random delay after it reached
  its first crash point, drawn within the rest of the reference run's duration (the interpreter
  start-up before that touches no store, and its length varies with the machine's load). A run
  that ends before its kill proves nothing and is repeated on a fresh store with a shorter delay.

After each kill the store is checked with ``pipeline.ingest.verify``: it may lag (an interrupted ingest)
but must never be corrupt. Then ingest is re-run to completion, and each profile's store must
verify clean and equal the reference record for record: the same live record ids (none lost,
none duplicated), the same stored signal bytes and per-record fields, the same unified labels,
units, quarantine entries and ingest report. Profiles are independent stores run one after the
other, so one round kills up to three runs, each in a later profile (``--profile`` limits a run
to the profiles not yet killed), before a single re-run recovers all of them.

The same script starts two ingests on one fresh store together; the first to hold a store lock
is frozen (SIGSTOP) until the other has exited, so they certainly meet: the other must refuse at
once with a clear error (exit 2), the frozen one must finish after it resumes, and the store must
verify clean and equal the reference. Results are printed as a table and written as JSON. All
runs use one real Prefect server (``tests/prefect_server.py``) so that a run costs its work plus
the Python start-up. ``tests/test_ingest_crash.py`` runs the same loop with fewer points.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: tests/ (the Prefect server helper) is beside it
    sys.path.insert(0, str(REPO))

from pipeline.core.crashpoints import CRASH_AT_ENV, CRASH_LOG_ENV, POINTS  # noqa: E402
from pipeline.store.local import STRING_FIELDS, ShardStore, array, read_strings  # noqa: E402
from pipeline.store.manifest import ShardEntry  # noqa: E402

PROFILES = ("ecg12", "lead1_af", "holter")
UNUSED_SOURCES = ("cinc2021", "ptb_diagnostic", "code", "ucr", "cpsc2021")
NUMERIC_FIELDS = ("orig_fs", "orig_len", "valid_len", "clipped")
# Report fields that describe one run, not the store (pipeline.ingest.commit leaves them out too).
PER_RUN_FIELDS = frozenset(
    {"records_processed_this_run", "units_processed_this_run", "units_unchanged", "root"}
)
LOCK_MESSAGE = "another ingest is writing this store"
RUN_TIMEOUT_S = 300.0


# --- the raw tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeSpec:
    n_cinc2017: int = 150
    n_ptbxl: int = 20
    mitbih: tuple[str, ...] = ("100",)
    batch_units: int = 16


def build_raw_tree(shared: Path, dest: Path, spec: TreeSpec) -> Path:
    """Copy real records from ``shared`` into ``dest/<source>`` (copies, never links: tests that
    change raw files must not touch the shared set); returns ``dest``."""
    _cinc2017_tree(shared / "cinc2017" / "training2017", dest / "cinc2017", spec.n_cinc2017)
    _ptbxl_tree(shared / "ptbxl", dest / "ptbxl", spec.n_ptbxl)
    (dest / "mitbih").mkdir(parents=True)
    for record in spec.mitbih:
        for f in sorted((shared / "mitbih").glob(f"{record}.*")):
            shutil.copy(f, dest / "mitbih" / f.name)
    return dest


def _cinc2017_tree(src: Path, dest: Path, n: int) -> None:
    """Records A00001..An, a truncated record A(n+1) (quarantined when read) and an orphan
    signal file A(n+2).mat with no header (rejected at discovery)."""
    dest.mkdir(parents=True)
    for i in range(1, n + 3):
        name = f"A{i:05d}"
        if i <= n + 1:
            shutil.copy(src / f"{name}.hea", dest / f"{name}.hea")
        data = (src / f"{name}.mat").read_bytes()
        (dest / f"{name}.mat").write_bytes(data[:200] if i == n + 1 else data)
    lines = (src / "REFERENCE.csv").read_bytes().split(b"\r\n")
    (dest / "REFERENCE.csv").write_bytes(b"\r\n".join(lines[: n + 1]) + b"\r\n")


def _ptbxl_tree(src: Path, dest: Path, n: int) -> None:
    """ecg_id 1..n at 500 Hz and 100 Hz (the 100 Hz copies are quarantined as duplicates)."""
    dest.mkdir(parents=True)
    rows = list(csv.reader(io.StringIO((src / "ptbxl_database.csv").read_text(encoding="utf-8"))))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows[: n + 1])
    (dest / "ptbxl_database.csv").write_text(buf.getvalue(), encoding="utf-8")
    shutil.copy(src / "scp_statements.csv", dest / "scp_statements.csv")
    for i in range(1, n + 1):
        for folder, suffix in (("records500", "hr"), ("records100", "lr")):
            for ext in (".hea", ".dat"):
                f = src / folder / "00000" / f"{i:05d}_{suffix}{ext}"
                if f.exists():
                    (dest / folder / "00000").mkdir(parents=True, exist_ok=True)
                    shutil.copy(f, dest / folder / "00000" / f.name)


def overrides(raw: Path, store: Path, spec: TreeSpec) -> list[str]:
    """``--set`` values pointing the repo's params at the tree and a store (other sources off)."""
    sets = [
        f"ingest.store={store}",
        f"ingest.smoke_store={store.with_name(store.name + '_smoke')}",
        f"ingest.batch_units={spec.batch_units}",
        "ingest.task_runner=threads",  # a crash point kills its own process: every batch must be in it
        f"sources.cinc2017.root={raw / 'cinc2017'}",
        f"sources.ptbxl.root={raw / 'ptbxl'}",
        f"sources.mitbih.root={raw / 'mitbih'}",
    ]
    return sets + [f"sources.{s}.enabled=false" for s in UNUSED_SOURCES]


def load_tree_params(raw: Path, store: Path, spec: TreeSpec) -> Any:
    from pipeline.config import load_params

    return load_params(REPO / "params.yaml", overrides(raw, store, spec))


# --- running ingest ------------------------------------------------------------------------------


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
        with Path(log).open("wb") as fh:
            t0 = time.time()
            proc = subprocess.Popen(
                self.command(store, profiles), cwd=REPO, env=env, stdout=fh, stderr=fh, start_new_session=True
            )
            rc = _wait_or_kill(proc, kill_after_s, trace)
            seconds = time.time() - t0
        tail = log.read_text(errors="replace")[-3000:]
        return Run(tuple(profiles), rc, seconds, rc == -signal.SIGKILL, read_trace(trace, t0), tail)


def _wait_or_kill(
    proc: subprocess.Popen[bytes], kill_after_s: float | None, trace: Path | None = None
) -> int:
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


# --- comparing stores ----------------------------------------------------------------------------


def snapshot(store_root: Path, profile: str) -> dict[str, Any]:
    """A profile store's content, record by record, independent of shard names and order."""
    from pipeline.store.labels import read_labels

    store = ShardStore(store_root / profile, profile)
    manifest = store.load_manifest()
    ids: list[str] = []
    records: dict[str, str] = {}
    for name, entry in sorted(manifest.shards.items()):
        for rid, value in _shard_records(store, name, entry):
            ids.append(rid)
            records[rid] = value
    labels = read_labels(store)
    quarantine = json.loads((store.root / "quarantine.json").read_text(encoding="utf-8"))
    report = json.loads((store.root / "ingest_report.json").read_text(encoding="utf-8"))
    return {
        "ids": sorted(ids),
        "records": records,
        "labels": {} if labels is None else _label_rows(labels),
        "vocabulary": [] if labels is None else list(labels.vocabulary),
        "units": {
            uid: [u.fingerprint, u.status, u.n_records, u.rejections] for uid, u in manifest.units.items()
        },
        "quarantine": sorted(json.dumps(e, sort_keys=True) for e in quarantine),
        "report": _report_state(report),
    }


def _shard_records(store: ShardStore, name: str, entry: ShardEntry) -> Iterator[tuple[str, str]]:
    """(record id, sha256 of its stored signal bytes and every per-record field) per live row."""
    group = store.open_shard(name)
    signal_rows = np.asarray(array(group, "signal")[...])
    strings = {f: read_strings(group, f) for f in STRING_FIELDS}
    numbers = {f: np.asarray(array(group, f)[...]) for f in NUMERIC_FIELDS}
    scale = json.dumps([group.attrs.get("storage_dtype"), group.attrs.get("scale_mv")])
    for r in entry.live_rows():
        h = hashlib.sha256(signal_rows[r].tobytes())
        h.update(f"{signal_rows.dtype}{signal_rows[r].shape}{scale}".encode())
        for f in STRING_FIELDS:
            h.update(strings[f][r].encode() + b"\0")
        for f in NUMERIC_FIELDS:
            h.update(numbers[f][r].tobytes())
        yield strings["record_id"][r], h.hexdigest()


def _label_rows(labels: Any) -> dict[str, str]:
    return {rid: bytes(y).hex() for rid, y in zip(labels.record_id, labels.y, strict=True)}


def _report_state(report: Any) -> Any:
    if isinstance(report, dict):
        return {k: _report_state(v) for k, v in report.items() if k not in PER_RUN_FIELDS}
    if isinstance(report, list):
        return [_report_state(v) for v in report]
    return report


@dataclass
class Comparison:
    differences: list[str]
    records: int
    lost: int
    duplicated: int
    extra: int


def compare(got: Mapping[str, Any], ref: Mapping[str, Any]) -> Comparison:
    """What differs between a store snapshot and the reference's, and records lost/duplicated."""
    ids, ref_ids = got["ids"], ref["ids"]
    lost = len(set(ref_ids) - set(ids))
    extra = len(set(ids) - set(ref_ids))
    dup = len(ids) - len(set(ids))
    diffs = []
    if lost or extra or dup:
        diffs.append(f"record ids: {lost} lost, {extra} not in the reference, {dup} duplicated")
    changed = sorted(r for r in set(ids) & set(ref_ids) if got["records"][r] != ref["records"][r])
    if changed:
        diffs.append(f"{len(changed)} record(s) differ in signal bytes or fields, e.g. {changed[:3]}")
    for key in ("labels", "vocabulary", "units", "quarantine", "report"):
        if got[key] != ref[key]:
            diffs.append(f"{key} differ from the reference")
    return Comparison(diffs, len(ids), lost, dup, extra)


# --- the loop ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    """A named point (``point`` reached for the ``n``-th time in ``profile``) or a random time."""

    kind: str  # "named" | "random"
    profile: str | None = None
    point: str | None = None
    n: int | None = None
    delay_s: float | None = None

    def label(self) -> str:
        if self.kind == "named":
            return f"{self.point}:{self.n} in {self.profile}"
        return f"random, {self.delay_s:.2f} s after the first crash point"


def plan_rounds(
    counts: Mapping[str, Mapping[str, int]], window: tuple[float, float], n_points: int, seed: int
) -> list[list[KillPoint]]:
    """Rounds of kills, seeded: every named point at least once, about a quarter random times.

    A round holds named kills in distinct profiles, in run order (each kill run starts at its
    profile, so ``n`` counts within that profile), or one random-time kill of a whole run.
    """
    rng = random.Random(seed)
    n_named = max(len(POINTS), n_points - n_points // 4)
    names = [POINTS[i % len(POINTS)] for i in range(n_named)]
    rng.shuffle(names)
    rounds: list[list[KillPoint]] = []
    pending = list(names)
    while pending:
        rnd: dict[str, KillPoint] = {}
        for point in list(pending):
            free = [p for p in PROFILES if p not in rnd and counts.get(p, {}).get(point, 0) > 0]
            if free:
                prof = rng.choice(free)
                rnd[prof] = KillPoint("named", prof, point, rng.randint(1, counts[prof][point]))
                pending.remove(point)
            if len(rnd) == len(PROFILES):
                break
        if not rnd:
            raise ValueError(f"no profile of the reference run reached {pending}")
        rounds.append([rnd[p] for p in PROFILES if p in rnd])
    lo, hi = window
    rounds += [
        [KillPoint("random", delay_s=round(rng.uniform(lo, hi), 3))] for _ in range(n_points - n_named)
    ]
    rng.shuffle(rounds)
    return rounds


def phase_of(kp: KillPoint, run: Run) -> str:
    """Where a kill landed: the named point, or the last point a randomly killed run passed."""
    if kp.kind == "named":
        return f"at {kp.point}"
    if not run.killed:
        return "not killed (the run ended first)"
    if not run.trace:
        return "after start-up, before the first crash point"
    parts = by_profile(run.trace, run.profiles)
    return f"after {run.trace[-1][0]} in {run.profiles[len(parts) - 1]}"


@dataclass
class LoopResult:
    kills: list[dict[str, Any]] = field(default_factory=list)
    reruns: list[dict[str, Any]] = field(default_factory=list)
    concurrent: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        killed = [k for k in self.kills if k["killed"]]
        return {
            "points_killed": len(killed),
            "kill_runs": len(self.kills),
            "random_runs_that_ended_before_the_kill": sum(1 for k in self.kills if not k["killed"]),
            "named_points_killed": sum(1 for k in killed if k["kind"] == "named"),
            "random_points_killed": sum(1 for k in killed if k["kind"] == "random"),
            "named_points_covered": sorted({k["point"] for k in killed if k["kind"] == "named"}),
            "killed_by_phase": dict(sorted(Counter(k["phase"] for k in killed).items())),
            "corrupt_after_kill": sum(1 for k in self.kills if k["corrupt_after_kill"]),
            "reruns": len(self.reruns),
            "reruns_ok": sum(1 for r in self.reruns if r["returncode"] == 0),
            "verify_clean": sum(1 for r in self.reruns for v in r["verify"].values() if v["ok"]),
            "verify_checks": sum(len(r["verify"]) for r in self.reruns),
            "stores_equal": sum(
                1 for r in self.reruns for c in r["compare"].values() if not c["differences"]
            ),
            "records_lost": sum(c["lost"] for r in self.reruns for c in r["compare"].values()),
            "records_duplicated": sum(c["duplicated"] for r in self.reruns for c in r["compare"].values()),
            "records_extra": sum(c["extra"] for r in self.reruns for c in r["compare"].values()),
            # harmless leftovers (temporary files of killed writes) still there after the re-run
            "debris_after_rerun": sorted(
                {d for r in self.reruns for v in r["verify"].values() for d in v["debris"]}
            ),
        }


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
                rcs[other] = _wait_or_kill(procs[other], None)
                os.killpg(procs[frozen].pid, signal.SIGCONT)
            for i, proc in enumerate(procs):
                if rcs[i] is None:
                    rcs[i] = _wait_or_kill(proc, None)
        finally:
            for proc in procs:
                _wait_or_kill(proc, 0.0)
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
        with Path(log).open("wb") as fh:
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


# --- report --------------------------------------------------------------------------------------


def table(result: LoopResult) -> str:
    """The results as markdown: kills per phase, then the totals that must be zero or complete."""
    s = result.summary()
    lines = ["| phase where the kill landed | points killed |", "|---|---:|"]
    lines += [f"| {phase} | {n} |" for phase, n in s["killed_by_phase"].items()]
    lines += [
        "",
        "| result | value |",
        "|---|---|",
        f"| points killed (named + random) | {s['points_killed']} ({s['named_points_killed']} + "
        f"{s['random_points_killed']}) in {s['kill_runs']} kill runs (a random kill that came after "
        "the run ended is drawn again) |",
        f"| named points covered | {len(s['named_points_covered'])} of {len(POINTS)} |",
        f"| stores corrupt right after a kill | {s['corrupt_after_kill']} |",
        f"| re-runs (exit 0) | {s['reruns']} ({s['reruns_ok']}) |",
        f"| verify clean after re-run (profile stores) | {s['verify_clean']} of {s['verify_checks']} |",
        f"| equal to the uninterrupted run, record by record | {s['stores_equal']} of {s['verify_checks']} |",
        f"| records lost / duplicated / extra | {s['records_lost']} / {s['records_duplicated']} / "
        f"{s['records_extra']} |",
    ]
    lines.append(
        f"| temporary files left after the re-runs (verify warnings) | {len(s['debris_after_rerun'])} |"
    )
    c = result.concurrent
    if c:
        lines.append(
            f"| two concurrent ingests | exit codes {c['returncodes']}, lock refusals {c['lock_refusals']}, "
            f"{'PASS' if concurrent_ok(c) else 'FAIL'} (store clean and equal to the reference) |"
        )
    return "\n".join(lines)


def concurrent_ok(c: Mapping[str, Any]) -> bool:
    """The lock holder finished, the other refused on the lock (exit 2), the store is intact."""
    holder = c["frozen_while_holding_the_lock"]
    if holder is None:
        return False
    met = (
        c["returncodes"][holder] == 0 and c["returncodes"][1 - holder] == 2 and c["lock_refusals"][1 - holder]
    )
    intact = all(v["ok"] for v in c["verify"].values()) and not any(
        x["differences"] for x in c["compare"].values()
    )
    return bool(met) and intact


def passed(result: LoopResult) -> bool:
    s = result.summary()
    complete = s["verify_clean"] == s["verify_checks"] == s["stores_equal"] and s["reruns_ok"] == s["reruns"]
    return (
        complete
        and s["corrupt_after_kill"] == 0
        and s["records_lost"] == s["records_duplicated"] == s["records_extra"] == 0
        and not any("error" in k for k in result.kills)
        and (not result.concurrent or concurrent_ok(result.concurrent))
    )


@contextmanager
def prefect_env(home: Path) -> Iterator[dict[str, str]]:
    """A real Prefect server for all runs; yields the environment ingest runs with."""
    from tests.prefect_server import prefect_server, server_env

    with prefect_server(home / "server") as api:
        env = server_env(home / "client", api)
        env["OMP_NUM_THREADS"] = "1"
        yield env


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--points", type=int, default=40, help="kill points (>= 9: every named point once)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="real records")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reliability" / "kill_loop.json")
    args = ap.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the Prefect server and a running ingest are stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    work = args.work or Path(tempfile.mkdtemp(prefix="kill-loop-"))
    t0 = time.time()
    try:
        raw = build_raw_tree(args.shared, work / "raw", TreeSpec())
        with prefect_env(work / "prefect") as env:
            loop = KillLoop(Harness(raw=raw, work=work, env=env), seed=args.seed)
            loop.reference()
            rounds = plan_rounds(loop.counts, loop.window, args.points, args.seed)
            for i, kills in enumerate(rounds):
                loop.round(i, kills)
                if not args.keep:  # a round's store is only needed while it is checked
                    shutil.rmtree(work / f"round-{i:03d}")
            loop.concurrent()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = loop.result
    doc = {
        "command": " ".join(["scripts/kill_loop.py", *(argv if argv is not None else sys.argv[1:])]),
        "points_requested": args.points,
        "seed": args.seed,
        "profiles": list(PROFILES),
        "tree": asdict(TreeSpec()),
        "seconds": round(time.time() - t0, 1),
        "summary": result.summary(),
        "passed": passed(result),
        "reference": result.reference,
        "kills": result.kills,
        "reruns": result.reruns,
        "concurrent": result.concurrent,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(table(result))
    print(f"\n{'PASS' if doc['passed'] else 'FAIL'}: written {args.out} ({doc['seconds']} s)")
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
