"""Block reads of a shard's signal: the one place that knows the zarr v3 shard-file layout.

The signal array of a shard is one zarr v3 *shard file* (sharding codec: inner chunks, then an
index of byte offsets with a crc32c). A zarr call costs a few milliseconds whatever it reads, so
when the array's metadata is exactly that layout (``bytes`` little-endian then Blosc or Zstd, index
at the end), blocks (whole inner chunks of ``block_rows`` records) are read by byte range
(``os.pread`` on local disk, ranged GETs on object storage) and decoded straight into the
caller's buffer, about twice as fast as a zarr call per block; any other layout is read through
zarr. The index and the array metadata are checked once, by :func:`describe_signal`
(:meth:`pipeline.store.base.Store.signal_blocks`), in the parent process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import zarr
from numcodecs import blosc, zstd
from numcodecs.checksum32 import CRC32C

from pipeline.store.manifest import SHARDS_DIR, StoreError
from pipeline.store.root import StoreRoot

if TYPE_CHECKING:  # the store builds on this module; its type only
    from pipeline.store.base import Store

_EMPTY_CHUNK = np.iinfo(np.uint64).max  # offset and length of an inner chunk never written


class BlockError(StoreError):
    """A shard's signal that cannot be read block by block (says which file and why)."""


@dataclass(frozen=True)
class ShardSignal:
    """How to read one shard's ``signal`` array ``(n_rows, channels, length)`` block by block.

    ``codec`` is ``"blosc"``, ``"zstd"`` or ``"raw"`` for direct reads of ``chunk_file`` at the
    byte ranges ``index`` ``(n_blocks, 2)`` (offset, length); ``"zarr"`` reads through zarr.
    ``remote`` is set for a store on object storage: ``chunk_file``/``group_path`` are URLs then,
    read with ranged GETs through a filesystem each reading process opens for itself.
    """

    name: str
    group_path: str
    n_rows: int
    channels: int
    length: int
    dtype: str
    scale_mv: float
    block_rows: int
    fill_value: float
    codec: str
    chunk_file: str | None
    index: npt.NDArray[np.uint64]
    remote: StoreRoot | None = None

    @property
    def n_blocks(self) -> int:
        return -(-self.n_rows // self.block_rows)

    @property
    def block_nbytes(self) -> int:
        return self.block_rows * self.channels * self.length * np.dtype(self.dtype).itemsize


def describe_signal(store: Store, name: str) -> ShardSignal:
    """Read a shard's signal metadata (and its shard-file index, when it can be read directly)."""
    group = store.open_shard(name)
    arr = group.get("signal")
    if not isinstance(arr, zarr.Array):
        raise BlockError(f"{store.shard_location(name)}: no signal array")
    if arr.ndim != 3 or str(arr.dtype) not in ("int16", "float32"):
        raise BlockError(
            f"{store.shard_location(name)}/signal: expected (N, C, L) int16 or float32, got {arr}"
        )
    if str(arr.dtype) == "int16":
        scale = group.attrs.get("scale_mv")
        if not isinstance(scale, (int, float)):
            raise BlockError(
                f"{store.shard_location(name)}: int16 signal without a numeric scale_mv attribute"
            )
        scale_mv = float(scale)
    else:
        scale_mv = 1.0
    n, c, length = (int(v) for v in arr.shape)
    meta = arr.metadata.to_dict()
    direct = _direct_layout(meta)
    rows = int(arr.chunks[0])
    codec, chunk_file, index = "zarr", None, np.zeros((0, 2), dtype=np.uint64)
    remote = store.remote
    if direct is not None:
        codec, rows, outer_rows = direct
        chunk_file = store.location(f"{SHARDS_DIR}/{name}/signal/{_chunk_key(meta)}")
        index = _read_shard_index(_RangeFile(chunk_file, remote), outer_rows // rows, n)
    return ShardSignal(
        name=name,
        group_path=store.shard_location(name),
        n_rows=n,
        channels=c,
        length=length,
        dtype=str(arr.dtype),
        scale_mv=scale_mv,
        block_rows=rows,
        fill_value=float(arr.fill_value or 0),
        codec=codec,
        chunk_file=chunk_file,
        index=index,
        remote=remote,
    )


def _direct_layout(meta: Mapping[str, Any]) -> tuple[str, int, int] | None:
    """``(codec, inner rows, outer rows)`` when the array is one shard file this module can
    decode itself; None for any other layout (read through zarr instead)."""
    codecs = list(meta.get("codecs", ()))
    if sys.byteorder != "little" or len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
        return None
    conf = codecs[0].get("configuration", {})
    index_codecs = [c.get("name") for c in conf.get("index_codecs", ())]
    inner = list(conf.get("codecs", ()))
    shape = tuple(meta["shape"])
    outer = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    inner_shape = tuple(conf.get("chunk_shape", ()))
    ok = (
        conf.get("index_location", "end") == "end"
        and index_codecs == ["bytes", "crc32c"]
        and _little_bytes(conf["index_codecs"][0])
        and bool(inner)
        and _little_bytes(inner[0])
        and len(inner) <= 2
        and outer[0] >= shape[0]
        and outer[1:] == shape[1:]
        and inner_shape[1:] == shape[1:]
        and outer[0] % inner_shape[0] == 0
        and meta.get("chunk_key_encoding", {}).get("name") == "default"
    )
    if not ok:
        return None
    name = inner[1].get("name") if len(inner) == 2 else "raw"
    if name not in ("blosc", "zstd", "raw"):
        return None
    return str(name), int(inner_shape[0]), int(outer[0])


def _little_bytes(codec: Mapping[str, Any]) -> bool:
    return codec.get("name") == "bytes" and codec.get("configuration", {}).get("endian", "little") == "little"


def _chunk_key(meta: Mapping[str, Any]) -> str:
    sep = meta.get("chunk_key_encoding", {}).get("configuration", {}).get("separator", "/")
    return str(sep).join(["c", *("0" for _ in meta["shape"])])


class _RangeFile:
    """A shard file on local disk or object storage, read by byte range."""

    def __init__(self, path: str, remote: StoreRoot | None) -> None:
        self.path = path
        self.fs: Any = None
        if remote is not None:
            self.fs, self.key = StoreRoot(path, remote.options).filesystem()

    def size(self) -> int | None:
        """Bytes in the file; None when it does not exist (a shard with no signal chunk written)."""
        try:
            return int(self.fs.size(self.key)) if self.fs is not None else Path(self.path).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, offset: int, nbytes: int) -> bytes:
        if self.fs is not None:
            return bytes(self.fs.cat_file(self.key, start=offset, end=offset + nbytes))
        with Path(self.path).open("rb") as fh:
            fh.seek(offset)
            return fh.read(nbytes)


def _read_shard_index(file: _RangeFile, n_chunks: int, n_rows: int) -> npt.NDArray[np.uint64]:
    """The (offset, length) of each inner chunk, checked against its crc32c and the file size."""
    path = file.path
    size = file.size() if n_rows else None
    if size is None:
        return np.full((n_chunks, 2), _EMPTY_CHUNK, dtype=np.uint64)
    index_bytes = n_chunks * 16 + 4
    if size < index_bytes:
        raise BlockError(f"{path}: {size} bytes, too short for a shard index of {n_chunks} chunks")
    raw = file.read(size - index_bytes, index_bytes)
    try:
        body = CRC32C().decode(raw)
    except RuntimeError as exc:
        raise BlockError(f"{path}: shard index fails its checksum: {exc}") from exc
    index = np.frombuffer(body, dtype="<u8").reshape(n_chunks, 2).astype(np.uint64)
    written = index[:, 0] != _EMPTY_CHUNK
    if np.any(index[written, 0] + index[written, 1] > size - index_bytes):
        raise BlockError(f"{path}: shard index points past the end of the chunk data")
    return index


class BlockReader:
    """Reads blocks of one process's shards; holds open file descriptors until :meth:`close`."""

    def __init__(self, shards: Sequence[ShardSignal], blosc_threads: int = 1) -> None:
        self.shards = shards
        self.blosc_threads = blosc_threads
        self._fds: dict[int, int] = {}
        self._remote: dict[int, _RangeFile] = {}
        self._zarr: dict[int, zarr.Array[Any]] = {}
        width = max((s.block_nbytes for s in shards), default=0)
        self._scratch = np.empty(width, dtype=np.uint8)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._remote.clear()
        self._zarr.clear()

    def read(self, shard: int, block: int, rows: npt.NDArray[np.int64], out: npt.NDArray[Any]) -> None:
        """Rows ``rows`` (within the block) of block ``block`` of shard ``shard`` into ``out``
        ``(len(rows), C, L)`` in the stored dtype."""
        sig = self.shards[shard]
        whole = len(rows) == sig.block_rows and bool(np.all(rows == np.arange(sig.block_rows)))
        if whole and out.flags.c_contiguous:
            self._decode(shard, block, out)
            return
        scratch = self._scratch[: sig.block_nbytes].view(sig.dtype)
        scratch = scratch.reshape(sig.block_rows, sig.channels, sig.length)
        self._decode(shard, block, scratch)
        np.take(scratch, rows, axis=0, out=out)

    def _decode(self, shard: int, block: int, out: npt.NDArray[Any]) -> None:
        sig = self.shards[shard]
        if sig.codec == "zarr":
            self._decode_zarr(shard, block, out)
            return
        offset, nbytes = (int(v) for v in sig.index[block])
        if offset == _EMPTY_CHUNK:
            out[...] = sig.fill_value
            return
        data = self._read_bytes(shard, offset, nbytes)
        if len(data) != nbytes:
            raise BlockError(f"{sig.chunk_file}: block {block} truncated ({len(data)} of {nbytes} bytes)")
        try:
            _decompress(sig, block, data, out, self.blosc_threads)
        except (RuntimeError, ValueError) as exc:
            if isinstance(exc, BlockError):
                raise
            raise BlockError(f"{sig.chunk_file}: block {block} does not decode: {exc}") from exc

    def _read_bytes(self, shard: int, offset: int, nbytes: int) -> bytes:
        sig = self.shards[shard]
        if sig.remote is None:
            return os.pread(self._fd(shard), nbytes, offset)
        if shard not in self._remote:
            assert sig.chunk_file is not None  # direct codecs always carry their chunk file
            # opened here, in the reading process: a connection made before a fork is not reused
            self._remote[shard] = _RangeFile(sig.chunk_file, sig.remote)
        return self._remote[shard].read(offset, nbytes)

    def _fd(self, shard: int) -> int:
        if shard not in self._fds:
            path = self.shards[shard].chunk_file
            assert path is not None  # direct codecs always carry their chunk file
            self._fds[shard] = os.open(path, os.O_RDONLY)
        return self._fds[shard]

    def _decode_zarr(self, shard: int, block: int, out: npt.NDArray[Any]) -> None:
        sig = self.shards[shard]
        if shard not in self._zarr:
            options = dict(sig.remote.options) if sig.remote is not None else None
            self._zarr[shard] = zarr.open_array(
                f"{sig.group_path}/signal", mode="r", zarr_format=3, storage_options=options
            )
        start = block * sig.block_rows
        stop = min(start + sig.block_rows, sig.n_rows)
        out[: stop - start] = np.asarray(self._zarr[shard][start:stop])
        out[stop - start :] = sig.fill_value


def _decompress(sig: ShardSignal, block: int, data: bytes, out: npt.NDArray[Any], blosc_threads: int) -> None:
    """Decode one inner chunk's bytes into ``out`` (a whole block, C-contiguous).

    ``blosc_threads`` 1 decodes on the calling thread (Blosc's private context); otherwise
    numcodecs' global setting applies.
    """
    expected = sig.block_nbytes
    if sig.codec == "blosc":
        # Blosc accepts a larger destination silently; its header states the decoded size.
        stated = int.from_bytes(data[4:8], "little") if len(data) >= 16 else -1
        if stated != expected:
            raise BlockError(
                f"{sig.chunk_file}: block {block} decodes to {stated} bytes, expected {expected}"
            )
        if blosc_threads != 1:
            blosc.decompress(data, out)
            return
        before = blosc.use_threads
        blosc.use_threads = False
        try:
            blosc.decompress(data, out)
        finally:
            blosc.use_threads = before
        return
    raw = zstd.decompress(data) if sig.codec == "zstd" else data
    if len(raw) != expected:
        raise BlockError(f"{sig.chunk_file}: block {block} decodes to {len(raw)} bytes, expected {expected}")
    out[...] = np.frombuffer(raw, dtype=sig.dtype).reshape(out.shape)
