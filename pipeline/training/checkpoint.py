"""Training checkpoints: plain-typed, written atomically, loaded with ``torch.load(weights_only=True)``.

A checkpoint is a ``dict`` whose leaves are tensors or plain Python values (``str``, ``int``,
``float``, ``bool``, ``None``) inside ``dict`` / ``list`` / ``tuple`` containers, so the safe
unpickler of ``torch.load(weights_only=True)`` can read it and a file can never run code on load.
:func:`save_checkpoint` checks that before writing and :func:`load_checkpoint` refuses anything
else, naming the file.

Writes are atomic (:func:`pipeline.core.fs.atomic_writer`): serialise to memory, write a temp file
in the destination folder, flush + fsync, ``os.replace`` over the destination, fsync the folder. A
kill at any moment leaves either the previous file or the new one, never a torn one; at worst a
stale ``.<name>.*.ckpt-tmp`` is left behind, which :func:`remove_stale_temps` deletes.

Test hook: when the environment variable ``ECGPIPE_TEST_CHECKPOINT_PAUSE_S`` holds a positive
number, each write pauses that many seconds after the first half of the bytes reached the temp
file, so a test can SIGKILL a process in the middle of a checkpoint write. Never set it otherwise.

RNG states (torch CPU, every CUDA device when present, numpy's global ``RandomState``, Python's
``random``) are captured as tensors and lists by :func:`capture_rng_state` so they survive the
safe unpickler; :func:`restore_rng_state` puts them back.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import sys
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from pipeline.core.errors import PipelineError
from pipeline.core.fs import atomic_writer
from pipeline.core.provenance import git_commit, git_dirty

CHECKPOINT_FORMAT = "ecgpipe.checkpoint"
CHECKPOINT_VERSION = 1
TEMP_SUFFIX = ".ckpt-tmp"
TEST_PAUSE_ENV = "ECGPIPE_TEST_CHECKPOINT_PAUSE_S"

_PLAIN_LEAVES = (str, int, float, bool, type(None))


class CheckpointError(PipelineError, RuntimeError):
    """A checkpoint file that cannot be used; the message names the file and the reason."""


# --- lineage helpers ---------------------------------------------------------------------------


def code_lineage(repo_dir: Path | None = None) -> dict[str, Any]:
    """Which code wrote a checkpoint: git commit + dirty flag, torch and Python versions, UTC time."""
    return {
        "git_commit": git_commit(repo_dir),
        "git_dirty": git_dirty(repo_dir),
        "torch_version": str(torch.__version__),
        "python_version": sys.version.split()[0],
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --- RNG state ----------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states of torch (CPU + CUDA devices), numpy and ``random`` as safe-unpickler types."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    py_version, py_state, py_gauss = random.getstate()
    cuda = list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else []
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "numpy": {
            "bit_generator": str(name),
            # uint32 keys as int64: every torch version's safe unpickler handles int64 tensors
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(py_version), "state": [int(v) for v in py_state], "gauss_next": py_gauss},
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back the states captured by :func:`capture_rng_state`.

    CUDA states are restored only when the same number of devices is visible; on a machine
    without CUDA they are ignored (the run continues on CPU, where they play no part).
    """
    torch.set_rng_state(state["torch"])
    cuda_states = list(state["cuda"])
    if cuda_states and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda_states):
        torch.cuda.set_rng_state_all(cuda_states)
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["bit_generator"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))


# --- validation ---------------------------------------------------------------------------------


def check_plain(obj: object, where: str = "checkpoint") -> None:
    """Raise TypeError naming the first value the ``weights_only`` unpickler could not read back.

    Exact types are required: numpy scalars, Paths, enums and dataclasses are refused even when
    they subclass ``float`` or ``str``, because they would pickle as their own class.
    """
    if isinstance(obj, torch.Tensor):
        if type(obj) is not torch.Tensor and not isinstance(obj, torch.nn.Parameter):
            raise TypeError(f"{where}: tensor subclass {type(obj).__name__} is not allowed")
        return
    if type(obj) in _PLAIN_LEAVES:
        return
    if isinstance(obj, dict) and type(obj) in (dict, OrderedDict):
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} must be str or int, not {type(key).__name__}")
            check_plain(value, f"{where}.{key}")
        return
    if isinstance(obj, list | tuple) and type(obj) in (list, tuple):  # subclasses (namedtuple) are not plain
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where}: {type(obj).__name__} cannot be loaded with weights_only=True; "
        "use tensors, str, int, float, bool, None, dict, list or tuple"
    )


# --- writing ------------------------------------------------------------------------------------


def serialize_checkpoint(state: Mapping[str, Any]) -> bytes:
    """The bytes of a checkpoint file: ``state`` plus the format tag and version, checked plain."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    check_plain(payload)
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_checkpoint(state: Mapping[str, Any], *paths: Path) -> None:
    """Serialise ``state`` once and write it atomically to every path (e.g. ``best.pt`` then ``latest.pt``).

    Raises TypeError (naming the key) when ``state`` holds anything ``weights_only`` cannot load.
    """
    if not paths:
        raise ValueError("save_checkpoint needs at least one destination path")
    data = serialize_checkpoint(state)
    for path in paths:
        with atomic_writer(Path(path), suffix=TEMP_SUFFIX) as fh:
            _write_all(fh, data)


def _write_all(fh: BinaryIO, data: bytes) -> None:
    pause_s = _test_pause_s()
    if pause_s <= 0:
        fh.write(data)
        return
    half = len(data) // 2
    fh.write(data[:half])
    fh.flush()
    os.fsync(fh.fileno())
    time.sleep(pause_s)
    fh.write(data[half:])


def _test_pause_s() -> float:
    raw = os.environ.get(TEST_PAUSE_ENV, "")
    try:
        return float(raw) if raw else 0.0
    except ValueError:
        return 0.0


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temp files left by writes that were killed; returns what was removed.

    Only call this when no other process is writing checkpoints into ``folder``.
    """
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.glob(f".*{TEMP_SUFFIX}") if p.is_file())
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# --- reading ------------------------------------------------------------------------------------


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``; tensors land on ``map_location``.

    Raises CheckpointError naming ``path`` when the file is missing, torn, holds anything the
    safe unpickler refuses (arbitrary pickled objects are never executed), or is not an
    ecgpipe checkpoint of a known version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused, not loadable with torch.load(weights_only=True) "
            f"(it holds objects other than tensors and plain Python values): {_first_line(exc)}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint: {_first_line(exc)}") from exc
    return _check_format(path, obj)


def _check_format(path: Path, obj: object) -> dict[str, Any]:
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not an ecgpipe checkpoint (expected a dict with format={CHECKPOINT_FORMAT!r})"
        )
    version = obj.get("version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {version!r} is not supported (this code reads {CHECKPOINT_VERSION})"
        )
    return obj


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
