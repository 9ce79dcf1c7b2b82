"""1D convolutional autoencoder for beat anomaly detection (profile ``beats140``).

Trained on normal beats only; the per-beat reconstruction error is the anomaly score and the decision
threshold comes from the errors of the training normals (chosen by the caller, not here).

Encoder: per width, Conv1d ("same" padding) → BN → ReLU → MaxPool1d(2); a dense bottleneck maps the
flattened feature map to ``latent`` numbers and back. Decoder: per stage, ConvTranspose1d(kernel 4,
stride 2, padding 1), which exactly doubles the length, → BN → ReLU, then a final Conv1d back to
``in_channels`` with no activation (the output is a signal in mV, negative values included). Lengths
that are not a multiple of the total stride ``2 ** len(widths)`` are zero-padded on the right before the
encoder and cropped after the decoder, so any ``length`` works (ECG5000 beats are 140 samples).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F  # noqa: N812  (the conventional alias)
from torch import Tensor, nn


def _conv_block(in_ch: int, out_ch: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm1d(out_ch),
        nn.ReLU(),
        nn.MaxPool1d(2),
    )


def _up_block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose1d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm1d(out_ch),
        nn.ReLU(),
    )


class ConvAutoencoder(nn.Module):
    """Beat autoencoder.

    Input ``x``: (B, in_channels, length) float32 in mV (the length is fixed at construction because of
    the dense bottleneck). ``forward`` returns the reconstruction, same shape and unit as ``x``;
    :meth:`encode` returns the code (B, latent); :meth:`reconstruction_error` returns the per-sample
    mean squared error (B,) in mV², the anomaly score. Default PyTorch initialisation, so
    ``torch.manual_seed`` before construction fixes every weight.
    """

    def __init__(
        self,
        in_channels: int = 1,
        length: int = 140,
        widths: Sequence[int] = (16, 32, 64),
        latent: int = 16,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        _check_args(in_channels, length, widths, latent, kernel_size)
        self.in_channels = in_channels
        self.length = length
        stride = 2 ** len(widths)
        self.padded_length = -(-length // stride) * stride
        self.code_shape = (widths[-1], self.padded_length // stride)
        flat = widths[-1] * self.code_shape[1]
        chans = [in_channels, *widths]
        self.encoder = nn.Sequential(
            *(_conv_block(a, b, kernel_size) for a, b in zip(chans[:-1], chans[1:], strict=True))
        )
        self.to_latent = nn.Linear(flat, latent)
        self.from_latent = nn.Sequential(nn.Linear(latent, flat), nn.ReLU())
        up_out = [*reversed(widths[:-1]), widths[0]]
        up_in = [widths[-1], *up_out[:-1]]
        self.decoder = nn.Sequential(*(_up_block(a, b) for a, b in zip(up_in, up_out, strict=True)))
        self.out = nn.Conv1d(widths[0], in_channels, kernel_size, padding=kernel_size // 2)

    def encode(self, x: Tensor) -> Tensor:
        """(B, in_channels, length) mV → (B, latent) code."""
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.length:
            raise ValueError(
                f"ConvAutoencoder expects (B, {self.in_channels}, {self.length}), got {tuple(x.shape)}"
            )
        pad = self.padded_length - self.length
        padded = F.pad(x, (0, pad)) if pad else x
        features: Tensor = self.encoder(padded)
        code: Tensor = self.to_latent(features.flatten(1))
        return code

    def decode(self, code: Tensor) -> Tensor:
        """(B, latent) code → (B, in_channels, length) reconstruction in mV."""
        hidden: Tensor = self.from_latent(code)
        features: Tensor = self.decoder(hidden.reshape(-1, *self.code_shape))
        recon: Tensor = self.out(features)
        return recon[:, :, : self.length]

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def reconstruction_error(self, x: Tensor) -> Tensor:
        """Per-sample mean squared reconstruction error, (B,) in mV², over all channels and samples.

        Runs in the module's current mode: call ``eval()`` (and ``torch.no_grad()``) when scoring.
        """
        recon: Tensor = self(x)
        diff = recon - x
        return (diff * diff).mean(dim=(1, 2))


def _check_args(in_channels: int, length: int, widths: Sequence[int], latent: int, kernel_size: int) -> None:
    if len(widths) == 0 or any(w < 1 for w in widths):
        raise ValueError(f"widths must be a non-empty sequence of positive ints, got {tuple(widths)}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (exact 'same' padding), got {kernel_size}")
    if in_channels < 1 or latent < 1:
        raise ValueError(f"in_channels and latent must be ≥ 1, got {in_channels}, {latent}")
    if length < 1:
        raise ValueError(f"length must be ≥ 1, got {length}")
