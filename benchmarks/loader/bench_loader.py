"""Training-loader throughput for 12-lead 10 s 500 Hz records (float32 ``(12, 5000)`` mV), in one run.

What is compared, all reading the same N records in a shuffled order, with batches of 64:

* **ours**: :func:`pipeline.dataset.loader.make_loader` over the zarr shard store (block reads, shuffle
  buffer, dequantise per batch), with 0, 1 and 2 DataLoader workers; whole batches yielded by
  the dataset (``DataLoader(batch_size=None)``). Also measured: per-sample yields collated by
  the DataLoader, and 2 Blosc threads per worker instead of 1.
* **zarr per record**: a map-style ``Dataset`` whose ``__getitem__`` reads one record with one
  zarr call (``signal[row:row + 1]``) from the same store, random order, 0 workers. Slow, so
  it reads only ``--zarr-records`` records.
* **.npz per record** (the baseline, "today's notebooks"): one ``np.savez_compressed`` file per
  record holding the float32 signal and its labels, read by a map-style ``Dataset``
  (``np.load``) through a shuffling ``DataLoader``, with 0 and 2 workers. Uncompressed
  ``np.savez`` files are measured too, for reference.

Input: the real 500 Hz PTB-XL records of the shared data set, replicated into a PTB-XL tree of
N records by the ingest benchmark's ``benchmarks.ingest.inputs.build_input``, ingested with the
``ecg12`` profile of ``params.yaml`` (the same library calls as the ingest flow), labelled,
and listed in a split index that puts every record in ``train``. The ``.npz`` files hold what a
notebook would save: the same reader's records through the same preprocessing, float32 before
the store's int16 quantisation (so values agree to half a 1 uV step; checked), plus labels.
Inputs are built once under ``--work`` and reused; all files are in the page cache, so this
measures decode and hand-over, not disk.

Timing: one pass over the records per measurement, including DataLoader worker start-up
(the baselines fork theirs per epoch; ours keeps persistent workers, started in the untimed
warm-up pass); best of ``--repeats``, configurations interleaved. Records/s
per core divides by the processes that decode: ``max(1, workers)``. Records per CPU-second
counts the main process and the reaped workers.

The script is the entry point; its parts sit beside it in ``benchmarks/loader/``: ``inputs``
(the tree, store, index and ``.npz`` files), ``baselines`` (the ``.npz`` and zarr-per-record
datasets), ``configurations`` (every reader timed), ``timing`` (one pass, the best of the passes),
``checks`` (the Blosc decoding floor, the values), ``report`` (targets, machine, markdown) and
``run`` (the whole run and its command line).

Usage (from the repository root)::

    .venv/bin/python benchmarks/loader/bench_loader.py              # N = 2,000
    .venv/bin/python benchmarks/loader/bench_loader.py --n 200 --repeats 1 --work /tmp/bl
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, only this folder is on sys.path: the repository root makes `benchmarks` (not
    # installed) importable, here and in the ingest's spawned pool workers, which inherit sys.path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.loader.run import main

    sys.exit(main())
