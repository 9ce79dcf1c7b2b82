"""The ingest results as markdown, and their publication (JSON + table) with the code version they were
measured on; the scale benchmark publishes the same way."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.ingest.inputs import MB, REPO


def _ours_row(label: str, run: Mapping[str, Any], raw_bytes: int) -> str:
    return (
        f"| {label} | {run['seconds']:.2f} ({run['plan_s']:.2f} / {run['batches_s']:.2f} / "
        f"{run['commit_s']:.2f}) | {run['records_per_s']:.0f} | {run['records_per_s_per_core']:.0f} | "
        f"{run['records_per_cpu_s']:.0f} | "
        f"{run['peak_rss_worker_mb']:.0f} / {run['peak_rss_parent_mb']:.0f} | "
        f"{run['store_bytes'] / MB:.1f} MiB ({run['store_bytes'] / raw_bytes:.2f}x) |"
    )


def markdown(r: Mapping[str, Any]) -> str:
    """The results as two markdown tables: configurations, then targets with PASS/FAIL."""
    raw_bytes = r["storage"]["raw_bytes"]
    base, dec, w1 = r["baseline"], r["decode"], r["ours"]["1"]
    lines = [
        f"PTB-XL 12-lead 10 s 500 Hz, {r['input']['n_records']} records "
        f"({raw_bytes / MB:.1f} MiB of WFDB), {r['meta']['cpus']} CPUs, {r['meta']['date']}",
        "",
        "| configuration | s (plan / batches / commit) | records/s | records/s per core "
        "| records per CPU-s | peak RSS worker / parent (MiB) | on disk (x raw) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| baseline: rdrecord + process + savez_compressed, 1 process | {base['seconds']:.2f} | "
        f"{base['records_per_s']:.0f} | {base['records_per_s']:.0f} | {base['records_per_cpu_s']:.0f} | "
        f"{base['peak_rss_mb']:.0f} | "
        f"{base['npz_bytes'] / MB:.1f} MiB ({r['storage']['npz_ratio']:.2f}x) |",
    ]
    lines += [_ours_row(f"ours, {w} worker(s)", run, raw_bytes) for w, run in r["ours"].items()]
    mem = r["memory"]
    lines += [
        _ours_row(f"memory: {k} records, {run['workers']} worker(s)", run, run["raw_bytes"])
        for k, run in mem["runs"].items()
    ]
    lines += [
        "",
        f"2 workers / 1: {r['scaling']['records_per_s']:.2f}x end to end, "
        f"{r['scaling']['batch_phase']:.2f}x in the batch phase. Decode per record: ours "
        f"{dec['ours_ms_per_record']:.3f} ms, wfdb.rdrecord {dec['wfdb_ms_per_record']:.3f} ms "
        f"({dec['speedup']:.1f}x; max |diff| {dec['max_abs_diff_mv']:.2g} mV). "
        f"CPU per record: ours (1 worker) {1000 / w1['records_per_cpu_s']:.2f} ms, "
        f"baseline {1000 / base['records_per_cpu_s']:.2f} ms "
        f"({w1['records_per_cpu_s'] / base['records_per_cpu_s']:.2f}x in records per CPU-s).",
        "",
        "| target | goal | measured | result |",
        "|---|---|---:|---|",
    ]
    lines += [
        f"| {t['name']} | {t['target']} | {t['measured']:.3f} | {'PASS' if t['pass'] else 'FAIL'} |"
        for t in r["targets"]
    ]
    return "\n".join(lines)


def code_version() -> dict[str, Any]:
    """The git commit, whether ``pipeline/`` has uncommitted edits, and a digest of its sources."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return {
        "commit": _git("rev-parse", "HEAD"),
        "pipeline_dirty": bool(_git("status", "--porcelain", "--", "pipeline")),
        "pipeline_sha256": digest.hexdigest(),
    }


def _git(*args: str) -> str:
    """Output of a read-only git command in the repository ('' when git is unavailable)."""
    try:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def publish(
    result: dict[str, Any], out: Path, render: Callable[[dict[str, Any]], str], code_before: dict[str, Any]
) -> int:
    """Write the JSON, print the table; exit status 1 if the library changed during the run.

    Others may edit the library while a run is going; mixed figures must not pass unnoticed.
    """
    code_after = code_version()
    result["meta"]["code"] = {**code_before, "changed_during_run": code_before != code_after}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(render(result))
    print(f"\nresults: {out}")
    if code_before != code_after:
        print("WARNING: pipeline/ changed during the run; the figures mix two versions. Re-run.")
        return 1
    return 0
