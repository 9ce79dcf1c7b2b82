"""The signal codec as a profile setting: the default writes what the store always wrote (Blosc zstd-3,
bit-shuffle), another codec round-trips the same int16 values through zarr and the loader's direct
block reader, and params refuse codecs the store cannot write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import ConfigError, load_params
from pipeline.config.build import storage_spec
from pipeline.core.records import Provenance, Record
from pipeline.store.blocks import BlockReader, describe_signal
from pipeline.store.local import ShardStore, StorageSpec, read_signal, rows_for

REPO = Path(__file__).resolve().parents[1]


def _shard(tmp_path: Path, storage: StorageSpec) -> tuple[ShardStore, np.ndarray]:
    rng = np.random.default_rng(0)
    signal = np.cumsum(rng.normal(0, 0.01, (8, 2, 500)), axis=-1).astype(np.float32)
    prov = Provenance(files=(("r.dat", "0" * 64),), reader="test")
    records = [Record(f"t:r{i}", "t", signal[i], 500.0, ("I", "II"), None, (), prov) for i in range(8)]
    store = ShardStore(tmp_path / storage.codec, "codec")
    store.write_shard(
        "part-0", signal, rows_for(records, [f"u{i}" for i in range(8)], [500] * 8), storage, {}
    )
    return store, signal


def _codec_meta(store: ShardStore) -> dict[str, object]:
    meta = json.loads((store.root / "shards" / "part-0" / "signal" / "zarr.json").read_text())
    inner: dict[str, object] = meta["codecs"][0]["configuration"]["codecs"][1]
    return inner


def test_default_storage_keeps_blosc_zstd3_bitshuffle(tmp_path: Path) -> None:
    params = load_params(REPO / "params.yaml")
    spec = storage_spec(params.profiles["ecg12"])
    assert (spec.codec, spec.clevel, spec.shuffle) == ("zstd", 3, "bitshuffle")
    store, _ = _shard(tmp_path, spec)
    conf = _codec_meta(store)["configuration"]
    assert isinstance(conf, dict)
    assert (conf["cname"], conf["clevel"], conf["shuffle"]) == ("zstd", 3, "bitshuffle")


def test_lz4_shards_read_back_the_same_values_through_zarr_and_the_block_reader(tmp_path: Path) -> None:
    zstd_store, _ = _shard(tmp_path, StorageSpec("int16", 0.001, 4))
    lz4_store, _ = _shard(tmp_path, StorageSpec("int16", 0.001, 4, codec="lz4", clevel=9))
    conf = _codec_meta(lz4_store)["configuration"]
    assert isinstance(conf, dict) and conf["cname"] == "lz4" and conf["clevel"] == 9
    expected = read_signal(zstd_store.open_shard("part-0"))
    np.testing.assert_array_equal(read_signal(lz4_store.open_shard("part-0")), expected)
    sig = describe_signal(lz4_store, "part-0")
    assert sig.codec == "blosc"  # the loader's direct path, not the zarr fallback
    reader = BlockReader([sig])
    out = np.empty((4, 2, 500), dtype=np.int16)
    try:
        reader.read(0, 1, np.arange(4), out)
    finally:
        reader.close()
    np.testing.assert_array_equal(out.astype(np.float32) * np.float32(0.001), expected[4:8])


def test_params_refuse_an_unknown_codec_or_level() -> None:
    with pytest.raises(ConfigError, match="codec"):
        load_params(REPO / "params.yaml", ["profiles.ecg12.storage.codec=gzip"])
    with pytest.raises(ConfigError, match="clevel"):
        load_params(REPO / "params.yaml", ["profiles.ecg12.storage.clevel=12"])
