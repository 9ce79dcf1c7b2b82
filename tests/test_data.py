"""The torch loader over the shards: exactly-once epochs, seeded order, values, labels, layouts.

CUDA is not available here: the pin-memory path is tested only as far as a CPU machine allows
(asking for pinned memory without CUDA must quietly not pin).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
import zarr

import pipeline.dataset.loader as data_mod
import pipeline.store.blocks as blocks_mod
import pipeline.store.group as shards_mod
from pipeline.dataset.loader import (
    LoaderError,
    ShardBlockDataset,
    ShardRecordDataset,
    StaleIndexError,
    load_split,
    make_loader,
    resolve_pin_memory,
)
from pipeline.dataset.splits import index_from_store, write_index
from pipeline.store.blocks import BlockError
from pipeline.store.labels import read_labels, relabel
from pipeline.store.local import ShardStore, read_signal
from tests.test_splits import REPO, build_store, synthetic_specs

N = 90  # 6 shards of 16 (the last of 10), blocks of 4: partial last blocks included


@pytest.fixture(scope="module")
def store_and_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[ShardStore, Path]:
    root = tmp_path_factory.mktemp("loader")
    specs = synthetic_specs(N, seed=3, folds=False)
    for i in range(8, 12):  # one whole block of flat records: zarr writes no chunk for it
        specs[i]["zero"] = True
    store = build_store(root, specs, records_per_chunk=4, shard_records=16)
    index = index_from_store(store, fractions={"train": 0.7, "val": 0.1, "test": 0.2}, seed=0)
    path = root / "index.csv"
    write_index(path, index.rows, index.header)
    return store, path


def loader(store_index: tuple[ShardStore, Path], split: str = "train", **kw: Any) -> data_mod.ShardLoader:
    store, index = store_index
    args: dict[str, Any] = {"batch_size": 8, "shuffle": True, "seed": 0, "num_workers": 0} | kw
    return make_loader(store.root.parent, store.profile, index, split, **args)


def indices(batches: Iterable[Any]) -> list[int]:
    return [int(i) for batch in batches for i in batch[2].reshape(-1)]


def reference(store: ShardStore) -> dict[str, npt.NDArray[np.float32]]:
    """Record id → ``read_signal`` of its row (the store's own dequantisation)."""
    labels = read_labels(store)
    assert labels is not None
    out = {}
    for rid, shard, row in zip(labels.record_id, labels.shard, labels.row, strict=True):
        out[rid] = read_signal(store.open_shard(shard), slice(int(row), int(row) + 1))[0]
    return out


# --------------------------------------------------------------------------- exactly once, order


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_every_record_of_the_split_comes_exactly_once_per_epoch(
    store_and_index: tuple[ShardStore, Path], workers: int
) -> None:
    ld = loader(store_and_index, num_workers=workers)
    n = len(ld.records)
    assert 50 < n < N
    for epoch in (0, 1):
        ld.epoch = epoch
        batches = list(ld)
        assert sorted(indices(batches)) == list(range(n))
        assert len(batches) == len(ld)
        assert all(b[0].shape[0] <= 8 for b in batches)


def test_per_sample_mode_collated_by_the_loader_also_covers_the_split_once(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    ld = loader(store_and_index, num_workers=2, collate_in_dataset=False)
    batches = list(ld)
    assert sorted(indices(batches)) == list(range(len(ld.records)))
    assert len(batches) == len(ld)
    x, y, i = batches[0]
    assert x.shape[1:] == (2, 64) and y.shape[1] == 6 and i.dtype == torch.int64


def test_order_is_reproducible_per_seed_and_epoch_and_differs_between_epochs(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    a, b = loader(store_and_index), loader(store_and_index)
    first = indices(a)
    assert indices(b) == first
    a.set_epoch(1)
    second = indices(a)
    assert second != first and sorted(second) == sorted(first)
    b.epoch = 1
    assert indices(b) == second
    assert indices(loader(store_and_index, seed=1)) != first


def test_persistent_workers_reshuffle_per_epoch_like_fresh_workers(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    kept = loader(store_and_index, num_workers=2)
    assert kept.loader.persistent_workers
    first = indices(kept)
    kept.epoch = 1
    second = indices(kept)
    fresh = loader(store_and_index, num_workers=2, persistent_workers=False)
    assert indices(fresh) == first
    fresh.set_epoch(1)
    assert indices(fresh) == second != first


def test_drop_last_yields_only_full_batches_and_len_counts_them(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    ld = loader(store_and_index, drop_last=True, batch_size=16)
    batches = list(ld)
    assert all(b[0].shape[0] == 16 for b in batches) and len(batches) == len(ld)
    assert len(ld.records) - 16 < 16 * len(batches) <= len(ld.records)


def test_ranks_read_disjoint_parts_that_together_are_the_split(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    parts = [indices(loader(store_and_index, rank=r, world_size=2)) for r in (0, 1)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == list(range(len(loader(store_and_index).records)))


def test_a_small_shuffle_buffer_still_mixes_blocks(store_and_index: tuple[ShardStore, Path]) -> None:
    ld = loader(store_and_index, shuffle_buffer=1, batch_size=4)
    assert sorted(indices(ld)) == list(range(len(ld.records)))


# --------------------------------------------------------------------------- values and labels


def test_values_equal_read_signal_and_labels_match_the_label_store(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    store, _ = store_and_index
    ref = reference(store)
    labels = read_labels(store)
    assert labels is not None
    y_of = {rid: labels.y[i] for i, rid in enumerate(labels.record_id)}
    for workers in (0, 2):
        ld = loader(store_and_index, num_workers=workers)
        for x, y, index in ld:
            assert x.dtype == torch.float32 and y.dtype == torch.float32
            for k, i in enumerate(index.tolist()):
                rid = ld.record_ids[i]
                np.testing.assert_array_equal(x[k].numpy(), ref[rid])
                np.testing.assert_array_equal(y[k].numpy(), y_of[rid].astype(np.float32))
    assert any(not ref[f"ptbxl:r-{i:05d}"].any() for i in range(8, 12))


def test_evaluation_loader_yields_the_split_in_index_order(store_and_index: tuple[ShardStore, Path]) -> None:
    store, index = store_and_index
    ref = reference(store)
    for workers in (0, 2):
        ld = loader(store_and_index, split="test", shuffle=False, num_workers=workers)
        batches = list(ld)
        assert indices(batches) == list(range(len(ld.records))) and len(batches) == len(ld)
        x = torch.cat([b[0] for b in batches])
        expected = np.stack([ref[rid] for rid in ld.record_ids])
        np.testing.assert_array_equal(x.numpy(), expected)
    ds = ShardRecordDataset(load_split(store, index, "val"))
    x0, y0, i0 = ds[len(ds) - 1]
    assert i0 == len(ds) - 1 and x0.shape == (2, 64)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_pin_memory_on_a_machine_without_cuda_does_not_pin_or_crash(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    assert resolve_pin_memory(None) is torch.cuda.is_available()
    ld = loader(store_and_index, pin_memory=True, num_workers=1)
    assert ld.loader.pin_memory is torch.cuda.is_available()
    x, _, _ = next(iter(ld))
    assert x.is_pinned() is torch.cuda.is_available()


# --------------------------------------------------------------------------- layouts and errors


def test_shard_files_are_read_directly_with_their_index_checked(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    store, _ = store_and_index
    sig = store.signal_blocks(sorted(store.load_manifest().shards)[0])
    assert sig.codec == "blosc" and sig.block_rows == 4 and sig.n_blocks == 4
    empty = np.iinfo(np.uint64).max
    assert sig.index[2, 0] == empty  # the block of flat records was never written


def test_zarr_reads_and_zstd_shards_give_the_same_values(
    store_and_index: tuple[ShardStore, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected = {rid: x for x, rid in _by_record(loader(store_and_index))}
    monkeypatch.setattr(blocks_mod, "_direct_layout", lambda meta: None)
    assert {rid: x for x, rid in _by_record(loader(store_and_index))}.keys() == expected.keys()
    for x, rid in _by_record(loader(store_and_index)):
        np.testing.assert_array_equal(x, expected[rid])
    monkeypatch.undo()
    monkeypatch.setattr(shards_mod, "signal_codec", lambda itemsize, storage: zarr.codecs.ZstdCodec(level=3))
    zstd_store = build_store(tmp_path, synthetic_specs(20, seed=4, folds=False), records_per_chunk=4)
    index = index_from_store(zstd_store, fractions={"train": 1.0}, seed=0)
    write_index(tmp_path / "index.csv", index.rows, index.header)
    ld = make_loader(zstd_store.root.parent, "syn", tmp_path / "index.csv", "train", batch_size=8)
    assert {s.codec for s in ld.records.shards} == {"zstd"}
    ref = reference(zstd_store)
    for x, rid in _by_record(ld):
        np.testing.assert_array_equal(x, ref[rid])


def _by_record(ld: data_mod.ShardLoader) -> list[tuple[npt.NDArray[np.float32], str]]:
    return [(x[k].numpy(), ld.record_ids[int(i)]) for x, _, index in ld for k, i in enumerate(index)]


def test_an_index_made_from_other_labels_is_refused(
    store_and_index: tuple[ShardStore, Path], tmp_path: Path
) -> None:
    store, index = store_and_index
    copy = tmp_path / "syn"
    shutil.copytree(store.root, copy)
    other = ShardStore(copy, "syn")
    relabel(
        other,
        REPO / "data" / "labels",
        ("NORM", "AF", "MI", "BBB", "OTHER"),
        0.0,
        "ignore",
        {"ptbxl": "ptbxl"},
    )
    with pytest.raises(StaleIndexError, match="re-run the split stage"):
        load_split(other, index, "train")
    with pytest.raises(LoaderError, match="no split 'holdout'"):
        load_split(store, index, "holdout")


def test_a_corrupt_shard_index_is_refused(store_and_index: tuple[ShardStore, Path], tmp_path: Path) -> None:
    store, _ = store_and_index
    shutil.copytree(store.root, tmp_path / "syn")
    copy = ShardStore(tmp_path / "syn", "syn")
    name = sorted(copy.load_manifest().shards)[0]
    chunk = copy.shard_path(name) / "signal" / "c" / "0" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[-10] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    with pytest.raises(BlockError, match="checksum"):
        copy.signal_blocks(name)


def test_bad_loader_settings_are_errors(store_and_index: tuple[ShardStore, Path]) -> None:
    store, index = store_and_index
    records = load_split(store, index, "train")
    with pytest.raises(LoaderError, match="rank"):
        ShardBlockDataset(records, rank=2, world_size=2)
    with pytest.raises(LoaderError, match="batch_size"):
        ShardBlockDataset(records, batch_size=0)


def test_an_empty_split_loads_and_yields_nothing(
    store_and_index: tuple[ShardStore, Path], tmp_path: Path
) -> None:
    store, _ = store_and_index
    index = index_from_store(store, fractions={"train": 1.0, "test": 0.0}, seed=0)
    write_index(tmp_path / "index.csv", index.rows, index.header)
    for shuffle in (True, False):
        ld = make_loader(store.root.parent, "syn", tmp_path / "index.csv", "test", 8, shuffle, num_workers=0)
        assert len(ld) == 0 and list(ld) == [] and ld.record_ids == ()


def test_an_index_of_another_profile_is_refused(
    store_and_index: tuple[ShardStore, Path], tmp_path: Path
) -> None:
    store, index = store_and_index
    shutil.copytree(store.root, tmp_path / "other")
    with pytest.raises(LoaderError, match="an index of profile 'syn', not 'other'"):
        load_split(ShardStore(tmp_path / "other", "other"), index, "train")


def test_a_corrupt_block_is_an_error_naming_the_file_and_block(
    store_and_index: tuple[ShardStore, Path], tmp_path: Path
) -> None:
    store, _ = store_and_index
    shutil.copytree(store.root, tmp_path / "syn")
    copy = ShardStore(tmp_path / "syn", "syn")
    name = sorted(copy.load_manifest().shards)[0]
    sig = copy.signal_blocks(name)
    chunk = Path(str(sig.chunk_file))
    raw = bytearray(chunk.read_bytes())
    offset = int(sig.index[0, 0])
    raw[offset + 16 : offset + 40] = b"\xff" * 24  # past the Blosc header: the compressed stream
    chunk.write_bytes(bytes(raw))
    reader = blocks_mod.BlockReader([sig])
    out = np.empty((sig.block_rows, sig.channels, sig.length), dtype=sig.dtype)
    with pytest.raises(BlockError, match=r"block 0 does not decode"):
        reader.read(0, 0, np.arange(sig.block_rows, dtype=np.int64), out)
    reader.close()


def test_batches_of_the_main_process_are_never_overwritten_while_held(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    held = [(x, i) for x, _, i in loader(store_and_index, batch_size=4)]  # every batch kept
    assert len({x.data_ptr() for x, _ in held}) == len(held)
    streamed = [(x.clone(), i) for x, _, i in loader(store_and_index, batch_size=4)]  # each dropped
    for (a, ia), (b, ib) in zip(held, streamed, strict=True):
        assert torch.equal(ia, ib) and torch.equal(a, b)
    previous: tuple[torch.Tensor, torch.Tensor] | None = None
    for x, _, _ in loader(store_and_index, batch_size=4):
        if previous is not None:  # a view kept from the previous batch still holds its values
            view, copy = previous
            assert torch.equal(view[0], copy)
        previous = (x[1:], x[1].clone())


def _check_values(batches: Iterable[Any], ld: data_mod.ShardLoader, ref: dict[str, Any]) -> int:
    n = 0
    for x, _, index in batches:
        for k, i in enumerate(index.tolist()):
            np.testing.assert_array_equal(x[k].numpy(), ref[ld.record_ids[i]])
            n += 1
    return n


def test_worker_batches_come_through_a_shared_ring_and_are_copied_out(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    store, _ = store_and_index
    ref = reference(store)
    ld = loader(store_and_index, num_workers=2)
    ring = ld.dataset.ring  # type: ignore[attr-defined]  # DataLoader.dataset is typed Dataset
    assert ring is not None and len(ring.tensors) == 2 and len(ring.tensors[0]) == 3
    streamed = [(x.clone(), y, i) for x, y, i in ld]
    assert ring.copied == len(streamed) and _check_values(streamed, ld, ref) == len(ld.records)
    ld.epoch = 1
    held = list(ld)  # every batch kept: each is the consumer's own copy, never a ring slot
    assert 0 < ring.copied - len(streamed) <= len(held)
    assert not {x.untyped_storage().data_ptr() for x, _, _ in held} & {
        t.untyped_storage().data_ptr() for row in ring.tensors for t in row
    }
    assert _check_values(held, ld, ref) == len(ld.records)
    ld.epoch = 2
    for k, _ in enumerate(ld):  # an epoch abandoned half-way
        if k == 3:
            break
    ld.epoch = 3
    assert sorted(indices(ld)) == list(range(len(ld.records)))
    assert _check_values(list(ld), ld, ref) == len(ld.records)


def test_without_persistent_workers_there_is_no_ring(store_and_index: tuple[ShardStore, Path]) -> None:
    ld = loader(store_and_index, num_workers=1, persistent_workers=False)
    assert ld.dataset.ring is None  # type: ignore[attr-defined]  # DataLoader.dataset is typed Dataset
    assert sorted(indices(ld)) == list(range(len(ld.records)))
