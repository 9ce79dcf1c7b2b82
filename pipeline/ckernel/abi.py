"""The C kernels' binary interface as Python sees it: the library file, every function's ctypes
signature (``ckernels/include/ecgk_kernels.h``) and the argument checks the C side leaves to its caller.

The C kernels trust their arguments (the model planner validates everything before running), so the
Python wrappers of :mod:`pipeline.ckernel.lib` check them here: arrays float32, C-contiguous, of the
stated shape, every size a positive C ``int``.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LIB = REPO_ROOT / "ckernels" / "build" / "libecgk.so"
INT_MAX = 2**31 - 1

_P = ctypes.c_void_p
C_INT = ctypes.c_int
# name -> (restype, argtypes), in the header's order; pointers are passed as addresses (None is NULL)
SIGNATURES: dict[str, tuple[type | None, list[type]]] = {
    "ecgk_conv_out_len": (C_INT, [C_INT] * 5),
    "ecgk_conv_transpose_out_len": (C_INT, [C_INT] * 6),
    "ecgk_pool_out_len": (C_INT, [C_INT] * 5),
    "ecgk_conv1d": (None, [_P] * 4 + [C_INT] * 9),
    "ecgk_conv_transpose1d": (None, [_P] * 4 + [C_INT] * 9),
    "ecgk_conv2d": (None, [_P] * 4 + [C_INT] * 11),
    "ecgk_linear": (None, [_P] * 4 + [C_INT] * 3),
    "ecgk_relu": (None, [_P] * 2 + [C_INT]),
    "ecgk_gelu": (None, [_P] * 2 + [C_INT]),
    "ecgk_sigmoid": (None, [_P] * 2 + [C_INT]),
    "ecgk_tanh": (None, [_P] * 2 + [C_INT]),
    "ecgk_add": (None, [_P] * 3 + [C_INT]),
    "ecgk_channel_affine": (None, [_P] * 4 + [C_INT] * 2),
    "ecgk_softmax": (None, [_P] * 2 + [C_INT]),
    "ecgk_maxpool1d": (None, [_P] * 2 + [C_INT] * 6),
    "ecgk_avgpool1d": (None, [_P] * 2 + [C_INT] * 7),
    "ecgk_adaptive_avgpool1d": (None, [_P] * 2 + [C_INT] * 3),
    "ecgk_maxpool2d": (None, [_P] * 2 + [C_INT] * 8),
    "ecgk_upsample_nearest1d": (None, [_P] * 2 + [C_INT] * 3),
    "ecgk_mean_axis1": (None, [_P] * 2 + [C_INT] * 3),
    "ecgk_transpose": (None, [_P] * 2 + [C_INT] * 2),
    "ecgk_log_power": (None, [_P] * 2 + [C_INT] * 2 + [ctypes.c_float]),
    "ecgk_rnn_scratch_len": (ctypes.c_long, [C_INT] * 4),
    "ecgk_gru": (None, [_P] * 7 + [C_INT] * 5),
    "ecgk_lstm": (None, [_P] * 7 + [C_INT] * 5),
}


def open_library(path: Path | str | None = None) -> ctypes.CDLL:
    """``ckernels/build/libecgk.so`` (or ``path``), with a message that says how to build it if missing."""
    lib = Path(path) if path is not None else DEFAULT_LIB
    if not lib.is_file():
        raise FileNotFoundError(
            f"{lib}: the C kernel library is not built; run `make -C ckernels` in {REPO_ROOT}"
        )
    return ctypes.CDLL(str(lib))


def addr(a: F32 | None) -> int | None:
    """The address C receives for ``a`` (None is NULL)."""
    return None if a is None else int(a.ctypes.data)


def check_array(name: str, a: object, shape: tuple[int, ...] | None = None, ndim: int | None = None) -> F32:
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


def check_bias(name: str, b: F32 | None, n: int) -> F32 | None:
    """An optional bias ``b`` of shape ``(n,)``."""
    return None if b is None else check_array(name, b, (n,))


def out_size(what: str, n: int, args: dict[str, int]) -> int:
    """``n``, an output size from C, or ValueError naming the arguments when C found them impossible."""
    if n < 1:
        detail = ", ".join(f"{k}={v}" for k, v in args.items())
        raise ValueError(f"{what}: impossible arguments ({detail})")
    return n


def check_c_ints(name: str, args: tuple[int | float | None, ...]) -> None:
    """ctypes would silently wrap an int outside C's int range, so such an argument is refused."""
    for v, argtype in zip(args, SIGNATURES[name][1], strict=True):
        if argtype is C_INT and isinstance(v, int) and not -INT_MAX - 1 <= v <= INT_MAX:
            raise ValueError(f"{name}: argument {v} is outside the range of a C int")
