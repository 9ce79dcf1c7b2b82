"""Multi-segment WFDB records written with wfdb-python (``wrsamp`` for segments, ``MultiRecord.wrheader``
for masters, the header writer for a variable layout's layout header), for the multi-segment tests
and the malformed corpus."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import wfdb

FS_HZ = 100


def write_segment(folder: Path, name: str, leads: Sequence[str], digital: npt.NDArray[np.int16]) -> None:
    """A single-segment record ``name`` at :data:`FS_HZ`: ``digital`` ``(T, C)``, format 16, 100 adu/mV."""
    wfdb.wrsamp(
        name,
        fs=FS_HZ,
        units=["mV"] * len(leads),
        sig_name=list(leads),
        d_signal=digital,
        fmt=["16"] * len(leads),
        adc_gain=[100.0] * len(leads),
        baseline=[0] * len(leads),
        write_dir=str(folder),
    )


def write_layout(folder: Path, name: str, leads: Sequence[str]) -> None:
    """A variable layout's layout header (length 0, every signal ``~`` format 0). wfdb's ``wrheader``
    refuses the ``~`` file name its own reader expects there, so its header writer is called after
    building the fields."""
    n = len(leads)
    layout = wfdb.Record(
        record_name=name,
        n_sig=n,
        fs=FS_HZ,
        sig_len=0,
        file_name=["~"] * n,
        fmt=["0"] * n,
        sig_name=list(leads),
        units=["mV"] * n,
        adc_gain=[100.0] * n,
        baseline=[0] * n,
        adc_res=[16] * n,
        adc_zero=[0] * n,
        init_value=[0] * n,
        checksum=[0] * n,
        block_size=[0] * n,
    )
    record_fields, signal_fields = layout.get_write_fields()
    layout.wr_header_file(record_fields, signal_fields, str(folder))


def write_master(folder: Path, name: str, n_sig: int, segments: Sequence[tuple[str, int]]) -> None:
    """A master header naming ``segments`` (record name or ``~``, length in samples)."""
    master = wfdb.MultiRecord(
        record_name=name,
        n_sig=n_sig,
        fs=FS_HZ,
        sig_len=sum(n for _, n in segments),
        seg_name=[s for s, _ in segments],
        seg_len=[n for _, n in segments],
    )
    master.n_seg = len(segments)  # MultiRecord's constructor takes no n_seg; wrheader needs it
    master.wrheader(write_dir=str(folder))


def ramp(n: int, c: int, start: int = 0) -> npt.NDArray[np.int16]:
    """``(n, c)`` distinct digital samples (channel k holds ``start + c*i + k``)."""
    return (np.arange(n * c).reshape(n, c) + start).astype(np.int16)


def variable_record(folder: Path, name: str = "ms") -> None:
    """Variable layout ``name`` (II, V): ``seg0`` 100 samples of II and V, a 30-sample gap, ``seg1``
    50 samples holding V then II in the other order, ``seg2`` 20 samples of V only; 200 in all."""
    write_layout(folder, f"{name}_layout", ["II", "V"])
    write_segment(folder, "seg0", ["II", "V"], ramp(100, 2))
    write_segment(folder, "seg1", ["V", "II"], ramp(50, 2, 1000))
    write_segment(folder, "seg2", ["V"], ramp(20, 1, 2000))
    segments = [(f"{name}_layout", 0), ("seg0", 100), ("~", 30), ("seg1", 50), ("seg2", 20)]
    write_master(folder, name, 2, segments)


def fixed_record(folder: Path, name: str = "fx") -> None:
    """Fixed layout ``name`` (I, II): segments ``fx_0`` (60 samples) and ``fx_1`` (40)."""
    write_segment(folder, f"{name}_0", ["I", "II"], ramp(60, 2))
    write_segment(folder, f"{name}_1", ["I", "II"], ramp(40, 2, 500))
    write_master(folder, name, 2, [(f"{name}_0", 60), (f"{name}_1", 40)])
