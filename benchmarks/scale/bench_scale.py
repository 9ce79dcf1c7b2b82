"""Ingest and shard-read throughput at scale: Dask clusters of 1, 2 and 4 workers, an S3 store, one run.

What runs, all through the real Prefect flow (``flows.ingest.ingest``) reporting to a real Prefect
server on 127.0.0.1 (``tests/prefect_server.py``):

* **baseline**: ``ingest.task_runner=threads``, ``ingest.workers=1``, into a local store: every
  batch on one thread of the flow's own process.
* **Dask**: clusters of separate ``dask scheduler`` / ``dask worker`` processes (one thread each,
  ``tests/dask_cluster.py``) of 1, 2 and 4 workers, each ingesting into a local store.
* **object store**: the 2-worker cluster ingesting into ``s3://`` on a moto server on 127.0.0.1
  (``tests/s3_server.py``); shards are written locally by the worker that owns them and uploaded.

Every run goes into a fresh store and must produce the baseline's shards: same names, record
counts and sha256 in the manifest, and stored bytes that hash to the manifest's sha256 (re-read
from disk or downloaded from S3). Configurations are interleaved over ``--repeats`` rounds and the
fastest run of each is kept. Each round starts a fresh cluster per size (only one is up at a time:
idle workers cost CPU) and runs one small untimed ingest per configuration first, so worker
start-up and first-task imports are not timed: a real cluster is long-lived.

Then the reads, from the same store content on local disk and on S3: every record through
``pipeline.dataset.loader.make_loader(..., shuffle=False, num_workers=0)`` over a split index that covers
the whole store, and every signal block through ``BlockReader``; S3 requests are counted from the
moto server's request log. Lastly the preprocessing cost per record of the same signals at
500 Hz (PTB-XL) and resampled to 400 Hz (the rate of CODE-15%), for the README's extrapolation.

Input: the real 500 Hz PTB-XL records of the shared data set, replicated under new ``ecg_id``
values into a PTB-XL tree (``benchmarks.ingest.inputs.build_input``, the same tree as the
ingest benchmark), ingested as the ``ptbxl`` source of the ``ecg12`` profile. PTB-XL is the data
set the figures are extrapolated to, and its records carry the full per-record work: header
parsing, CSV labels, 12 leads x 5,000 samples, baseline and notch filters.

Usage (from the repository root)::

    .venv/bin/python benchmarks/scale/bench_scale.py                 # the full run (about 5-10 min)
    .venv/bin/python benchmarks/scale/bench_scale.py --reduced --out /tmp/scale.json
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, only this folder is on sys.path: the repository root makes `benchmarks` and
    # `tests` (the Prefect, Dask and S3 server helpers), neither of them installed, importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.scale.run import main

    sys.exit(main())
