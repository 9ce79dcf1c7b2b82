"""From the store's unified labels to one model's targets: column selection, which records a
single-label model can use, the autoencoder's is-anomalous target, and the loader wrapper that
training relies on for exact resumption (``len`` and ``set_epoch`` passed through)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from pipeline.dataset.targets import TargetBatches, Targets, labels_of
from pipeline.store.labels import LabelSet

VOCAB = ("NORM", "AF", "MI", "BBB", "OTHER", "NOISY")

# rows: NORM only, AF only, NORM+AF, no label, MI+BBB, OTHER only
Y = np.array(
    [
        [1, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 0],
    ],
    dtype=np.uint8,
)


def test_columns_are_the_vocabulary_positions_of_the_classes_in_the_model_order() -> None:
    t = Targets("multilabel", VOCAB, ("MI", "NORM", "NOISY"))
    assert t.columns == [2, 0, 5]
    out = t.of(Y)
    assert out.dtype == np.float32 and out.shape == (6, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, Y[:, [2, 0, 5]].astype(np.float32))


def test_multilabel_can_use_every_record_even_one_with_no_label() -> None:
    t = Targets("multilabel", VOCAB, VOCAB)
    assert t.usable(Y).tolist() == [True] * 6
    np.testing.assert_array_equal(t.of(Y), Y.astype(np.float32))


def test_multiclass_uses_only_records_with_exactly_one_of_its_classes() -> None:
    t = Targets("multiclass", VOCAB, ("NORM", "AF", "OTHER", "NOISY"))
    # NORM, AF: one class; NORM+AF: two; none; MI+BBB: none of *its* classes; OTHER: one
    assert t.usable(Y).tolist() == [True, True, False, False, False, True]
    usable = Y[t.usable(Y)]
    np.testing.assert_array_equal(t.of(usable).sum(axis=1), np.ones(3, dtype=np.float32))


def test_multiclass_labels_outside_its_classes_do_not_count_against_a_record() -> None:
    t = Targets("multiclass", VOCAB, ("NORM", "AF"))
    y = np.array([[1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 1, 1]], dtype=np.uint8)  # NORM+MI+BBB, AF+OTHER+NOISY
    assert t.usable(y).tolist() == [True, True]
    np.testing.assert_array_equal(t.of(y), np.array([[1, 0], [0, 1]], dtype=np.float32))


def test_reconstruction_target_is_anomalous_unless_exactly_the_normal_class() -> None:
    t = Targets("reconstruction", VOCAB, (), normal_class="NORM")
    out = t.of(Y)
    assert out.shape == (6,) and out.dtype == np.float32
    # NORM only is normal; NORM+AF is not; a record with no label is not known normal
    assert out.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert t.usable(Y).all()


def test_reconstruction_with_another_normal_class() -> None:
    t = Targets("reconstruction", VOCAB, (), normal_class="OTHER")
    assert t.of(Y).tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_of_tensor_equals_of_on_the_numpy_labels() -> None:
    t = Targets("multiclass", VOCAB, ("AF", "NORM"))
    got = t.of_tensor(torch.from_numpy(Y.astype(np.float32)))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), t.of(Y))


class _Loader:
    """A stand-in for ShardLoader: ``(x, y_vocab, index)`` batches, ``len`` and ``set_epoch``."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.batches = [
            (torch.randn(2, 1, 8), torch.from_numpy(Y[:2].astype(np.float32)), torch.tensor([0, 1])),
            (torch.randn(4, 1, 8), torch.from_numpy(Y[2:].astype(np.float32)), torch.tensor([2, 3, 4, 5])),
        ]

    def __len__(self) -> int:
        return 17  # deliberately not len(batches): the wrapper must ask, not count

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
        return iter(self.batches)


def test_target_batches_pass_len_and_set_epoch_to_the_loader() -> None:
    loader = _Loader()
    wrapped = TargetBatches(loader, Targets("multilabel", VOCAB, ("AF",)))
    assert len(wrapped) == 17
    wrapped.set_epoch(3)
    wrapped.set_epoch(0)
    assert loader.epochs == [3, 0]


def test_target_batches_convert_labels_and_keep_inputs_and_indices() -> None:
    loader = _Loader()
    targets = Targets("reconstruction", VOCAB, (), normal_class="NORM")
    out = list(TargetBatches(loader, targets))
    assert len(out) == 2
    for (x, y, index), (x0, y0, index0) in zip(out, loader.batches, strict=True):
        assert x is x0 and index is index0
        np.testing.assert_array_equal(y.numpy(), targets.of(y0.numpy()))
    assert torch.cat([b[1] for b in out]).tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_labels_of_names_each_records_labels_in_vocabulary_order() -> None:
    t = Targets("multiclass", VOCAB, ("NORM", "AF"))
    assert labels_of(t, Y) == [["NORM"], ["AF"], ["NORM", "AF"], [], ["MI", "BBB"], ["OTHER"]]


def _label_set() -> LabelSet:
    return LabelSet(
        record_id=tuple(f"s:{i}" for i in range(6)),
        shard=("a", "a", "a", "b", "b", "b"),
        row=np.arange(6, dtype=np.int64) * 10,
        y=Y.copy(),
        vocabulary=VOCAB,
        digest="d" * 64,
    )


def test_label_set_subset_takes_the_rows_at_the_positions_in_that_order() -> None:
    labels = _label_set()
    sub = labels.subset(np.array([4, 0, 5], dtype=np.int64))
    assert sub.record_id == ("s:4", "s:0", "s:5")
    assert sub.shard == ("b", "a", "b")
    assert sub.row.tolist() == [40, 0, 50]
    np.testing.assert_array_equal(sub.y, Y[[4, 0, 5]])
    assert sub.vocabulary == VOCAB and sub.digest == labels.digest


def test_label_set_subset_by_a_usable_mask_and_empty() -> None:
    labels = _label_set()
    keep = Targets("multiclass", VOCAB, ("NORM", "AF", "OTHER", "NOISY")).usable(labels.y)
    sub = labels.subset(np.flatnonzero(keep))
    assert sub.record_id == ("s:0", "s:1", "s:5")
    empty = labels.subset(np.zeros(0, dtype=np.int64))
    assert empty.record_id == () and empty.y.shape == (0, len(VOCAB))
