"""Ingest throughput, memory and store size for 12-lead 10 s 500 Hz PTB-XL records, in one run.

Everything is measured as a ratio within the same run on the same machine:

* **ours**: ``plan_ingest`` → ``run_batch`` per batch → ``commit``, the library calls the Prefect
  flow (``flows/ingest.py``) makes, with the batches fanned out to a
  ``concurrent.futures.ProcessPoolExecutor`` (spawn) of 1 and of 2 workers, into fresh stores.
  Prefect itself (server, task bookkeeping) is left out: this measures the compute pipeline.
* **baseline** ("today's notebooks"): per record ``wfdb.rdrecord`` → the same preprocessing
  (``pipeline.signal.preprocess.process`` on a one-record list) → one ``np.savez_compressed`` per
  record, float32 mV, in one process.
* **memory**: peak RSS of the workers and of the parent at two input sizes 10× apart.
* **decode**: ``pipeline.sources.wfdb.read_header`` + ``read_signals`` against ``wfdb.rdrecord``, per record.

Input: the real 500 Hz PTB-XL records of the shared data set, replicated under new ``ecg_id``
values into a PTB-XL tree (``records500/NNNNN/NNNNN_hr.{hea,dat}`` + ``ptbxl_database.csv``);
``.dat`` files are hard links (copies across file systems), headers are rewritten with the
new record name. Every ingest run (ours, baseline) happens in a fresh Python subprocess (this
script with ``--child``) so that ``getrusage`` peaks of one run never contaminate another.
Timings leave out interpreter and worker-pool start-up; each is the best of ``--repeats`` runs.

Usage (from the repository root)::

    .venv/bin/python benchmarks/ingest/bench_ingest.py            # N = 2,000, memory at N and 10 N
    .venv/bin/python benchmarks/ingest/bench_ingest.py --n 40 --memory-scale down --repeats 1
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, only this folder is on sys.path: the repository root makes `benchmarks` (not
    # installed) importable, here and in the spawned pool workers, which inherit sys.path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.ingest.run import main

    sys.exit(main())
