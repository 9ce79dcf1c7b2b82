"""Model outputs → per-record scores, one rule per task (shared by training, evaluation, export
and prediction so that they can never disagree).

- ``multilabel``: logits ``(N, K)`` → sigmoid probabilities ``(N, K)``.
- ``multiclass``: logits ``(N, K)`` → softmax probabilities ``(N, K)``.
- ``reconstruction``: reconstruction ``(N, C, L)`` of input ``x (N, C, L)`` → mean squared error
  per record ``(N,)`` (the anomaly score, in mV² for mV inputs).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import torch

Task = Literal["multilabel", "multiclass", "reconstruction"]
TASKS: tuple[Task, ...] = ("multilabel", "multiclass", "reconstruction")


def output_scores(task: Task, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Scores from the model output ``out`` for input ``x`` (see the module docstring)."""
    out = out.float()
    if task == "multilabel":
        return torch.sigmoid(out)
    if task == "multiclass":
        return torch.softmax(out, dim=1)
    if out.shape != x.shape:
        raise ValueError(f"reconstruction output {tuple(out.shape)} != input {tuple(x.shape)}")
    return (out - x.float()).pow(2).flatten(1).mean(dim=1)


def output_scores_np(
    task: Task, x: npt.NDArray[np.float32], out: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """:func:`output_scores` for numpy arrays (e.g. ONNX Runtime outputs), as float64."""
    scores = output_scores(
        task, torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(out))
    )
    return scores.double().numpy()
