"""1D residual network for multi-label classification of multi-lead ECG (profile ``ecg12``).

Follows the residual unit of Ribeiro et al. 2020, "Automatic diagnosis of the 12-lead ECG using a deep
neural network" (github.com/antonior92/automatic-ecg-diagnosis): the main path is
conv → BN → ReLU → dropout → conv (the second conv downsamples), the skip path is max-pool + 1x1 conv
when the shape changes, and BN → ReLU → dropout is applied *after* the residual sum, whose pre-activation
value is carried to the next unit as its skip input. The network ends with adaptive average pooling over
time and a linear layer, so any input length works.

Only Conv1d, BatchNorm1d, ReLU, Dropout, MaxPool1d, AdaptiveAvgPool1d, Linear and additions are used,
so ONNX export and the C kernels (BN folded into the convs) can follow the graph one layer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ResidualUnit1d(nn.Module):
    """One Ribeiro-style residual unit.

    ``forward(x, y)`` takes ``x`` (B, C_in, T), the activated output of the previous unit, and ``y``
    (B, C_in, T), the previous unit's pre-activation sum; it returns the new ``(x, y)`` pair, both
    (B, C_out, ceil(T / stride)). Odd kernel sizes keep "same" padding exact; the skip max-pool uses
    ``ceil_mode`` so that odd T gives the same length on both paths.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, dropout: float) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel_size, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_ch)
        self.relu1 = nn.ReLU()
        self.drop1 = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size, stride=stride, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(out_ch)
        self.relu2 = nn.ReLU()
        self.drop2 = nn.Dropout(dropout)
        self.skip = self._make_skip(in_ch, out_ch, stride)

    @staticmethod
    def _make_skip(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        if stride > 1:
            layers.append(nn.MaxPool1d(stride, stride=stride, ceil_mode=True))
        if in_ch != out_ch:
            layers.append(nn.Conv1d(in_ch, out_ch, 1, bias=False))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        skip: Tensor = self.skip(y)
        h: Tensor = self.drop1(self.relu1(self.bn1(self.conv1(x))))
        total: Tensor = self.conv2(h) + skip
        out: Tensor = self.drop2(self.relu2(self.bn2(total)))
        return out, total


class ResNet1d(nn.Module):
    """Multi-label ECG classifier.

    Input ``x``: (B, n_leads, T) float32 in mV, any T ≥ 1 (trained on the profile's fixed T, e.g.
    12 × 5000 = 10 s at 500 Hz). Output: (B, n_classes) logits, one independent logit per class
    (multi-label: apply a sigmoid outside, e.g. in ``BCEWithLogitsLoss``).

    Layout: stem conv (n_leads → widths[0]) + BN + ReLU at full rate, then one stage per entry of
    ``widths``, each of ``blocks_per_stage`` residual units whose first unit downsamples time by
    ``stride`` (5000 → 313 samples for four stages of stride 2), then mean over time and a linear head.
    The defaults (kernel 15, receptive field ≈ 433 samples ≈ 0.87 s at 500 Hz) have ≈ 3.3 M parameters;
    ``kernel_size=9`` gives ≈ 2.0 M and a ≈ 234-sample (0.47 s) receptive field.
    Default PyTorch initialisation, so ``torch.manual_seed`` before construction fixes every weight.
    """

    def __init__(
        self,
        n_leads: int,
        n_classes: int,
        widths: Sequence[int] = (64, 128, 196, 256),
        blocks_per_stage: int = 1,
        kernel_size: int = 15,
        stride: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        _check_args(widths, kernel_size, dropout, n_leads, n_classes, blocks_per_stage, stride)
        self.n_leads = n_leads
        self.n_classes = n_classes
        self.stem = nn.Sequential(
            nn.Conv1d(n_leads, widths[0], kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(),
        )
        self.blocks = nn.ModuleList(_stage_units(widths, blocks_per_stage, kernel_size, stride, dropout))
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[1] != self.n_leads:
            raise ValueError(f"ResNet1d expects (B, {self.n_leads}, T), got {tuple(x.shape)}")
        h: Tensor = self.stem(x)
        y = h
        for block in self.blocks:
            h, y = block(h, y)
        pooled: Tensor = self.pool(h)
        logits: Tensor = self.head(torch.flatten(pooled, 1))
        return logits


def _stage_units(
    widths: Sequence[int], blocks_per_stage: int, kernel_size: int, stride: int, dropout: float
) -> list[ResidualUnit1d]:
    units: list[ResidualUnit1d] = []
    in_ch = widths[0]
    for out_ch in widths:
        for i in range(blocks_per_stage):
            unit_stride = stride if i == 0 else 1
            units.append(ResidualUnit1d(in_ch, out_ch, kernel_size, unit_stride, dropout))
            in_ch = out_ch
    return units


def _check_args(
    widths: Sequence[int],
    kernel_size: int,
    dropout: float,
    *positive: int,
) -> None:
    if len(widths) == 0 or any(w < 1 for w in widths):
        raise ValueError(f"widths must be a non-empty sequence of positive ints, got {tuple(widths)}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (exact 'same' padding), got {kernel_size}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if any(v < 1 for v in positive):
        raise ValueError(f"n_leads, n_classes, blocks_per_stage and stride must be ≥ 1, got {positive}")
