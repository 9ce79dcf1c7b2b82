"""The autoencoder trained in C (``ecgk_ae_train_*`` in ``ckernels/include/ecgk_train.h``), from Python.

:class:`CAutoencoderTrainer` owns one C trainer: its arena holds parameters, gradients, AdamW moments, batch
norm running statistics, and every activation with its gradient for up to ``max_batch`` samples. Tensors are
named as torch names them: parameters and buffers by ``state_dict`` key, activations by the module that
outputs them (``encoder.0.0`` the first conv, ``encoder.0.1`` its batch norm, …, ``recon`` the
model's output).
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.ckernel.abi import F32, addr, check_array
from pipeline.ckernel.train import (
    _DATA,
    _GRAD,
    _M,
    _V,
    ACT,
    BUFFER,
    PARAM,
    autoencoder_dims,
    load_train_library,
)
from pipeline.models.autoencoder import ConvAutoencoder


class CAutoencoderTrainer:
    """A C trainer shaped like ``model`` (a :class:`ConvAutoencoder`), starting from its weights.

    ``bn_eps`` / ``bn_momentum`` are taken from the model's batch norms; AdamW's hyperparameters are passed
    per step (:meth:`adamw`), so a caller's LR schedule applies unchanged.
    """

    def __init__(self, model: ConvAutoencoder, max_batch: int, library: Path | str | None = None) -> None:
        self._lib = load_train_library(library)
        self.dims = autoencoder_dims(model)
        self.max_batch = max_batch
        self.in_shape = (model.in_channels, model.length)
        bn = model.encoder[0][1]  # type: ignore[index]
        dims = (ctypes.c_int * len(self.dims))(*self.dims)
        err = ctypes.create_string_buffer(512)
        self._t = self._lib.ecgk_ae_train_new(dims, len(self.dims), max_batch, float(bn.eps),
                                              float(bn.momentum), err, len(err))  # fmt: skip
        if not self._t:
            raise ValueError(f"ecgk_ae_train_new: {err.value.decode()}")
        self.kinds: dict[str, int] = {}
        self._index: dict[str, tuple[int, int]] = {}
        name = ctypes.create_string_buffer(64)
        size = ctypes.c_int()
        for i in range(self._lib.ecgk_ae_train_n_tensors(self._t)):
            kind = self._lib.ecgk_ae_train_tensor_info(self._t, i, name, len(name), ctypes.byref(size))
            key = name.value.decode()
            self.kinds[key] = kind
            self._index[key] = (i, size.value)
        self.load_state_dict(model.state_dict())

    def close(self) -> None:
        if self._t:
            self._lib.ecgk_ae_train_free(self._t)
            self._t = None

    def __del__(self) -> None:
        self.close()

    def _view(self, name: str, which: int, batch: int | None = None) -> F32:
        i, size = self._index[name]
        ptr = self._lib.ecgk_ae_train_tensor(self._t, i, which)
        if not ptr:
            raise KeyError(f"{name}: no array {which} (0 data, 1 grad, 2 m, 3 v) for this tensor")
        n = size * (self.max_batch if batch is None else batch) if self.kinds[name] == ACT else size
        return np.ctypeslib.as_array(ptr, shape=(n,))

    def names(self, kind: int) -> list[str]:
        """Tensor names of one kind (PARAM, BUFFER or ACT), in the arena's (the forward's) order."""
        return [n for n, k in self.kinds.items() if k == kind]

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy every parameter and running statistic from a torch ``state_dict`` (shapes checked by size);
        AdamW's moments are left as they are."""
        for name in self.names(PARAM) + self.names(BUFFER):
            src = state[name].detach().cpu().float().numpy().ravel()
            dst = self._view(name, _DATA)
            if src.size != dst.size:
                raise ValueError(f"{name}: torch has {src.size} values, the C trainer {dst.size}")
            dst[:] = src

    def state_dict(self, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Parameters and running statistics as a torch ``state_dict`` shaped like ``like`` (a model's own);
        keys C does not hold (``num_batches_tracked``) are copied from ``like``."""
        out: dict[str, torch.Tensor] = {}
        for key, ref in like.items():
            if key in self.kinds:
                out[key] = torch.from_numpy(self._view(key, _DATA).copy()).reshape(ref.shape)
            else:
                out[key] = ref.clone()
        return out

    def forward_backward(self, x: F32) -> float:
        """Training-mode forward and backward of the MSE loss on ``x (B, C, L)`` mV; returns the loss."""
        b = check_array("x", x, ndim=3).shape[0]
        check_array("x", x, (b, *self.in_shape))
        if b > self.max_batch:
            raise ValueError(f"x: batch {b} is larger than the trainer's max_batch {self.max_batch}")
        return float(self._lib.ecgk_ae_train_forward_backward(self._t, addr(x), b))

    def clip_grad_norm(self, max_norm: float) -> float:
        """``clip_grad_norm_`` over every parameter gradient; returns the norm before clipping."""
        return float(self._lib.ecgk_ae_train_clip_grad_norm(self._t, max_norm))

    def adamw(self, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> int:
        """One AdamW step (decay on rank ≥ 2 tensors only); returns the step count."""
        return int(self._lib.ecgk_ae_train_adamw(self._t, lr, betas[0], betas[1], eps, weight_decay))

    def load_moments(self, name: str, m: F32, v: F32) -> None:
        """Set AdamW's (m, v) of parameter ``name`` (flat, its size), e.g. from torch's optimizer state."""
        for which, src in ((_M, m), (_V, v)):
            dst = self._view(name, which)
            if src.size != dst.size:
                raise ValueError(f"{name}: moment has {src.size} values, the C trainer {dst.size}")
            dst[:] = src.ravel()

    def grads(self) -> dict[str, F32]:
        """Copies of every parameter gradient of the last backward, flat."""
        return {n: self._view(n, _GRAD).copy() for n in self.names(PARAM)}

    def activations(self, batch: int, grad: bool = False) -> dict[str, F32]:
        """Copies of every activation (or its gradient) of the last step, ``(batch, per-sample size)``."""
        which = _GRAD if grad else _DATA
        return {n: self._view(n, which, batch).reshape(batch, -1).copy() for n in self.names(ACT)}

    def moments(self, name: str) -> tuple[F32, F32]:
        """AdamW's (m, v) of parameter ``name``."""
        return self._view(name, _M).copy(), self._view(name, _V).copy()

    def __repr__(self) -> str:
        info: dict[str, Any] = {"dims": self.dims, "max_batch": self.max_batch, "tensors": len(self.kinds)}
        return f"CAutoencoderTrainer({info})"
