"""The scale benchmark's settings: what runs (configurations), its command line and its scratch folder."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.ingest.inputs import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]


PROFILE = "ecg12"


SOURCE = "ptbxl"


BUCKET = "ecg-bench"


SPLIT = "all"  # one split holding every record of the store


DEFAULT_RECORDS = 4096  # 16 batches of 256: 4 per worker on the 4-worker cluster


REDUCED_RECORDS = 48


REDUCED_BATCH_UNITS = 8  # 6 batches, so both workers of the 2-worker cluster write shards


LOADER_BATCH = 64


CODE_FS_HZ = 400.0  # CODE-15%'s sampling rate


MB = 1 << 20
DESCRIPTION = (
    "Ingest and shard-read throughput at scale: Dask clusters of 1, 2 and 4 workers, an S3 store, one run."
)


@dataclass(frozen=True)
class Options:
    """One run's settings (see :func:`parse_args`)."""

    records: int
    workers: tuple[int, ...]
    s3_workers: int
    batch_units: int | None
    repeats: int
    read_repeats: int
    preprocess_records: int
    reduced: bool
    work: Path
    out: Path
    source: Path
    params: Path


@dataclass(frozen=True)
class Config:
    """One ingest configuration: ``runner`` threads (the baseline) or dask, and where the store is."""

    runner: str
    workers: int
    store: str  # "local" | "s3"

    @property
    def key(self) -> str:
        return f"{self.runner}-{self.workers}-{self.store}"

    @property
    def label(self) -> str:
        who = "baseline: threads, 1 worker" if self.runner == "threads" else f"Dask, {self.workers} worker(s)"
        return f"{who} -> {'S3 (moto)' if self.store == 's3' else 'local disk'}"


def configurations(opt: Options) -> list[Config]:
    """The baseline first, then each Dask cluster into a local store, then the S3 run."""
    out = [Config("threads", 1, "local")]
    out += [Config("dask", w, "local") for w in opt.workers]
    out.append(Config("dask", opt.s3_workers, "s3"))
    return out


def parse_workers(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated worker counts, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"worker counts must be >= 1, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--records", type=int, default=None, help=f"records to ingest (default {DEFAULT_RECORDS})")
    p.add_argument("--workers", type=parse_workers, default=None, help="Dask cluster sizes (default 1,2,4)")
    p.add_argument("--s3-workers", type=int, default=2, help="cluster size of the S3 run (default 2)")
    p.add_argument(
        "--batch-units", type=int, default=None, help="units per batch (default ingest.batch_units)"
    )
    p.add_argument("--repeats", type=int, default=None, help="interleaved ingest rounds (default 2)")
    p.add_argument("--read-repeats", type=int, default=3, help="read passes per store (default 3)")
    p.add_argument("--preprocess-records", type=int, default=256, help="records in the 500/400 Hz comparison")
    p.add_argument("--reduced", action="store_true", help="a few dozen records, 1 and 2 workers, one round")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "scale" / "results.json")
    p.add_argument("--work", type=Path, default=None, help="scratch folder, kept (default: a temporary one)")
    p.add_argument("--source", type=Path, default=SHARED_DATA / "ptbxl", help="real PTB-XL tree to replicate")
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    return p.parse_args(argv)


def options(args: argparse.Namespace, work: Path) -> Options:
    """Options from the arguments; ``--reduced`` changes only the defaults, explicit values win."""
    red = bool(args.reduced)
    opt = Options(
        records=args.records or (REDUCED_RECORDS if red else DEFAULT_RECORDS),
        workers=args.workers or ((1, 2) if red else (1, 2, 4)),
        s3_workers=args.s3_workers,
        batch_units=args.batch_units or (REDUCED_BATCH_UNITS if red else None),
        repeats=args.repeats or (1 if red else 2),
        read_repeats=args.read_repeats,
        preprocess_records=args.preprocess_records,
        reduced=red,
        work=work.resolve(),
        out=args.out.resolve(),
        source=args.source.resolve(),
        params=args.params.resolve(),
    )
    if opt.records < 1 or opt.repeats < 1 or opt.read_repeats < 1 or opt.s3_workers < 1:
        raise SystemExit("--records, --repeats, --read-repeats and --s3-workers must be at least 1")
    return opt


@contextmanager
def work_dir(path: Path | None) -> Iterator[Path]:
    """``path`` (kept), or a temporary folder removed at the end."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        yield Path(tmp)
