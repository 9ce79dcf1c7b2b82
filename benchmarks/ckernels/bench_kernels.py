"""C convolution kernels (``ckernels/``, through ctypes) against PyTorch on one CPU thread.

What is timed: every convolution of the two latency-target models at batch 1, each as one call of
``ecgk_conv1d`` / ``ecgk_conv_transpose1d`` / ``ecgk_conv2d`` against the same call of
``torch.nn.functional.conv1d`` / ``conv_transpose1d`` / ``conv2d`` (``torch.set_num_threads(1)``,
``torch.no_grad()``; oneDNN on x86), same float32 inputs, no bias on either side:

* the 1D ResNet of ``params.yaml`` (widths 32, 64, 96, 128, kernel 15, one unit per stage) on a
  (12, 5000) input: the stem, each unit's two convs (the second with stride 2) and its 1x1 skip
  projection;
* the beat autoencoder (widths 16, 32, 64, kernel 7) on (1, 140), padded to 144: encoder convs,
  decoder transposed convs (kernel 4, stride 2, padding 1), output conv;
* a 3x3 conv2d on (16, 33, 561) (the CRNN's conv blocks), 16 -> 32 channels.

Timing: the C side is the bare ctypes function with its arguments (array addresses) prepared once,
so it pays about a microsecond of ctypes call overhead, which the C model runner does not; torch pays
its operator dispatch (a few microseconds), which a torch forward pass does too. Only the smallest
(autoencoder) layers feel either. Each configuration is timed in interleaved rounds (C, then
torch) and the best round counts, so a busy neighbour on a shared machine slows both sides rather than
one; a round repeats the call until it lasts at least ``--min-round-ms``. Ratio = C time / torch time
(below 1: C is faster). The outputs are checked against torch with the parity rule first.

Usage (from the repository root, after ``make -C ckernels``)::

    .venv/bin/python benchmarks/ckernels/bench_kernels.py [--rounds 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from pipeline.ckernel.lib import CKernels

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Conv:
    """One convolution layer: kind "1d", "t1d" (transposed) or "2d"; ``t`` is (h, w) for 2d."""

    model: str
    name: str
    kind: str
    c_in: int
    c_out: int
    t: tuple[int, ...]
    k: int
    stride: int = 1
    pad: int = 0
    big: bool = False  # a stride-1 ResNet conv with >= 32 channels: the ratio <= 1.0 target

    def macs(self, out_shape: tuple[int, ...]) -> int:
        taps = self.k * self.k if self.kind == "2d" else self.k
        return int(np.prod(out_shape)) * self.c_in * taps


def resnet_convs(
    widths: Sequence[int] = (32, 64, 96, 128), k: int = 15, leads: int = 12, t: int = 5000
) -> list[Conv]:
    """The convs of pipeline.models.resnet1d.ResNet1d(blocks_per_stage=1, stride 2) in order."""
    pad = k // 2
    layers = [Conv("resnet", "stem", "1d", leads, widths[0], (t,), k, 1, pad, big=True)]
    c_in = widths[0]
    for i, c_out in enumerate(widths, start=1):
        layers.append(Conv("resnet", f"unit{i}.conv1", "1d", c_in, c_out, (t,), k, 1, pad, big=True))
        layers.append(Conv("resnet", f"unit{i}.conv2 s2", "1d", c_out, c_out, (t,), k, 2, pad))
        t = -(-t // 2)
        if c_in != c_out:
            layers.append(Conv("resnet", f"unit{i}.skip 1x1", "1d", c_in, c_out, (t,), 1))
        c_in = c_out
    return layers


def autoencoder_convs(widths: Sequence[int] = (16, 32, 64), k: int = 7, length: int = 144) -> list[Conv]:
    """The convs of pipeline.models.autoencoder.ConvAutoencoder(1, 140) (input padded to 144)."""
    layers = []
    c_in, t = 1, length
    for i, c_out in enumerate(widths, start=1):
        layers.append(Conv("autoencoder", f"enc{i}", "1d", c_in, c_out, (t,), k, 1, k // 2))
        c_in, t = c_out, t // 2
    ups = [*reversed(widths[:-1]), widths[0]]
    for i, c_out in enumerate(ups, start=1):
        layers.append(Conv("autoencoder", f"dec{i} transposed", "t1d", c_in, c_out, (t,), 4, 2, 1))
        c_in, t = c_out, t * 2
    layers.append(Conv("autoencoder", "out", "1d", c_in, 1, (t,), k, 1, k // 2))
    return layers


def crnn_conv2d() -> list[Conv]:
    return [Conv("crnn", "conv2d 3x3", "2d", 16, 32, (33, 561), 3, 1, 1)]


def _addr(a: F32) -> int:
    return int(a.ctypes.data)


Calls = tuple[Callable[[], Any], Callable[[], Any], F32]


def _bound(ck: CKernels, name: str, args: list[int | None]) -> Callable[[], Any]:
    fn = ck.raw(name)
    return lambda: fn(*args)


def make_calls(ck: CKernels, layer: Conv, rng: np.random.Generator) -> Calls:
    """The bare C call (addresses computed once), the torch call and the C output buffer of one layer."""
    x = rng.standard_normal((layer.c_in, *layer.t)).astype(np.float32)
    s, p, k = layer.stride, layer.pad, layer.k
    xt = torch.from_numpy(x)[None]
    if layer.kind == "1d":
        w = (rng.standard_normal((layer.c_out, layer.c_in, k)) * 0.1).astype(np.float32)
        y = np.empty((layer.c_out, ck.conv_out_len(layer.t[0], k, s, p)), np.float32)
        args = [_addr(y), _addr(x), _addr(w), None, layer.c_in, layer.t[0], layer.c_out, k, s, p, 1, 1, 0]
        wt = torch.from_numpy(w)
        return _bound(ck, "conv1d", args), lambda: F.conv1d(xt, wt, None, s, p), y
    if layer.kind == "t1d":
        w = (rng.standard_normal((layer.c_in, layer.c_out, k)) * 0.1).astype(np.float32)
        y = np.empty((layer.c_out, ck.conv_transpose_out_len(layer.t[0], k, s, p)), np.float32)
        args = [_addr(y), _addr(x), _addr(w), None, layer.c_in, layer.t[0], layer.c_out, k, s, p, 0, 1, 0]
        wt = torch.from_numpy(w)
        return _bound(ck, "conv_transpose1d", args), lambda: F.conv_transpose1d(xt, wt, None, s, p), y
    w = (rng.standard_normal((layer.c_out, layer.c_in, k, k)) * 0.1).astype(np.float32)
    h, wd = layer.t
    y = np.empty((layer.c_out, ck.conv_out_len(h, k, s, p), ck.conv_out_len(wd, k, s, p)), np.float32)
    args = [_addr(y), _addr(x), _addr(w), None, layer.c_in, h, wd, layer.c_out, k, k, s, s, p, p, 0]
    wt = torch.from_numpy(w)
    return _bound(ck, "conv2d", args), lambda: F.conv2d(xt, wt, None, s, p), y


def _round(fn: Callable[[], Any], min_s: float) -> float:
    """Seconds per call over a run of calls lasting at least min_s."""
    n = 0
    start = time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return elapsed / n


def measure(ck: CKernels, layer: Conv, rounds: int, min_s: float, rng: np.random.Generator) -> dict[str, Any]:
    c_call, t_call, got = make_calls(ck, layer, rng)
    with torch.no_grad():
        c_call()
        want = t_call()[0].numpy()
        err = np.abs(got.astype(np.float64) - want)
        parity_ok = bool((err <= 1e-5 + 1e-4 * np.abs(want)).all())
        best_c = best_t = float("inf")
        for _ in range(rounds):
            best_c = min(best_c, _round(c_call, min_s))
            best_t = min(best_t, _round(t_call, min_s))
    macs = layer.macs(got.shape)
    return {
        "model": layer.model,
        "layer": layer.name,
        "shape": f"{layer.c_in}->{layer.c_out} k{layer.k} s{layer.stride} in {'x'.join(map(str, layer.t))}",
        "big_stride1": layer.big,
        "c_ms": best_c * 1e3,
        "torch_ms": best_t * 1e3,
        "ratio": best_c / best_t,
        "c_gmac_s": macs / best_c / 1e9,
        "torch_gmac_s": macs / best_t / 1e9,
        "max_abs_err": float(err.max()),
        "parity_ok": parity_ok,
    }


def totals(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Summed times per model (the convolutions of one forward pass) and for the big stride-1 convs."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["model"], []).append(r)
        if r["big_stride1"]:
            groups.setdefault("resnet big stride-1", []).append(r)
    out = {}
    for name, rs in groups.items():
        c, t = sum(r["c_ms"] for r in rs), sum(r["torch_ms"] for r in rs)
        out[name] = {"c_ms": c, "torch_ms": t, "ratio": c / t}
    return out


def markdown(rows: Sequence[dict[str, Any]], sums: dict[str, dict[str, float]]) -> str:
    lines = [
        "| model | layer | shape | C ms | torch ms | C / torch | C GMAC/s | torch GMAC/s | parity |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['layer']} | {r['shape']} | {r['c_ms']:.3f} | {r['torch_ms']:.3f} "
            f"| {r['ratio']:.2f} | {r['c_gmac_s']:.1f} | {r['torch_gmac_s']:.1f} "
            f"| {'ok' if r['parity_ok'] else 'FAIL'} ({r['max_abs_err']:.1e}) |"
        )
    lines += ["", "| total | C ms | torch ms | C / torch | target |", "|---|---:|---:|---:|---|"]
    for name, s in sums.items():
        target = (
            "≤ 1.00: " + ("PASS" if s["ratio"] <= 1.0 else "FAIL") if name == "resnet big stride-1" else ""
        )
        lines.append(f"| {name} | {s['c_ms']:.3f} | {s['torch_ms']:.3f} | {s['ratio']:.2f} | {target} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--lib", type=Path, default=None, help="libecgk.so (default ckernels/build/libecgk.so)")
    p.add_argument("--rounds", type=int, default=30, help="interleaved rounds per layer; the best counts")
    p.add_argument("--min-round-ms", type=float, default=2.0, help="shortest round (repeats the call)")
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    ck = CKernels(args.lib)
    rng = np.random.default_rng(0)
    layers = resnet_convs() + autoencoder_convs() + crnn_conv2d()
    rows = [measure(ck, layer, args.rounds, args.min_round_ms / 1e3, rng) for layer in layers]
    sums = totals(rows)
    print(markdown(rows, sums))
    if args.json is not None:
        info = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__}
        args.json.write_text(json.dumps({"info": info, "layers": rows, "totals": sums}, indent=2) + "\n")
    return 0 if all(r["parity_ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
