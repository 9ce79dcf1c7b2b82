"""The scale results as markdown: the ingest table, the reads table, summary lines and the checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.scale.options import MB


def _cpu_cell(run: Mapping[str, Any]) -> str:
    return f"{run['cpu_ms_per_record']:.2f} ({run['worker_cpu_ms_per_record']:.2f})"


def _requests_cell(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


INGEST_HEADER = (
    "| configuration | wall s | batch tasks s | rest s | records/s | x baseline | records/s in batch tasks "
    "| x baseline | task ms/record | CPU ms/record: all (workers) | S3 requests | same shards |"
)


def ingest_rows(r: Mapping[str, Any]) -> list[str]:
    lines = [INGEST_HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for run in r["ingest"].values():
        same = "yes" if run["same_shards_as_baseline"] and run["stored_bytes_match_manifest"] else "NO"
        cells = [
            run["label"],
            f"{run['wall_s']:.2f}",
            f"{run['batch_s']:.2f}",
            f"{run['outside_batch_s']:.2f}",
            f"{run['records_per_s']:.0f}",
            f"{run['ratio_to_baseline']:.2f}",
            f"{run['batch_records_per_s']:.0f}",
            f"{run['batch_ratio_to_baseline']:.2f}",
            f"{run['task_ms_per_record']:.2f}",
            _cpu_cell(run),
            _requests_cell(run["requests"]),
            same,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


READ_HEADER = "| reads (same shards) | open s | read s | records/s | records/s incl. open | requests |"


def read_rows(r: Mapping[str, Any]) -> list[str]:
    lines = [READ_HEADER, "|---|---:|---:|---:|---:|---|"]
    for where, name in (("local", "local disk"), ("s3", "S3 (moto)")):
        for what, how in (("loader", "make_loader, in order, 0 workers"), ("blocks", "BlockReader, raw")):
            m = r["reads"][where][what]
            cells = [
                f"{name}: {how}",
                f"{m['open_s']:.3f}",
                f"{m['read_s']:.3f}",
                f"{m['records_per_s']:.0f}",
                f"{m['records_per_s_incl_open']:.0f}",
                _requests_cell(m["requests"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_lines(r: Mapping[str, Any]) -> list[str]:
    """One line of read ratios and request counts, one of preprocessing costs."""
    rd, pre = r["reads"], r["preprocess"]
    ratio = rd["ratios"]
    return [
        f"S3 / local, records/s: loader {ratio['loader_records_per_s']:.2f} "
        f"(incl. open {ratio['loader_records_per_s_incl_open']:.2f}), "
        f"blocks {ratio['blocks_records_per_s']:.2f} "
        f"(incl. open {ratio['blocks_records_per_s_incl_open']:.2f}). "
        f"Compressed signal bytes per record: {rd['local']['blocks']['compressed_bytes_per_record']:.0f}; "
        "S3 requests per shard (block reads incl. open): "
        f"{rd['s3_requests']['blocks_requests_per_shard']:.1f}.",
        f"Preprocessing, one process, {pre['n_records']} records: "
        f"{pre['ms_per_record_500hz']:.2f} ms/record at 500 Hz, "
        f"{pre['ms_per_record_400hz_resampled']:.2f} ms/record from 400 Hz (resampled to 500 Hz).",
    ]


def markdown(r: Mapping[str, Any]) -> str:
    """The results as markdown: ingest table, reads table, summary lines, checks."""
    meta = r["meta"]
    lines = [
        f"PTB-XL 12-lead 10 s 500 Hz, {meta['n_records']} records "
        f"({r['input']['raw_bytes'] / MB:.0f} MiB of WFDB), batches of {meta['batch_units']}, "
        f"{meta['cpus']} CPUs ({meta['cpu_model']}), {meta['date']}, "
        f"load average {meta['load_avg_start'][0]} at start, {meta['load_avg_end'][0]} at end",
        "",
        *ingest_rows(r),
        "",
        *read_rows(r),
        "",
        *summary_lines(r),
        "",
        "| check | result |",
        "|---|---|",
    ]
    lines += [f"| {c['name']} | {'PASS' if c['pass'] else 'FAIL'} |" for c in r["checks"]]
    return "\n".join(lines)
