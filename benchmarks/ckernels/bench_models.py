"""Batch-1 latency of each model family: C kernels vs PyTorch (1 thread) vs ONNX Runtime (1 thread).

The architectures are ``train.models.<m>`` of params.yaml (or ``--params``) with seeded random weights
and random batch-norm statistics (latency does not depend on trained values; random statistics make the
folded weights non-trivial). All three implementations run the same input in the same process, one after
another, ``--rounds`` times interleaved so a busy machine slows all of them alike; the table reports the
median of per-call medians and the ratio C / PyTorch (target ≤ 1.0).

C is timed twice: through ctypes from Python (the parity stage's path) and inside ``ecgk-run --repeat``
(no Python at all). Run from the repository root after ``make -C ckernels``:

    .venv/bin/python benchmarks/ckernels/bench_models.py [--repeats 50] [--rounds 3] [--set key=value ...]

``--set`` takes the CLI's overrides, e.g. those of ``scripts/cinc2017.args``, which define the single-lead
CinC 2017 ``cnn1d`` (``make bench-ckernels`` passes them and adds ``cnn1d`` to the models).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.ckernel.model import CModel
from pipeline.ckernel.weights import model_weights, write_weights
from pipeline.cli.main import set_arg
from pipeline.cli.models import targets_for
from pipeline.config import load_params
from pipeline.config.build import signal_plan
from pipeline.export.onnx import export_onnx
from pipeline.export.runtime import OnnxRunner, measure_latency, torch_runner
from pipeline.training.stage import make_card

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "ckernels" / "build" / "ecgk-run"
LIBRARY = REPO / "ckernels" / "build" / "libecgk.so"


def _model(params: Any, name: str) -> tuple[nn.Module, tuple[int, int]]:
    """(B, C, T)-input model ``name`` of ``params`` in eval mode with seeded weights, and its (C, T)."""
    m = params.train.models[name]
    plan = signal_plan(params.profiles[m.profile])
    shape = (len(plan.leads), plan.length)
    card = make_card(name, m.kind, m.model, targets_for(params, name), m.profile, plan, shape, 0.0)
    torch.manual_seed(0)
    model = card.build()
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.normal_(0.0, 0.1, generator=gen)
            module.running_var.uniform_(0.5, 2.0, generator=gen)
    return model.eval(), shape


def _runner_ms(weights: Path, x: np.ndarray, repeats: int, work: Path) -> float:
    inp, out = work / "x.f32", work / "y.f32"
    x.astype("<f4").tofile(inp)
    proc = subprocess.run([str(RUNNER), str(weights), str(inp), str(out), "--repeat", str(repeats)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    match = re.search(r"median=([0-9.]+)", proc.stdout)
    if match is None:
        raise RuntimeError(f"ecgk-run printed no latency: {proc.stdout!r} {proc.stderr!r}")
    return float(match.group(1))


def _paired_ratio(c_call: Callable[[], object], ort_call: Callable[[], object], pairs: int) -> float:
    """Median over ``pairs`` back-to-back (C, ONNX Runtime) calls of the ratio of their times: on a shared
    machine a preemption lands on one call of a pair, so the median ratio holds where medians of separate
    rounds swing with the load."""
    ratios = []
    for _ in range(pairs):
        t0 = time.perf_counter()
        c_call()
        t1 = time.perf_counter()
        ort_call()
        ratios.append((t1 - t0) / (time.perf_counter() - t1))
    return float(np.median(ratios))


def bench(name: str, params: Any, repeats: int, rounds: int, work: Path) -> dict[str, Any]:
    model, shape = _model(params, name)
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32) * 0.5
    weights = work / f"{name}.ecgk"
    write_weights(weights, model_weights(model, shape[1], params.train.models[name].task))
    onnx_path = export_onnx(model, shape, work / f"{name}.onnx", 17)
    c_model = CModel(weights, LIBRARY)
    plan = c_model.plan()
    runners: dict[str, Callable[[np.ndarray], object]] = {
        "pytorch": torch_runner(model, threads=1),
        "onnxruntime": OnnxRunner(onnx_path, threads=1),
        "c_ctypes": lambda batch: plan.run(batch[0]),
    }
    times: dict[str, list[float]] = {k: [] for k in [*runners, "c_runner"]}
    for _ in range(rounds):
        for key, fn in runners.items():
            times[key].append(measure_latency(fn, x, warmup=3, repeats=repeats).median_ms)
        times["c_runner"].append(_runner_ms(weights, x, repeats, work))
    med = {k: float(np.median(v)) for k, v in times.items()}
    paired = _paired_ratio(lambda: plan.run(x[0]), lambda: runners["onnxruntime"](x), repeats)
    plan.close()
    c_model.close()
    row: dict[str, Any] = {"model": name, "kind": params.train.models[name].kind, "input": list(shape)}
    row.update({f"{k}_ms": v for k, v in med.items()})
    row["ratio_c_vs_pytorch"] = med["c_ctypes"] / med["pytorch"]
    row["ratio_c_runner_vs_pytorch"] = med["c_runner"] / med["pytorch"]
    row["ratio_c_vs_onnxruntime"] = med["c_ctypes"] / med["onnxruntime"]
    row["paired_ratio_c_vs_onnxruntime"] = paired
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | input | PyTorch 1 thread | ONNX Runtime 1 thread | C (ctypes) | C (ecgk-run) | "
             "C / PyTorch | C / ONNX Runtime (paired) | target C / ORT ≤ 1.0 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        ok = "PASS" if r["paired_ratio_c_vs_onnxruntime"] <= 1.0 else "FAIL"
        lines.append(
            f"| {r['model']} ({r['kind']}) | {'×'.join(map(str, r['input']))} | {r['pytorch_ms']:.3f} ms | "
            f"{r['onnxruntime_ms']:.3f} ms | {r['c_ctypes_ms']:.3f} ms | {r['c_runner_ms']:.3f} ms | "
            f"{r['ratio_c_vs_pytorch']:.2f} | {r['paired_ratio_c_vs_onnxruntime']:.2f} | {ok} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--models", nargs="*", default=None, help="default: parity.models")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    set_arg(ap)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args()
    if not LIBRARY.is_file() or not RUNNER.is_file():
        raise SystemExit("build the C kernels first: make -C ckernels")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    params = load_params(args.params, args.overrides)
    names = args.models or list(params.parity.models)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(n, params, args.repeats, args.rounds, Path(tmp)) for n in names]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown")  # fmt: skip
    args.out.write_text(json.dumps({"cpu": cpu, "torch": torch.__version__, "rows": rows}, indent=2) + "\n")
    print(f"CPU: {cpu}; torch {torch.__version__}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
