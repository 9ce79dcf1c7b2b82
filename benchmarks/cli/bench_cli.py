"""How long ``ecgpipe --help`` and ``ecgpipe summary --help`` take: the lazy CLI against the eager one.

Each command runs in a fresh interpreter (``python -m flows.cli ...``, what the installed ``ecgpipe``
script runs), interleaved with two baselines measured in the same session: ``python -c pass`` (the
interpreter's own start-up) and the eager import the CLI did before it became lazy (every command
module, the params models and, through them, scipy, zarr, s3fs and torch). Best of ``--repeats``
wall-clock runs each. Prints a markdown table (targets PASS/FAIL) and writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TARGET_S = 0.3  # issue 14 item 6: `ecgpipe --help` and `ecgpipe summary --help`

EAGER = (
    "import pipeline.config, pipeline.config.build, pipeline.cli.data, pipeline.cli.models, "
    "pipeline.cli.parity, pipeline.cli.lineage, pipeline.cli.verify, pipeline.models, "
    "pipeline.landing.take, pipeline.ingest.report"
)
RUNS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "ecgpipe --help": ["-m", "flows.cli", "--help"],
    "ecgpipe summary --help": ["-m", "flows.cli", "summary", "--help"],
    "eager import of every command (before)": ["-c", EAGER],
}


def time_once(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(repeats: int) -> dict[str, list[float]]:
    """Seconds of every run, the runs interleaved so that a busy spell hits all of them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in RUNS}
    for _ in range(repeats):
        for name, args in RUNS.items():
            seconds[name].append(round(time_once(args), 4))
    return seconds


def report(seconds: dict[str, list[float]]) -> dict[str, Any]:
    best = {name: min(v) for name, v in seconds.items()}
    eager = best["eager import of every command (before)"]
    targets = {
        f"{cmd}, seconds (≤ {TARGET_S})": (best[cmd], best[cmd] <= TARGET_S)
        for cmd in ("ecgpipe --help", "ecgpipe summary --help")
    }
    return {
        "best_s": best,
        "seconds_all": seconds,
        "ratio_to_python_startup": {k: round(v / best["python -c pass"], 2) for k, v in best.items()},
        "ratio_to_eager_import": {k: round(v / eager, 3) for k, v in best.items()},
        "targets": {k: {"value": round(v, 3), "pass": ok} for k, (v, ok) in targets.items()},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }


def markdown(res: dict[str, Any]) -> str:
    rows = ["| run | best s | × python start-up | × eager import |", "|---|---:|---:|---:|"]
    for name, s in res["best_s"].items():
        rows.append(
            f"| {name} | {s:.3f} | {res['ratio_to_python_startup'][name]:.2f} "
            f"| {res['ratio_to_eager_import'][name]:.3f} |"
        )
    rows += ["", "| target | value | result |", "|---|---:|---|"]
    rows += [
        f"| {k} | {t['value']:.3f} | {'PASS' if t['pass'] else 'FAIL'} |" for k, t in res["targets"].items()
    ]
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="runs of each command (best is reported)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args()
    res = report(measure(args.repeats))
    args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
