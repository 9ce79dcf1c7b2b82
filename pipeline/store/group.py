"""One shard's zarr v3 group, as both stores write and read it: its arrays, codec and digest.

A shard group holds ``signal`` ``(N, C, L)`` (int16 steps of ``attrs.scale_mv``, or float32 mV) in
one shard file of ``records_per_chunk``-record inner chunks, and per-record arrays ``(N,)``:
:data:`STRING_FIELDS` and the numbers ``orig_fs``, ``orig_len``, ``valid_len``, ``clipped``.
:func:`write_group` writes one in a local folder (the local store renames it into place, the
object store uploads it); the readers here open any group; :func:`files_digest` is the store's
digest of a shard's files wherever they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numcodecs.blosc
import numpy as np
import numpy.typing as npt
import zarr
from zarr.codecs import BloscCodec

from pipeline.core.crashpoints import crash_point
from pipeline.core.fs import fsync_file
from pipeline.core.records import RawLabel, Record
from pipeline.signal import dsp as sig
from pipeline.store.manifest import FORMAT_VERSION, StoreError

STRING_FIELDS = ("record_id", "source", "unit", "patient_id", "raw_labels", "meta", "provenance")


@dataclass(frozen=True)
class StorageSpec:
    dtype: str  # "int16" | "float32"
    scale_mv: float
    records_per_chunk: int
    codec: Literal["zstd", "lz4"] = "zstd"  # the Blosc compressor of the signal array
    clevel: int = 3
    shuffle: Literal["bitshuffle", "shuffle", "noshuffle"] = "bitshuffle"


@dataclass(frozen=True)
class ShardRows:
    """Per-record values written beside the signal, in row order."""

    record_id: list[str]
    source: list[str]
    unit: list[str]
    patient_id: list[str]
    raw_labels: list[str]
    meta: list[str]
    provenance: list[str]
    orig_fs: list[float]
    orig_len: list[int]
    valid_len: list[int]


@dataclass(frozen=True)
class ShardInfo:
    name: str
    n_records: int
    sha256: str
    nbytes: int


def raw_labels_json(labels: Sequence[RawLabel]) -> str:
    """``[[code, likelihood], ...]``; a label of another scope than ``record`` adds ``scope, [start, stop]``.

    Record-scope labels keep the two-item form, so shards of sources that state only record
    labels are byte-identical to those written before scopes existed.
    """
    items: list[list[Any]] = []
    for lab in labels:
        item: list[Any] = [lab.code, lab.likelihood]
        if lab.scope != "record" and lab.span is not None:
            item += [lab.scope, list(lab.span)]
        items.append(item)
    return json.dumps(items)


def raw_labels_from_json(text: str) -> tuple[RawLabel, ...]:
    """Inverse of :func:`raw_labels_json`; items without a scope (older shards) are record scope."""
    out: list[RawLabel] = []
    for item in json.loads(text):
        code, likelihood = str(item[0]), None if item[1] is None else float(item[1])
        if len(item) >= 4:
            out.append(RawLabel(code, likelihood, str(item[2]), (int(item[3][0]), int(item[3][1]))))
        else:
            out.append(RawLabel(code, likelihood))
    return tuple(out)


def rows_for(records: Sequence[Record], units: Sequence[str], valid_len: Sequence[int]) -> ShardRows:
    """Per-record arrays for a shard from the records and their unit keys."""
    return ShardRows(
        record_id=[r.record_id for r in records],
        source=[r.source for r in records],
        unit=list(units),
        patient_id=[r.patient_id or "" for r in records],
        raw_labels=[raw_labels_json(r.raw_labels) for r in records],
        meta=[json.dumps(dict(r.meta), sort_keys=True) for r in records],
        provenance=[
            json.dumps(
                {
                    "files": [list(f) for f in r.provenance.files],
                    "reader": r.provenance.reader,
                    "parent_id": r.provenance.parent_id,
                    "window": list(r.provenance.window) if r.provenance.window else None,
                },
                sort_keys=True,
            )
            for r in records
        ],
        orig_fs=[float("nan") if r.fs_hz is None else float(r.fs_hz) for r in records],
        orig_len=[int(r.signal.shape[-1]) for r in records],
        valid_len=[int(v) for v in valid_len],
    )


def write_group(
    path: Path, signal: sig.F32, rows: ShardRows, storage: StorageSpec, attrs: dict[str, Any]
) -> int:
    """Write one shard group at ``path`` in one go; returns the count of clipped samples."""
    n = signal.shape[0]
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    data: npt.NDArray[Any]
    if storage.dtype == "int16":
        data, clipped_per = sig.quantise_rows(signal, storage.scale_mv, storage.records_per_chunk)
    else:
        data, clipped_per = signal.astype(np.float32), np.zeros(n, dtype=np.int32)
    k = min(storage.records_per_chunk, max(n, 1))
    shard_n = max(-(-n // k) * k, k)
    arr = group.create_array(
        "signal",
        shape=data.shape,
        dtype=data.dtype,
        chunks=(k, *data.shape[1:]),
        shards=(shard_n, *data.shape[1:]),
        compressors=signal_codec(data.dtype.itemsize, storage),
    )
    if n:
        arr[...] = data
    crash_point("shard.write")
    for name in STRING_FIELDS:
        values = getattr(rows, name)
        a = group.create_array(name, shape=(n,), dtype=str, chunks=(max(n, 1),))
        if n:
            a[...] = np.array(values, dtype=object)
    numeric: dict[str, npt.NDArray[Any]] = {
        "orig_fs": np.asarray(rows.orig_fs, dtype=np.float64),
        "orig_len": np.asarray(rows.orig_len, dtype=np.int64),
        "valid_len": np.asarray(rows.valid_len, dtype=np.int32),
        "clipped": clipped_per.astype(np.int32),
    }
    for name, column in numeric.items():
        a = group.create_array(name, shape=(n,), dtype=column.dtype, chunks=(max(n, 1),))
        if n:
            a[...] = column
    group.attrs.update(
        {
            **attrs,
            "format": FORMAT_VERSION,
            "storage_dtype": storage.dtype,
            "scale_mv": storage.scale_mv if storage.dtype == "int16" else None,
        }
    )
    return int(clipped_per.sum())


def single_threaded_codecs() -> None:
    """Encode and decode on the calling thread only.

    zarr 3 runs codecs on its own thread pool and Blosc on two threads by default, so one
    ingest worker already occupied both cores here and a second worker added nothing (measured:
    2 workers = 0.98x one). Ingest parallelism comes from its task workers instead.
    """
    zarr.config.set({"threading.max_workers": 1})
    numcodecs.blosc.set_nthreads(1)


def signal_codec(itemsize: int, storage: StorageSpec) -> BloscCodec:
    """The profile's Blosc codec for the signal arrays; by default zstd-3 with bit-shuffle.

    Measured on 256 filtered PTB-XL records (int16 at 1 µV), against plain zstd-3: 0.41 vs 0.47 of
    the raw bytes, 0.73 vs 1.0 ms per record to write, 6,100 vs 5,000 records/s to read on one
    core. Delta + zstd is smaller still (0.34) but reads at under 3,000 records/s. Blosc lz4 and
    other levels: benchmarks/codecs.
    """
    return BloscCodec(cname=storage.codec, clevel=storage.clevel, shuffle=storage.shuffle, typesize=itemsize)


def array(group: zarr.Group, name: str) -> zarr.Array[Any]:
    """The array ``name`` of a group; a missing or non-array member is a :class:`StoreError`."""
    try:
        node = group[name]
    except KeyError:
        raise StoreError(f"{group.store_path}: no array {name!r}") from None
    if not isinstance(node, zarr.Array):
        raise StoreError(f"{group.store_path}/{name}: expected an array, found a group")
    return node


def read_array(group: zarr.Group, name: str) -> npt.NDArray[Any]:
    return np.asarray(array(group, name)[...])


def read_signal(group: zarr.Group, rows: slice | npt.NDArray[np.int64] | None = None) -> sig.F32:
    """Signals of a shard (all rows or a selection) as float32 mV ``(N, C, L)``."""
    arr = array(group, "signal")
    if rows is None:
        data = np.asarray(arr[...])
    elif isinstance(rows, slice):
        data = np.asarray(arr[rows])
    else:
        data = np.asarray(arr.get_orthogonal_selection((rows,)))
    if data.dtype == np.int16:
        scale = group.attrs.get("scale_mv")
        if not isinstance(scale, (int, float)):
            raise StoreError(f"{group.store_path}: int16 signal without a numeric scale_mv attribute")
        return sig.dequantise(data, float(scale))
    return data.astype(np.float32, copy=False)


def read_strings(group: zarr.Group, name: str) -> list[str]:
    return [str(x) for x in read_array(group, name)]


def tree_digest(path: Path) -> tuple[str, int]:
    """sha256 over every file's relative path and bytes under ``path``; and the total size."""
    files = {p.relative_to(path).as_posix(): p for p in path.rglob("*") if p.is_file()}
    return files_digest(files, lambda rel: files[rel].read_bytes())


def files_digest(rels: Iterable[str], read: Callable[[str], bytes]) -> tuple[str, int]:
    """The store's digest of a set of files (relative POSIX paths, bytes from ``read``), wherever they
    are stored: sha256 over each path and its bytes' sha256, in path order; and the total size."""
    h = hashlib.sha256()
    total = 0
    for rel in sorted(rels, key=PurePosixPath):
        data = read(rel)
        total += len(data)
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest(), total


def fsync_tree(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            fsync_file(p)
