"""STFT → Conv2D → RNN → linear classifier for single-lead rhythm (profile ``lead1_af``, CinC 2017).

The STFT is a fixed real DFT: one strided Conv1d whose (non-trained) kernels are the Hann-windowed
cosine and sine rows of the DFT matrix, i.e. a matrix product over framed windows. Unlike
``torch.stft`` this exports to plain ONNX ``Conv`` and is re-implemented in C as the same conv1d.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

RnnKind = Literal["gru", "lstm"]
Pooling = Literal["mean", "last"]


def dft_basis(n_fft: int) -> Tensor:
    """Hann-windowed real DFT kernels, (2 * (n_fft // 2 + 1), 1, n_fft) float32.

    Rows ``[0, F)`` give the real parts ``w[n] cos(2π k n / N)``, rows ``[F, 2F)`` the imaginary parts
    ``-w[n] sin(2π k n / N)``, with ``w`` the periodic Hann window (``torch.hann_window``'s default).
    Built in float64 and rounded once so it matches ``torch.stft`` to float32 precision.
    """
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    window = 0.5 - 0.5 * torch.cos(2.0 * math.pi * n / n_fft)
    angle = 2.0 * math.pi * torch.outer(k, n) / n_fft
    basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window], dim=0)
    return basis.unsqueeze(1).to(torch.float32)


class DftSpectrogram(nn.Module):
    """Framed, windowed DFT power and log-power (``center=False``: no padding, frames start at 0).

    Input ``x``: (B, 1, T) float32 mV with T ≥ n_fft. :meth:`power` returns |X|², (B, F, N) in mV² with
    F = n_fft // 2 + 1 bins of fs / n_fft Hz and N = 1 + (T - n_fft) // hop frames; ``forward`` returns
    ``log(|X|² + eps)`` shaped (B, 1, F, N) for a Conv2d stack. The basis is a buffer (saved in the
    state dict so exporters see the exact values) and never trained.
    """

    basis: Tensor

    def __init__(self, n_fft: int, hop: int, eps: float = 1e-6) -> None:
        super().__init__()
        if n_fft < 2 or hop < 1:
            raise ValueError(f"need n_fft ≥ 2 and hop ≥ 1, got n_fft={n_fft}, hop={hop}")
        if eps <= 0.0:
            raise ValueError(f"eps must be > 0 (log of zero power), got {eps}")
        self.n_fft = n_fft
        self.hop = hop
        self.n_freq = n_fft // 2 + 1
        self.eps = eps
        self.register_buffer("basis", dft_basis(n_fft))

    def power(self, x: Tensor) -> Tensor:
        spec = nn.functional.conv1d(x, self.basis, stride=self.hop)
        real = spec[:, : self.n_freq]
        imag = spec[:, self.n_freq :]
        return real * real + imag * imag

    def forward(self, x: Tensor) -> Tensor:
        return torch.log(self.power(x) + self.eps).unsqueeze(1)


def _conv2d_block(in_ch: int, out_ch: int, pool_time: bool = True) -> nn.Sequential:
    # ceil_mode keeps a size-1 axis at size 1, so the shortest input (T = n_fft, one frame) still works.
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
        nn.MaxPool2d((2, 2) if pool_time else (2, 1), ceil_mode=True),
    )


class StftCrnn(nn.Module):
    """Single-lead rhythm classifier.

    Input ``x``: (B, 1, T) float32 in mV, any T ≥ n_fft (trained on 30 s at 300 Hz, T = 9000).
    Output: (B, n_classes) logits of mutually exclusive classes (single-label: softmax / cross-entropy
    outside), e.g. N/A/O/~ = NORM/AF/OTHER/NOISY.

    Pipeline: log-power spectrogram (B, 1, F, N) → (``input_norm``) batch norm per frequency bin →
    per width of ``conv_channels`` Conv2d 3×3 → BN → ReLU → MaxPool2d 2×2 over (freq, time) (2×1,
    frequency only, after the first ``time_pool`` blocks) → mean over the remaining frequency bins →
    (B, N', C) sequence → GRU/LSTM over time → mean over time (``pooling="mean"``) or the final hidden
    state(s) (``"last"``,
    both directions when bidirectional) → dropout → linear. With the defaults (n_fft 128, hop 32 at
    300 Hz: 2.3 Hz bins, 107 ms hop) 9000 samples give 278 frames and 35 RNN steps.
    Default PyTorch initialisation, so ``torch.manual_seed`` before construction fixes every weight.
    """

    def __init__(
        self,
        n_classes: int,
        n_fft: int = 128,
        hop: int = 32,
        conv_channels: Sequence[int] = (16, 32, 64),
        rnn_hidden: int = 64,
        rnn: RnnKind = "gru",
        bidirectional: bool = True,
        rnn_layers: int = 1,
        pooling: Pooling = "mean",
        dropout: float = 0.2,
        eps: float = 1e-6,
        input_norm: bool = False,
        time_pool: int | None = None,
        gain_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_args(n_classes, conv_channels, rnn_hidden, rnn, rnn_layers, pooling, dropout)
        self.n_classes = n_classes
        self.pooling = pooling
        self.spectrogram = DftSpectrogram(n_fft, hop, eps)
        # Per-frequency-bin batch norm of the log spectrogram: recordings differ in gain by an order of
        # magnitude, a constant offset in log power that this removes; at inference it is a fixed affine.
        self.input_norm = nn.BatchNorm1d(n_fft // 2 + 1) if input_norm else None
        # A recording's gain is a constant offset of its whole log spectrogram: removing the
        # per-record mean makes the classifier gain-invariant.
        self.gain_norm = gain_norm
        chans = [1, *conv_channels]
        # Only the first ``time_pool`` blocks halve time: the RNN then sees beat-scale steps (RR
        # irregularity is what AF looks like), while frequency is pooled in every block.
        n_time = len(conv_channels) if time_pool is None else time_pool
        if not 0 <= n_time <= len(conv_channels):
            raise ValueError(f"time_pool must be in [0, {len(conv_channels)}], got {time_pool}")
        pairs = zip(chans[:-1], chans[1:], strict=True)
        self.convs = nn.Sequential(*(_conv2d_block(a, b, i < n_time) for i, (a, b) in enumerate(pairs)))
        rnn_cls = nn.GRU if rnn == "gru" else nn.LSTM
        self.rnn = rnn_cls(
            conv_channels[-1],
            rnn_hidden,
            num_layers=rnn_layers,
            batch_first=True,
            bidirectional=bidirectional,
        )
        self.n_directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(rnn_hidden * self.n_directions, n_classes)

    @property
    def n_fft(self) -> int:
        return self.spectrogram.n_fft

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] < self.n_fft:
            raise ValueError(f"StftCrnn expects (B, 1, T) with T ≥ {self.n_fft}, got {tuple(x.shape)}")
        spec = self.spectrogram(x)
        if self.gain_norm:
            spec = spec - spec.mean(dim=(2, 3), keepdim=True)
        if self.input_norm is not None:
            spec = self.input_norm(spec.squeeze(1)).unsqueeze(1)
        features: Tensor = self.convs(spec)
        sequence = features.mean(dim=2).transpose(1, 2)
        outputs, state = self.rnn(sequence)
        pooled = outputs.mean(dim=1) if self.pooling == "mean" else self._last_state(state)
        logits: Tensor = self.head(self.dropout(pooled))
        return logits

    def _last_state(self, state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        """Final hidden state of the top layer, (B, directions * hidden); LSTM state is (h, c)."""
        hidden = state[0] if isinstance(state, tuple) else state
        top = hidden[-self.n_directions :]
        return top.transpose(0, 1).flatten(1)


def _check_args(
    n_classes: int,
    conv_channels: Sequence[int],
    rnn_hidden: int,
    rnn: str,
    rnn_layers: int,
    pooling: str,
    dropout: float,
) -> None:
    if len(conv_channels) == 0 or any(c < 1 for c in conv_channels):
        raise ValueError(f"conv_channels must be non-empty positive ints, got {tuple(conv_channels)}")
    if rnn not in ("gru", "lstm"):
        raise ValueError(f"rnn must be 'gru' or 'lstm', got {rnn!r}")
    if pooling not in ("mean", "last"):
        raise ValueError(f"pooling must be 'mean' or 'last', got {pooling!r}")
    if n_classes < 1 or rnn_hidden < 1 or rnn_layers < 1:
        raise ValueError(
            f"n_classes, rnn_hidden, rnn_layers must be ≥ 1, got {n_classes}, {rnn_hidden}, {rnn_layers}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
