"""The C re-implementation of a model, through the shared library's model API (``ckernels/include/
ecgk_model.h``): load a weight file, plan an input length, run records, read every layer back.

Records are run one at a time (the C graph has no batch axis); a batch ``(B, C, T)`` is a loop here.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from pipeline.ckernel.abi import open_library
from pipeline.core.errors import PipelineError

F32 = npt.NDArray[np.float32]
_P = ctypes.c_void_p
_ERR_LEN = 2048


class CkernelError(PipelineError, RuntimeError):
    """The C library refused a weight file or an input length; the message is the library's own."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a weight file: its name, element count and the byte offset of its float32 data."""

    name: str
    numel: int
    file_offset: int


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    sigs: dict[str, tuple[type | None, list[type]]] = {
        "ecgk_model_load": (_P, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]),
        "ecgk_model_free": (None, [_P]),
        "ecgk_model_kind": (ctypes.c_int, [_P]),
        "ecgk_model_in_channels": (ctypes.c_int, [_P]),
        "ecgk_model_in_len": (ctypes.c_int, [_P]),
        "ecgk_model_n_tensors": (ctypes.c_int, [_P]),
        "ecgk_model_tensor_name": (ctypes.c_char_p, [_P, ctypes.c_int]),
        "ecgk_model_tensor_numel": (ctypes.c_long, [_P, ctypes.c_int]),
        "ecgk_model_tensor_file_offset": (ctypes.c_long, [_P, ctypes.c_int]),
        "ecgk_plan_new": (_P, [_P, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]),
        "ecgk_plan_free": (None, [_P]),
        "ecgk_plan_run": (None, [_P, _P, _P]),
        "ecgk_plan_n_scores": (ctypes.c_int, [_P]),
        "ecgk_plan_n_layers": (ctypes.c_int, [_P]),
        "ecgk_plan_layer_name": (ctypes.c_char_p, [_P, ctypes.c_int]),
        "ecgk_plan_layer_shape": (ctypes.c_int, [_P, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]),
        "ecgk_plan_layer_data": (ctypes.POINTER(ctypes.c_float), [_P, ctypes.c_int]),
        "ecgk_plan_run_layer": (None, [_P, ctypes.c_int, _P]),
        "ecgk_plan_layer_inputs": (ctypes.c_int, [_P, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]),
        "ecgk_plan_layer_buffer": (ctypes.POINTER(ctypes.c_float), [_P, ctypes.c_int]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


class CPlan:
    """A model bound to records of ``in_len`` samples; owns every layer's activation buffer."""

    def __init__(self, model: CModel, in_len: int) -> None:
        self._handle: int | None = None  # set first: __del__ runs even when planning fails
        err = ctypes.create_string_buffer(_ERR_LEN)
        lib = model.lib
        handle = lib.ecgk_plan_new(model.handle(), in_len, err, _ERR_LEN)
        if not handle:
            raise CkernelError(f"{model.path}: {err.value.decode(errors='replace')}")
        self._model = model  # keeps the weights (which the plan points into) alive
        self._lib = lib
        self._handle = handle
        self.in_shape = (model.in_channels, in_len)
        self.n_scores = int(lib.ecgk_plan_n_scores(handle))
        self.layer_names: tuple[str, ...] = tuple(
            lib.ecgk_plan_layer_name(handle, i).decode() for i in range(lib.ecgk_plan_n_layers(handle))
        )
        self.layer_shapes: tuple[tuple[int, ...], ...] = tuple(
            self._shape(i) for i in range(len(self.layer_names))
        )
        self.layer_inputs: tuple[tuple[int, ...], ...] = tuple(
            self._inputs(i) for i in range(len(self.layer_names))
        )

    def _inputs(self, i: int) -> tuple[int, ...]:
        """Layer indices that layer ``i`` reads; -1 is the record itself."""
        ins = (ctypes.c_int * 2)()
        n = self._lib.ecgk_plan_layer_inputs(self._live(), i, ins)
        return tuple(int(v) for v in ins[:n])

    def _shape(self, i: int) -> tuple[int, ...]:
        dims = (ctypes.c_int * 4)()
        rank = self._lib.ecgk_plan_layer_shape(self._live(), i, dims)
        return tuple(int(d) for d in dims[:rank])

    def _live(self) -> int:
        if self._handle is None or self._model._handle is None:
            raise CkernelError("plan used after it (or its model) was closed")
        return self._handle

    def run(self, x: npt.ArrayLike) -> F32:
        """Scores ``(n_scores,)`` of one record ``x`` ``(C, T)`` float32 mV."""
        rec = self.check_record(x)
        out = np.empty(self.n_scores, dtype=np.float32)
        self._lib.ecgk_plan_run(self._live(), out.ctypes.data, rec.ctypes.data)
        return out

    def run_batch(self, x: npt.ArrayLike) -> F32:
        """Scores ``(B, n_scores)`` of records ``x`` ``(B, C, T)``."""
        batch = np.ascontiguousarray(x, dtype=np.float32)
        return (
            np.stack([self.run(rec) for rec in batch])
            if len(batch)
            else np.zeros((0, self.n_scores), np.float32)
        )

    def check_record(self, x: npt.ArrayLike) -> F32:
        rec = np.ascontiguousarray(x, dtype=np.float32)
        if rec.shape != self.in_shape:
            raise ValueError(f"C model planned for records {self.in_shape}, got {rec.shape}")
        return rec

    def run_layer(self, i: int, x: npt.ArrayLike, inputs: Mapping[int, npt.ArrayLike]) -> F32:
        """Layer ``i`` alone on given input activations: ``inputs`` maps each index in
        ``layer_inputs[i]`` (except -1, the record ``x`` ``(C, T)``) to its activation; returns a copy of
        layer ``i``'s output. Overwrites those layers' buffers."""
        rec = self.check_record(x)
        for j in self.layer_inputs[i]:
            if j >= 0:
                self._write(j, inputs[j])
        self._lib.ecgk_plan_run_layer(self._live(), i, rec.ctypes.data)
        return self.layer(i)

    def _write(self, j: int, value: npt.ArrayLike) -> None:
        data = np.ascontiguousarray(value, dtype=np.float32).reshape(-1)
        n = int(np.prod(self.layer_shapes[j]))
        if data.size != n:
            raise ValueError(f"layer {self.layer_names[j]} holds {n} floats, got {data.size}")
        ptr = self._lib.ecgk_plan_layer_buffer(self._live(), j)
        np.ctypeslib.as_array(ptr, shape=(n,))[:] = data

    def layer(self, i: int) -> F32:
        """A copy of layer ``i``'s activation from the last :meth:`run`, shaped ``layer_shapes[i]``."""
        shape = self.layer_shapes[i]
        ptr = self._lib.ecgk_plan_layer_data(self._live(), i)
        return np.ctypeslib.as_array(ptr, shape=(int(np.prod(shape)),)).reshape(shape).copy()

    def close(self) -> None:
        if self._handle is not None:
            self._lib.ecgk_plan_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()


class CModel:
    """A weight file loaded by the C loader (which checks magic, version, dims and every tensor)."""

    def __init__(self, weights: Path, library: Path | None = None) -> None:
        self._handle: int | None = None
        self.lib = _declare(open_library(library))
        self.path = Path(weights)
        err = ctypes.create_string_buffer(_ERR_LEN)
        handle = self.lib.ecgk_model_load(str(self.path).encode(), err, _ERR_LEN)
        if not handle:
            raise CkernelError(err.value.decode(errors="replace"))
        self._handle = handle
        self.kind_code = int(self.lib.ecgk_model_kind(handle))
        self.in_channels = int(self.lib.ecgk_model_in_channels(handle))
        self.in_len = int(self.lib.ecgk_model_in_len(handle))

    def handle(self) -> int:
        """The C model pointer (for :class:`CPlan`); raises after :meth:`close`."""
        if self._handle is None:
            raise CkernelError(f"{self.path}: model used after close()")
        return self._handle

    def tensors(self) -> list[TensorEntry]:
        """The file's tensor table, in file order."""
        h = self.handle()
        return [
            TensorEntry(
                self.lib.ecgk_model_tensor_name(h, i).decode(),
                int(self.lib.ecgk_model_tensor_numel(h, i)),
                int(self.lib.ecgk_model_tensor_file_offset(h, i)),
            )
            for i in range(self.lib.ecgk_model_n_tensors(h))
        ]

    def plan(self, in_len: int | None = None) -> CPlan:
        """A plan for records of ``in_len`` samples (default: the exported length)."""
        length = self.in_len if in_len is None else in_len
        return CPlan(self, length)

    def close(self) -> None:
        """Free the weights; plans made from this model refuse to run afterwards."""
        if self._handle is not None:
            self.lib.ecgk_model_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> CModel:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
