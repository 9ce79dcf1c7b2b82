"""The parity stage's outputs: ``metrics.json`` (DVC metrics: the headline), ``parity.json`` (per-layer
max/mean abs/rel error, end-metric differences, decision agreement, the first violation), ``report.md``
and ``layers.png`` (each layer's worst error against the tolerance, log scale)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.ckernel.parity import ParityRun, Tolerance
from pipeline.core.fs import write_atomic
from pipeline.evaluation.jsonable import json_safe
from pipeline.evaluation.plots import new_figure, save_figure

REPORT_FORMAT = "ecgpipe-parity/1"
CHAIN_KEYS = ("max_abs", "max_rel", "worst_ratio")


def build_report(
    model: str, kind: str, run: ParityRun, c_metrics: Mapping[str, float], t_metrics: Mapping[str, float],
    decisions: Mapping[str, int], tol: Tolerance,
) -> dict[str, Any]:  # fmt: skip
    """The JSON report; ``passed`` needs no element outside its bound, every end-metric difference within
    ``tol.metric_atol`` and no decision that differs outside the borderline band."""
    diffs = {k: float(c_metrics[k] - t_metrics[k]) for k in t_metrics}
    metric_fail = [
        k
        for k, d in diffs.items()
        if not abs(d) <= tol.metric_atol and not _both_nan(c_metrics[k], t_metrics[k])
    ]
    first = run.first_failure
    violations = run.violations
    passed = violations == 0 and not metric_fail and decisions["differ"] == 0
    scores = run.chain[-1]
    return {
        "format": REPORT_FORMAT,
        "model": model,
        "kind": kind,
        "passed": passed,
        "records": len(run.record_ids),
        "tolerance": {"atol": tol.atol, "rtol": tol.rtol, "metric_atol": tol.metric_atol},
        "violations": violations,
        "max_abs_error": max((s.max_abs for s in run.layers), default=0.0),
        "max_rel_error": max((s.max_rel for s in run.layers), default=0.0),
        "worst_ratio": max((s.worst_ratio for s in run.layers), default=0.0),
        "scores": scores.to_dict(),
        "first_failure": None if first is None else first.to_dict(),
        "metrics_failed": metric_fail,
        "metrics": {"pytorch": dict(t_metrics), "c": dict(c_metrics), "diff": diffs},
        "decisions": dict(decisions),
        "layers": {s.name: s.to_dict() for s in run.layers},
        "chain": {s.name: {k: v for k, v in s.to_dict().items() if k in CHAIN_KEYS} for s in run.chain},
        "shapes": {s.name: list(s.shape) for s in run.layers},
    }


def _both_nan(a: float, b: float) -> bool:
    return bool(np.isnan(a) and np.isnan(b))


def failure_message(report: Mapping[str, Any]) -> str:
    """One paragraph saying why ``report`` failed ("" when it passed)."""
    if report["passed"]:
        return ""
    lines = [f"parity FAILED for {report['model']} ({report['violations']} elements outside the bound)"]
    first = report["first_failure"]
    if first is not None:
        diff = abs(first["c"] - first["torch"])
        where = f"record {first['record']}, index {tuple(first['index'])}"
        lines.append(
            f"first failing layer: {first['layer']} ({where}): C = {first['c']:.9g}, "
            f"PyTorch = {first['torch']:.9g}, |diff| {diff:.3g} > bound {first['bound']:.3g}"
        )
    for k in report["metrics_failed"]:
        m = report["metrics"]
        lines.append(f"metric {k}: C {m['c'][k]:.6g} vs PyTorch {m['pytorch'][k]:.6g}")
    if report["decisions"]["differ"]:
        lines.append(f"{report['decisions']['differ']} threshold decisions differ (beyond borderline scores)")
    return "\n".join(lines)


def report_markdown(report: Mapping[str, Any]) -> str:
    tol = report["tolerance"]
    head = [
        f"# Parity: {report['model']} ({report['kind']}), C kernels vs PyTorch",
        "",
        f"**{'PASSED' if report['passed'] else 'FAILED'}** on {report['records']} test records: "
        f"every element of every layer within |c − t| ≤ {tol['atol']:g} + {tol['rtol']:g}·|t| "
        f"(worst ratio to the bound {report['worst_ratio']:.3g}); end metrics within {tol['metric_atol']:g}.",
        "",
        "| metric | PyTorch | C | C − PyTorch |",
        "|---|---:|---:|---:|",
    ]
    m = report["metrics"]
    head += [f"| {k} | {m['pytorch'][k]:.6f} | {m['c'][k]:.6f} | {m['diff'][k]:.2e} |" for k in m["pytorch"]]
    d = report["decisions"]
    head += [
        "",
        f"Decisions compared {d['compared']}, differ {d['differ']}, borderline {d['borderline']}.",
        "",
    ]
    sc = report["scores"]
    head += [
        f"End to end (the C graph on its own outputs), scores: max abs {sc['max_abs']:.2e}, "
        f"worst ratio {sc['worst_ratio']:.3g}, violations {sc['violations']}.",
        "",
        "Per layer: *isolated* = the C layer on PyTorch's inputs (judged); *chain* = the free-running "
        "C graph's drift (reported).",
        "",
        "| layer | shape | max abs | mean abs | max rel | mean rel | violations "
        "| chain max abs | chain ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    head += [_layer_row(name, report) for name in report["layers"]]
    message = failure_message(report)
    return "\n".join(head + (["", "```", message, "```"] if message else [])) + "\n"


def _layer_row(name: str, report: Mapping[str, Any]) -> str:
    s, ch = report["layers"][name], report["chain"][name]
    shape = "×".join(str(v) for v in report["shapes"][name])
    cells = [name, shape, *(f"{s[k]:.2e}" for k in ("max_abs", "mean_abs", "max_rel", "mean_rel"))]
    cells += [str(s["violations"]), f"{ch['max_abs']:.2e}", f"{ch['worst_ratio']:.3g}"]
    return "| " + " | ".join(cells) + " |"


def plot_layers(report: Mapping[str, Any], path: Path) -> Path:
    """Per layer (top to bottom in network order), log x axis: the isolated layer's max abs error (bar)
    and worst ratio to the bound (dot: past the dashed line = failed), and the free-running chain's ratio
    (hollow dot, reported only)."""
    names = list(report["layers"])
    max_abs = np.array([max(report["layers"][n]["max_abs"], 1e-12) for n in names])
    ratio = np.array([max(report["layers"][n]["worst_ratio"], 1e-12) for n in names])
    chain = np.array([max(report["chain"][n]["worst_ratio"], 1e-12) for n in names])
    fig = new_figure(7.0, 1.2 + 0.16 * len(names))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(names))[::-1]
    ax.barh(y, max_abs, color="#4c72b0", label="max |C − PyTorch|")
    ax.scatter(ratio, y, color=np.where(ratio > 1, "#c44e52", "#55a868"), s=12, zorder=3,
               label="worst |diff| / (atol + rtol·|t|)")  # fmt: skip
    ax.scatter(chain, y, facecolors="none", edgecolors="#8172b2", s=14, zorder=2,
               label="same, free-running C chain (reported)")  # fmt: skip
    ax.axvline(1.0, color="#c44e52", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, names, fontsize=6)
    ax.set_xlabel("error (log scale); dashed: ratio 1 = the tolerance")
    ax.set_title(f"{report['model']}: C vs PyTorch per layer ({report['records']} records; each layer on "
                 "PyTorch's inputs)", fontsize=9)  # fmt: skip
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def headline(report: Mapping[str, Any]) -> dict[str, Any]:
    """The DVC metrics of a parity run: pass/fail, on how many records, the worst ratio to the bound
    and largest error over all layers, decisions that differ and each end metric's C − PyTorch."""
    keys = ("model", "passed", "records", "violations", "worst_ratio", "max_abs_error")
    return {
        **{k: report[k] for k in keys},
        "decisions_differ": report["decisions"]["differ"],
        "metric_diff": dict(report["metrics"]["diff"]),
    }


def write_report(report: Mapping[str, Any], out_dir: Path) -> None:
    """``parity.json`` (everything, per layer), ``metrics.json`` (:func:`headline`), ``report.md`` and
    ``layers.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in (("parity.json", report), ("metrics.json", headline(report))):
        write_atomic(out_dir / name, (json.dumps(json_safe(data), indent=2) + "\n").encode())
    write_atomic(out_dir / "report.md", report_markdown(report).encode())
    plot_layers(report, out_dir / "layers.png")
