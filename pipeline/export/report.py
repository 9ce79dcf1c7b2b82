"""The export report: each variant's metrics, deltas against the reference, latency, speed-up and size,
as JSON (everything), a headline for ``dvc metrics`` and a markdown summary."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from pipeline.core.fs import write_atomic
from pipeline.evaluation.jsonable import json_safe
from pipeline.export.runtime import LatencyStats

REFERENCE_VARIANT = "pytorch_fp32"
VARIANTS: tuple[str, ...] = ("pytorch_fp32", "onnx_fp32", "onnx_int8")


class LatencyEntry(TypedDict):
    median_ms: float
    p90_ms: float
    mean_ms: float
    repeats: int
    batch: int


class ExportReport(TypedDict):
    """The export comparison of one model; variants keep the caller's order, reference first.

    ``metrics[variant][name]``: the caller's metric values; ``delta[variant][name]``: value minus the
    reference's, for every non-reference variant; ``latency_ms[variant]``: :class:`LatencyStats`
    fields; ``speedup[variant]``: reference median / variant median (> 1 = faster than the
    reference); ``size_bytes[variant]`` and ``size_ratio[variant]`` = size / reference size.
    """

    model: str
    reference: str
    metrics: dict[str, dict[str, float]]
    delta: dict[str, dict[str, float]]
    latency_ms: dict[str, LatencyEntry]
    speedup: dict[str, float]
    size_bytes: dict[str, int]
    size_ratio: dict[str, float]


def build_report(
    model_name: str,
    metrics: Mapping[str, Mapping[str, float]],
    latency: Mapping[str, LatencyStats],
    sizes_bytes: Mapping[str, int],
    *,
    reference: str = REFERENCE_VARIANT,
) -> ExportReport:
    """Compare the variants of one model (usually :data:`VARIANTS`) against ``reference``.

    ``metrics``: variant → flat metric name → value (any names; every variant must have the same
    names, and must include ``reference``). ``latency`` and ``sizes_bytes``: variant → stats / file
    size in bytes; each may be empty or cover any subset of the metric variants, but when not empty
    it must include ``reference`` (speed-ups and size ratios are relative to it). NaN metrics (e.g. an
    AUROC with one class) give NaN deltas. Raises ``ValueError`` naming what is inconsistent.
    """
    order = _variant_order(metrics, reference)
    names = list(metrics[reference])
    for variant in order:
        if set(metrics[variant]) != set(names):
            raise ValueError(
                f"variant {variant!r} has metrics {sorted(metrics[variant])}, "
                f"the reference {reference!r} has {sorted(names)}"
            )
    _check_keys("latency", latency, order, reference)
    _check_keys("sizes_bytes", sizes_bytes, order, reference)
    values = {v: {n: float(metrics[v][n]) for n in names} for v in order}
    delta = {v: {n: values[v][n] - values[reference][n] for n in names} for v in order if v != reference}
    lat_order = [v for v in order if v in latency]
    size_order = [v for v in order if v in sizes_bytes]
    return ExportReport(
        model=model_name,
        reference=reference,
        metrics=values,
        delta=delta,
        latency_ms={v: _latency_entry(latency[v]) for v in lat_order},
        speedup={v: _ratio(latency[reference].median_ms, latency[v].median_ms) for v in lat_order},
        size_bytes={v: int(sizes_bytes[v]) for v in size_order},
        size_ratio={v: _ratio(sizes_bytes[v], sizes_bytes[reference]) for v in size_order},
    )


def _variant_order(metrics: Mapping[str, Mapping[str, float]], reference: str) -> list[str]:
    if reference not in metrics:
        raise ValueError(f"metrics has no reference variant {reference!r} (got {sorted(metrics)})")
    return [reference, *(v for v in metrics if v != reference)]


def _check_keys(what: str, mapping: Mapping[str, object], variants: list[str], reference: str) -> None:
    unknown = sorted(set(mapping) - set(variants))
    if unknown:
        raise ValueError(f"{what} has variants {unknown} that have no metrics (known: {variants})")
    if mapping and reference not in mapping:
        raise ValueError(f"{what} lacks the reference variant {reference!r}")


def _latency_entry(stats: LatencyStats) -> LatencyEntry:
    return LatencyEntry(
        median_ms=stats.median_ms,
        p90_ms=stats.p90_ms,
        mean_ms=stats.mean_ms,
        repeats=stats.repeats,
        batch=stats.batch,
    )


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator > 0 else math.nan


# Aggregate metrics an export may move; per-class values stay in report.json.
HEADLINE_METRICS = ("auroc_macro", "ap_macro", "f1_macro", "f1_micro", "f1_selected", "accuracy", "auroc",
                    "auprc", "f1")  # fmt: skip


def headline(report: ExportReport) -> dict[str, Any]:
    """The DVC metrics of an export: each variant's change of the aggregate test metrics against the
    reference, its batch-1 median latency (ms), speed-up and size (bytes)."""
    return {
        "model": report["model"],
        "delta": {v: {k: d[k] for k in HEADLINE_METRICS if k in d} for v, d in report["delta"].items()},
        "latency_median_ms": {v: e["median_ms"] for v, e in report["latency_ms"].items()},
        "speedup": dict(report["speedup"]),
        "size_bytes": dict(report["size_bytes"]),
    }


def write_report(
    report: ExportReport, json_path: Path, md_path: Path, metrics_path: Path | None = None
) -> None:
    """Write ``report`` as JSON (everything; NaN/inf written as ``null``), as a small markdown summary
    (a metrics table and a latency/size table) and, given ``metrics_path``, its :func:`headline` for
    ``dvc metrics``; all atomically."""
    files = {Path(json_path): dict(report)}
    if metrics_path is not None:
        files[Path(metrics_path)] = headline(report)
    for path, data in files.items():
        write_atomic(path, (json.dumps(json_safe(data), indent=2) + "\n").encode("utf-8"))
    write_atomic(Path(md_path), report_markdown(report).encode("utf-8"))


def report_markdown(report: ExportReport) -> str:
    """Markdown summary of :func:`build_report`'s result."""
    ref = report["reference"]
    others = [v for v in report["metrics"] if v != ref]
    lines = [f"# Export report: {report['model']}", "", f"Deltas and speed-ups are relative to `{ref}`.", ""]
    lines += ["## Metrics", ""]
    header = ["metric", ref, *(col for v in others for col in (v, f"Δ {v}"))]
    lines += [_row(header), _row(["---"] * len(header))]
    for name in report["metrics"][ref]:
        cells = [name, _num(report["metrics"][ref][name], "{:.4f}")]
        for v in others:
            cells += [_num(report["metrics"][v][name], "{:.4f}"), _num(report["delta"][v][name], "{:+.4f}")]
        lines.append(_row(cells))
    lines += ["", "## Latency and size", ""]
    lines += _latency_rows(report)
    return "\n".join(lines) + "\n"


def _latency_rows(report: ExportReport) -> list[str]:
    header = ["variant", "batch", "median ms", "p90 ms", "mean ms", "speed-up", "size (bytes)", "size ratio"]
    rows = [_row(header), _row(["---"] * len(header))]
    for v in report["metrics"]:
        lat = report["latency_ms"].get(v)
        size = report["size_bytes"].get(v)
        rows.append(
            _row(
                [
                    v,
                    str(lat["batch"]) if lat else "–",
                    _num(lat["median_ms"], "{:.3f}") if lat else "–",
                    _num(lat["p90_ms"], "{:.3f}") if lat else "–",
                    _num(lat["mean_ms"], "{:.3f}") if lat else "–",
                    _num(report["speedup"][v], "{:.2f}×") if lat else "–",
                    f"{size:,}" if size is not None else "–",
                    _num(report["size_ratio"][v], "{:.3f}") if size is not None else "–",
                ]
            )
        )
    return rows


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _num(value: float, fmt: str) -> str:
    return fmt.format(value) if math.isfinite(value) else "n/a"
