"""The same raw tree gives the same stored bytes: two ingests into fresh stores, from raw trees in two
different folders, on the threads task runner with 2 workers and several batches, hash the same by
DVC's own directory hashing (``dvc add``, with this repository's ``.dvcignore``). Run ids, times and
absolute paths live in the run log (``runs.json``), the machine-local stat cache and the stage's
provenance record, never in the hashed files."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.demo.raw_tree import write_demo_data
from pipeline.store.local import ShardStore
from pipeline.store.manifest import Manifest, RunEntry, ShardEntry, json_bytes
from tests.pipeline_repo import REPO, run
from tests.train_support import CFG, train_tiny

PROFILES = ("ecg12", "lead1_af", "beats140")


def _project(root: Path, raw: Path) -> Path:
    """A project folder with its own params.yaml whose demo sources read ``raw`` (other sources absent)."""
    root.mkdir(parents=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["labels"]["tables_dir"] = str(REPO / "data" / "labels")
    params["ingest"].update({"task_runner": "threads", "workers": 2, "batch_units": 16})
    for name in ("ptbxl", "cinc2017", "ucr"):
        params["sources"][name]["root"] = str(raw / name)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def _dvc_hashes(stores: dict[str, Path], work: Path) -> dict[str, str]:
    """DVC's md5 of each store folder (``dvc add`` in a scratch DVC repo with this repo's .dvcignore)."""
    work.mkdir()
    run(["dvc", "init", "--no-scm", "-q"], work)
    shutil.copy(REPO / ".dvcignore", work / ".dvcignore")
    out = {}
    for key, store in stores.items():
        shutil.copytree(store, work / key)
        run(["dvc", "add", "-q", key], work)
        meta = yaml.safe_load((work / f"{key}.dvc").read_text())
        out[key] = str(meta["outs"][0]["md5"])
    return out


@pytest.mark.slow
@pytest.mark.prefect
def test_two_fresh_ingests_of_the_same_raw_tree_from_different_folders_have_equal_dvc_hashes(
    tmp_path: Path,
) -> None:
    raw_a = tmp_path / "raw_a"
    write_demo_data(raw_a, seed=0, n_ptbxl=48, n_cinc2017=48, n_ucr=60)
    raw_b = tmp_path / "elsewhere" / "raw_b"
    shutil.copytree(raw_a, raw_b)
    stores: dict[str, Path] = {}
    for tag, raw in (("a", raw_a), ("b", raw_b)):
        project = _project(tmp_path / f"project_{tag}", raw)
        run(["ecgpipe", "ingest", *[arg for p in PROFILES for arg in ("--profile", p)]], project)
        for profile in PROFILES:
            store = project / "data" / "shards" / profile
            if profile != "beats140":  # UCR is two units (train, test files): one batch
                assert len(ShardStore(store, profile).load_manifest().shards) >= 2, "several batches"
            assert (store / "runs.json").is_file() and (store / "file_cache.json").is_file()
            stores[f"{tag}_{profile}"] = store
    hashes = _dvc_hashes(stores, tmp_path / "dvc")
    for profile in PROFILES:
        assert hashes[f"a_{profile}"] == hashes[f"b_{profile}"], profile
    # what does differ is only in the ignored files: run ids/times and absolute paths
    a, b = stores["a_lead1_af"], stores["b_lead1_af"]
    assert (a / "runs.json").read_bytes() != (b / "runs.json").read_bytes()
    assert str(raw_a) not in (a / "ingest_report.json").read_text()


def test_run_ids_and_times_go_to_the_run_log_not_the_manifest(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "p")
    manifest = Manifest(
        profile="p",
        shards={"part-000000-00": ShardEntry(n_records=1, sha256="a" * 64, nbytes=1, run="r1", created="t1")},
        runs=[RunEntry(flow_run_id="r1", started="t1", records_processed=1, units=1)],
    )
    store.save_manifest(manifest)
    stored = store.manifest_path.read_text()
    assert "r1" not in stored and "t1" not in stored and '"runs"' not in stored
    assert store.load_manifest() == manifest  # the run log is merged back on load
    (tmp_path / "runs.json").unlink()  # e.g. a store pulled from a DVC remote: no local run log
    bare = store.load_manifest()
    assert bare.runs == [] and bare.shards["part-000000-00"].run is None
    assert json_bytes(bare.to_json()) == store.manifest_path.read_bytes()


def test_training_uses_the_configured_thread_count_and_gives_the_same_weights_each_time(
    tmp_path: Path,
) -> None:
    """Two runs with the same seed and ``threads`` give identical weights and metrics; the process's
    own thread count is put back afterwards (other code in the process is not slowed down)."""
    torch.set_num_threads(1)
    cfg = dataclasses.replace(CFG, threads=2)
    runs = [train_tiny(tmp_path / f"run{i}", resume=False, cfg=cfg) for i in range(2)]
    assert torch.get_num_threads() == 1
    (m0, r0), (m1, r1) = runs
    assert r0.history == r1.history
    for (k, a), (_, b) in zip(m0.state_dict().items(), m1.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
