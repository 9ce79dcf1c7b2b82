"""C vs PyTorch parity: every layer's activation and the final scores on the same records, judged by
``|c − t| ≤ atol + rtol·|t|``, plus the end metrics and threshold decisions both produce.

Two comparisons per record:

- **layers**: each C layer runs on PyTorch's activations of its inputs and its output is held to the
  bound. This checks every kernel on exactly the inputs the reference saw: float32 rounding that earlier
  layers left behind cannot pile up, so the first failing layer (network order) is the broken one.
- **chain**: the C graph runs end to end on its own outputs, as on a device. Its final ``scores`` are held to
  the bound; the drift of every intermediate layer is reported (not judged: two float32 implementations
  that sum in different orders drift apart by more than 1e-5 at small elements deep in a network, e.g.
  after a GRU's 139 steps, while the scores still agree to ~1e-7).

Relative errors are taken over elements with ``|t| ≥ atol`` (below that they are noise over zero, which
``atol`` covers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm import tqdm

from pipeline.ckernel.model import CPlan
from pipeline.ckernel.trace import torch_layers
from pipeline.evaluation import metrics as M
from pipeline.evaluation.decisions import DecisionRule
from pipeline.models.scoring import Task

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Tolerance:
    """Element-wise bound ``atol + rtol·|t|`` (float32 defaults); ``metric_atol`` for end metrics."""

    atol: float = 1e-5
    rtol: float = 1e-4
    metric_atol: float = 1e-4


@dataclass(frozen=True)
class Violation:
    """One element outside the bound: where, and the two values."""

    layer: str
    record_id: str
    index: tuple[int, ...]
    c_value: float
    torch_value: float
    bound: float

    def message(self) -> str:
        diff = abs(self.c_value - self.torch_value)
        return (
            f"layer {self.layer}, record {self.record_id}, index {self.index}: C = {self.c_value:.9g}, "
            f"PyTorch = {self.torch_value:.9g} (|diff| {diff:.3g} > bound {self.bound:.3g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "record": self.record_id, "index": list(self.index),
                "c": self.c_value, "torch": self.torch_value, "bound": self.bound}  # fmt: skip


@dataclass
class LayerStats:
    """Errors of one layer accumulated over records."""

    name: str
    shape: tuple[int, ...]
    elements: int = 0
    sum_abs: float = 0.0
    max_abs: float = 0.0
    rel_elements: int = 0
    sum_rel: float = 0.0
    max_rel: float = 0.0
    worst_ratio: float = 0.0  # max of |c − t| / (atol + rtol·|t|): ≤ 1 passes
    violations: int = 0
    first: Violation | None = None

    def update(self, record_id: str, c: F32, t: F32, tol: Tolerance) -> None:
        """Fold in one record's activations ``c``, ``t`` (same shape as :attr:`shape`)."""
        c64, t64 = c.astype(np.float64), t.astype(np.float64)
        diff = np.abs(c64 - t64)
        diff[~np.isfinite(diff)] = np.inf  # NaN on either side is a violation, not a silent pass
        bound = tol.atol + tol.rtol * np.abs(t64)
        ratio = diff / bound
        self.elements += diff.size
        self.sum_abs += float(diff[np.isfinite(diff)].sum())
        self.max_abs = max(self.max_abs, float(diff.max(initial=0.0)))
        big = np.abs(t64) >= tol.atol
        rel = diff[big] / np.abs(t64[big])
        self.rel_elements += rel.size
        self.sum_rel += float(rel[np.isfinite(rel)].sum())
        self.max_rel = max(self.max_rel, float(rel.max(initial=0.0)))
        self.worst_ratio = max(self.worst_ratio, float(ratio.max(initial=0.0)))
        bad = ~(ratio <= 1.0)
        self.violations += int(bad.sum())
        if self.first is None and bad.any():
            flat = int(np.argmax(bad.reshape(-1)))
            index = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
            self.first = Violation(self.name, record_id, index, float(c64[index]), float(t64[index]),
                                   float(bound[index]))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_abs": self.max_abs,
            "mean_abs": self.sum_abs / max(self.elements, 1),
            "max_rel": self.max_rel,
            "mean_rel": self.sum_rel / max(self.rel_elements, 1),
            "worst_ratio": self.worst_ratio,
            "violations": self.violations,
        }


@dataclass
class ParityRun:
    """Per-layer statistics (network order) of each layer on PyTorch's inputs (``layers``) and of the
    free-running C graph (``chain``), and both sides' scores ``(N, n_scores)`` in record order."""

    layers: list[LayerStats]
    chain: list[LayerStats]
    record_ids: list[str] = field(default_factory=list)
    c_scores: list[F32] = field(default_factory=list)
    t_scores: list[F32] = field(default_factory=list)

    @property
    def first_failure(self) -> Violation | None:
        """The first violation of a layer (network order), else of the end-to-end scores."""
        judged = [*self.layers, self.chain[-1]]
        return next((s.first for s in judged if s.first is not None), None)

    @property
    def violations(self) -> int:
        return sum(s.violations for s in self.layers) + self.chain[-1].violations

    def scores(self) -> tuple[F64, F64]:
        n = self.layers[-1].shape[0] if self.layers else 0
        c = np.stack(self.c_scores).astype(np.float64) if self.c_scores else np.zeros((0, n))
        t = np.stack(self.t_scores).astype(np.float64) if self.t_scores else np.zeros((0, n))
        return c, t


def compare(
    plan: CPlan, model: nn.Module, batches: Iterable[tuple[Sequence[str], F32]], tol: Tolerance,
    progress: bool = True, task: Task = "multilabel",
) -> ParityRun:  # fmt: skip
    """Run every record of ``batches`` (ids, ``(B, C, T)`` mV) through both and compare every layer,
    in isolation and as a chain (module docstring). ``task``: the model card's (it picks a ResNet's
    scores, as in :func:`~pipeline.ckernel.trace.torch_layers`)."""
    model.eval()
    pairs = list(zip(plan.layer_names, plan.layer_shapes, strict=True))
    run = ParityRun([LayerStats(n, s) for n, s in pairs], [LayerStats(n, s) for n, s in pairs])
    for ids, x in tqdm(batches, desc="parity", leave=False, disable=not progress):
        reference = torch_layers(model, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), task)
        _check_names(plan.layer_names, [name for name, _ in reference])
        for b, record_id in enumerate(ids):
            t = [
                act[b].detach().float().numpy().reshape(shape)
                for (_, act), (_, shape) in zip(reference, pairs, strict=True)
            ]
            run.record_ids.append(record_id)
            run.c_scores.append(plan.run(x[b]))
            run.t_scores.append(t[-1].reshape(-1))
            for i, stats in enumerate(run.chain):
                stats.update(record_id, plan.layer(i), t[i], tol)
            for i, stats in enumerate(run.layers):
                inputs = {j: t[j] for j in plan.layer_inputs[i] if j >= 0}
                stats.update(record_id, plan.run_layer(i, x[b], inputs), t[i], tol)
    return run


def _check_names(c_names: Sequence[str], t_names: Sequence[str]) -> None:
    if list(c_names) != list(t_names):
        diff = next((i for i, (a, b) in enumerate(zip(c_names, t_names, strict=False)) if a != b), None)
        raise ValueError(
            f"C and PyTorch layer lists differ (C {len(c_names)}, PyTorch {len(t_names)} layers; first "
            f"difference at position {diff}): the weight file was exported for a different model version"
        )


def end_metrics(
    task: Task, is_positive: npt.NDArray[np.bool_], scores: F64, rule: DecisionRule
) -> dict[str, float]:
    """The headline metrics of one side's test scores: ``is_positive`` is ``(N, K)`` class membership
    (classifiers) or ``(N,)`` is-anomalous (autoencoder); decisions follow ``rule``."""
    decided = rule.decide(scores)
    if task == "reconstruction":
        s = scores.reshape(-1)
        return {"auroc": M.roc_auc(is_positive, s), "mean_mse": float(s.mean()) if s.size else float("nan"),
                "f1": M.macro_f1(is_positive[:, None], decided[:, None])}  # fmt: skip
    out = {"macro_auroc": M.macro_auroc(is_positive, scores), "f1_macro": M.macro_f1(is_positive, decided)}
    if task == "multilabel":
        out["macro_ap"] = M.macro_average_precision(is_positive, scores)
    else:
        out["accuracy"] = float((decided == is_positive).all(axis=1).mean()) if len(scores) else float("nan")
    return out


def decision_agreement(rule: DecisionRule, c: F64, t: F64, tol: Tolerance) -> dict[str, int]:
    """How many decisions differ between the two sides; a difference where PyTorch's score is within the
    element bound of its threshold (or, for argmax, the top two scores are) is counted as borderline."""
    dc, dt = rule.decide(c), rule.decide(t)
    differ = dc != dt
    if rule.task == "multiclass":
        top2 = np.sort(t, axis=1)[:, -2:] if t.shape[1] > 1 else np.zeros((len(t), 2))
        near = np.abs(top2[:, 1] - top2[:, 0]) <= tol.atol + tol.rtol * np.abs(top2[:, 1])
        rows = differ.any(axis=1)
        return {
            "compared": int(len(t)),
            "differ": int((rows & ~near).sum()),
            "borderline": int((rows & near).sum()),
        }
    assert rule.thresholds is not None
    thr = rule.thresholds.as_array()
    scores = t.reshape(-1) if rule.task == "reconstruction" else t
    near = np.abs(scores - (thr[0] if rule.task == "reconstruction" else thr[None, :])) <= (
        tol.atol + tol.rtol * np.abs(scores)
    )
    return {
        "compared": int(differ.size),
        "differ": int((differ & ~near).sum()),
        "borderline": int((differ & near).sum()),
    }
