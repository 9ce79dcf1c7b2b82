"""Print the README's "Results on real records" table from eval_shared/ and export_shared/.

Usage: .venv/bin/python scripts/results_table.py [eval_dir] [export_dir]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROWS = (
    ("autoencoder", "UCR ECG5000 beats (normal-only train)", ("auroc", "auprc", "f1")),
    ("crnn", "CinC 2017, v1 labels (N/A/O/~)", ("f1_selected", "f1_NORM", "f1_AF", "f1_OTHER", "accuracy")),
    (
        "cnn1d",
        "CinC 2017, v1 labels, 1D residual CNN",
        ("f1_selected", "f1_NORM", "f1_AF", "f1_OTHER", "accuracy"),
    ),
    ("resnet", "PTB-XL + CinC 2020/21 (+ PTB Diag.)", ("auroc_macro", "ap_macro", "f1_macro", "f1_micro")),
)


def _cell(test: dict[str, Any], ci: dict[str, Any], key: str) -> str:
    value = test.get(key)
    if value is None:
        return f"{key} n/a"
    low, high = ci.get(f"{key}_low"), ci.get(f"{key}_high")
    band = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{key} {value:.3f}{band}"


def main(eval_dir: Path, export_dir: Path) -> None:
    print("| model | data (test records) | test metrics | INT8 vs FP32 | batch-1 ms PyTorch / ORT / INT8 |")
    print("|---|---|---|---|---|")
    for name, data, keys in ROWS:
        path = eval_dir / name / "metrics.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        cells = "; ".join(_cell(m["test"], m.get("test_ci", {}), k) for k in keys)
        int8 = lat = "—"
        report = export_dir / name / "report.json"
        if report.is_file():
            r = json.loads(report.read_text())
            key = keys[0]
            int8 = f"{key} {r['delta']['onnx_int8'].get(key, 0.0):+.4f}"
            ms = [r["latency_ms"][v]["median_ms"] for v in ("pytorch_fp32", "onnx_fp32", "onnx_int8")]
            lat = " / ".join(f"{x:.2f} ms" for x in ms)
        print(f"| {name} | {data} ({m['n_test']}) | {cells} | {int8} | {lat} |")


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]]
    main(args[0] if args else Path("eval_shared"), args[1] if len(args) > 1 else Path("export_shared"))
