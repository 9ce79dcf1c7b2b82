"""The ctrain stage: the autoencoder trained in C and in PyTorch from the same initial weights and batch
order, compared tensor by tensor, step by step and by their test metrics.

Inputs are float32 ``(N, C, L)`` records in mV: the training split (normals only, as the split puts them)
and the test split with its is-anomalous flags ``(N,)``. The report (``report.json``, DVC metrics) holds
every parameter and activation gradient's worst error on the first training batch, at the initial weights
and at PyTorch's trained weights; both loss curves; and each model's test AUROC and F1, its anomaly threshold
chosen by the same rule (``evaluate.anomaly_threshold``) on its own training scores. ``losses.tsv`` and
``losses.png`` are the curves as DVC plots.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pipeline.ckernel.abi import F32
from pipeline.ckernel.train_model import CAutoencoderTrainer
from pipeline.ckernel.train_parity import TensorCheck, TrainRun, batch_order, gradient_parity, train_both
from pipeline.core.fs import write_atomic
from pipeline.evaluation import metrics as M
from pipeline.evaluation.jsonable import json_safe
from pipeline.evaluation.plots import new_figure, save_figure
from pipeline.evaluation.thresholds import AnomalyMethod, normal_score_threshold
from pipeline.models.autoencoder import ConvAutoencoder
from pipeline.models.scoring import output_scores
from pipeline.training.options import TrainConfig

REPORT_FORMAT = "ecgpipe-ctrain/1"
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CTrainTolerance:
    """Bounds ``|c − t| ≤ atol + rtol·|t|``: gradients and activations per element; losses relative, the
    first ``exact_steps`` tighter than the rest; test AUROC absolute (docs/ckernels.md "Training in C")."""

    grad_atol: float = 1e-7
    grad_rtol: float = 1e-3
    act_atol: float = 1e-5
    act_rtol: float = 1e-4
    exact_steps: int = 20
    loss_exact_rtol: float = 1e-4
    loss_rtol: float = 0.15
    auroc_atol: float = 0.01


@dataclass(frozen=True)
class ThresholdRule:
    """``evaluate.anomaly_threshold``: ``percentile`` p of the training scores, or mean + k sd."""

    method: AnomalyMethod = "percentile"
    p: float = 99.0
    k: float = 3.0


def anomaly_scores(model: torch.nn.Module, x: F32, batch: int = 256) -> F64:
    """Mean squared reconstruction error per record ``(N,)`` (mV²) of ``model`` in eval mode."""
    model.eval()
    out: list[F64] = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[s : s + batch]))
            out.append(output_scores("reconstruction", xb, model(xb)).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def end_metrics(
    model: torch.nn.Module, x_train: F32, x_test: F32, anomalous: npt.NDArray[np.bool_], rule: ThresholdRule
) -> dict[str, float]:
    """Test AUROC of the anomaly score, and F1 / mean MSE with the threshold ``rule`` sets from this
    model's own training scores (the train split holds normals only)."""
    threshold = normal_score_threshold(anomaly_scores(model, x_train), rule.method, rule.p, rule.k)
    s = anomaly_scores(model, x_test)
    decided = s >= threshold
    return {"auroc": M.roc_auc(anomalous, s), "f1": M.macro_f1(anomalous[:, None], decided[:, None]),
            "threshold": threshold, "mean_mse": float(s.mean()) if s.size else float("nan")}  # fmt: skip


def _grad_table(checks: Sequence[TensorCheck]) -> dict[str, dict[str, dict[str, float]]]:
    """``{kind: {tensor: {max_abs, max_rel, violations}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for c in checks:
        out.setdefault(c.kind, {})[c.name] = {"max_abs": c.max_abs, "max_rel": c.max_rel,
                                              "violations": c.n_violations}  # fmt: skip
    return out


def loss_check(
    torch_losses: Sequence[float], c_losses: Sequence[float], tol: CTrainTolerance
) -> dict[str, Any]:
    """Relative loss difference per step; violations: the first ``exact_steps`` over ``loss_exact_rtol``,
    any step over ``loss_rtol`` (NaN counts)."""
    t, c = np.asarray(torch_losses, np.float64), np.asarray(c_losses, np.float64)
    rel = np.abs(c - t) / np.maximum(np.abs(t), 1e-30)
    first = rel[: tol.exact_steps]
    bad = ~(rel <= tol.loss_rtol)
    bad[: tol.exact_steps] |= ~(first <= tol.loss_exact_rtol)
    return {
        "steps": int(t.size),
        "torch_first": float(t[0]) if t.size else None,
        "torch_last": float(t[-1]) if t.size else None,
        "c_last": float(c[-1]) if c.size else None,
        "max_rel_exact_steps": float(first.max(initial=0.0)),
        "max_rel": float(rel.max(initial=0.0)),
        "violations": int(bad.sum()),
        "first_violation_step": int(np.argmax(bad)) if bad.any() else None,
    }


def _gradients_at(
    model: ConvAutoencoder, xb: F32, tol: CTrainTolerance, library: Path | str | None
) -> list[TensorCheck]:
    trainer = CAutoencoderTrainer(model, len(xb), library)
    try:
        return gradient_parity(copy.deepcopy(model), trainer, xb, (tol.grad_atol, tol.grad_rtol),
                               (tol.act_atol, tol.act_rtol))  # fmt: skip
    finally:
        trainer.close()


def run_ctrain(
    model: ConvAutoencoder, x_train: F32, x_test: F32, anomalous: npt.NDArray[np.bool_], cfg: TrainConfig,
    batch_size: int, tol: CTrainTolerance, rule: ThresholdRule, library: Path | str | None = None,
) -> tuple[dict[str, Any], TrainRun]:  # fmt: skip
    """Gradient parity on the first training batch (initial weights, then PyTorch's trained weights), both
    trainings, both end metrics; returns the report (``passed`` and ``failures`` say what broke) and the
    run (curves, trained models)."""
    first = np.ascontiguousarray(x_train[next(batch_order(len(x_train), batch_size, 1, cfg.seed))])
    at_init = _gradients_at(model, first, tol, library)
    run = train_both(model, x_train, cfg, batch_size, library)
    at_trained = _gradients_at(run.torch_model, first, tol, library)
    losses = loss_check(run.torch_losses, run.c_losses, tol)
    t_metrics = end_metrics(run.torch_model, x_train, x_test, anomalous, rule)
    c_metrics = end_metrics(run.c_model, x_train, x_test, anomalous, rule)
    diff = {k: c_metrics[k] - t_metrics[k] for k in t_metrics}
    failures = [f"gradients at {where}: {c.kind} {c.name} has {c.n_violations} elements off (first {c.first})"
                for where, checks in (("init", at_init), ("trained", at_trained))
                for c in checks if not c.ok]  # fmt: skip
    if losses["violations"]:
        failures.append(
            f"losses: {losses['violations']} steps off, first at step {losses['first_violation_step']}"
        )
    if not abs(diff["auroc"]) <= tol.auroc_atol:
        failures.append(f"test AUROC: C {c_metrics['auroc']:.4f} vs PyTorch {t_metrics['auroc']:.4f}")
    report = {
        "format": REPORT_FORMAT, "passed": not failures, "failures": failures,
        "n_train": int(len(x_train)), "n_test": int(len(x_test)), "batch_size": batch_size,
        "epochs": cfg.epochs, "tolerance": asdict(tol), "threshold_rule": asdict(rule),
        "grad_violations": sum(c.n_violations for c in (*at_init, *at_trained)),
        "gradients": {"init": _grad_table(at_init), "trained": _grad_table(at_trained)},
        "loss": losses, "metrics": {"pytorch": t_metrics, "c": c_metrics, "diff": diff},
        "loss_curves": {"pytorch": run.torch_losses, "c": run.c_losses, "lr": run.lrs},
    }  # fmt: skip
    return report, run


def plot_losses(report: dict[str, Any], path: Path) -> Path:
    """Both loss curves (log y) and their relative difference per step (log y, the bound dashed)."""
    curves = report["loss_curves"]
    t, c = np.asarray(curves["pytorch"]), np.asarray(curves["c"])
    fig = new_figure(7.0, 5.0)
    ax1, ax2 = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    ax1.plot(t, label="PyTorch", lw=1.2)
    ax1.plot(c, label="C", lw=0.8, ls="--")
    ax1.set_yscale("log")
    ax1.set_ylabel("MSE loss (mV²)")
    ax1.legend(fontsize=8)
    ax2.plot(np.maximum(np.abs(c - t) / np.maximum(t, 1e-30), 1e-12), color="#c44e52", lw=0.8)
    ax2.axhline(report["tolerance"]["loss_rtol"], color="k", ls="--", lw=0.8)
    ax2.set_yscale("log")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("|C − PyTorch| / PyTorch")
    ax1.set_title(f"C vs PyTorch training ({report['n_train']} records, batch {report['batch_size']})",
                  fontsize=9)  # fmt: skip
    return save_figure(fig, path)


def write_outputs(report: dict[str, Any], out_dir: Path) -> None:
    """``report.json``, ``losses.tsv`` (step, pytorch_loss, c_loss, lr) and ``losses.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "report.json", (json.dumps(json_safe(report), indent=2) + "\n").encode())
    curves = report["loss_curves"]
    rows = ["step\tpytorch_loss\tc_loss\tlr"]
    steps = zip(curves["pytorch"], curves["c"], curves["lr"], strict=True)
    rows += [f"{i}\t{t!r}\t{c!r}\t{lr!r}" for i, (t, c, lr) in enumerate(steps)]
    write_atomic(out_dir / "losses.tsv", ("\n".join(rows) + "\n").encode())
    plot_losses(report, out_dir / "losses.png")
