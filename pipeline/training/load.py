"""Loading a trained model back: the best checkpoint (else the latest), its card and weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from torch import nn

from pipeline.dataset.loader import ShardLoader, make_loader
from pipeline.models.card import ModelCard, card_from_checkpoint
from pipeline.store.root import StoreRoot
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.loop import BEST, LATEST


def pick_checkpoint(path: Path) -> Path:
    """``path`` itself if a file, else ``best.pt`` (or ``latest.pt``) in the folder ``path``."""
    if path.is_file():
        return path
    for name in (BEST, LATEST):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path}: no {BEST} or {LATEST}; train the model first (ecgpipe train <model>)")


def load_trained(path: Path) -> tuple[nn.Module, ModelCard, Path]:
    """The model in eval mode (CPU), its card and the checkpoint file it came from."""
    ckpt_path = pick_checkpoint(Path(path))
    ckpt = load_checkpoint(ckpt_path)
    card = card_from_checkpoint(ckpt, str(ckpt_path))
    model = card.build()
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, card, ckpt_path


def split_loader(
    store_root: StoreRoot | Path, profile: str, index: Path, split: str, batch_size: int
) -> ShardLoader:
    """Every record of ``split`` in index order, batch by batch."""
    return make_loader(store_root, profile, index, split, batch_size=batch_size, shuffle=False, num_workers=0)


def calibration_batches(
    store_root: StoreRoot | Path, profile: str, index: Path, n_records: int, batch_size: int
) -> list[npt.NDArray[np.float32]]:
    """The first ``n_records`` training records (index order), as float32 batches ``(B, C, L)``:
    INT8 ranges are calibrated on training data only."""
    out: list[npt.NDArray[np.float32]] = []
    taken = 0
    for x, _, _ in split_loader(store_root, profile, index, "train", batch_size):
        if taken >= n_records:
            break
        batch = x.numpy()[: n_records - taken].astype(np.float32)
        out.append(batch)
        taken += len(batch)
    if not out:
        raise ValueError(f"{index}: no training records to calibrate INT8 on")
    return out
