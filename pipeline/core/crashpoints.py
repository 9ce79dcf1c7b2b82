"""Named crash points: a test hook that SIGKILLs ingest at an exact step (tests only).

Ingest calls :func:`crash_point` at the steps where a crash is most dangerous: mid-way through a
batch's reads, mid-way through a shard write, between a shard's rename and the manifest write,
between the manifest and the reports, inside :func:`pipeline.core.fs.atomic_writer` (store writes) between
write and rename. ``tests/test_ingest_crash.py`` and ``scripts/kill_loop.py`` use it to prove
that a killed ingest, re-run, leaves the store an uninterrupted run would have written.

Two environment variables drive it, read once when this module is imported (a child process
started with them set picks them up; in-process tests call :func:`configure`):

* ``ECGPIPE_TEST_CRASH_AT=<name>:<n>``: SIGKILL this process the ``n``-th time (1-based) the
  point ``name`` is reached, counted over all threads. A process-pool or Dask worker counts and
  dies on its own, which is why the kill loop runs ingest with the thread runner.
* ``ECGPIPE_TEST_CRASH_LOG=<file>``: append ``<name> <unix time>`` to ``file`` each time a point
  is reached, so a test can count the points of an uninterrupted run, time them, and see how far
  a run killed at a random moment got.

Never set either outside tests. With neither set a crash point costs one global lookup.
"""

from __future__ import annotations

import os
import signal
import threading
import time

CRASH_AT_ENV = "ECGPIPE_TEST_CRASH_AT"
CRASH_LOG_ENV = "ECGPIPE_TEST_CRASH_LOG"

# Every point ingest calls, in the order a run reaches them (the kill loop covers each one).
POINTS = (
    "batch.read_unit",  # pipeline.ingest.batch.run_batch: before each unit of a batch is read
    "shard.write",  # pipeline.store.local.write_group: the signal array written, the rest not yet
    "shard.before_rename",  # pipeline.store.local.ShardStore.write_shard: temp folder complete, not renamed
    "shard.after_rename",  # ... renamed into shards/, the manifest does not list it yet
    "commit.before_manifest",  # pipeline.ingest.commit.commit: every shard published, manifest not written
    "json.before_replace",  # pipeline.core.fs.atomic_writer for store files: temp fsynced, not renamed
    "commit.after_manifest",  # ingest.commit.commit: manifest written, stat cache/quarantine/report not
    "commit.before_report",  # ... quarantine written, ingest_report.json not
    "commit.done",  # ... everything of commit written; unified labels not yet re-derived
)
# Points only a store on object storage reaches (tests/test_object_store.py covers them).
REMOTE_POINTS = (
    "shard.upload_half",  # pipeline.store.remote.RemoteShardStore: half of a shard's objects uploaded
)

_ACTIVE = False
_TARGET: tuple[str, int] | None = None
_LOG: str | None = None
_COUNTS: dict[str, int] = {}
_GUARD = threading.Lock()


def parse_spec(spec: str) -> tuple[str, int]:
    """``"shard.write:3"`` → ``("shard.write", 3)``; anything else is a ValueError naming the spec."""
    name, sep, count = spec.rpartition(":")
    known = (*POINTS, *REMOTE_POINTS)
    if not sep or name not in known or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"{CRASH_AT_ENV}={spec!r}: expected <point>:<n> with n >= 1 and point one of {', '.join(known)}"
        )
    return name, int(count)


def configure(crash_at: str | None, log: str | None) -> None:
    """Arm (or, with both None, disarm) the hook; resets the per-point counts."""
    global _ACTIVE, _TARGET, _LOG
    with _GUARD:
        _TARGET = parse_spec(crash_at) if crash_at else None
        _LOG = log or None
        _COUNTS.clear()
        _ACTIVE = _TARGET is not None or _LOG is not None


def crash_point(name: str) -> None:
    """SIGKILL this process if ``name`` is the armed point reached for the armed time; log it."""
    if not _ACTIVE:
        return
    _reached(name)


def _reached(name: str) -> None:
    with _GUARD:
        n = _COUNTS.get(name, 0) + 1
        _COUNTS[name] = n
        if _LOG is not None:
            # one write(2) per line with O_APPEND: lines from threads never interleave and a line
            # written just before a kill is still on disk afterwards
            fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{name} {time.time():.6f}\n".encode())
            finally:
                os.close(fd)
        if (name, n) == _TARGET:
            os.kill(os.getpid(), signal.SIGKILL)


configure(os.environ.get(CRASH_AT_ENV), os.environ.get(CRASH_LOG_ENV))
