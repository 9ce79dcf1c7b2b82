"""Model families as plain ``nn.Module``s (no I/O): build one by kind name.

- ``"resnet1d"`` → :class:`ResNet1d`: (B, leads, T) mV → (B, K) multi-label logits (profile ``ecg12``).
- ``"autoencoder"`` → :class:`ConvAutoencoder`: (B, C, L) mV → (B, C, L) reconstruction; the anomaly score
  is :meth:`ConvAutoencoder.reconstruction_error` (profile ``beats140``).
- ``"crnn"`` → :class:`StftCrnn`: (B, 1, T) mV → (B, K) single-label logits (profile ``lead1_af``).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from pipeline.models.autoencoder import ConvAutoencoder
from pipeline.models.crnn import DftSpectrogram, StftCrnn, dft_basis
from pipeline.models.resnet1d import ResidualUnit1d, ResNet1d

MODEL_KINDS: tuple[str, ...] = ("resnet1d", "autoencoder", "crnn")

_BUILDERS: dict[str, type[nn.Module]] = {
    "resnet1d": ResNet1d,
    "autoencoder": ConvAutoencoder,
    "crnn": StftCrnn,
}


def build_model(kind: str, **kwargs: Any) -> nn.Module:
    """Construct the model family ``kind`` (one of :data:`MODEL_KINDS`) with its constructor kwargs.

    Raises ``ValueError`` naming the known kinds for an unknown ``kind``; a wrong keyword raises the
    constructor's own ``TypeError``.
    """
    try:
        cls = _BUILDERS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}") from None
    return cls(**kwargs)


def constructor_kwargs(kind: str) -> frozenset[str]:
    """The keyword arguments the constructor of family ``kind`` accepts."""
    cls = _BUILDERS[kind]
    return frozenset(p for p in inspect.signature(cls.__init__).parameters if p != "self")


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter elements; buffers such as the DFT basis are not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "MODEL_KINDS",
    "ConvAutoencoder",
    "DftSpectrogram",
    "ResNet1d",
    "ResidualUnit1d",
    "StftCrnn",
    "build_model",
    "count_parameters",
    "dft_basis",
]
