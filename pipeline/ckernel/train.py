"""ctypes bindings of the C training code (``ckernels/include/ecgk_train.h``): the backward kernels as numpy
functions (for randomized-shape checks against torch) and :class:`CAutoencoderTrainer`, the autoencoder
trained in C (forward in training mode, backward, AdamW) with its tensors visible as numpy views.

Shapes are the header's: one sample ``(C, T)`` for the per-sample kernels, ``(B, C, T)`` for batch norm and
the trainer; values in mV (signals) or whatever the gradient's unit is (loss per value). Arguments are checked
as in :mod:`pipeline.ckernel.abi` (float32, C-contiguous, the stated shape) before C sees them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.ckernel.abi import DEFAULT_LIB, F32, addr, check_array, open_library
from pipeline.models.autoencoder import ConvAutoencoder

_P = ctypes.c_void_p
_I = ctypes.c_int
_F = ctypes.c_float
_D = ctypes.c_double
TRAIN_SIGNATURES: dict[str, tuple[type | None, list[Any]]] = {
    "ecgk_conv1d_backward": (None, [_P] * 6 + [_I] * 6),
    "ecgk_conv_transpose1d_backward": (None, [_P] * 6 + [_I] * 6),
    "ecgk_linear_backward": (None, [_P] * 6 + [_I] * 2),
    "ecgk_relu_backward": (None, [_P] * 3 + [_I]),
    "ecgk_maxpool1d_backward": (None, [_P] * 3 + [_I] * 4),
    "ecgk_batchnorm_train": (None, [_P] * 8 + [_I] * 3 + [_F] * 2),
    "ecgk_batchnorm_train_backward": (None, [_P] * 8 + [_I] * 3),
    "ecgk_mse_loss_backward": (_F, [_P] * 3 + [_I]),
    "ecgk_adamw": (None, [_P] * 4 + [_I] + [_D] * 5 + [_I]),
    "ecgk_ae_train_new": (_P, [_P, _I, _I, _F, _F, ctypes.c_char_p, _I]),
    "ecgk_ae_train_free": (None, [_P]),
    "ecgk_ae_train_n_tensors": (_I, [_P]),
    "ecgk_ae_train_tensor_info": (_I, [_P, _I, ctypes.c_char_p, _I, ctypes.POINTER(_I)]),
    "ecgk_ae_train_tensor": (ctypes.POINTER(_F), [_P, _I, _I]),
    "ecgk_ae_train_forward_backward": (_F, [_P, _P, _I]),
    "ecgk_ae_train_clip_grad_norm": (_D, [_P, _D]),
    "ecgk_ae_train_adamw": (_I, [_P] + [_D] * 5),
}
PARAM, BUFFER, ACT = 0, 1, 2  # ecgk_tensor_kind
_DATA, _GRAD, _M, _V = 0, 1, 2, 3


def load_train_library(path: Path | str | None = None) -> ctypes.CDLL:
    """``libecgk.so`` with the training functions' signatures set."""
    lib = open_library(path if path is not None else DEFAULT_LIB)
    for name, (restype, argtypes) in TRAIN_SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def _zeros_like_or_none(a: F32, want: bool) -> F32 | None:
    return np.zeros_like(a) if want else None


class CTrainKernels:
    """The backward kernels of one loaded library, each returning new arrays (gradients start at zero)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self._lib = load_train_library(path)

    def _fn(self, name: str) -> Callable[..., object]:
        fn: Callable[..., object] = getattr(self._lib, name)
        return fn

    def conv1d_backward(
        self, dy: F32, x: F32, w: F32, *, stride: int = 1, pad: int = 0, bias: bool = True
    ) -> tuple[F32, F32, F32 | None]:
        """``(dx (c_in, t_in), dw (c_out, c_in, k), db (c_out) or None)`` of torch Conv1d (groups 1)."""
        c_in, t_in = check_array("x", x, ndim=2).shape
        c_out, _, k = check_array("w", w, ndim=3).shape
        t_out = (t_in + 2 * pad - k) // stride + 1
        check_array("w", w, (c_out, c_in, k))
        check_array("dy", dy, (c_out, t_out))
        dx, dw = np.empty_like(x), np.zeros_like(w)
        db = _zeros_like_or_none(np.empty(c_out, np.float32), bias)
        self._fn("ecgk_conv1d_backward")(addr(dx), addr(dw), addr(db), addr(dy), addr(x), addr(w),
                                         c_in, t_in, c_out, k, stride, pad)  # fmt: skip
        return dx, dw, db

    def conv_transpose1d_backward(
        self, dy: F32, x: F32, w: F32, *, stride: int = 1, pad: int = 0, bias: bool = True
    ) -> tuple[F32, F32, F32 | None]:
        """``(dx (c_in, t_in), dw (c_in, c_out, k), db (c_out) or None)`` of torch ConvTranspose1d."""
        c_in, t_in = check_array("x", x, ndim=2).shape
        _, c_out, k = check_array("w", w, ndim=3).shape
        t_out = (t_in - 1) * stride - 2 * pad + k
        check_array("w", w, (c_in, c_out, k))
        check_array("dy", dy, (c_out, t_out))
        dx, dw = np.empty_like(x), np.zeros_like(w)
        db = _zeros_like_or_none(np.empty(c_out, np.float32), bias)
        self._fn("ecgk_conv_transpose1d_backward")(addr(dx), addr(dw), addr(db), addr(dy), addr(x), addr(w),
                                                   c_in, t_in, c_out, k, stride, pad)  # fmt: skip
        return dx, dw, db

    def linear_backward(self, dy: F32, x: F32, w: F32) -> tuple[F32, F32, F32]:
        """``(dx (n_in), dw (n_out, n_in), db (n_out))`` of torch Linear for one sample."""
        (n_in,) = check_array("x", x, ndim=1).shape
        n_out = check_array("w", w, ndim=2).shape[0]
        check_array("w", w, (n_out, n_in))
        check_array("dy", dy, (n_out,))
        dx, dw, db = np.empty_like(x), np.zeros_like(w), np.zeros(n_out, np.float32)
        self._fn("ecgk_linear_backward")(
            addr(dx), addr(dw), addr(db), addr(dy), addr(x), addr(w), n_in, n_out
        )
        return dx, dw, db

    def relu_backward(self, dy: F32, y: F32) -> F32:
        """dx of ReLU from its output ``y`` (any shape)."""
        check_array("y", y, dy.shape)
        dx = np.empty_like(check_array("dy", dy))
        self._fn("ecgk_relu_backward")(addr(dx), addr(dy), addr(y), dy.size)
        return dx

    def maxpool1d_backward(self, dy: F32, x: F32, k: int, stride: int) -> F32:
        """dx ``(c, t_in)`` of MaxPool1d(k, stride) (padding 0, floor mode)."""
        c, t_in = check_array("x", x, ndim=2).shape
        check_array("dy", dy, (c, (t_in - k) // stride + 1))
        dx = np.empty_like(x)
        self._fn("ecgk_maxpool1d_backward")(addr(dx), addr(dy), addr(x), c, t_in, k, stride)
        return dx

    def batchnorm_train(
        self,
        x: F32,
        gamma: F32,
        beta: F32,
        running: tuple[F32, F32],
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> tuple[F32, F32, F32]:
        """``(y (b, c, t), mean (c), invstd (c))``; ``running`` (mean, var) are updated in place."""
        b, c, t = check_array("x", x, ndim=3).shape
        for name, a in (
            ("gamma", gamma),
            ("beta", beta),
            ("running_mean", running[0]),
            ("running_var", running[1]),
        ):
            check_array(name, a, (c,))
        y, mean, invstd = np.empty_like(x), np.empty(c, np.float32), np.empty(c, np.float32)
        stats = (addr(mean), addr(invstd), addr(running[0]), addr(running[1]))
        self._fn("ecgk_batchnorm_train")(
            addr(y), *stats, addr(x), addr(gamma), addr(beta), b, c, t, eps, momentum
        )
        return y, mean, invstd

    def batchnorm_train_backward(
        self, dy: F32, x: F32, mean: F32, invstd: F32, gamma: F32
    ) -> tuple[F32, F32, F32]:
        """``(dx (b, c, t), dgamma (c), dbeta (c))`` of training-mode batch norm."""
        b, c, t = check_array("x", x, ndim=3).shape
        check_array("dy", dy, (b, c, t))
        for name, a in (("mean", mean), ("invstd", invstd), ("gamma", gamma)):
            check_array(name, a, (c,))
        dx, dg, dbeta = np.empty_like(x), np.zeros(c, np.float32), np.zeros(c, np.float32)
        self._fn("ecgk_batchnorm_train_backward")(addr(dx), addr(dg), addr(dbeta), addr(dy), addr(x),
                                                  addr(mean), addr(invstd), addr(gamma), b, c, t)  # fmt: skip
        return dx, dg, dbeta

    def mse_loss_backward(self, r: F32, x: F32) -> tuple[float, F32]:
        """``(loss, dr)`` of MSELoss(r, x) (mean), any shape."""
        check_array("x", x, check_array("r", r).shape)
        dr = np.empty_like(r)
        loss = self._fn("ecgk_mse_loss_backward")(addr(dr), addr(r), addr(x), r.size)
        return float(loss), dr  # type: ignore[arg-type]  # ctypes returns a Python float for c_float

    def adamw(
        self, p: F32, m: F32, v: F32, g: F32, *, lr: float, betas: tuple[float, float], eps: float,
        weight_decay: float, step: int,
    ) -> None:  # fmt: skip
        """One AdamW step on ``p`` with moments ``m``, ``v`` (all updated in place) from gradient ``g``."""
        for name, a in (("p", p), ("m", m), ("v", v), ("g", g)):
            check_array(name, a, p.shape)
        self._fn("ecgk_adamw")(addr(p), addr(m), addr(v), addr(g), p.size, lr, betas[0], betas[1], eps,
                               weight_decay, step)  # fmt: skip


def autoencoder_dims(model: ConvAutoencoder) -> tuple[int, ...]:
    """The weight file's dims (FORMAT.md): in_channels, length, kernel_size, latent, n_widths, widths."""
    widths = [int(block[0].out_channels) for block in model.encoder]  # type: ignore[index]
    k = int(model.out.kernel_size[0])
    return (model.in_channels, model.length, k, int(model.to_latent.out_features), len(widths), *widths)
