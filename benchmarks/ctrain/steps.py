"""Training steps per second of the autoencoder: the C trainer (``ecgk_ae_train_*`` through ctypes) against
PyTorch on the CPU with one thread, the same architecture (``train.models.<m>`` of params), the same seeded
initial weights, batch size, AdamW settings, gradient clipping and batches ``(B, C, L)`` mV.

A step is what training does per batch: forward in training mode, MSE loss, backward, gradient clipping,
AdamW. Rounds interleave the two sides (``steps`` steps of C, then of PyTorch, ``rounds`` times), so a busy
machine slows both alike; each side's figure is the median over rounds.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.ckernel.train_model import CAutoencoderTrainer
from pipeline.cli.models import targets_for, train_config
from pipeline.config import Params
from pipeline.config.build import signal_plan
from pipeline.models.autoencoder import ConvAutoencoder
from pipeline.training.optim import make_optimizer
from pipeline.training.stage import make_card


def autoencoder(params: Params, name: str) -> ConvAutoencoder:
    """Model ``name`` of params (an autoencoder) with seed-0 initial weights."""
    m = params.train.models[name]
    plan = signal_plan(params.profiles[m.profile])
    card = make_card(name, m.kind, m.model, targets_for(params, name), m.profile, plan,
                     (len(plan.leads), plan.length), 0.0)  # fmt: skip
    torch.manual_seed(0)
    model = card.build()
    if not isinstance(model, ConvAutoencoder):
        raise SystemExit(f"train.models.{name} is a {m.kind}, not an autoencoder")
    return model


def batches(model: ConvAutoencoder, batch_size: int, n: int) -> list[np.ndarray]:
    """``n`` batches ``(B, C, L)`` of noisy sines (the step time does not depend on the values)."""
    rng = np.random.default_rng(0)
    t = np.arange(model.length) / model.length
    out = []
    for _ in range(n):
        phase = rng.uniform(0, 2 * np.pi, (batch_size, model.in_channels, 1))
        x = np.sin(2 * np.pi * 3 * t + phase) + 0.1 * rng.standard_normal(
            (batch_size, model.in_channels, t.size)
        )
        out.append(np.ascontiguousarray(x, dtype=np.float32))
    return out


def step_fns(model: ConvAutoencoder, params: Params, name: str, batch_size: int,
             library: Path | None) -> dict[str, Callable[[np.ndarray], float]]:  # fmt: skip
    """One training step of each side on a batch; both start from ``model``'s weights."""
    cfg = train_config(params.train.models[name])
    ref = copy.deepcopy(model).train()
    opt = make_optimizer(ref, cfg)
    betas, eps = opt.defaults["betas"], opt.defaults["eps"]
    trainer = CAutoencoderTrainer(model, batch_size, library)
    clip = cfg.grad_clip

    def torch_step(x: np.ndarray) -> float:
        xt = torch.from_numpy(x)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(ref(xt), xt)
        torch.autograd.backward(loss)
        if clip is not None:
            nn.utils.clip_grad_norm_(ref.parameters(), clip)
        opt.step()
        return float(loss.item())

    def c_step(x: np.ndarray) -> float:
        loss = trainer.forward_backward(x)
        if clip is not None:
            trainer.clip_grad_norm(clip)
        trainer.adamw(cfg.lr, betas, eps, cfg.weight_decay)
        return loss

    return {"c": c_step, "pytorch": torch_step}


def bench(params: Params, name: str, batch_size: int | None, steps: int, rounds: int,
          library: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Steps/s of each side (median over ``rounds`` interleaved rounds of ``steps`` steps) and C / PyTorch."""
    torch.set_num_threads(1)
    model = autoencoder(params, name)
    bs = batch_size or params.train.models[name].batch_size
    data = batches(model, bs, steps)
    fns = step_fns(model, params, name, bs, library)
    for fn in fns.values():  # warm-up: first-call allocations, page faults
        fn(data[0])
    rates: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for x in data:
                fn(x)
            rates[key].append(steps / (time.perf_counter() - t0))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    return {"model": name, "input": [model.in_channels, model.length], "batch_size": bs,
            "widths": list(params.train.models[name].model.get("widths", [])), "steps": steps,
            "rounds": rounds,
            "c_steps_per_s": med["c"], "pytorch_steps_per_s": med["pytorch"],
            "ratio_c_vs_pytorch": med["c"] / med["pytorch"], "rounds_steps_per_s": rates}  # fmt: skip


def table(row: dict[str, Any]) -> str:
    """The README's Markdown table row (with header)."""
    return "\n".join([
        "| model | input | batch | PyTorch 1 thread | C | C / PyTorch (steps/s) |",
        "|---|---|---:|---:|---:|---:|",
        f"| {row['model']} (widths {row['widths']}) | {'×'.join(map(str, row['input']))} | "
        f"{row['batch_size']} | "
        f"{row['pytorch_steps_per_s']:.1f} steps/s | {row['c_steps_per_s']:.1f} steps/s | "
        f"{row['ratio_c_vs_pytorch']:.2f} |",
    ])  # fmt: skip
