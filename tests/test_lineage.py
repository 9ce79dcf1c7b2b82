"""`ecgpipe lineage` on a reproduced pipeline: artifact → stages → shards → raw files, and one record
→ shard, split, checkpoint and scores. Every claim is checked against an independent reading of
``dvc.lock`` (plain yaml), the shard manifests and arrays, the split index, ``test_scores.csv`` and
``hashlib`` over the raw files on disk."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli.lineage import model_refs, store_layout
from pipeline.config import Params, load_params
from pipeline.dataset.splits import read_index
from pipeline.lineage.artifact import artifact_lineage
from pipeline.lineage.record import record_lineage
from pipeline.store.local import ShardStore, read_strings
from tests.pipeline_repo import copy_of, run, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.prefect]

MODEL_ARTIFACTS = ("eval/resnet/metrics.json", "models/resnet/best.pt", "parity/resnet/parity.json",
                   "eval/resnet/plots/confusion.png")  # fmt: skip


@pytest.fixture(scope="module")
def repo(reproduced_repo: Path) -> Path:
    return reproduced_repo


@pytest.fixture(scope="module")
def params(repo: Path) -> Params:
    return load_params(repo / "params.yaml")


@pytest.fixture(scope="module")
def lock(repo: Path) -> dict[str, Any]:
    stages: dict[str, Any] = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return stages


@pytest.fixture(scope="module")
def head(repo: Path) -> str:
    return run(["git", "rev-parse", "HEAD"], repo).stdout.strip()


def _lineage(repo: Path, params: Params, path: str) -> dict[str, Any]:
    return artifact_lineage(repo, repo / path, store_layout(params))


def _cli_json(repo: Path, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(run(["ecgpipe", "lineage", *args, "--json"], repo).stdout)
    return doc


def _first_shard(repo: Path, profile: str) -> str:
    manifest = ShardStore(repo / "data" / "shards" / profile, profile).load_manifest()
    return sorted(manifest.shards)[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(doc_entries: list[dict[str, Any]]) -> dict[str, tuple[Any, Any, Any]]:
    return {e["path"]: (e["md5"], e["size"], e["nfiles"]) for e in doc_entries}


def _lock_entries(lock_entries: list[dict[str, Any]]) -> dict[str, tuple[Any, Any, Any]]:
    return {e["path"]: (e.get("md5"), e.get("size"), e.get("nfiles")) for e in lock_entries}


def assert_agrees_with_lock(doc: dict[str, Any], lock: dict[str, Any], head: str) -> None:
    """Stages, cmds, params and every dep/out hash as dvc.lock has them; code versions consistent."""
    for stage in doc["stages"]:
        locked = lock[stage["name"]]
        assert stage["cmd"] == locked["cmd"]
        assert stage["params"] == locked.get("params", {})
        deps = stage["deps"]["data"] + stage["deps"]["code"]
        assert _entries(deps) == _lock_entries(locked["deps"]), stage["name"]
        assert _entries(stage["outs"]) == _lock_entries(locked["outs"]), stage["name"]
        assert all(o["state"]["status"] == "unchanged" for o in stage["outs"]), stage["outs"]
        cv = stage["code_version"]
        if str(locked["cmd"]).startswith("ecgpipe "):
            assert cv["consistent_with_lock"] is True and cv["status"] == "recorded", cv
            assert cv["git_commit"] == head and cv["argv"] == locked["cmd"].split()
        else:  # `make` writes no provenance record
            assert cv["status"] == "not recorded" and cv["consistent_with_lock"] is None
    names = {s["name"] for s in doc["stages"]}
    assert {"ingest", "demo_data"} <= names, names
    assert doc["warnings"] == []


def assert_shards_match_store(doc: dict[str, Any], repo: Path) -> None:
    assert doc["shards"]["items"], doc["shards"]
    for item in doc["shards"]["items"]:
        store = ShardStore(repo / "data" / "shards" / item["profile"], item["profile"])
        entry = store.load_manifest().shards[item["shard"]]
        assert item["flow_run_id"] == entry.run and item["flow_run_id"]
        assert item["sha256"] == entry.sha256 and item["n_records"] == entry.n_records
    assert doc["shards"]["flow_run_ids"] == sorted({i["flow_run_id"] for i in doc["shards"]["items"]})


def assert_raw_files_hash(doc: dict[str, Any], repo: Path) -> None:
    by_source = doc["raw_files"]["by_source"]
    assert by_source
    for group in by_source.values():
        files = group["files"]
        assert len(files) == group["n_files"] > 0
        for f in [*files[:3], files[-1]]:
            assert _sha256(repo / f["path"]) == f["sha256"], f


@pytest.mark.parametrize("artifact", [*MODEL_ARTIFACTS, "<shard>"])
def test_artifact_lineage_agrees_with_dvc_lock_manifests_and_raw_files(
    repo: Path, params: Params, lock: dict[str, Any], head: str, artifact: str
) -> None:
    if artifact == "<shard>":
        artifact = f"data/shards/ecg12/shards/{_first_shard(repo, 'ecg12')}"
    doc = _lineage(repo, params, artifact)
    assert doc["artifact"]["path"] == artifact and doc["artifact"]["state"]["status"] == "unchanged"
    assert_agrees_with_lock(doc, lock, head)
    assert_shards_match_store(doc, repo)
    assert_raw_files_hash(doc, repo)
    if artifact.startswith("data/shards/"):
        assert doc["artifact"]["stage"] == "ingest" and doc["artifact"]["out"] == "data/shards"
        assert [i["shard"] for i in doc["shards"]["items"]] == [artifact.rsplit("/", 1)[1]]


def test_model_artifact_uses_only_the_rows_of_its_split_index(repo: Path, params: Params) -> None:
    doc = _lineage(repo, params, "models/resnet/best.pt")
    assert doc["artifact"]["out"] == "models/resnet" and doc["artifact"]["inside_out"]
    assert doc["artifact"]["state"]["method"] == "md5"  # against DVC's cached listing of models/resnet
    index = read_index(repo / "data" / "splits" / "resnet.csv")
    assert doc["shards"]["n_records"] == len(index.rows)
    used = {s["shard"]: s["rows_used"] for s in doc["shards"]["items"]}
    assert used == {sh: sum(r.shard == sh for r in index.rows) for sh in {r.shard for r in index.rows}}
    assert doc["raw_files"]["n_records"] == len(index.rows)
    assert set(doc["raw_files"]["by_source"]) == {r.record_id.split(":")[0] for r in index.rows}


def test_cli_json_equals_the_library_document(repo: Path, params: Params) -> None:
    doc = _cli_json(repo, "eval/resnet/metrics.json")
    assert doc == json.loads(json.dumps(_lineage(repo, params, "eval/resnet/metrics.json"), default=str))


def test_cli_text_is_a_readable_tree(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.cli.main import main

    monkeypatch.chdir(repo)
    assert main(["lineage", "models/resnet/best.pt"]) == 0
    text = capsys.readouterr().out
    for line in ("artifact models/resnet/best.pt  (file)", "produced by  train@resnet", "stage train@resnet",
                 "  cmd     ecgpipe train resnet", "stage split@resnet", "stage ingest", "stage demo_data",
                 "consistent with dvc.lock", "shards (rows of split index data/splits/resnet.csv)",
                 "raw files: ", "  ptbxl  (root data/raw/ptbxl", "--all", "warnings: none"):  # fmt: skip
        assert line in text, f"{line!r} missing from:\n{text}"
    assert main(["lineage", "models/resnet/best.pt", "--all"]) == 0
    full = capsys.readouterr().out
    assert "more (--all" not in full and full.count("sha256 ") > text.count("sha256 ")


# --------------------------------------------------------------------------- records


def _split_ids(repo: Path, split: str) -> list[str]:
    return [r.record_id for r in read_index(repo / "data" / "splits" / "resnet.csv").split_rows(split)]


def _scores_rows(repo: Path) -> dict[str, dict[str, str]]:
    with (repo / "eval" / "resnet" / "test_scores.csv").open(newline="") as fh:
        return {row["record_id"]: row for row in csv.DictReader(fh)}


def assert_points_at_its_row(repo: Path, doc: dict[str, Any]) -> None:
    for occ in doc["occurrences"]:
        store = ShardStore(repo / "data" / "shards" / occ["profile"], occ["profile"])
        assert read_strings(store.open_shard(occ["shard"]), "record_id")[occ["row"]] == doc["record_id"]
        for f in occ["raw_files"]:
            assert _sha256(repo / f["path"]) == f["sha256"] and f["unchanged"] is True


def test_record_in_the_test_split_has_its_scores(repo: Path, head: str) -> None:
    scored = _scores_rows(repo)
    record = next(r for r in _split_ids(repo, "test") if r in scored)
    doc = _cli_json(repo, "--record", record)
    assert [o["profile"] for o in doc["occurrences"]] == ["ecg12"]
    assert_points_at_its_row(repo, doc)
    (resnet,) = [m for m in doc["models"] if m["model"] == "resnet"]
    assert resnet["split"] == "test" and resnet["index"] == "data/splits/resnet.csv"
    ev = resnet["evaluation"]
    row = scored[record]
    assert ev["scored"] and ev["row"] == row and ev["labels"] == row["labels"]
    assert ev["predicted"] == row["predicted"]
    assert ev["scores"] == {
        k: float(v) for k, v in row.items() if k not in ("record_id", "labels", "predicted")
    }
    assert resnet["checkpoint"]["path"] == "models/resnet/best.pt"
    assert resnet["checkpoint"]["git_commit"] == head and resnet["checkpoint"]["trained_on_this_index"]


def test_record_in_train_is_not_scored_and_says_why(repo: Path, params: Params) -> None:
    record = _split_ids(repo, "train")[0]
    doc = record_lineage(repo, record, store_layout(params), list(params.profiles), model_refs(params))
    assert_points_at_its_row(repo, doc)
    (resnet,) = [m for m in doc["models"] if m["model"] == "resnet"]
    assert resnet["split"] == "train" and not resnet["evaluation"]["scored"]
    assert "test split" in resnet["evaluation"]["reason"] and "train" in resnet["evaluation"]["reason"]
    assert resnet["checkpoint"]["created_utc"]
    unified = doc["occurrences"][0]["unified_labels"]["positive"]
    assert unified is not None and set(unified) <= set(params.labels.vocabulary)
    assert doc["occurrences"][0]["raw_labels"], doc


def test_record_text_names_shard_split_checkpoint_and_why_unscored(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.cli.main import main

    record = _split_ids(repo, "train")[0]
    monkeypatch.chdir(repo)
    assert main(["lineage", "--record", record]) == 0
    text = capsys.readouterr().out
    for part in (f"record {record}", "profile ecg12: shard ", "raw labels", "unified labels",
                 "model resnet: split train", "checkpoint  models/resnet/best.pt", "not scored"):  # fmt: skip
        assert part in text, f"{part!r} missing from:\n{text}"


# --------------------------------------------------------------------------- problems are flagged


@pytest.fixture(scope="module")
def edited(reproduced_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy where an output changed after the lock (same size) and a provenance record is stale."""
    repo = copy_of(reproduced_repo, tmp_path_factory.mktemp("lineage") / "repo")
    metrics = repo / "eval" / "resnet" / "metrics.json"
    text = metrics.read_text()
    metrics.write_text(text.replace('"resnet"', '"RESNET"', 1))  # same size: only the md5 can tell
    record = repo / "provenance" / "train@resnet.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "git_commit": "0" * 40}))
    yield repo


def test_an_output_edited_after_the_lock_is_flagged_as_dvc_status_does(edited: Path) -> None:
    params = load_params(edited / "params.yaml")
    doc = _lineage(edited, params, "eval/resnet/metrics.json")
    state = doc["artifact"]["state"]
    assert state["status"] == "modified" and state["method"] == "md5", state
    assert any("eval/resnet/metrics.json" in w and "modified" in w for w in doc["warnings"]), doc["warnings"]
    status = json.loads(run(["dvc", "status", "--json", "evaluate@resnet"], edited).stdout)
    assert "eval/resnet/metrics.json" in json.dumps(status["evaluate@resnet"]), status


def test_a_stale_provenance_record_is_flagged(edited: Path) -> None:
    params = load_params(edited / "params.yaml")
    doc = _lineage(edited, params, "models/resnet/best.pt")
    (train,) = [s for s in doc["stages"] if s["name"] == "train@resnet"]
    cv = train["code_version"]
    assert cv["status"] == "stale" and cv["consistent_with_lock"] is False and "stale" in cv["note"]
    assert any("provenance/train@resnet.json" in w for w in doc["warnings"]), doc["warnings"]
    others = [s["code_version"]["consistent_with_lock"] for s in doc["stages"] if s["name"] != "train@resnet"]
    assert all(others)


def _cli_fails(repo: Path, *args: str) -> str:
    proc = subprocess.run(["ecgpipe", "lineage", *args], cwd=repo, env=tool_env(), capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    return proc.stderr


def test_unknown_path_exits_2_naming_the_outs_nearby(repo: Path) -> None:
    err = _cli_fails(repo, "eval/resnet/no_such_metrics.json")
    assert err.startswith("error: eval/resnet/no_such_metrics.json: ") and "eval/resnet/metrics.json" in err


def test_a_raw_input_is_not_an_artifact(repo: Path, params: Params) -> None:
    from pipeline.lineage.artifact import LineageError

    with pytest.raises(LineageError, match="raw input, a dependency of ingest"):
        _lineage(repo, params, "data/labels")


def test_unknown_record_exits_2_with_close_matches_and_profiles_searched(repo: Path) -> None:
    known = _split_ids(repo, "train")[0]
    err = _cli_fails(repo, "--record", known.split(":", 1)[1])  # the local id without its source
    assert err.startswith("error: record ") and "Did you mean " in err and known in err
    assert "searched ecg12, lead1_af, beats140" in err
