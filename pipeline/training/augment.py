"""Training-time augmentation of signal batches: random crop, shift, amplitude scaling, Gaussian
noise and mixup, each off by default.

Applied by :func:`pipeline.training.epoch.train_epoch` to every training batch on its device,
never to validation. All draws come from the global torch RNG (of the batch's device), which a
checkpoint captures, so a resumed run stays bitwise equal to an uninterrupted one; with every
knob off nothing is drawn and training is exactly what it was without this module.

Shapes: ``x (B, C, T)`` in mV (the profile's fixed ``T``; zeros are the profile's padding, so
zero is what fills a vacated or cropped-away span); ``y (B, K)`` float targets (multi-hot or
one-hot) for mixup.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Augment:
    """Knobs, all off by default.

    ``crop_min``: each record keeps one random contiguous span of ``U(crop_min, 1) * T`` samples
    and the rest is zeroed, as if the recording were that short (1.0: off). ``shift_max``: each
    record moves by ``U{-s, s}`` samples with ``s = shift_max * T``, zero-filled (0: off).
    ``scale``: amplitude multiplied by ``U(1 - scale, 1 + scale)`` per record (0: off).
    ``noise_mv``: Gaussian noise of this standard deviation in mV, added where the record has
    signal (its padding stays zero) (0: off). ``mixup_alpha``: records and their targets mixed
    with a shuffled copy of the batch, ``lambda ~ Beta(alpha, alpha)`` (0: off; targets become
    soft, so the loss takes class probabilities).
    """

    crop_min: float = 1.0
    shift_max: float = 0.0
    scale: float = 0.0
    noise_mv: float = 0.0
    mixup_alpha: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            (0.0 < self.crop_min <= 1.0, "crop_min", "in (0, 1]"),
            (0.0 <= self.shift_max < 1.0, "shift_max", "in [0, 1)"),
            (0.0 <= self.scale < 1.0, "scale", "in [0, 1)"),
            (self.noise_mv >= 0.0, "noise_mv", ">= 0"),
            (self.mixup_alpha >= 0.0, "mixup_alpha", ">= 0"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValueError(f"augment.{name} must be {rule}, got {getattr(self, name)!r}")

    @property
    def enabled(self) -> bool:
        """Whether any knob is on (when off, batches pass through untouched and nothing is drawn)."""
        return self != Augment()

    @property
    def mixup(self) -> bool:
        return self.mixup_alpha > 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def augment_signal(x: torch.Tensor, aug: Augment) -> torch.Tensor:
    """Crop, shift, scale and add noise to ``x (B, C, T)`` mV; returns a new tensor (same shape).

    One draw per record (the same for all its leads: they were recorded together)."""
    if x.ndim != 3:
        raise ValueError(f"augmentation expects x (B, C, T), got shape {tuple(x.shape)}")
    b, _, t = x.shape
    out = x
    if aug.crop_min < 1.0:
        out = _random_crop(out, aug.crop_min)
    if aug.shift_max > 0.0 and t > 1:
        out = _random_shift(out, int(aug.shift_max * t))
    if aug.scale > 0.0:
        factor = 1.0 + aug.scale * (2.0 * torch.rand(b, 1, 1, device=x.device) - 1.0)
        out = out * factor
    if aug.noise_mv > 0.0:
        has_signal = (out != 0).any(dim=1, keepdim=True)
        out = out + aug.noise_mv * torch.randn_like(out) * has_signal
    return out


def _random_crop(x: torch.Tensor, crop_min: float) -> torch.Tensor:
    """Keep ``[start, start + n)`` of each record, ``n ~ U(crop_min, 1) * T``; zero elsewhere."""
    b, _, t = x.shape
    n = torch.clamp((t * (crop_min + (1.0 - crop_min) * torch.rand(b, device=x.device))).long(), 1, t)
    start = (torch.rand(b, device=x.device) * (t - n + 1).float()).long()
    pos = torch.arange(t, device=x.device)[None, :]
    keep = (pos >= start[:, None]) & (pos < (start + n)[:, None])
    return x * keep[:, None, :].to(x.dtype)


def _random_shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Move each record by ``U{-max_shift, max_shift}`` samples along time, zero-filled."""
    b, _, t = x.shape
    shift = torch.randint(-max_shift, max_shift + 1, (b,), device=x.device)
    src = torch.arange(t, device=x.device)[None, :] - shift[:, None]  # (B, T) source sample
    valid = (src >= 0) & (src < t)
    idx = src.clamp(0, t - 1)[:, None, :].expand_as(x)
    return torch.gather(x, 2, idx) * valid[:, None, :].to(x.dtype)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix the batch ``x (B, C, T)``, ``y (B, K)`` float with a shuffled copy of itself.

    One ``lambda ~ Beta(alpha, alpha)`` per record; returns the mixed ``x`` and soft ``y``."""
    if y.ndim != 2:
        raise ValueError(f"mixup needs float targets (B, K), got shape {tuple(y.shape)}")
    b = x.shape[0]
    beta = torch.distributions.Beta(
        torch.tensor(alpha, device=x.device, dtype=torch.float32),
        torch.tensor(alpha, device=x.device, dtype=torch.float32),
    )
    lam = beta.sample((b,))
    perm = torch.randperm(b, device=x.device)
    lx = lam.to(x.dtype)[:, None, None]
    ly = lam.to(y.dtype)[:, None]
    return lx * x + (1 - lx) * x[perm], ly * y + (1 - ly) * y[perm]
