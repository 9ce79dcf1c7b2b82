"""The class-balanced sampler: repeat-factor sampling over the shard blocks (record weights), its
weights per class, and that the loader yields exactly what ``len()`` promised."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.dataset.loader import LoaderError, load_split, make_loader
from pipeline.dataset.splits import index_from_store, write_index
from pipeline.dataset.targets import Targets
from pipeline.store.local import ShardStore
from pipeline.training.stage import LoaderSettings, balanced_weights
from tests.test_splits import build_store, synthetic_specs

N = 120


@pytest.fixture(scope="module")
def store_and_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[ShardStore, Path]:
    root = tmp_path_factory.mktemp("sampler")
    store = build_store(root, synthetic_specs(N, seed=4, folds=False), records_per_chunk=4, shard_records=16)
    index = index_from_store(store, fractions={"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    path = root / "index.csv"
    write_index(path, index.rows, index.header)
    return store, path


def _loader(si: tuple[ShardStore, Path], weights: np.ndarray | None, **kw: object):  # type: ignore[no-untyped-def]
    store, index = si
    return make_loader(
        store.root.parent, store.profile, index, "train", batch_size=8, shuffle=True, seed=0,
        record_weights=weights, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_weights_repeat_records_in_expectation_and_len_counts_what_is_yielded(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    n = len(_loader(store_and_index, None).records)
    weights = np.ones(n)
    weights[: n // 4] = 5.0  # a quarter of the records five times as likely
    seen: Counter[int] = Counter()
    epochs = 30
    for epoch in range(epochs):
        ld = _loader(store_and_index, weights)
        ld.set_epoch(epoch)
        batches = list(ld)
        assert len(batches) == len(ld)
        got = [int(i) for _, _, index in batches for i in index]
        expected = ld.dataset.repeats()
        assert Counter(got) == Counter({i: int(c) for i, c in enumerate(expected) if c})
        seen.update(got)
    heavy = sum(seen[i] for i in range(n // 4)) / (n // 4) / epochs
    light = sum(seen[i] for i in range(n // 4, n)) / (n - n // 4) / epochs
    assert heavy / light == pytest.approx(5.0, rel=0.1)
    assert sum(seen.values()) / epochs == pytest.approx(n, rel=0.05)


def test_a_weighted_epoch_is_a_function_of_seed_and_epoch_with_workers_too(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    n = len(_loader(store_and_index, None).records)
    weights = np.linspace(0.1, 3.0, n)

    def order(epoch: int, workers: int) -> list[int]:
        ld = _loader(store_and_index, weights, num_workers=workers)
        ld.set_epoch(epoch)
        out = [int(i) for _, _, index in ld for i in index]
        assert len(out) == sum(ld.dataset.records_per_worker())
        return out

    assert order(3, 0) == order(3, 0)
    assert order(3, 0) != order(4, 0)
    assert Counter(order(3, 2)) == Counter(order(3, 0))  # same multiset, dealt to two workers


def test_zero_weights_leave_records_out_and_bad_weights_are_refused(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    n = len(_loader(store_and_index, None).records)
    weights = np.zeros(n)
    weights[::3] = 1.0
    got = {int(i) for _, _, index in _loader(store_and_index, weights) for i in index}
    assert got <= set(range(0, n, 3))
    for bad in (np.ones(n - 1), -np.ones(n), np.zeros(n), np.full(n, np.nan)):
        with pytest.raises(LoaderError, match="record_weights"):
            _loader(store_and_index, bad)


def test_balanced_weights_give_every_class_the_same_expected_share(
    store_and_index: tuple[ShardStore, Path],
) -> None:
    store, index = store_and_index
    y = load_split(store, index, "train").y
    names = tuple(f"c{k}" for k in range(y.shape[1]))
    present = np.asarray(y).sum(axis=0) > 0
    # a multiclass view: one class per record (its first label), as CinC 2017's N/A/O/~
    first = np.argmax(np.asarray(y)[:, present], axis=1)
    k = int(present.sum())
    one_hot = np.eye(k, dtype=np.float32)[first]
    mc = Targets("multiclass", tuple(f"c{j}" for j in range(k)), tuple(f"c{j}" for j in range(k)))
    w = balanced_weights(mc, one_hot, power=1.0)
    share = np.array([w[first == j].sum() for j in range(k)])
    assert np.allclose(share[share > 0], share[share > 0][0])
    half = balanced_weights(mc, one_hot, power=0.5)
    counts = np.bincount(first, minlength=k)
    assert np.allclose(half, counts[first] ** -0.5)
    assert np.allclose(balanced_weights(mc, one_hot, power=0.0), 1.0)
    multilabel = balanced_weights(Targets("multilabel", names, names), np.asarray(y), 1.0)
    assert multilabel.shape == (len(y),) and np.all(multilabel > 0)


def test_sampler_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="sampler"):
        LoaderSettings(sampler="weighted")
    with pytest.raises(ValueError, match="balance_power"):
        LoaderSettings(balance_power=2.0)
