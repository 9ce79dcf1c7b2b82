"""ctypes bindings of the C layer kernels (``ckernels/include/ecgk_kernels.h``), for tests and benchmarks.

:class:`CKernels` loads ``ckernels/build/libecgk.so`` (built by ``make -C ckernels``) and wraps every kernel
in a typed numpy function. The arguments are checked first (:mod:`pipeline.ckernel.abi`): every array must
be float32, C-contiguous and of the shape the header states, otherwise a ``ValueError`` names the argument.
Output sizes come from the C helpers (``ecgk_*_out_len``), so Python and C can never disagree on them, and
every wrapper returns a new array. Activations are ``(C, T)`` for 1D and ``(C, H, W)`` for 2D, one sample
at a time, as in C; values are whatever the model computes on (mV for signals).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.ckernel.abi import (
    DEFAULT_LIB,
    F32,
    INT_MAX,
    SIGNATURES,
    addr,
    check_array,
    check_bias,
    check_c_ints,
    open_library,
    out_size,
)


@dataclass(frozen=True)
class RnnWeights:
    """One direction of a torch GRU / LSTM layer (``weight_ih_l0`` …): G = 3 gates (r, z, n) for a GRU,
    4 (i, f, g, o) for an LSTM. ``w_ih`` (G·hidden, n_in), ``w_hh`` (G·hidden, hidden), biases (G·hidden)."""

    w_ih: F32
    w_hh: F32
    b_ih: F32
    b_hh: F32


def _act(relu: bool) -> int:
    return 1 if relu else 0


class CKernels:
    """The kernels of one loaded ``libecgk.so``; ``path`` defaults to ``ckernels/build/libecgk.so`` of
    the repository that holds this package."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else DEFAULT_LIB
        self._lib = open_library(self.path)
        for name, (restype, argtypes) in SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.restype = restype
            fn.argtypes = argtypes

    def _fn(self, name: str) -> Callable[..., None]:
        fn: Callable[..., None] = getattr(self._lib, name)
        return fn

    def raw(self, name: str) -> Callable[..., None]:
        """The bare ctypes function ``ecgk_<name>`` (argument types set, arrays passed as addresses,
        nothing checked): for benchmarks that must not time the wrappers' validation."""
        if f"ecgk_{name}" not in SIGNATURES:
            raise ValueError(f"name: no kernel ecgk_{name} in ecgk_kernels.h")
        return self._fn(f"ecgk_{name}")

    def _call(self, name: str, *args: int | float | None) -> None:
        """Calls ``name`` once its int arguments are known to fit a C int."""
        check_c_ints(name, args)
        self._fn(name)(*args)

    def _out(
        self, name: str, shape: tuple[int, ...], arrays: Sequence[F32 | None], *ints: int | float
    ) -> F32:
        """A new float32 array of ``shape``, written by ``name`` from ``arrays`` (in the header's order)
        and the scalar arguments ``ints``."""
        y = np.empty(shape, np.float32)
        self._call(name, addr(y), *(addr(a) for a in arrays), *ints)
        return y

    def _len(self, name: str, *args: int) -> int:
        if any(not -INT_MAX - 1 <= v <= INT_MAX for v in args):
            return -1  # no C int can describe such a size
        n: int = getattr(self._lib, name)(*args)  # restype c_int: ctypes returns a Python int
        return n

    # ---- output sizes (-1 for impossible arguments, exactly as C returns them)

    def conv_out_len(self, t_in: int, k: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> int:
        """torch Conv1d/Conv2d output length along one axis, or -1."""
        return self._len("ecgk_conv_out_len", t_in, k, stride, pad, dilation)

    def conv_transpose_out_len(
        self, t_in: int, k: int, stride: int = 1, pad: int = 0, output_padding: int = 0, dilation: int = 1
    ) -> int:
        """torch ConvTranspose1d output length, or -1."""
        return self._len("ecgk_conv_transpose_out_len", t_in, k, stride, pad, output_padding, dilation)

    def pool_out_len(self, t_in: int, k: int, stride: int, pad: int = 0, ceil_mode: bool = False) -> int:
        """torch MaxPool/AvgPool output length along one axis (ceil_mode's last-window rule), or -1."""
        return self._len("ecgk_pool_out_len", t_in, k, stride, pad, int(ceil_mode))

    # ---- convolutions

    def conv1d(
        self,
        x: F32,
        w: F32,
        b: F32 | None = None,
        *,
        stride: int = 1,
        pad: int = 0,
        dilation: int = 1,
        groups: int = 1,
        relu: bool = False,
    ) -> F32:
        """torch Conv1d: ``x`` (c_in, t_in), ``w`` (c_out, c_in / groups, k), ``b`` (c_out)
        → (c_out, t_out)."""
        x = check_array("x", x, ndim=2)
        w = check_array("w", w, ndim=3)
        (c_in, t_in), (c_out, cig, k) = x.shape, w.shape
        if groups < 1 or c_in % groups or c_out % groups or cig != c_in // groups:
            raise ValueError(f"w: shape {w.shape} does not fit c_in={c_in} with groups={groups}")
        b = check_bias("b", b, c_out)
        t_out = out_size(
            "conv1d",
            self.conv_out_len(t_in, k, stride, pad, dilation),
            {"t_in": t_in, "k": k, "stride": stride},
        )
        args = (c_in, t_in, c_out, k, stride, pad, dilation, groups, _act(relu))
        return self._out("ecgk_conv1d", (c_out, t_out), (x, w, b), *args)

    def conv_transpose1d(
        self,
        x: F32,
        w: F32,
        b: F32 | None = None,
        *,
        stride: int = 1,
        pad: int = 0,
        output_padding: int = 0,
        dilation: int = 1,
        relu: bool = False,
    ) -> F32:
        """torch ConvTranspose1d (groups 1): ``x`` (c_in, t_in), ``w`` (c_in, c_out, k) → (c_out, t_out)."""
        x = check_array("x", x, ndim=2)
        w = check_array("w", w, ndim=3)
        (c_in, t_in), (wc_in, c_out, k) = x.shape, w.shape
        if wc_in != c_in:
            raise ValueError(f"w: expected (c_in={c_in}, c_out, k), got {w.shape}")
        b = check_bias("b", b, c_out)
        n = self.conv_transpose_out_len(t_in, k, stride, pad, output_padding, dilation)
        t_out = out_size("conv_transpose1d", n, {"t_in": t_in, "k": k, "stride": stride, "pad": pad})
        args = (c_in, t_in, c_out, k, stride, pad, output_padding, dilation, _act(relu))
        return self._out("ecgk_conv_transpose1d", (c_out, t_out), (x, w, b), *args)

    def conv2d(
        self,
        x: F32,
        w: F32,
        b: F32 | None = None,
        *,
        stride: tuple[int, int] = (1, 1),
        pad: tuple[int, int] = (0, 0),
        relu: bool = False,
    ) -> F32:
        """torch Conv2d (dilation 1, groups 1): ``x`` (c_in, h, w), ``w`` (c_out, c_in, kh, kw)
        → (c_out, h_out, w_out)."""
        x = check_array("x", x, ndim=3)
        w = check_array("w", w, ndim=4)
        (c_in, h, wd), (c_out, wc_in, kh, kw) = x.shape, w.shape
        if wc_in != c_in:
            raise ValueError(f"w: expected (c_out, c_in={c_in}, kh, kw), got {w.shape}")
        b = check_bias("b", b, c_out)
        h_out = out_size("conv2d rows", self.conv_out_len(h, kh, stride[0], pad[0]), {"h": h, "kh": kh})
        w_out = out_size("conv2d columns", self.conv_out_len(wd, kw, stride[1], pad[1]), {"w": wd, "kw": kw})
        args = (c_in, h, wd, c_out, kh, kw, stride[0], stride[1], pad[0], pad[1], _act(relu))
        return self._out("ecgk_conv2d", (c_out, h_out, w_out), (x, w, b), *args)

    def linear(self, x: F32, w: F32, b: F32 | None = None, *, relu: bool = False) -> F32:
        """torch Linear: ``x`` (n_in), ``w`` (n_out, n_in), ``b`` (n_out) → (n_out)."""
        x = check_array("x", x, ndim=1)
        w = check_array("w", w, ndim=2)
        n_out, n_in = w.shape
        if n_in != x.shape[0]:
            raise ValueError(f"w: expected (n_out, n_in={x.shape[0]}), got {w.shape}")
        b = check_bias("b", b, n_out)
        return self._out("ecgk_linear", (n_out,), (x, w, b), n_in, n_out, _act(relu))

    # ---- element-wise (any shape)

    def _unary(self, name: str, x: F32) -> F32:
        x = check_array("x", x)
        return self._out(name, x.shape, (x,), x.size)

    def relu(self, x: F32) -> F32:
        """max(x, 0), NaN kept; any shape."""
        return self._unary("ecgk_relu", x)

    def gelu(self, x: F32) -> F32:
        """torch GELU, exact erf form; any shape."""
        return self._unary("ecgk_gelu", x)

    def sigmoid(self, x: F32) -> F32:
        """1 / (1 + exp(-x)) without overflow; any shape."""
        return self._unary("ecgk_sigmoid", x)

    def tanh(self, x: F32) -> F32:
        """tanh(x); any shape."""
        return self._unary("ecgk_tanh", x)

    def add(self, a: F32, b: F32) -> F32:
        """a + b, same shapes (no broadcasting)."""
        a = check_array("a", a)
        b = check_array("b", b, a.shape)
        return self._out("ecgk_add", a.shape, (a, b), a.size)

    def channel_affine(self, x: F32, scale: F32, shift: F32) -> F32:
        """``x`` (c, t) · ``scale`` (c) + ``shift`` (c), per channel (eval-mode batch norm)."""
        x = check_array("x", x, ndim=2)
        c, t = x.shape
        scale = check_array("scale", scale, (c,))
        shift = check_array("shift", shift, (c,))
        return self._out("ecgk_channel_affine", x.shape, (x, scale, shift), c, t)

    def softmax(self, x: F32) -> F32:
        """Stable softmax of one row ``x`` (n)."""
        x = check_array("x", x, ndim=1)
        return self._out("ecgk_softmax", x.shape, (x,), x.shape[0])

    # ---- pooling and resampling

    def maxpool1d(
        self, x: F32, k: int, stride: int | None = None, pad: int = 0, ceil_mode: bool = False
    ) -> F32:
        """torch MaxPool1d(k, stride (default k), pad, ceil_mode): ``x`` (c, t_in) → (c, t_out)."""
        return self._pool1d("ecgk_maxpool1d", x, k, stride, pad, ceil_mode)

    def avgpool1d(
        self,
        x: F32,
        k: int,
        stride: int | None = None,
        pad: int = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> F32:
        """torch AvgPool1d(k, stride (default k), pad, ceil_mode, count_include_pad):
        ``x`` (c, t_in) → (c, t_out)."""
        return self._pool1d("ecgk_avgpool1d", x, k, stride, pad, ceil_mode, int(count_include_pad))

    def _pool1d(
        self, name: str, x: F32, k: int, stride: int | None, pad: int, ceil_mode: bool, *extra: int
    ) -> F32:
        """Max or average pooling of ``x`` (c, t_in) → (c, t_out); ``extra``: the kernel's last arguments."""
        x = check_array("x", x, ndim=2)
        s = k if stride is None else stride
        c, t_in = x.shape
        n = self.pool_out_len(t_in, k, s, pad, ceil_mode)
        t_out = out_size(name.removeprefix("ecgk_"), n, {"t_in": t_in, "k": k, "pad": pad})
        return self._out(name, (c, t_out), (x,), c, t_in, k, s, pad, int(ceil_mode), *extra)

    def adaptive_avgpool1d(self, x: F32, t_out: int) -> F32:
        """torch AdaptiveAvgPool1d(t_out): ``x`` (c, t_in) → (c, t_out)."""
        x = check_array("x", x, ndim=2)
        c, t_in = x.shape
        out_size("adaptive_avgpool1d", t_out, {"t_out": t_out})
        return self._out("ecgk_adaptive_avgpool1d", (c, t_out), (x,), c, t_in, t_out)

    def maxpool2d(
        self, x: F32, k: tuple[int, int], stride: tuple[int, int] | None = None, ceil_mode: bool = False
    ) -> F32:
        """torch MaxPool2d(k, stride (default k), padding 0, ceil_mode): (c, h, w) → (c, h_out, w_out)."""
        x = check_array("x", x, ndim=3)
        sh, sw = k if stride is None else stride
        c, h, w = x.shape
        h_out = out_size("maxpool2d rows", self.pool_out_len(h, k[0], sh, 0, ceil_mode), {"h": h, "kh": k[0]})
        w_out = out_size(
            "maxpool2d columns", self.pool_out_len(w, k[1], sw, 0, ceil_mode), {"w": w, "kw": k[1]}
        )
        return self._out(
            "ecgk_maxpool2d", (c, h_out, w_out), (x,), c, h, w, k[0], k[1], sh, sw, int(ceil_mode)
        )

    def upsample_nearest1d(self, x: F32, t_out: int) -> F32:
        """torch Upsample(size=t_out, mode="nearest"): ``x`` (c, t_in) → (c, t_out)."""
        x = check_array("x", x, ndim=2)
        c, t_in = x.shape
        out_size("upsample_nearest1d", t_out, {"t_out": t_out})
        return self._out("ecgk_upsample_nearest1d", (c, t_out), (x,), c, t_in, t_out)

    def mean_axis1(self, x: F32) -> F32:
        """``x`` (c, f, n).mean(axis=1) → (c, n)."""
        x = check_array("x", x, ndim=3)
        c, f, n = x.shape
        return self._out("ecgk_mean_axis1", (c, n), (x,), c, f, n)

    def transpose(self, x: F32) -> F32:
        """``x`` (rows, cols) → (cols, rows)."""
        x = check_array("x", x, ndim=2)
        rows, cols = x.shape
        return self._out("ecgk_transpose", (cols, rows), (x,), rows, cols)

    def log_power(self, spec: F32, eps: float) -> F32:
        """``spec`` (2 n_freq, n_frames), real rows then imaginary rows → log(re² + im² + eps)
        (n_freq, n_frames)."""
        spec = check_array("spec", spec, ndim=2)
        rows, n_frames = spec.shape
        if rows % 2:
            raise ValueError(f"spec: expected an even number of rows (real then imaginary), got {spec.shape}")
        return self._out("ecgk_log_power", (rows // 2, n_frames), (spec,), rows // 2, n_frames, eps)

    # ---- recurrent layers

    def _rnn(self, name: str, gates: int, x: F32, wts: RnnWeights, out: F32, col: int, reverse: bool) -> None:
        """One direction into columns [col, col + hidden) of ``out`` (t, out_cols): the C row stride is
        out_cols, so two directions interleave into one buffer as in a bidirectional torch layer."""
        t, n_in = x.shape
        w_ih = check_array("w_ih", wts.w_ih, ndim=2)
        hidden = w_ih.shape[0] // gates
        if hidden < 1 or w_ih.shape != (gates * hidden, n_in):
            raise ValueError(f"w_ih: expected ({gates}·hidden, n_in={n_in}), got {w_ih.shape}")
        w_hh = check_array("w_hh", wts.w_hh, (gates * hidden, hidden))
        b_ih = check_array("b_ih", wts.b_ih, (gates * hidden,))
        b_hh = check_array("b_hh", wts.b_hh, (gates * hidden,))
        if out.shape[1] < col + hidden:
            raise ValueError(f"w_hh: hidden={hidden} differs between the two directions")
        n_scratch = self._len("ecgk_rnn_scratch_len", t, n_in, hidden, gates)
        scratch = np.empty(n_scratch, np.float32)  # numpy aligns to ≥ 16 bytes; C needs 8 (doubles)
        h_seq = int(out.ctypes.data) + col * out.itemsize
        ptrs = (addr(scratch), addr(x), addr(w_ih), addr(w_hh), addr(b_ih), addr(b_hh))
        self._call(name, h_seq, *ptrs, t, n_in, hidden, out.shape[1], int(reverse))

    def _rnn_run(self, name: str, gates: int, x: F32, dirs: list[tuple[RnnWeights, bool]]) -> F32:
        x = check_array("x", x, ndim=2)
        hidden = check_array("w_hh", dirs[0][0].w_hh, ndim=2).shape[1]
        out = np.empty((x.shape[0], len(dirs) * hidden), np.float32)
        for i, (wts, reverse) in enumerate(dirs):
            self._rnn(name, gates, x, wts, out, i * hidden, reverse)
        return out

    def gru(self, x: F32, wts: RnnWeights, *, reverse: bool = False) -> F32:
        """One direction of torch GRU (zero initial state): ``x`` (t, n_in) → hidden states (t, hidden)."""
        return self._rnn_run("ecgk_gru", 3, x, [(wts, reverse)])

    def gru_bidirectional(self, x: F32, forward: RnnWeights, backward: RnnWeights) -> F32:
        """Bidirectional torch GRU layer: (t, n_in) → (t, 2·hidden), forward half first."""
        return self._rnn_run("ecgk_gru", 3, x, [(forward, False), (backward, True)])

    def lstm(self, x: F32, wts: RnnWeights, *, reverse: bool = False) -> F32:
        """One direction of torch LSTM (zero initial state): ``x`` (t, n_in) → hidden states (t, hidden)."""
        return self._rnn_run("ecgk_lstm", 4, x, [(wts, reverse)])

    def lstm_bidirectional(self, x: F32, forward: RnnWeights, backward: RnnWeights) -> F32:
        """Bidirectional torch LSTM layer: (t, n_in) → (t, 2·hidden), forward half first."""
        return self._rnn_run("ecgk_lstm", 4, x, [(forward, False), (backward, True)])


@lru_cache(maxsize=4)
def load(path: Path | str | None = None) -> CKernels:
    """The kernels of ``path`` (default ``ckernels/build/libecgk.so``), loaded once per path."""
    return CKernels(path)
