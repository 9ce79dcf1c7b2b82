"""The baseline ("today's notebooks"), in a ``--child`` process: per record ``wfdb.rdrecord`` -> the same
preprocessing -> one ``np.savez_compressed``; and the decode comparison, our WFDB reader against
``wfdb.rdrecord``.

"The same preprocessing" is the same operations with the same settings, done the way a notebook does
them: the profile's lead selection, crop and checks (``prepare``), then ``scipy.signal.sosfiltfilt`` with
the profile's filter design, the length fix and normalisation. Our ingest filters with the compiled
``pipeline.signal.sosfilt`` instead; the values are the same to the bit (tests/test_sosfilt_lanes.py),
only the speed differs."""

from __future__ import annotations

import resource
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from tqdm import tqdm

from benchmarks.ingest.inputs import SOURCE, input_rows, tree_bytes
from benchmarks.ingest.ours import _worker_init, load_setup, peak_rss_mb
from pipeline.core.leads import canonical_leads
from pipeline.core.records import Provenance, Record
from pipeline.signal import dsp
from pipeline.signal.preprocess import Prepared, SignalPlan, prepare
from pipeline.sources.wfdb import read_header, read_signals


def wfdb_record(root: Path, row: Mapping[str, str]) -> Record:
    """A PTB-XL row read the notebook way, ``wfdb.rdrecord``: float32 ``(12, 5000)`` mV."""
    rec = wfdb.rdrecord(str(root / row["filename_hr"]))
    return Record(
        record_id=f"{SOURCE}:{int(row['ecg_id']):05d}",
        source=SOURCE,
        signal=np.ascontiguousarray(rec.p_signal.T, dtype=np.float32),
        fs_hz=float(rec.fs),
        leads=canonical_leads(list(rec.sig_name)),
        patient_id=None,
        raw_labels=(),
        provenance=Provenance(files=(), reader="wfdb.rdrecord"),
    )


def notebook_dsp(prepared: Prepared, plan: SignalPlan) -> np.ndarray:
    """One record's ``(C, L)`` float32 signal the notebook way: scipy's resampling and ``sosfiltfilt``."""
    from scipy import signal as sps

    x, fs_in = prepared.x, prepared.fs_hz
    if plan.fs_hz is not None and fs_in is not None:
        x = dsp.resample(x, fs_in, plan.fs_hz)
        sos = dsp.design_sos(plan.filter_spec(plan.fs_hz))
        x = x if sos is None else sps.sosfiltfilt(sos, x, axis=-1).astype(np.float32)
    n = min(x.shape[-1], plan.length)
    y = dsp.fix_length(x[None], plan.length, "start")
    return np.asarray(dsp.normalise(y, plan.normalise, valid=n)[0])  # type: ignore[arg-type]  # str, checked by params


def save_npz(root: Path, row: Mapping[str, str], plan: SignalPlan, out: Path) -> Path | None:
    """The baseline for one record: read, preprocess alone, one compressed ``.npz`` (None if rejected)."""
    prepared = prepare(wfdb_record(root, row), plan)
    if not isinstance(prepared, Prepared):
        return None
    path = out / f"{int(row['ecg_id']):05d}.npz"
    signal = notebook_dsp(prepared, plan)
    np.savez_compressed(path, signal=signal, scp_codes=np.array(row.get("scp_codes", "")))
    return path


def run_baseline(spec: Mapping[str, Any]) -> dict[str, Any]:
    setup = load_setup(Path(spec["params"]), Path(spec["input"]), None)
    root, out = Path(spec["input"]), Path(spec["out_dir"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rows = input_rows(root)
    _worker_init(setup.plan)
    cpu0, t0 = time.process_time(), time.perf_counter()
    saved = sum(
        save_npz(root, row, setup.plan, out) is not None
        for row in tqdm(rows, desc="baseline npz", unit="rec", leave=False)
    )
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "n_records": saved,
        "n_rejected": len(rows) - saved,
        "seconds": seconds,
        "records_per_s": saved / seconds,
        "cpu_s": cpu_s,  # CPU time is robust to other jobs on the machine, wall time is not
        "records_per_cpu_s": saved / cpu_s,
        "peak_rss_mb": peak_rss_mb(resource.RUSAGE_SELF),
        "npz_bytes": tree_bytes(out),
        "npz_dir": str(out),
    }


def run_decode(root: Path, limit: int, repeats: int) -> dict[str, Any]:
    """Per-record decode time of our WFDB reader and of ``wfdb.rdrecord`` (files in page cache)."""
    stems = [r["filename_hr"] for r in input_rows(root)][:limit]
    ours_s, wfdb_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for stem in stems:
            read_signals(read_header(root / f"{stem}.hea"), (root / stem).parent, root)
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for stem in stems:
            wfdb.rdrecord(str(root / stem))
        wfdb_s.append(time.perf_counter() - t0)
    ours_ms, wfdb_ms = 1000 * min(ours_s) / len(stems), 1000 * min(wfdb_s) / len(stems)
    return {
        "n_records": len(stems),
        "ours_ms_per_record": ours_ms,
        "wfdb_ms_per_record": wfdb_ms,
        "speedup": wfdb_ms / ours_ms,
        "max_abs_diff_mv": _max_decode_diff(root, stems),
    }


def _max_decode_diff(root: Path, stems: Sequence[str]) -> float:
    """Largest |ours - wfdb| over the records, in mV (0 when both decode identical samples)."""
    worst = 0.0
    for stem in stems:
        ours = read_signals(read_header(root / f"{stem}.hea"), (root / stem).parent, root)
        ref = np.asarray(wfdb.rdrecord(str(root / stem)).p_signal.T, dtype=np.float32)
        worst = max(worst, float(np.max(np.abs(ours - ref))))
    return worst
