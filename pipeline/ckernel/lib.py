"""ctypes bindings of the C layer kernels (``ckernels/include/ecgk_kernels.h``), for tests and benchmarks.

:class:`CKernels` loads ``ckernels/build/libecgk.so`` (built by ``make -C ckernels``) and wraps every kernel
in a typed numpy function. The C kernels trust their arguments (the model planner validates everything
before running), so the wrappers do that job here: every array must be float32, C-contiguous and of the
shape the header states, otherwise a ``ValueError`` names the argument. Output sizes come from the C
helpers (``ecgk_*_out_len``), so Python and C can never disagree on them, and every wrapper returns a new
array. Activations are ``(C, T)`` for 1D and ``(C, H, W)`` for 2D, one sample at a time, as in C; values
are whatever the model computes on (mV for signals).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LIB = REPO_ROOT / "ckernels" / "build" / "libecgk.so"
INT_MAX = 2**31 - 1

_P = ctypes.c_void_p
_I = ctypes.c_int
# name -> (restype, argtypes), in the header's order; pointers are passed as addresses (None is NULL)
_SIGNATURES: dict[str, tuple[type | None, list[type]]] = {
    "ecgk_conv_out_len": (_I, [_I] * 5),
    "ecgk_conv_transpose_out_len": (_I, [_I] * 6),
    "ecgk_pool_out_len": (_I, [_I] * 5),
    "ecgk_conv1d": (None, [_P] * 4 + [_I] * 9),
    "ecgk_conv_transpose1d": (None, [_P] * 4 + [_I] * 9),
    "ecgk_conv2d": (None, [_P] * 4 + [_I] * 11),
    "ecgk_linear": (None, [_P] * 4 + [_I] * 3),
    "ecgk_relu": (None, [_P] * 2 + [_I]),
    "ecgk_gelu": (None, [_P] * 2 + [_I]),
    "ecgk_sigmoid": (None, [_P] * 2 + [_I]),
    "ecgk_tanh": (None, [_P] * 2 + [_I]),
    "ecgk_add": (None, [_P] * 3 + [_I]),
    "ecgk_channel_affine": (None, [_P] * 4 + [_I] * 2),
    "ecgk_softmax": (None, [_P] * 2 + [_I]),
    "ecgk_maxpool1d": (None, [_P] * 2 + [_I] * 6),
    "ecgk_avgpool1d": (None, [_P] * 2 + [_I] * 7),
    "ecgk_adaptive_avgpool1d": (None, [_P] * 2 + [_I] * 3),
    "ecgk_maxpool2d": (None, [_P] * 2 + [_I] * 8),
    "ecgk_upsample_nearest1d": (None, [_P] * 2 + [_I] * 3),
    "ecgk_mean_axis1": (None, [_P] * 2 + [_I] * 3),
    "ecgk_transpose": (None, [_P] * 2 + [_I] * 2),
    "ecgk_log_power": (None, [_P] * 2 + [_I] * 2 + [ctypes.c_float]),
    "ecgk_gru": (None, [_P] * 7 + [_I] * 5),
    "ecgk_lstm": (None, [_P] * 7 + [_I] * 5),
}


def open_library(path: Path | str | None = None) -> ctypes.CDLL:
    """``ckernels/build/libecgk.so`` (or ``path``), with a message that says how to build it if missing."""
    lib = Path(path) if path is not None else DEFAULT_LIB
    if not lib.is_file():
        raise FileNotFoundError(
            f"{lib}: the C kernel library is not built; run `make -C ckernels` in {REPO_ROOT}"
        )
    return ctypes.CDLL(str(lib))


@dataclass(frozen=True)
class RnnWeights:
    """One direction of a torch GRU / LSTM layer (``weight_ih_l0`` …): G = 3 gates (r, z, n) for a GRU,
    4 (i, f, g, o) for an LSTM. ``w_ih`` (G·hidden, n_in), ``w_hh`` (G·hidden, hidden), biases (G·hidden)."""

    w_ih: F32
    w_hh: F32
    b_ih: F32
    b_hh: F32


def _addr(a: F32 | None) -> int | None:
    return None if a is None else int(a.ctypes.data)


def _check(name: str, a: object, shape: tuple[int, ...] | None = None, ndim: int | None = None) -> F32:
    """``a`` as a float32 C-contiguous array of the given shape (or rank), else ValueError naming it."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise ValueError(f"{name}: expected dtype float32, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (use np.ascontiguousarray)")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    if any(d < 1 or d > INT_MAX for d in a.shape) or a.size > INT_MAX:
        raise ValueError(f"{name}: every dimension must be in [1, 2**31 - 1], got shape {a.shape}")
    return a


def _check_bias(name: str, b: F32 | None, n: int) -> F32 | None:
    return None if b is None else _check(name, b, (n,))


def _size(what: str, n: int, args: dict[str, int]) -> int:
    if n < 1:
        detail = ", ".join(f"{k}={v}" for k, v in args.items())
        raise ValueError(f"{what}: impossible arguments ({detail})")
    return n


def _act(relu: bool) -> int:
    return 1 if relu else 0


class CKernels:
    """The kernels of one loaded ``libecgk.so``; ``path`` defaults to ``ckernels/build/libecgk.so`` of
    the repository that holds this package."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else DEFAULT_LIB
        self._lib = open_library(self.path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.restype = restype
            fn.argtypes = argtypes

    def _fn(self, name: str) -> Callable[..., None]:
        fn: Callable[..., None] = getattr(self._lib, name)
        return fn

    def raw(self, name: str) -> Callable[..., None]:
        """The bare ctypes function ``ecgk_<name>`` (argument types set, arrays passed as addresses,
        nothing checked): for benchmarks that must not time the wrappers' validation."""
        if f"ecgk_{name}" not in _SIGNATURES:
            raise ValueError(f"name: no kernel ecgk_{name} in ecgk_kernels.h")
        return self._fn(f"ecgk_{name}")

    def _call(self, name: str, *args: int | float | None) -> None:
        """Calls ``name``; ctypes would silently wrap an int outside C's int range, so that is refused."""
        for v, argtype in zip(args, _SIGNATURES[name][1], strict=True):
            if argtype is _I and isinstance(v, int) and not -INT_MAX - 1 <= v <= INT_MAX:
                raise ValueError(f"{name}: argument {v} is outside the range of a C int")
        self._fn(name)(*args)

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
        x = _check("x", x, ndim=2)
        w = _check("w", w, ndim=3)
        (c_in, t_in), (c_out, cig, k) = x.shape, w.shape
        if groups < 1 or c_in % groups or c_out % groups or cig != c_in // groups:
            raise ValueError(f"w: shape {w.shape} does not fit c_in={c_in} with groups={groups}")
        b = _check_bias("b", b, c_out)
        t_out = _size(
            "conv1d", self.conv_out_len(t_in, k, stride, pad, dilation), dict(t_in=t_in, k=k, stride=stride)
        )
        y = np.empty((c_out, t_out), np.float32)
        args = (c_in, t_in, c_out, k, stride, pad, dilation, groups, _act(relu))
        self._call("ecgk_conv1d", _addr(y), _addr(x), _addr(w), _addr(b), *args)
        return y

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
        x = _check("x", x, ndim=2)
        w = _check("w", w, ndim=3)
        (c_in, t_in), (wc_in, c_out, k) = x.shape, w.shape
        if wc_in != c_in:
            raise ValueError(f"w: expected (c_in={c_in}, c_out, k), got {w.shape}")
        b = _check_bias("b", b, c_out)
        n = self.conv_transpose_out_len(t_in, k, stride, pad, output_padding, dilation)
        t_out = _size("conv_transpose1d", n, dict(t_in=t_in, k=k, stride=stride, pad=pad))
        y = np.empty((c_out, t_out), np.float32)
        args = (c_in, t_in, c_out, k, stride, pad, output_padding, dilation, _act(relu))
        self._call("ecgk_conv_transpose1d", _addr(y), _addr(x), _addr(w), _addr(b), *args)
        return y

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
        x = _check("x", x, ndim=3)
        w = _check("w", w, ndim=4)
        (c_in, h, wd), (c_out, wc_in, kh, kw) = x.shape, w.shape
        if wc_in != c_in:
            raise ValueError(f"w: expected (c_out, c_in={c_in}, kh, kw), got {w.shape}")
        b = _check_bias("b", b, c_out)
        h_out = _size("conv2d rows", self.conv_out_len(h, kh, stride[0], pad[0]), dict(h=h, kh=kh))
        w_out = _size("conv2d columns", self.conv_out_len(wd, kw, stride[1], pad[1]), dict(w=wd, kw=kw))
        y = np.empty((c_out, h_out, w_out), np.float32)
        args = (c_in, h, wd, c_out, kh, kw, stride[0], stride[1], pad[0], pad[1], _act(relu))
        self._call("ecgk_conv2d", _addr(y), _addr(x), _addr(w), _addr(b), *args)
        return y

    def linear(self, x: F32, w: F32, b: F32 | None = None, *, relu: bool = False) -> F32:
        """torch Linear: ``x`` (n_in), ``w`` (n_out, n_in), ``b`` (n_out) → (n_out)."""
        x = _check("x", x, ndim=1)
        w = _check("w", w, ndim=2)
        n_out, n_in = w.shape
        if n_in != x.shape[0]:
            raise ValueError(f"w: expected (n_out, n_in={x.shape[0]}), got {w.shape}")
        b = _check_bias("b", b, n_out)
        y = np.empty(n_out, np.float32)
        self._call("ecgk_linear", _addr(y), _addr(x), _addr(w), _addr(b), n_in, n_out, _act(relu))
        return y

    # ---- element-wise (any shape)

    def _unary(self, name: str, x: F32) -> F32:
        x = _check("x", x)
        y = np.empty_like(x)
        self._call(name, _addr(y), _addr(x), x.size)
        return y

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
        a = _check("a", a)
        b = _check("b", b, a.shape)
        y = np.empty_like(a)
        self._call("ecgk_add", _addr(y), _addr(a), _addr(b), a.size)
        return y

    def channel_affine(self, x: F32, scale: F32, shift: F32) -> F32:
        """``x`` (c, t) · ``scale`` (c) + ``shift`` (c), per channel (eval-mode batch norm)."""
        x = _check("x", x, ndim=2)
        c, t = x.shape
        scale = _check("scale", scale, (c,))
        shift = _check("shift", shift, (c,))
        y = np.empty_like(x)
        self._call("ecgk_channel_affine", _addr(y), _addr(x), _addr(scale), _addr(shift), c, t)
        return y

    def softmax(self, x: F32) -> F32:
        """Stable softmax of one row ``x`` (n)."""
        x = _check("x", x, ndim=1)
        y = np.empty_like(x)
        self._call("ecgk_softmax", _addr(y), _addr(x), x.shape[0])
        return y

    # ---- pooling and resampling

    def maxpool1d(
        self, x: F32, k: int, stride: int | None = None, pad: int = 0, ceil_mode: bool = False
    ) -> F32:
        """torch MaxPool1d(k, stride (default k), pad, ceil_mode): ``x`` (c, t_in) → (c, t_out)."""
        x = _check("x", x, ndim=2)
        s = k if stride is None else stride
        c, t_in = x.shape
        t_out = _size(
            "maxpool1d", self.pool_out_len(t_in, k, s, pad, ceil_mode), dict(t_in=t_in, k=k, pad=pad)
        )
        y = np.empty((c, t_out), np.float32)
        self._call("ecgk_maxpool1d", _addr(y), _addr(x), c, t_in, k, s, pad, int(ceil_mode))
        return y

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
        x = _check("x", x, ndim=2)
        s = k if stride is None else stride
        c, t_in = x.shape
        t_out = _size(
            "avgpool1d", self.pool_out_len(t_in, k, s, pad, ceil_mode), dict(t_in=t_in, k=k, pad=pad)
        )
        y = np.empty((c, t_out), np.float32)
        args = (c, t_in, k, s, pad, int(ceil_mode), int(count_include_pad))
        self._call("ecgk_avgpool1d", _addr(y), _addr(x), *args)
        return y

    def adaptive_avgpool1d(self, x: F32, t_out: int) -> F32:
        """torch AdaptiveAvgPool1d(t_out): ``x`` (c, t_in) → (c, t_out)."""
        x = _check("x", x, ndim=2)
        c, t_in = x.shape
        _size("adaptive_avgpool1d", t_out, dict(t_out=t_out))
        y = np.empty((c, t_out), np.float32)
        self._call("ecgk_adaptive_avgpool1d", _addr(y), _addr(x), c, t_in, t_out)
        return y

    def maxpool2d(
        self, x: F32, k: tuple[int, int], stride: tuple[int, int] | None = None, ceil_mode: bool = False
    ) -> F32:
        """torch MaxPool2d(k, stride (default k), padding 0, ceil_mode): (c, h, w) → (c, h_out, w_out)."""
        x = _check("x", x, ndim=3)
        sh, sw = k if stride is None else stride
        c, h, w = x.shape
        h_out = _size("maxpool2d rows", self.pool_out_len(h, k[0], sh, 0, ceil_mode), dict(h=h, kh=k[0]))
        w_out = _size("maxpool2d columns", self.pool_out_len(w, k[1], sw, 0, ceil_mode), dict(w=w, kw=k[1]))
        y = np.empty((c, h_out, w_out), np.float32)
        self._call("ecgk_maxpool2d", _addr(y), _addr(x), c, h, w, k[0], k[1], sh, sw, int(ceil_mode))
        return y

    def upsample_nearest1d(self, x: F32, t_out: int) -> F32:
        """torch Upsample(size=t_out, mode="nearest"): ``x`` (c, t_in) → (c, t_out)."""
        x = _check("x", x, ndim=2)
        c, t_in = x.shape
        _size("upsample_nearest1d", t_out, dict(t_out=t_out))
        y = np.empty((c, t_out), np.float32)
        self._call("ecgk_upsample_nearest1d", _addr(y), _addr(x), c, t_in, t_out)
        return y

    def mean_axis1(self, x: F32) -> F32:
        """``x`` (c, f, n).mean(axis=1) → (c, n)."""
        x = _check("x", x, ndim=3)
        c, f, n = x.shape
        y = np.empty((c, n), np.float32)
        self._call("ecgk_mean_axis1", _addr(y), _addr(x), c, f, n)
        return y

    def transpose(self, x: F32) -> F32:
        """``x`` (rows, cols) → (cols, rows)."""
        x = _check("x", x, ndim=2)
        rows, cols = x.shape
        y = np.empty((cols, rows), np.float32)
        self._call("ecgk_transpose", _addr(y), _addr(x), rows, cols)
        return y

    def log_power(self, spec: F32, eps: float) -> F32:
        """``spec`` (2 n_freq, n_frames), real rows then imaginary rows → log(re² + im² + eps)
        (n_freq, n_frames)."""
        spec = _check("spec", spec, ndim=2)
        rows, n_frames = spec.shape
        if rows % 2:
            raise ValueError(f"spec: expected an even number of rows (real then imaginary), got {spec.shape}")
        y = np.empty((rows // 2, n_frames), np.float32)
        self._call("ecgk_log_power", _addr(y), _addr(spec), rows // 2, n_frames, eps)
        return y

    # ---- recurrent layers

    def _rnn(self, name: str, gates: int, x: F32, wts: RnnWeights, out: F32, col: int, reverse: bool) -> None:
        """One direction into columns [col, col + hidden) of ``out`` (t, out_cols): the C row stride is
        out_cols, so two directions interleave into one buffer as in a bidirectional torch layer."""
        t, n_in = x.shape
        w_ih = _check("w_ih", wts.w_ih, ndim=2)
        hidden = w_ih.shape[0] // gates
        if hidden < 1 or w_ih.shape != (gates * hidden, n_in):
            raise ValueError(f"w_ih: expected ({gates}·hidden, n_in={n_in}), got {w_ih.shape}")
        w_hh = _check("w_hh", wts.w_hh, (gates * hidden, hidden))
        b_ih = _check("b_ih", wts.b_ih, (gates * hidden,))
        b_hh = _check("b_hh", wts.b_hh, (gates * hidden,))
        if out.shape[1] < col + hidden:
            raise ValueError(f"w_hh: hidden={hidden} differs between the two directions")
        scratch = np.empty((6 if gates == 3 else 10) * hidden, np.float32)  # the header's work space
        h_seq = int(out.ctypes.data) + col * out.itemsize
        ptrs = (_addr(scratch), _addr(x), _addr(w_ih), _addr(w_hh), _addr(b_ih), _addr(b_hh))
        self._call(name, h_seq, *ptrs, t, n_in, hidden, out.shape[1], int(reverse))

    def _rnn_run(self, name: str, gates: int, x: F32, dirs: list[tuple[RnnWeights, bool]]) -> F32:
        x = _check("x", x, ndim=2)
        hidden = _check("w_hh", dirs[0][0].w_hh, ndim=2).shape[1]
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
