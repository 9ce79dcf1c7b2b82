"""One measured configuration (:class:`Run`), one timed pass over its records, and the best of its passes."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

from benchmarks.loader.inputs import BATCH


@dataclass
class Run:
    """One configuration: how to make an iterable of batches for an epoch, and its timings (s)."""

    name: str
    reader: str
    workers: int
    collate: str
    make: Callable[[int], Iterable[Any]]
    n_expected: int
    blosc_threads: int | None = None
    seconds: list[float] | None = None
    cpu_s: list[float] | None = None
    exact_once: bool = True


def _cpu_now() -> float:
    """CPU seconds of this process and its children: live ones (persistent DataLoader workers)
    and reaped ones (workers of finished passes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:  # exited meanwhile: its time is in RUSAGE_CHILDREN once reaped
            continue
        live += t.user + t.system
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + live


def time_pass(run: Run, epoch: int) -> None:
    """One pass over the run's records; records wall and CPU seconds and whether every record
    came exactly once (the last element of each batch is its record indices)."""
    t0, c0 = time.perf_counter(), _cpu_now()
    seen: list[npt.NDArray[np.int64]] = []
    for batch in run.make(epoch):
        index = batch[-1]
        seen.append(np.asarray(index, dtype=np.int64).reshape(-1))
    wall, cpu = time.perf_counter() - t0, _cpu_now() - c0
    ids = np.concatenate(seen) if seen else np.zeros(0, dtype=np.int64)
    run.exact_once = run.exact_once and len(ids) == run.n_expected and len(np.unique(ids)) == len(ids)
    run.seconds = [*(run.seconds or []), wall]
    run.cpu_s = [*(run.cpu_s or []), cpu]


def summary(run: Run) -> dict[str, Any]:
    """The run's fastest pass: seconds, records/s, records/s per decoding process, records per CPU-s."""
    assert run.seconds and run.cpu_s
    best = min(range(len(run.seconds)), key=lambda k: run.seconds[k] if run.seconds else 0.0)
    seconds = run.seconds[best]
    rate = run.n_expected / seconds
    return {
        "reader": run.reader,
        "workers": run.workers,
        "collate": run.collate,
        "blosc_threads": run.blosc_threads,
        "batch_size": BATCH,
        "n_records": run.n_expected,
        "seconds": seconds,
        "seconds_all": [round(s, 3) for s in run.seconds],
        "records_per_s": rate,
        "records_per_s_per_core": rate / max(1, run.workers),
        "records_per_cpu_s": run.n_expected / run.cpu_s[best],
        "exact_once": run.exact_once,
    }
