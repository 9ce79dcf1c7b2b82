"""Data-parallel training across processes (``torchrun``): DistributedDataParallel over gloo (CPU)
or NCCL (CUDA), with every rank taking the same number of batches per epoch.

What each rank does in :func:`pipeline.training.loop.fit` when a process group of more than one
rank is up: its own share of the training blocks (the loader deals blocks to ranks), the forward
and backward pass through :class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged
over ranks, so ``B`` records per rank train like one process with a global batch of
``world_size * B`` when every rank's batch holds ``B``), validation of the whole val split on
every rank (identical metrics, so early stopping agrees without messages), and only rank 0
writes checkpoints and dvclive logs. BatchNorm statistics are per rank (DDP broadcasts rank 0's
running buffers at each forward); on CUDA the stage converts them to ``SyncBatchNorm``.

Not distributed (one process, or no process group): every helper here is a no-op, so the single
process path is unchanged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    """A process group with more than one rank is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes files."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over ranks (the values themselves when not distributed)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.cpu()]


def all_reduce_min(value: int) -> int:
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def _collective_device() -> torch.device:
    # NCCL only moves CUDA tensors; gloo takes CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap(model: nn.Module, device: torch.device) -> nn.Module | None:
    """``model`` in DistributedDataParallel when distributed (None otherwise). Every rank starts
    from rank 0's weights (DDP broadcasts them)."""
    if not is_distributed():
        return None
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index], output_device=index)
    return DistributedDataParallel(model)


class EvenBatches:
    """The first ``n`` batches of a loader, ``n`` the least any rank has this epoch.

    The loader deals whole blocks to ranks, so their batch counts can differ by one or two; DDP
    needs every rank in every gradient all-reduce, so the ranks with more stop early (the few
    records left out move with the epoch's block order). Keeps ``set_epoch`` for the reshuffle.
    """

    def __init__(self, batches: Any) -> None:
        self.batches = batches
        self._epoch = 0
        self._len: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        method = getattr(self.batches, "set_epoch", None)
        if callable(method):
            method(epoch)

    def __len__(self) -> int:
        # a collective: every rank asks at the same points (fit's schedule, each epoch's start)
        if self._epoch not in self._len:
            self._len[self._epoch] = all_reduce_min(len(self.batches))
        return self._len[self._epoch]

    def __iter__(self) -> Iterator[Any]:
        n = len(self)
        for i, batch in enumerate(self.batches):
            if i >= n:
                break
            yield batch


def even(batches: Iterable[Any]) -> Iterable[Any]:
    """``batches`` as :class:`EvenBatches` when distributed, unchanged otherwise."""
    return EvenBatches(batches) if is_distributed() else batches


@contextlib.contextmanager
def process_group_from_env(device: str) -> Iterator[bool]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment):
    NCCL when ``device`` resolves to CUDA, gloo otherwise; on CUDA each rank uses GPU
    ``LOCAL_RANK``. Yields whether training is distributed; leaves the group on exit. Without
    torchrun's variables (or with one rank) nothing happens and it yields False. A group that
    is already up (started by the caller) is used as it is and left up."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        yield is_distributed()
        return
    # "auto" means CUDA when present (as resolve_device); an explicit cuda device without CUDA
    # fails in set_device with torch's own message
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        yield True
    finally:
        dist.destroy_process_group()
