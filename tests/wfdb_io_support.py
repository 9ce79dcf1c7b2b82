"""Helpers of the WFDB decoding tests (``tests/test_wfdb_io.py``, ``tests/test_wfdb_decode.py``):
wfdb-python's physical signal, a hand-written record, and a spy on ``wfdb.rdrecord``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import wfdb


def wfdb_physical(folder: Path, record: str) -> npt.NDArray[np.float32]:
    rec = wfdb.rdrecord(str(folder / record))
    return np.asarray(rec.p_signal.T, dtype=np.float32)


def write_record(directory: Path, name: str, header: str, data: bytes) -> Path:
    (directory / f"{name}.hea").write_text(header)
    (directory / f"{name}.dat").write_bytes(data)
    return directory / f"{name}.hea"


class WfdbSpy:
    """Counts calls to ``wfdb.rdrecord`` while still delegating to it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = wfdb.rdrecord
        monkeypatch.setattr(wfdb, "rdrecord", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._real(*args, **kwargs)
