"""Training in C checked against PyTorch: per-tensor gradient parity from the same weights and batch, and
training parity (the same initial weights, batch order, LR schedule, gradient clipping and AdamW on both
sides, the losses compared step by step).

Inputs are float32 ``(N, C, L)`` beats in mV. Every comparison uses ``|c − t| ≤ atol + rtol·|t|`` per element;
a :class:`TensorCheck` records the worst element of one tensor.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.ckernel.abi import F32
from pipeline.ckernel.train import ACT, PARAM
from pipeline.ckernel.train_model import CAutoencoderTrainer
from pipeline.models.autoencoder import ConvAutoencoder
from pipeline.training.optim import make_optimizer, make_scheduler
from pipeline.training.options import TrainConfig

SKIP_ACTS = ("input.pad",)  # F.pad is not a module: torch has no hookable output for it (and no gradient)


@dataclass(frozen=True)
class TensorCheck:
    """One tensor's comparison: worst absolute and relative error, elements over the bound, the first one."""

    name: str
    kind: str  # "param_grad", "act", "act_grad", "loss"
    max_abs: float
    max_rel: float
    max_abs_ref: float
    n_violations: int
    first: dict[str, float] | None

    @property
    def ok(self) -> bool:
        return self.n_violations == 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_tensor(name: str, kind: str, c: F32, t: F32, atol: float, rtol: float) -> TensorCheck:
    """``c`` (C) against ``t`` (torch), same number of elements."""
    c64, t64 = np.asarray(c, np.float64).ravel(), np.asarray(t, np.float64).ravel()
    if c64.shape != t64.shape:
        raise ValueError(f"{name}: C has {c64.size} values, torch {t64.size}")
    err = np.abs(c64 - t64)
    bad = ~(err <= atol + rtol * np.abs(t64))  # NaN counts as a violation
    first = None
    if bad.any():
        i = int(np.argmax(bad))
        first = {"index": i, "c": float(c64[i]), "torch": float(t64[i])}
    rel = err / np.maximum(np.abs(t64), 1e-30)
    return TensorCheck(name, kind, float(err.max(initial=0.0)), float(rel.max(initial=0.0)),
                       float(np.abs(t64).max(initial=0.0)), int(bad.sum()), first)  # fmt: skip


@dataclass
class TorchStep:
    """One torch forward + backward: the loss, parameter gradients, activations and their gradients."""

    loss: float
    grads: dict[str, F32]
    acts: dict[str, F32]
    act_grads: dict[str, F32]


def torch_step(model: ConvAutoencoder, x: F32, act_names: list[str]) -> TorchStep:
    """MSE reconstruction loss of ``model`` (its current mode) on ``x (B, C, L)``, backward; activations are
    the outputs of the modules named in ``act_names`` (``recon``: the model's output)."""
    outputs: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    hooks = []
    for name in act_names:
        if name in modules and name != "":

            def hook(_m: nn.Module, _i: object, out: torch.Tensor, key: str = name) -> None:
                out.retain_grad()
                outputs[key] = out

            hooks.append(modules[name].register_forward_hook(hook))
    try:
        model.zero_grad(set_to_none=True)
        xt = torch.from_numpy(x)
        recon = model(xt)
        recon.retain_grad()
        outputs["recon"] = recon
        loss = nn.functional.mse_loss(recon, xt)
        torch.autograd.backward(loss)
    finally:
        for h in hooks:
            h.remove()
    grads = {
        n: p.grad.detach().numpy().ravel().copy() for n, p in model.named_parameters() if p.grad is not None
    }
    b = x.shape[0]
    acts = {n: o.detach().numpy().reshape(b, -1).copy() for n, o in outputs.items()}
    act_grads = {n: o.grad.numpy().reshape(b, -1).copy() for n, o in outputs.items() if o.grad is not None}
    return TorchStep(float(loss.item()), grads, acts, act_grads)


# Tolerances (docs/ckernels.md): activations keep the inference parity rule; gradients are ~1e-4..1e-1
# (the loss gradient is 2(r - x)/(B L)), so their absolute floor is 1e-7 and the relative bound 1e-3 covers
# float32 sums over up to B·L = 4,480 terms in a different order (measured worst: 5e-9 abs on activation
# gradients, 1e-6 relative on parameter gradients).
ACT_TOL = (1e-5, 1e-4)
GRAD_TOL = (1e-7, 1e-3)


def gradient_parity(
    model: ConvAutoencoder, trainer: CAutoencoderTrainer, x: F32,
    grad_tol: tuple[float, float] = GRAD_TOL, act_tol: tuple[float, float] = ACT_TOL,
) -> list[TensorCheck]:  # fmt: skip
    """One training-mode step of both from the model's current weights (copied into ``trainer`` first):
    the loss and every activation under ``act_tol`` (atol, rtol), every activation gradient and every
    parameter gradient under ``grad_tol``."""
    trainer.load_state_dict(model.state_dict())
    model.train()
    names = [n for n in trainer.names(ACT) if n not in SKIP_ACTS]
    ref = torch_step(model, x, names)
    loss = trainer.forward_backward(x)
    b = x.shape[0]
    c_acts, c_act_grads, c_grads = trainer.activations(b), trainer.activations(b, grad=True), trainer.grads()
    loss_c, loss_t = np.array([loss], np.float32), np.array([ref.loss], np.float32)
    checks = [check_tensor("loss", "loss", loss_c, loss_t, *act_tol)]
    for name in names:
        checks.append(check_tensor(name, "act", c_acts[name], ref.acts[name], *act_tol))
        checks.append(check_tensor(name, "act_grad", c_act_grads[name], ref.act_grads[name], *grad_tol))
    for name in trainer.names(PARAM):
        checks.append(check_tensor(name, "param_grad", c_grads[name], ref.grads[name], *grad_tol))
    return checks


def batch_order(n: int, batch_size: int, epochs: int, seed: int) -> Iterator[np.ndarray]:
    """Index arrays of every training batch, epoch by epoch (a fresh permutation per epoch from one seeded
    generator; the last batch of an epoch may be short)."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield perm[start : start + batch_size]


@dataclass
class TrainRun:
    """Per-step losses of both sides, the learning rates, and the trained torch and C models. With re-sync,
    ``weight_diffs`` holds after each step the largest ``max|c − t| / max|t|`` over the parameter tensors
    (C started that step from torch's weights and AdamW moments)."""

    torch_losses: list[float]
    c_losses: list[float]
    lrs: list[float]
    torch_model: ConvAutoencoder
    c_model: ConvAutoencoder
    weight_diffs: list[float] = field(default_factory=list)


def sync_from_torch(trainer: CAutoencoderTrainer, model: nn.Module, opt: torch.optim.Optimizer) -> None:
    """Copy ``model``'s parameters, running statistics and ``opt``'s AdamW moments into ``trainer``."""
    trainer.load_state_dict(model.state_dict())
    for name, p in model.named_parameters():
        state = opt.state.get(p)
        if state:
            trainer.load_moments(name, state["exp_avg"].numpy(), state["exp_avg_sq"].numpy())


def weight_diff(trainer: CAutoencoderTrainer, model: nn.Module) -> float:
    """Largest relative difference ``max|c − t| / max|t|`` over the parameter tensors."""
    c = trainer.state_dict(model.state_dict())
    worst = 0.0
    for name, p in model.named_parameters():
        t = p.detach().double()
        worst = max(worst, float((c[name].double() - t).abs().max() / t.abs().max().clamp_min(1e-30)))
    return worst


def train_both(
    model: ConvAutoencoder, x_train: F32, cfg: TrainConfig, batch_size: int,
    library: Path | str | None = None, max_steps: int | None = None, resync: bool = False,
) -> TrainRun:  # fmt: skip
    """Train a copy of ``model`` in torch and one in C from the same weights and batches: ``cfg``'s AdamW
    (``make_optimizer``'s groups), warm-up + cosine schedule and gradient clipping, ``cfg.epochs`` epochs
    (or the first ``max_steps`` steps), no early stopping. With ``resync`` every step of C starts from
    torch's weights and moments, so the two sides differ by one step's rounding only (see
    :attr:`TrainRun.weight_diffs`). Both models come back in eval mode."""
    ref = copy.deepcopy(model).train()
    c_model = copy.deepcopy(model)
    trainer = CAutoencoderTrainer(model, batch_size, library)
    opt = make_optimizer(ref, cfg)
    sched = make_scheduler(opt, cfg, -(-len(x_train) // batch_size))
    betas, eps = opt.defaults["betas"], opt.defaults["eps"]
    run = TrainRun([], [], [], ref, c_model)
    for step, idx in enumerate(batch_order(len(x_train), batch_size, cfg.epochs, cfg.seed)):
        if max_steps is not None and step >= max_steps:
            break
        xb = np.ascontiguousarray(x_train[idx])
        lr = float(opt.param_groups[0]["lr"])
        if resync:
            sync_from_torch(trainer, ref, opt)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(ref(torch.from_numpy(xb)), torch.from_numpy(xb))
        torch.autograd.backward(loss)
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(ref.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        run.c_losses.append(trainer.forward_backward(xb))
        if cfg.grad_clip is not None:
            trainer.clip_grad_norm(cfg.grad_clip)
        trainer.adamw(lr, betas, eps, cfg.weight_decay)
        run.torch_losses.append(float(loss.item()))
        run.lrs.append(lr)
        if resync:
            run.weight_diffs.append(weight_diff(trainer, ref))
    c_model.load_state_dict(trainer.state_dict(c_model.state_dict()))
    trainer.close()
    ref.eval()
    c_model.eval()
    return run
