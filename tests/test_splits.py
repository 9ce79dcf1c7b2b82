"""Leak-free splits: patient groups, PTB-XL folds, multi-label stratification, the index file."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, Record
from pipeline.dataset.splits import IndexRow, SplitError, index_from_store, read_index, write_index
from pipeline.dataset.stratify import group_keys, make_splits, split_counts
from pipeline.ingest.batch import run_batch
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import plan_ingest
from pipeline.signal.preprocess import SignalPlan
from pipeline.sources.base import SourceReader
from pipeline.store.labels import read_labels, relabel
from pipeline.store.local import ShardStore, StorageSpec

REPO = Path(__file__).resolve().parents[1]
VOCAB = ("NORM", "AF", "MI", "BBB", "OTHER", "NOISY")


# --------------------------------------------------------------------------- a synthetic store


class SyntheticReader(SourceReader):
    """One JSON file per record: ``{"patient": str|null, "fold": int|null, "codes": [...],
    "zero": bool}``; the signal is seeded noise ``(2, length)`` mV (zeros when ``zero``)."""

    kind = "synthetic"
    version = "1"
    length = 64

    def discover(self) -> Discovery:
        files = sorted(p.name for p in self.root.glob("*.json"))
        return Discovery(units=tuple(InputUnit(f[:-5], (f,)) for f in files))

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record]:
        spec = json.loads(self.resolve(unit.files[0]).read_text(encoding="utf-8"))
        seed = int(unit.key.split("-")[1])
        x = np.random.default_rng(seed).normal(0, 0.5, (2, self.length)).astype(np.float32)
        meta = {} if spec["fold"] is None else {"strat_fold": str(spec["fold"])}
        yield Record(
            record_id=self.record_id(unit.key),
            source=self.name,
            signal=np.zeros_like(x) if spec.get("zero") else x,
            fs_hz=None,
            leads=("I", "II"),
            patient_id=spec["patient"],
            raw_labels=tuple(RawLabel(c, 100.0) for c in spec["codes"]),
            provenance=provenance,
            meta=meta,
        )


PLAN = SignalPlan(
    leads=("I", "II"), lead_aliases=(), fs_hz=None, length=SyntheticReader.length, crop="start",
    baseline_hz=None, notch_hz=None, notch_q=30.0, bandpass_hz=None, filter_order=2, normalise="none",
    max_nan_fraction=0.0, flat_ptp_mv=0.0, reject_flat=False, min_duration_s=0.0,
)  # fmt: skip


def build_store(
    root: Path,
    specs: Sequence[dict[str, object]],
    records_per_chunk: int = 4,
    shard_records: int = 16,
    vocabulary: Sequence[str] = VOCAB,
) -> ShardStore:
    """Ingest ``specs`` (see :class:`SyntheticReader`) with the library and label them with the
    repository's PTB-XL table; the source is named ``ptbxl`` so that its codes map."""
    src = root / "src"
    src.mkdir(parents=True)
    for i, spec in enumerate(specs):
        (src / f"r-{i:05d}.json").write_text(json.dumps(spec), encoding="utf-8")
    store = ShardStore(root / "store" / "syn", "syn")
    readers: dict[str, SourceReader] = {"ptbxl": SyntheticReader("ptbxl", src)}
    storage = StorageSpec(dtype="int16", scale_mv=0.001, records_per_chunk=records_per_chunk)
    manifest = store.load_manifest()
    plan = plan_ingest("syn", PLAN, storage, readers, manifest, batch_units=shard_records)
    results = [run_batch(b, readers, PLAN, storage, store, {}, shard_records) for b in plan.batches]
    commit(plan, results, store, manifest, {"flow_run_id": None})
    relabel(store, REPO / "data" / "labels", vocabulary, 0.0, "ignore", {"ptbxl": "ptbxl"})
    return store


def synthetic_specs(n: int, seed: int = 0, folds: bool = True) -> list[dict[str, object]]:
    """Records of patients with 1-3 records each, PTB-XL codes, folds 1-10 for some patients."""
    rng = np.random.default_rng(seed)
    codes = ["NORM", "IMI", "AFIB", "CLBBB", "LVH"]
    specs: list[dict[str, object]] = []
    patient = 0
    while len(specs) < n:
        patient += 1
        fold = int(rng.integers(1, 11)) if folds and rng.random() < 0.5 else None
        pid = None if rng.random() < 0.2 else f"p{patient}"
        for _ in range(1 if pid is None else int(rng.integers(1, 4))):
            picked = [c for c, p in zip(codes, [0.5, 0.2, 0.15, 0.1, 0.2], strict=True) if rng.random() < p]
            specs.append({"patient": pid, "fold": fold, "codes": picked or ["NORM"]})
    return specs[:n]


# --------------------------------------------------------------------------- helpers


def multilabel_set(n: int, seed: int) -> tuple[list[str], list[str | None], npt.NDArray[np.uint8]]:
    """``n`` records of patients with 1-4 records, 5 labels of prevalence 0.5 .. 0.03, correlated."""
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    pids: list[str | None] = []
    rows = []
    prevalence = np.array([0.5, 0.25, 0.12, 0.06, 0.03])
    patient = 0
    while len(ids) < n:
        patient += 1
        base = rng.random(5) < prevalence
        for _ in range(int(rng.integers(1, 5))):
            y = base | (rng.random(5) < prevalence / 4)
            y[3] |= bool(y[4] and rng.random() < 0.5)  # label 3 often comes with the rarest one
            ids.append(f"src:{len(ids)}")
            pids.append(f"{patient}")
            rows.append(y)
    return ids[:n], pids[:n], np.asarray(rows[:n], dtype=np.uint8)


def assert_no_group_in_two_splits(groups: Sequence[str], splits: Sequence[str]) -> None:
    where: dict[str, str] = {}
    for g, s in zip(groups, splits, strict=True):
        assert where.setdefault(g, s) == s, f"group {g} is in {where[g]} and {s}"


# --------------------------------------------------------------------------- groups


def test_groups_are_patients_within_their_source_and_records_without_a_patient() -> None:
    ids = ["mitbih:100_0", "cpsc2021:a", "mitbih:100_1", "cinc2017:A0001", "x:1"]
    keys = group_keys(ids, ["100", "100", "100", None, " "])
    assert keys == [
        "patient:mitbih:100",
        "patient:cpsc2021:100",
        "patient:mitbih:100",
        "record:cinc2017:A0001",
        "record:x:1",
    ]
    assert group_keys(ids[:2], ["100", "100"], group_by_source=False) == ["patient:100", "patient:100"]


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 12).map(str)),
            st.lists(st.booleans(), min_size=3, max_size=3),
            st.one_of(st.none(), st.integers(1, 10)),
            st.sampled_from(["a", "b"]),
        ),
        min_size=1,
        max_size=80,
    ),
    seed=st.integers(0, 2**31),
    use_folds=st.booleans(),
)
def test_no_patient_is_ever_in_two_splits(
    data: list[tuple[str | None, list[bool], int | None, str]], seed: int, use_folds: bool
) -> None:
    ids = [f"{src}:{i}" for i, (_, _, _, src) in enumerate(data)]
    pids = [p for p, _, _, _ in data]
    y = np.asarray([lab for _, lab, _, _ in data], dtype=np.uint8)
    folds = [f for _, _, f, _ in data] if use_folds else None
    splits = make_splits(ids, pids, y, seed=seed, folds=folds)
    assert len(splits) == len(ids) and set(splits) <= {"train", "val", "test"}
    assert_no_group_in_two_splits(group_keys(ids, pids), splits)


# --------------------------------------------------------------------------- determinism, balance


def test_same_seed_gives_the_same_splits_and_another_seed_other_splits() -> None:
    ids, pids, y = multilabel_set(600, seed=1)
    a = make_splits(ids, pids, y, seed=7)
    assert make_splits(ids, pids, y, seed=7) == a
    assert make_splits(ids, pids, y, seed=8) != a


def test_splits_do_not_depend_on_record_order() -> None:
    ids, pids, y = multilabel_set(300, seed=2)
    perm = np.random.default_rng(0).permutation(len(ids))
    shuffled = make_splits([ids[i] for i in perm], [pids[i] for i in perm], y[perm], seed=3)
    by_id = dict(zip([ids[i] for i in perm], shuffled, strict=True))
    assert [by_id[i] for i in ids] == make_splits(ids, pids, y, seed=3)


def test_sizes_and_label_proportions_follow_the_fractions_in_every_split() -> None:
    ids, pids, y = multilabel_set(4000, seed=3)
    fractions = {"train": 0.8, "val": 0.1, "test": 0.1}
    splits = np.asarray(make_splits(ids, pids, y, fractions, seed=0))
    totals = y.sum(axis=0)
    for name, f in fractions.items():
        mask = splits == name
        assert abs(mask.sum() - f * len(ids)) <= 0.005 * len(ids), (name, mask.sum())
        got = y[mask].sum(axis=0)
        # Within 3% of the wanted count (or 2 records, for the rarest label in small splits).
        assert np.all(np.abs(got - f * totals) <= np.maximum(0.03 * f * totals, 2)), (name, got, f * totals)
    # Stratified beats a plain random patient split on the rare labels.
    groups = np.unique(np.asarray(pids, dtype=str), return_inverse=True)[1]
    rand = np.random.default_rng(0).choice(["train", "val", "test"], size=groups.max() + 1, p=[0.8, 0.1, 0.1])
    rand_err = np.abs(y[rand[groups] == "test"].sum(axis=0) - 0.1 * totals)[3:].sum()
    ours_err = np.abs(y[splits == "test"].sum(axis=0) - 0.1 * totals)[3:].sum()
    assert ours_err < rand_err


def test_split_counts_report_records_and_positives_per_split() -> None:
    y = np.array([[1, 0], [1, 1], [0, 1]], dtype=np.uint8)
    counts = split_counts(["train", "test", "train"], y, ["A", "B"])
    assert counts == {"test": {"records": 1, "A": 1, "B": 1}, "train": {"records": 2, "A": 1, "B": 1}}


# --------------------------------------------------------------------------- folds


def test_records_with_a_fold_follow_the_fold_map_and_their_patient_follows_them() -> None:
    ids, pids, y = multilabel_set(500, seed=4)
    folds: list[int | None] = [(int(p) % 10) + 1 if int(p) % 3 else None for p in pids]  # type: ignore[arg-type]  # pids are str | None; only str reach int()
    # Patient 3k+... without folds except one record: that record's fold decides for all.
    pids[0:3] = ["x", "x", "x"]
    folds[0:3] = [None, 10, None]
    splits = make_splits(ids, pids, y, seed=0, folds=folds)
    expected = dict.fromkeys(range(1, 9), "train") | {9: "val", 10: "test"}
    for s, f in zip(splits, folds, strict=True):
        if f is not None:
            assert s == expected[f]
    assert splits[0:3] == ["test"] * 3
    assert_no_group_in_two_splits(group_keys(ids, pids), splits)
    unfolded = [s for s, f, p in zip(splits, folds, pids, strict=True) if f is None and p != "x"]
    assert {"train", "val", "test"} <= set(unfolded)


def test_a_patient_whose_records_disagree_on_the_fold_goes_to_one_split_by_majority() -> None:
    ids = ["s:1", "s:2", "s:3", "s:4"]
    splits = make_splits(ids, ["p", "p", "p", "q"], np.ones((4, 1), np.uint8), folds=[1, 1, 10, 10])
    assert splits == ["train", "train", "train", "test"]


def test_a_fold_missing_from_the_map_and_bad_settings_are_errors() -> None:
    y = np.ones((2, 1), np.uint8)
    with pytest.raises(SplitError, match="fold 11"):
        make_splits(["s:1", "s:2"], [None, None], y, folds=[1, 11])
    with pytest.raises(SplitError, match="sum to 1"):
        make_splits(["s:1", "s:2"], [None, None], y, fractions={"train": 0.5, "test": 0.2})
    with pytest.raises(SplitError, match="both"):
        make_splits(["s:1"], [None], y[:1], folds=[1], fold_map={"train": [1], "test": [1]})
    with pytest.raises(SplitError, match="expected shape"):
        make_splits(["s:1", "s:2"], [None, None], np.ones((3, 1), np.uint8))


# --------------------------------------------------------------------------- normal-only train


def test_normal_only_train_keeps_every_anomaly_out_of_train() -> None:
    rng = np.random.default_rng(5)
    n = 1000
    y = np.zeros((n, len(VOCAB)), np.uint8)
    normal = rng.random(n) < 0.6
    y[normal, 0] = 1
    y[~normal, 4] = 1
    y[~normal & (rng.random(n) < 0.3), 0] = 1  # NORM + OTHER is not "exactly normal"
    y[:5] = 0  # unlabelled: not known to be normal
    ids = [f"ucr:{i}" for i in range(n)]
    pids: list[str | None] = [None] * n
    pids[10:12] = ["p", "p"]  # one patient, one normal and one abnormal record
    y[10], y[11] = [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]
    splits = np.asarray(make_splits(ids, pids, y, seed=0, normal_only_train="NORM", vocabulary=VOCAB))
    exactly_normal = (y[:, 0] == 1) & (y.sum(axis=1) == 1)
    assert np.all(exactly_normal[splits == "train"])
    assert not np.any(splits[~exactly_normal] == "train")
    assert splits[10] == splits[11] != "train"
    anomalies = splits[~exactly_normal]
    assert abs(np.sum(anomalies == "val") - np.sum(anomalies == "test")) <= 2
    normals = splits[exactly_normal & (np.arange(n) != 10)]
    assert abs(np.mean(normals == "train") - 0.8) < 0.02


def test_normal_only_train_needs_a_known_normal_label() -> None:
    with pytest.raises(SplitError, match="vocabulary"):
        make_splits(
            ["u:1"], [None], np.ones((1, 2), np.uint8), normal_only_train="NORM", vocabulary=["A", "B"]
        )


# --------------------------------------------------------------------------- tiny inputs


def test_tiny_inputs_give_sensible_splits() -> None:
    assert make_splits([], [], np.zeros((0, 3), np.uint8)) == []
    assert make_splits(["s:1"], [None], np.ones((1, 1), np.uint8)) == ["train"]
    assert make_splits(["s:1"], [None], np.zeros((1, 0), np.uint8)) == ["train"]
    ten = make_splits([f"s:{i}" for i in range(10)], [None] * 10, np.ones((10, 1), np.uint8))
    assert sorted(ten.count(s) for s in ("train", "val", "test")) == [1, 1, 8]
    assert make_splits(["s:1", "s:2"], [None, None], np.ones((2, 1), np.uint8), {"test": 1.0}) == ["test"] * 2


# --------------------------------------------------------------------------- index file


def test_index_file_round_trips_rows_and_header(tmp_path: Path) -> None:
    rows = [IndexRow("ptbxl:00001", "part-000000-00", 0, "train", "patient:ptbxl:1"),
            IndexRow('odd,"id"', "part-000000-00", 1, "test", 'record:odd,"id"')]  # fmt: skip
    header = {"seed": 3, "fractions": {"train": 0.9, "test": 0.1}, "labels_digest": "abc"}
    write_index(tmp_path / "idx.csv", rows, header)
    back = read_index(tmp_path / "idx.csv")
    assert back.rows == tuple(rows)
    assert {k: v for k, v in back.header.items() if k != "format"} == header
    assert list(back.header["fractions"]) == ["train", "test"]  # split order is kept
    assert back.split_rows("test") == (rows[1],)
    text = (tmp_path / "idx.csv").read_text(encoding="utf-8")
    assert text.startswith("# format:") and "# seed: 3\n" in text


def test_a_malformed_index_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "idx.csv"
    write_index(path, [IndexRow("a:1", "s", 0, "train", "record:a:1")], {"seed": 0})
    path.write_text(path.read_text(encoding="utf-8") + "a:2,s,notanumber,train,g\n", encoding="utf-8")
    with pytest.raises(SplitError, match=r"idx.csv:\d+: expected 5 fields"):
        read_index(path)
    path.write_text("record_id,shard,row,split,group\n", encoding="utf-8")
    with pytest.raises(SplitError, match="not a split index"):
        read_index(path)


def test_index_from_store_splits_the_live_records_by_patient_and_fold(tmp_path: Path) -> None:
    specs = synthetic_specs(60, seed=1)
    store = build_store(tmp_path, specs)
    index = index_from_store(store, seed=0)
    labels = read_labels(store)
    assert labels is not None
    assert [r.record_id for r in index.rows] == list(labels.record_id)
    assert [(r.shard, r.row) for r in index.rows] == list(zip(labels.shard, labels.row.tolist(), strict=True))
    assert_no_group_in_two_splits([r.group for r in index.rows], [r.split for r in index.rows])
    fold_split = dict.fromkeys(range(1, 9), "train") | {9: "val", 10: "test"}
    by_id = {r.record_id: r for r in index.rows}
    for i, spec in enumerate(specs):
        row = by_id[f"ptbxl:r-{i:05d}"]
        assert row.group == (
            f"patient:ptbxl:{spec['patient']}" if spec["patient"] else f"record:{row.record_id}"
        )
        if spec["fold"] is not None:
            assert row.split == fold_split[int(str(spec["fold"]))]
    assert index.header["labels_digest"] == labels.digest
    assert index.header["records_with_fold"] == sum(s["fold"] is not None for s in specs)
    assert sum(c["records"] for c in index.header["counts"].values()) == 60
    write_index(tmp_path / "index.csv", index.rows, index.header)
    assert read_index(tmp_path / "index.csv").rows == index.rows
