"""How long an incremental ``ecgpipe ingest`` takes end to end: with a running ``ecgpipe server`` against
Prefect's temporary server (the baseline), in the same run (issue 19 item 1).

On the built-in demo data (``ecgpipe demo-data``, 780 units in 4 profiles) in ``benchmarks/_work/incremental``
with its own ``PREFECT_HOME``: one untimed first ingest, then ``--repeats`` rounds, each timing in both
modes (server running / none running, interleaved so a busy spell hits both) a no-op ingest and an
ingest after one new CinC 2017 record was added (a copy of a demo record under a new name, so its
content is new to the store only by its name: it is processed and then quarantined as a duplicate,
which is the same work as a new record). Every command is a fresh ``python -m flows.cli`` process
(what the ``ecgpipe`` script runs); wall seconds and the CPU seconds of it and its children.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TARGET_S = 3.0
MODES = ("server", "temporary server")


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)  # found through PREFECT_HOME when the server runs
    return env


def ecgpipe(work: Path, *args: str) -> tuple[float, float]:
    """Run one command; its wall seconds and the CPU seconds (user + system) of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flows.cli", *args, *_overrides(work)],
        cwd=REPO,
        env=_env(work / "prefect-home"),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _overrides(work: Path) -> list[str]:
    raw = work / "raw"
    return [
        "--set",
        f"ingest.store={work / 'store'}",
        *(x for s in ("ptbxl", "cinc2017", "ucr") for x in ("--set", f"sources.{s}.root={raw / s}")),
    ]


def add_record(work: Path, n: int) -> None:
    """A new CinC 2017 record ``B<n>``: a demo record's files under a new name, plus its label row."""
    folder = work / "raw" / "cinc2017" / "training2017"
    name = f"B{n:05d}"
    (folder / f"{name}.hea").write_text((folder / "A00001.hea").read_text().replace("A00001", name))
    shutil.copyfile(folder / "A00001.mat", folder / f"{name}.mat")
    with (folder / "REFERENCE.csv").open("a", newline="") as fh:
        fh.write(f"{name},N\r\n")
    with (folder / "RECORDS").open("a") as fh:
        fh.write(f"{name}\n")


def server(work: Path, action: str) -> None:
    home = work / "prefect-home"
    subprocess.run(
        [sys.executable, "-m", "flows.cli", "server", action],
        cwd=REPO,
        env=_env(home),
        check=action != "status",
        stdout=subprocess.DEVNULL,
    )


def measure(work: Path, repeats: int) -> dict[str, dict[str, list[list[float]]]]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "flows.cli", "demo-data", "--out", str(work / "raw")],
        cwd=REPO,
        env=_env(work / "prefect-home"),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ecgpipe(work, "ingest")  # the first run: every record is new (not timed)
    got: dict[str, dict[str, list[list[float]]]] = {m: {"no-op": [], "one record": []} for m in MODES}
    n = 0
    try:
        for _ in range(repeats):
            for mode in MODES:
                server(work, "start" if mode == "server" else "stop")
                n += 1
                add_record(work, n)
                got[mode]["one record"].append([round(v, 3) for v in ecgpipe(work, "ingest")])
                got[mode]["no-op"].append([round(v, 3) for v in ecgpipe(work, "ingest")])
    finally:
        server(work, "stop")
    return got


def report(got: dict[str, dict[str, list[list[float]]]]) -> dict[str, Any]:
    best = {m: {k: min(v, key=lambda x: x[0]) for k, v in runs.items()} for m, runs in got.items()}
    ratio = {k: round(best["temporary server"][k][0] / best["server"][k][0], 2) for k in best["server"]}
    targets = {f"{k} ingest with the server, wall s (≤ {TARGET_S})": best["server"][k][0] for k in ratio}
    return {
        "best_wall_cpu_s": best,
        "all_wall_cpu_s": got,
        "temporary_over_server": ratio,
        "targets": {k: {"value": v, "pass": v <= TARGET_S} for k, v in targets.items()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
    }


def markdown(res: dict[str, Any]) -> str:
    rows = ["| run | server: wall / CPU s | temporary server: wall / CPU s | temporary / server |"]
    rows.append("|---|---:|---:|---:|")
    best = res["best_wall_cpu_s"]
    for k, r in res["temporary_over_server"].items():
        s, t = best["server"][k], best["temporary server"][k]
        rows.append(f"| {k} ingest | {s[0]:.2f} / {s[1]:.2f} | {t[0]:.2f} / {t[1]:.2f} | {r:.2f}× |")
    rows += ["", "| target | value | result |", "|---|---:|---|"]
    rows += [
        f"| {k} | {t['value']:.2f} | {'PASS' if t['pass'] else 'FAIL'} |" for k, t in res["targets"].items()
    ]
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="rounds of each mode (best is reported)")
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work" / "incremental")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("incremental.json"))
    args = ap.parse_args()
    res = report(measure(args.work, args.repeats))
    args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
