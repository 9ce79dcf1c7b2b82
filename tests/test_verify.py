"""``ecgpipe verify`` and :func:`pipeline.ingest.verify.verify_store` on real records (issue 6).

One small store (CinC 2017 with a truncated record and an orphan signal file, PTB-XL at both
rates, one MIT-BIH record) is ingested once with the library steps the flow runs (no Prefect:
the flow is covered by tests/test_ingest_flow.py); each test corrupts a copy of it, or of its raw
tree, and checks the finding names the file or key, what was expected and what was found.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.config import Params
from pipeline.config.build import signal_plan, storage_spec
from pipeline.ingest.batch import run_batch
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import plan_ingest
from pipeline.ingest.verify import VerifyResult, verify_store
from pipeline.sources.registry import build_readers
from pipeline.store.labels import relabel
from pipeline.store.local import ShardStore, tree_digest, write_json_atomic
from tests.script_module import load_script

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("ecg12", "lead1_af", "holter")
pytestmark = pytest.mark.shared_data


kl = load_script("kill_loop")
SPEC = kl.TreeSpec(n_cinc2017=30, n_ptbxl=6, mitbih=("100",), batch_units=8)


def ingest(params: Params, profile: str, limit: int | None = None) -> None:
    """What flows/ingest.py's ingest_profile does, minus Prefect: lock, plan, batches, commit, labels."""
    prof = params.profiles[profile]
    base = params.ingest.store if limit is None else params.ingest.smoke_store
    store = ShardStore(base / profile, profile)
    readers = build_readers(params, prof.sources)
    plan_s, storage = signal_plan(prof), storage_spec(prof)
    with store.lock():
        manifest = store.load_manifest()
        store.remove_debris(manifest)
        plan = plan_ingest(profile, plan_s, storage, readers, manifest, params.ingest.batch_units, limit)
        results = [run_batch(b, readers, plan_s, storage, store, {"profile": profile}) for b in plan.batches]
        commit(plan, results, store, manifest, {"flow_run_id": None, "started": "test", "limit": limit})
        relabel(
            store,
            params.labels.tables_dir,
            params.vocabulary(profile),
            params.labels.ptbxl_min_likelihood,
            params.labels.unmapped,
            params.label_tables_for(),
            prof.label_merge,
        )


@dataclass
class Tree:
    """A copy of the raw tree and its ingested store."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def params(self) -> Params:
        p: Params = kl.load_tree_params(self.raw, self.root / "store", SPEC)
        return p

    def store(self, profile: str = "lead1_af") -> ShardStore:
        return ShardStore(self.root / "store" / profile, profile)

    def verify(self, profile: str = "lead1_af") -> VerifyResult:
        from pipeline.cli.verify import verify_profile

        return verify_profile(self.params, profile)

    def cli(self, *args: str) -> list[str]:
        sets = [a for s in kl.overrides(self.raw, self.root / "store", SPEC) for a in ("--set", s)]
        return ["verify", "--params", str(REPO / "params.yaml"), *sets, *args]

    def shard_names(self, profile: str = "lead1_af") -> list[str]:
        return sorted(self.store(profile).load_manifest().shards)


@pytest.fixture(scope="module")
def pristine(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Tree:
    tree = Tree(tmp_path_factory.mktemp("verify"))
    kl.build_raw_tree(shared_data, tree.raw, SPEC)
    for profile in PROFILES:
        ingest(tree.params, profile)
    return tree


@pytest.fixture
def tree(pristine: Tree, tmp_path: Path) -> Tree:
    """A private copy (raw files and store) a test may damage."""
    shutil.copytree(pristine.root, tmp_path / "t", symlinks=True)
    return Tree(tmp_path / "t")


def _find(res: VerifyResult, check: str, where: str = "") -> dict[str, str]:
    hits = [p for p in res.problems if p["check"] == check and where in p["where"]]
    assert hits, f"no {check} problem at {where!r}; got {json.dumps(res.problems, indent=1)}"
    return hits[0]


# --- clean -------------------------------------------------------------------------------------------


def test_a_freshly_ingested_store_verifies_clean_with_every_file_accounted_for(pristine: Tree) -> None:
    results = {p: pristine.verify(p) for p in PROFILES}
    for profile, res in results.items():
        assert res.ok, f"{profile}: {res.problems}"
    c = results["lead1_af"].counts
    # 30 records x (.hea + .mat), the truncated record's 2 files, the orphan .mat, REFERENCE.csv
    assert c["files_on_disk"] == 64
    assert c["files_in_ingested_units"] == 60
    assert c["files_in_quarantined_units"] == 2
    assert c["files_rejected_at_discovery"] == 1
    assert c["files_metadata"] == 1
    assert (c["records_live"], c["units_ingested"], c["units_quarantined"], c["quarantine_entries"]) == (
        30,
        30,
        1,
        2,
    )
    assert c["shards"] >= 4  # batches of 8 units
    ecg12 = results["ecg12"].counts
    assert ecg12["records_live"] == 6 and ecg12["files_rejected_at_discovery"] == 12  # 100 Hz duplicates
    assert results["holter"].counts["records_live"] == 180  # 30 min of MIT-BIH 100 in 10 s windows
    assert "clean" in results["lead1_af"].markdown()


# --- corruption: shards -------------------------------------------------------------------------------


def test_changed_bytes_in_a_shard_file_are_a_hash_mismatch(tree: Tree) -> None:
    name = tree.shard_names()[1]
    target = max((p for p in (tree.store().shard_path(name) / "signal").rglob("*") if p.is_file()),
                 key=lambda p: p.stat().st_size)  # fmt: skip
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    res = tree.verify()
    p = _find(res, "shard_hash", f"shards/{name}")
    assert p["kind"] == "corrupt"
    assert p["expected"].startswith("sha256 ") and "changed after publishing" in p["found"]
    assert not res.ok


def test_a_deleted_shard_is_reported_missing(tree: Tree) -> None:
    name = tree.shard_names()[0]
    shutil.rmtree(tree.store().shard_path(name))
    res = tree.verify()
    p = _find(res, "shard_missing", f"shards/{name}")
    assert (p["kind"], p["found"]) == ("corrupt", "missing")
    assert any(q["check"] == "labels" and "non-live" in q["found"] for q in res.problems)


def test_a_shard_added_behind_the_manifests_back_is_reported_but_tmp_debris_only_warned(tree: Tree) -> None:
    shards = tree.store().shard_dir
    shutil.copytree(shards / tree.shard_names()[0], shards / "part-999999-00")
    shutil.copytree(shards / tree.shard_names()[0], shards / ".tmp-part-999998-00-abcdef12")
    res = tree.verify()
    p = _find(res, "shard_unlisted", "shards/part-999999-00")
    assert p["kind"] == "lagging" and "does not list" in p["found"]
    assert not [q for q in res.problems if ".tmp-" in q["where"]]
    assert any(w["check"] == "debris" and ".tmp-part-999998" in w["where"] for w in res.warnings)


def test_a_record_id_live_in_two_shards_is_a_duplicate(tree: Tree) -> None:
    store = tree.store()
    first = tree.shard_names()[0]
    shutil.copytree(store.shard_path(first), store.shard_path("part-999999-00"))
    manifest = store.load_manifest()
    digest, nbytes = tree_digest(store.shard_path("part-999999-00"))
    entry = manifest.shards[first].model_copy(update={"sha256": digest, "nbytes": nbytes})
    manifest.shards["part-999999-00"] = entry
    store.save_manifest(manifest)
    res = tree.verify()
    dup = _find(res, "duplicate_record_id", "cinc2017:A00001")
    assert dup["kind"] == "corrupt"
    assert f"{first}[0]" in dup["found"] and "part-999999-00[0]" in dup["found"]
    orphan = _find(res, "orphan_rows", "shards/part-999999-00")
    assert "in no unit" in orphan["found"]


def test_wrong_record_count_in_the_manifest_is_reported(tree: Tree) -> None:
    store = tree.store()
    manifest = store.load_manifest()
    name = tree.shard_names()[0]
    n = manifest.shards[name].n_records
    manifest.shards[name].n_records = n + 1
    store.save_manifest(manifest)
    p = _find(tree.verify(), "shard_records", f"shards/{name}/signal")
    assert p["expected"] == f"shape ({n + 1}, C, L)" and p["found"].startswith(f"shape ({n}, 1, ")


def test_a_shard_name_that_leaves_the_store_is_refused_not_followed(tree: Tree) -> None:
    store = tree.store()
    manifest = store.load_manifest()
    manifest.shards["../../raw"] = manifest.shards[tree.shard_names()[0]].model_copy()
    store.save_manifest(manifest)
    p = _find(tree.verify(), "shard_name")
    assert (p["kind"], p["found"]) == ("corrupt", "../../raw")


# --- raw inputs --------------------------------------------------------------------------------------


def test_a_raw_file_changed_after_ingest_is_stale_naming_both_hashes(tree: Tree) -> None:
    target = tree.raw / "cinc2017" / "A00002.mat"
    data = bytearray(target.read_bytes())
    data[-2] ^= 0x01
    target.write_bytes(bytes(data))
    res = tree.verify()
    p = _find(res, "inputs", "cinc2017: A00002")
    assert p["kind"] == "stale"
    assert p["found"].startswith("stale: re-run ingest; file(s) changed: A00002.mat (sha256 at ingest ")
    assert [q["kind"] for q in res.problems] == ["stale"]


def test_a_raw_file_removed_after_ingest_is_stale_naming_the_file(tree: Tree) -> None:
    (tree.raw / "cinc2017" / "A00005.mat").unlink()
    res = tree.verify()
    p = _find(res, "inputs", "cinc2017: A00005")
    assert p["kind"] == "stale"
    assert p["found"] == "stale: re-run ingest; file(s) removed since ingest: A00005.mat"
    assert _find(res, "report", "files_on_disk")["expected"] == "63 (files under the source root)"


def test_a_raw_record_removed_after_ingest_is_stale_while_its_records_are_live(tree: Tree) -> None:
    for ext in (".hea", ".mat"):
        (tree.raw / "cinc2017" / f"A00006{ext}").unlink()
    p = _find(tree.verify(), "inputs", "cinc2017: A00006")
    assert (p["kind"], p["found"]) == ("stale", "gone since ingest (its records are still live)")


def test_a_raw_record_added_after_ingest_is_stale_not_ingested(tree: Tree, shared_data: Path) -> None:
    src = shared_data / "cinc2017" / "training2017"
    for ext in (".hea", ".mat"):
        shutil.copy(src / f"A00100{ext}", tree.raw / "cinc2017" / f"A00100{ext}")
    with (tree.raw / "cinc2017" / "REFERENCE.csv").open("ab") as fh:
        fh.write(b"A00100,N\r\n")
    shutil.copy(src / "A00200.mat", tree.raw / "cinc2017" / "A00200.mat")  # no header: rejected
    res = tree.verify()
    p = _find(res, "inputs", "cinc2017: A00100")
    assert p["kind"] == "stale" and p["found"].startswith("not in the manifest: new since the last ingest")
    assert res.counts["files_not_ingested_yet"] == 2
    orphan = _find(res, "quarantine", "quarantine.json")
    assert (orphan["kind"], orphan["expected"]) == ("stale", "an entry for cinc2017: A00200.mat")
    assert _find(res, "report", "files_on_disk")["expected"] == "67 (files under the source root)"


def test_a_file_no_reader_accounts_for_is_reported(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.sources.cinc2017 import Cinc2017Reader

    real = Cinc2017Reader.discover

    def forgetful(self: Any) -> Any:
        d = real(self)
        return type(d)(units=d.units, metadata_files=(), rejected=d.rejected)

    monkeypatch.setattr(Cinc2017Reader, "discover", forgetful)
    p = _find(tree.verify(), "accounting", "REFERENCE.csv")
    assert p["kind"] == "accounting" and p["found"] == "in none"


# --- derived files -----------------------------------------------------------------------------------


def test_quarantine_entries_removed_are_reported_with_their_reasons(tree: Tree) -> None:
    path = tree.store().root / "quarantine.json"
    entries = json.loads(path.read_text())
    assert {e["item"] for e in entries} == {"cinc2017/A00031", "A00032.mat"}
    write_json_atomic(path, [])
    res = tree.verify()
    unit = _find(res, "quarantine", "quarantine.json")
    assert unit["expected"] == "an entry for cinc2017: cinc2017/A00031"
    assert unit["found"].startswith("none (rejected at read: ")
    orphan = [p for p in res.problems if p["expected"] == "an entry for cinc2017: A00032.mat"]
    assert orphan and orphan[0]["found"].startswith("none (rejected at discover: A00032.mat: ")
    # the files are as they were at ingest: the report was edited or cut short, not the raw tree
    assert unit["kind"] == orphan[0]["kind"] == "lagging"
    assert _find(res, "report", "quarantined_inputs")["expected"] == "0 (entries in quarantine.json)"


def test_missing_labels_and_labels_of_other_tables_are_reported(tree: Tree) -> None:
    store = tree.store()
    res = verify_store(store, build_readers(tree.params, ("cinc2017",)), mapper_digest="0" * 64)
    assert _find(res, "labels").get("kind") == "stale"
    labels = store.load_manifest().labels
    assert labels is not None
    shutil.rmtree(store.root / labels.path)
    p = _find(tree.verify(), "labels")
    assert (p["kind"], p["found"]) == ("lagging", "missing")


def test_no_manifest_other_params_and_a_held_lock_are_reported(tree: Tree) -> None:
    store = tree.store()
    readers = build_readers(tree.params, ("cinc2017",))
    stale = verify_store(store, readers, plan_digest="f" * 64)
    assert _find(stale, "plan")["kind"] == "stale"
    with store.lock():
        held = verify_store(store, readers)
    assert held.ok and any(
        w["check"] == "lock" and "holds the store's lock" in w["found"] for w in held.warnings
    )
    store.manifest_path.unlink()
    none = verify_store(store, readers)
    assert _find(none, "manifest")["found"].startswith("missing")


# --- CLI -----------------------------------------------------------------------------------------------


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_exit_0_when_clean_1_with_the_report_when_not(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = _run(tree.cli("--profile", "lead1_af", "--profile", "holter"), capsys)
    assert rc == 0 and "## verify lead1_af: clean" in out and "## verify holter: clean" in out
    shutil.rmtree(tree.store().shard_path(tree.shard_names()[0]))
    rc, out, err = _run(tree.cli("--profile", "lead1_af"), capsys)
    assert rc == 1
    assert "### corrupt" in out and "shard_missing" in out
    assert err.startswith("error: verify found problems in lead1_af (")


def test_cli_json_lists_problems_with_check_where_expected_found(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree.raw / "cinc2017" / "A00003.hea").write_text("garbage\n")
    rc, out, _ = _run(tree.cli("--profile", "lead1_af", "--json"), capsys)
    assert rc == 1
    doc = json.loads(out)["lead1_af"]
    assert doc["ok"] is False and doc["problem_kinds"]["stale"] >= 1
    p = next(p for p in doc["problems"] if p["where"] == "cinc2017: A00003")
    assert set(p) == {"check", "kind", "where", "expected", "found"}
    assert "A00003.hea (sha256 at ingest" in p["found"]
    assert doc["counts"]["records_live"] == 30


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--profile", "nope"), "--profile nope: not in profiles"),
        (("--set", "ingest.workers=0"), "ingest.workers"),
    ],
)
def test_cli_exit_2_for_config_errors(
    tree: Tree, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    rc, _, err = _run(tree.cli(*extra), capsys)
    assert rc == 2 and err.startswith("error: ") and message in err


def test_cli_smoke_verifies_the_limit_store_with_the_units_left_out(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest(tree.params, "lead1_af", limit=5)
    rc, out, _ = _run(tree.cli("--profile", "lead1_af", "--smoke", "--json"), capsys)
    doc = json.loads(out)["lead1_af"]
    assert rc == 0, doc["problems"]
    # A00001..A00005 ingested; the other 26 units (25 records + the truncated one) left out
    assert doc["counts"]["records_live"] == 5 and doc["counts"]["files_left_out_by_limit"] == 52
    assert doc["store"].endswith("store_smoke/lead1_af")
