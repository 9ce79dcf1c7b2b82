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
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kill_loop_harness import PROFILES, Harness
from kill_loop_plan import LoopResult, plan_rounds
from kill_loop_runner import KillLoop
from kill_loop_tree import REPO, TreeSpec, build_raw_tree, load_tree_params, overrides

from pipeline.core.crashpoints import POINTS

# What the tests use through ``load_script("kill_loop")``; the parts live in the kill_loop_* modules beside.
__all__ = [
    "Harness",
    "KillLoop",
    "TreeSpec",
    "build_raw_tree",
    "concurrent_ok",
    "load_tree_params",
    "overrides",
    "passed",
    "plan_rounds",
    "prefect_env",
    "table",
]


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
    # Run as a script, only scripts/ is on sys.path: the repository root makes `tests` (the Prefect
    # server helper, not installed) importable; under pytest it is there already.
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
