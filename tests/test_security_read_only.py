"""Security (d): HDF5 and zarr inputs are opened read-only and their bytes do not change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import pytest
import zarr

from pipeline.sources.code import CodeReader
from tests.security_support import code15_part, exams_csv, read_all, recorded_opens, tree_digest


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(source root, a sibling folder outside it) under tmp_path."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


# --------------------------------------------------------------------------- (d) read-only inputs


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _writes(opened: list[tuple[str, object, object]], folder: Path) -> list[str]:
    """Opens under ``folder`` that could write: a mode with w/a/x/+ or write flags, or h5py not 'r'."""
    base = os.path.realpath(folder) + os.sep
    bad = []
    for path, mode, flags in opened:
        if not path.startswith(base):
            continue
        if isinstance(mode, str) and mode.startswith("h5py:"):
            writes = mode != "h5py:r"
        elif isinstance(mode, str):
            writes = any(ch in mode for ch in "wax+")
        else:
            writes = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        if writes:
            bad.append(f"{path} ({mode}, {flags})")
    return bad


def test_code_hdf5_parts_are_opened_read_only_and_left_unchanged(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = layout
    code15_part(root, "exams_part0.hdf5", [5, 6, 0])
    exams_csv(root / "exams.csv", [(5, "exams_part0.hdf5"), (6, "exams_part0.hdf5")])
    before = tree_digest(root)
    reader = CodeReader("code", root, block_size=1)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert [r.record_id for r in records] == ["code:5", "code:6"] and not reasons
    h5_opens = [mode for path, mode, _ in opened if path.endswith(".hdf5")]
    assert h5_opens and set(h5_opens) == {"h5py:r"}
    assert _writes(opened, root) == []
    assert tree_digest(root) == before


def test_zarr_shards_labels_and_the_loader_read_the_store_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.dataset.loader import make_loader
    from pipeline.dataset.splits import index_from_store, write_index
    from pipeline.store.labels import read_labels
    from pipeline.store.local import read_signal
    from tests.test_splits import build_store, synthetic_specs

    store = build_store(
        tmp_path / "s", synthetic_specs(24, seed=1, folds=False), records_per_chunk=4, shard_records=8
    )
    index = index_from_store(store, fractions={"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)
    index_path = tmp_path / "index.csv"
    write_index(index_path, index.rows, index.header)
    before = tree_digest(store.root)
    modes: list[object] = []
    for name in ("open", "open_group", "open_array"):
        real = getattr(zarr, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            modes.append(kwargs.get("mode"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(zarr, name, spy)
    with recorded_opens(monkeypatch) as opened:
        manifest = store.load_manifest()
        n = sum(read_signal(store.open_shard(name)).shape[0] for name in manifest.shards)
        labels = read_labels(store)
        seen = sum(len(batch[0]) for split in ("train", "val", "test")
                   for batch in make_loader(store.root.parent, store.profile, index_path, split,
                                            batch_size=4, shuffle=True, seed=0, num_workers=0))  # fmt: skip
    assert n == 24 and labels is not None and seen == 24
    assert modes and set(modes) == {"r"}
    assert [p for p, _, _ in opened if p.startswith(os.path.realpath(store.root))], "the spy saw no reads"
    assert _writes(opened, store.root) == []
    assert tree_digest(store.root) == before


def test_the_write_detector_sees_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Guards the two tests above against passing because the hook saw nothing.
    with recorded_opens(monkeypatch) as opened:
        (tmp_path / "a.txt").write_text("x")
        with h5py.File(tmp_path / "b.h5", "w"):
            pass
        fd = os.open(tmp_path / "c", os.O_WRONLY | os.O_CREAT)
        os.close(fd)
    assert len(_writes(opened, tmp_path)) == 3
