"""Shard stores on an S3-compatible object store (a real moto server on 127.0.0.1, started and
stopped here): same bytes as a local ingest, readers never see a half-uploaded shard, a killed
upload re-runs to the uninterrupted result, training reads from it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from flows.cli import main
from pipeline.config import ConfigError, load_params
from pipeline.dataset.loader import make_loader
from pipeline.store.local import ShardStore, tree_digest
from pipeline.store.remote import RemoteShardStore, open_store
from pipeline.store.root import StoreRoot
from tests.pipeline_repo import tool_env
from tests.s3_server import S3Server

REPO = Path(__file__).resolve().parents[1]
PROFILE = "lead1_af"
pytestmark = [pytest.mark.shared_data, pytest.mark.prefect, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3(s3_server: S3Server) -> Iterator[S3Server]:
    """The session's moto server (tests/conftest.py), its credentials in this process's environment
    while this module runs."""
    saved = dict(os.environ)
    os.environ.update(s3_server.env())
    try:
        yield s3_server
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module", autouse=True)
def prefect_server(s3: S3Server) -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="module")
def cinc(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """24 real CinC 2017 records."""
    src = shared_data / "cinc2017" / "training2017"
    dest = tmp_path_factory.mktemp("cinc")
    for i in range(1, 25):
        for ext in (".hea", ".mat"):
            shutil.copy(src / f"A{i:05d}{ext}", dest / f"A{i:05d}{ext}")
    ref = (src / "REFERENCE.csv").read_bytes().split(b"\r\n")
    (dest / "REFERENCE.csv").write_bytes(b"\r\n".join(ref[:24]) + b"\r\n")
    return dest


def _sets(cinc: Path, *extra: str) -> list[str]:
    out = ["--params", str(REPO / "params.yaml"), "--set", f"sources.cinc2017.root={cinc}"]
    for kv in ("ingest.batch_units=4", "ingest.workers=1", *extra):
        out += ["--set", kv]
    return out


def _remote(s3: S3Server, bucket: str) -> list[str]:
    return [
        f"ingest.object_store.url=s3://{bucket}/store",
        f"ingest.object_store.options.endpoint_url={s3.endpoint_url}",
    ]


def _remote_store(s3: S3Server, bucket: str) -> RemoteShardStore:
    store = open_store(StoreRoot.of(f"s3://{bucket}/store", {"endpoint_url": s3.endpoint_url}), PROFILE)
    assert isinstance(store, RemoteShardStore)
    return store


def _objects(s3: S3Server, prefix: str) -> dict[str, str]:
    fs = s3.filesystem()
    return {k[len(prefix) + 1 :]: hashlib.sha256(fs.cat_file(k)).hexdigest() for k in fs.find(prefix)}


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


def _content(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest without what differs run to run (which run, when)."""
    shards = {
        n: {k: v for k, v in e.items() if k not in ("run", "created")} for n, e in manifest["shards"].items()
    }
    return {**{k: v for k, v in manifest.items() if k != "runs"}, "shards": shards}


@pytest.fixture(scope="module")
def local_store(tmp_path_factory: pytest.TempPathFactory, cinc: Path) -> Path:
    """The same inputs ingested into a local store by one process (the reference)."""
    root = tmp_path_factory.mktemp("local")
    assert main(["ingest", "--profile", PROFILE, *_sets(cinc, f"ingest.store={root}")]) == 0
    return root / PROFILE


@pytest.fixture(scope="module")
def remote_bucket(s3: S3Server, cinc: Path) -> str:
    s3.make_bucket("ecg-main")
    assert main(["ingest", "--profile", PROFILE, *_sets(cinc, *_remote(s3, "ecg-main"))]) == 0
    return "ecg-main"


def test_object_store_ingest_writes_the_bytes_of_a_local_single_process_ingest(
    s3: S3Server, local_store: Path, remote_bucket: str
) -> None:
    remote = _objects(s3, f"{remote_bucket}/store/{PROFILE}")
    local = _files(local_store)
    assert set(remote) == set(local)
    # the manifest holds no run ids or times any more: only the run log beside it differs
    assert {k for k in local if remote[k] != local[k]} == {"runs.json"}
    store = _remote_store(s3, remote_bucket)
    manifest = json.loads(store.read_bytes("manifest.json"))
    assert _content(manifest) == _content(json.loads((local_store / "manifest.json").read_text()))
    assert len(manifest["shards"]) >= 6
    for name, entry in manifest["shards"].items():
        assert store.shard_digest(name) == (entry["sha256"], entry["nbytes"])
        assert tree_digest(local_store / "shards" / name)[0] == entry["sha256"]
    assert not s3.filesystem().exists(f"{remote_bucket}/store/{PROFILE}/.lock")


def test_loaders_over_the_object_store_yield_the_batches_of_the_local_store(
    s3: S3Server, local_store: Path, remote_bucket: str, tmp_path: Path
) -> None:
    from pipeline.dataset.splits import index_from_store, write_index

    index = index_from_store(ShardStore(local_store, PROFILE), {"train": 0.7, "val": 0.15, "test": 0.15}, 0)
    write_index(tmp_path / "split.csv", index.rows, index.header)
    remote_root = StoreRoot.of(f"s3://{remote_bucket}/store", {"endpoint_url": s3.endpoint_url})
    for split, kwargs in (
        ("train", {"shuffle": True, "num_workers": 2, "multiprocessing_context": "spawn"}),
        ("val", {"shuffle": False}),
    ):
        batches = []
        for root in (local_store.parent, remote_root):
            loader = make_loader(root, PROFILE, tmp_path / "split.csv", split, batch_size=4, seed=3, **kwargs)
            batches.append([(x.clone(), y.clone()) for x, y, _ in loader])
        assert len(batches[0]) == len(batches[1]) > 0
        for (xa, ya), (xb, yb) in zip(*batches, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_train_reads_its_records_from_the_object_store(
    s3: S3Server, remote_bucket: str, cinc: Path, tmp_path: Path
) -> None:
    sets = _sets(
        cinc, *_remote(s3, remote_bucket), f"split.out_dir={tmp_path / 'splits'}",
        f"train.out_dir={tmp_path / 'models'}", f"train.live_dir={tmp_path / 'live'}",
        "train.models.crnn.epochs=1",
    )  # fmt: skip
    assert main(["split", "crnn", *sets]) == 0
    assert main(["train", "crnn", *sets]) == 0
    ckpt = torch.load(tmp_path / "models" / "crnn" / "best.pt", weights_only=True)
    lineage = ckpt["lineage"]
    assert lineage["store"] == f"s3://{remote_bucket}/store/{PROFILE}"
    manifest = _remote_store(s3, remote_bucket).read_bytes("manifest.json")
    assert lineage["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert lineage["n_train"] > 0


def _ingest_proc(
    cinc: Path, s3: S3Server, bucket: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    cmd = [str(Path(sys.executable).parent / "ecgpipe"), "ingest", "--profile", PROFILE]
    cmd += _sets(cinc, "ingest.batch_units=2", *_remote(s3, bucket))
    from prefect.settings import PREFECT_API_URL

    # the module's server: a child without an API URL would spend ~10 s starting a temporary one
    api = {"PREFECT_API_URL": str(PREFECT_API_URL.value())}
    full = tool_env({**s3.env(), **api, "PREFECT_HOME": str(cinc.parent / "prefect-sub"), **(env or {})})
    return subprocess.Popen(
        cmd, cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_reader_polling_during_ingest_never_sees_a_half_uploaded_shard(
    s3: S3Server, cinc: Path, local_store: Path
) -> None:
    s3.make_bucket("ecg-poll")
    store = _remote_store(s3, "ecg-poll")
    fs = s3.filesystem()
    proc = _ingest_proc(cinc, s3, "ecg-poll")
    polls = unlisted_seen = listed_checked = 0
    while True:
        done = proc.poll() is not None
        manifest = store.load_manifest()
        for name, entry in manifest.shards.items():
            assert store.shard_digest(name) == (entry.sha256, entry.nbytes), name
            listed_checked += 1
        prefix = f"ecg-poll/store/{PROFILE}/shards"
        if fs.exists(prefix):
            unlisted_seen += any(Path(p).name not in manifest.shards for p in fs.ls(prefix, detail=False))
        polls += 1
        if done:
            break
        time.sleep(0.05)
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, out[-3000:]
    # shards were on the server before a manifest listed them, yet every listed one was whole
    assert unlisted_seen > 0 and listed_checked > 0 and polls > 10
    # batch_units differs from the reference run (other shard boundaries), so compare the units
    reference = json.loads((local_store / "manifest.json").read_text())["units"]
    final = store.load_manifest().units
    assert {u: e.fingerprint for u, e in final.items()} == {u: e["fingerprint"] for u, e in reference.items()}


def test_an_ingest_killed_mid_upload_leaves_its_lock_and_reruns_to_the_uninterrupted_store(
    s3: S3Server, cinc: Path
) -> None:
    s3.make_bucket("ecg-kill")
    s3.make_bucket("ecg-whole")
    whole = _ingest_proc(cinc, s3, "ecg-whole")
    assert whole.wait(timeout=600) == 0
    killed = _ingest_proc(cinc, s3, "ecg-kill", {"ECGPIPE_TEST_CRASH_AT": "shard.upload_half:3"})
    killed.wait(timeout=600)
    assert killed.returncode == -9
    store = _remote_store(s3, "ecg-kill")
    assert not store.has_manifest()  # nothing published: no reader can see the partial shards
    assert s3.filesystem().find(f"ecg-kill/store/{PROFILE}/shards")  # but objects were uploaded
    blocked = _ingest_proc(cinc, s3, "ecg-kill")
    out = blocked.communicate(timeout=600)[0]
    assert blocked.returncode == 2
    assert "another ingest is writing this store" in out and f"s3://ecg-kill/store/{PROFILE}/.lock" in out
    store.remove(".lock")  # what the message tells the user to do after a killed run
    again = _ingest_proc(cinc, s3, "ecg-kill")
    assert again.wait(timeout=600) == 0
    got = _content(json.loads(store.read_bytes("manifest.json")))
    want = _content(json.loads(_remote_store(s3, "ecg-whole").read_bytes("manifest.json")))
    assert got == want
    listed = set(got["shards"])
    on_server = {Path(p).name for p in s3.filesystem().ls(f"ecg-kill/store/{PROFILE}/shards", detail=False)}
    assert on_server == listed  # the partial upload was removed as debris
    for name in listed:
        assert store.shard_digest(name)[0] == got["shards"][name]["sha256"]


def test_land_refuses_an_object_store_naming_the_key(
    s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Landing moves files into the local source roots and runs the local ingest flow: local only."""
    sets = ["--params", str(REPO / "params.yaml"), "--set", "ingest.object_store.url=s3://ecg-main/store"]
    assert main(["land", "--dry-run", *sets]) == 2
    err = capsys.readouterr().err
    assert "ingest.object_store" in err and "local stores" in err


def test_verify_checks_an_object_store_store_as_it_checks_a_local_one(
    s3: S3Server, cinc: Path, local_store: Path, remote_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        main(["verify", "--profile", PROFILE, "--json", *_sets(cinc, f"ingest.store={local_store.parent}")])
        == 0
    )
    local = json.loads(capsys.readouterr().out)[PROFILE]
    assert main(["verify", "--profile", PROFILE, "--json", *_sets(cinc, *_remote(s3, remote_bucket))]) == 0
    remote = json.loads(capsys.readouterr().out)[PROFILE]
    assert remote["ok"] and remote["store"] == f"s3://{remote_bucket}/store/{PROFILE}"
    assert remote["counts"] == local["counts"] and remote["counts"]["records_live"] == 24
    assert remote["warnings"] == local["warnings"] == []


def test_verify_finds_a_changed_shard_object_and_an_unlisted_one(
    s3: S3Server, cinc: Path, remote_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.make_bucket("ecg-verify")
    fs = s3.filesystem()
    fs.copy(f"{remote_bucket}/store", "ecg-verify/store", recursive=True)
    store = _remote_store(s3, "ecg-verify")
    first = sorted(store.load_manifest().shards)[0]
    key = f"ecg-verify/store/{PROFILE}/shards/{first}/zarr.json"
    fs.pipe_file(key, fs.cat_file(key) + b" ")
    fs.pipe_file(f"ecg-verify/store/{PROFILE}/shards/part-999999-00/zarr.json", b"{}")
    capsys.readouterr()
    assert main(["verify", "--profile", PROFILE, "--json", *_sets(cinc, *_remote(s3, "ecg-verify"))]) == 1
    found = {(p["check"], p["where"]) for p in json.loads(capsys.readouterr().out)[PROFILE]["problems"]}
    assert ("shard_hash", f"shards/{first}") in found
    assert ("shard_unlisted", "shards/part-999999-00") in found


def test_lineage_follows_a_record_into_an_object_store_shard(
    s3: S3Server, cinc: Path, remote_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _remote_store(s3, remote_bucket)
    capsys.readouterr()
    args = ["lineage", "--record", "cinc2017:A00003", "--json", *_sets(cinc, *_remote(s3, remote_bucket))]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    (occ,) = doc["occurrences"]
    assert occ["shard_path"].startswith(f"s3://{remote_bucket}/store/{PROFILE}/shards/part-")
    assert occ["shard_sha256"] == store.load_manifest().shards[occ["shard"]].sha256


def test_object_store_params_reject_local_paths_and_credentials() -> None:
    with pytest.raises(ConfigError, match=r"ingest\.object_store\.url: expected an object-store URL"):
        load_params(REPO / "params.yaml", ["ingest.object_store.url=/data/shards"])
    with pytest.raises(ConfigError, match=r"ingest\.object_store\.options: credentials \['secret'\]"):
        load_params(
            REPO / "params.yaml", ["ingest.object_store.url=s3://b/x", "ingest.object_store.options.secret=s"]
        )
    params = load_params(REPO / "params.yaml", ["ingest.object_store.url=s3://b/x/"])
    assert params.ingest.object_store is not None and params.ingest.object_store.url == "s3://b/x"


def test_an_unreachable_object_store_is_a_one_line_error_naming_the_url(
    s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.s3_server import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sets = [
        "--params", str(REPO / "params.yaml"), "--set", "ingest.object_store.url=s3://ecg-main/store",
        "--set", f"ingest.object_store.options.endpoint_url={dead}",
        "--set", "ingest.object_store.options.config_kwargs.retries.max_attempts=1",
    ]  # fmt: skip
    assert main(["summary", "--profile", PROFILE, *sets]) == 2
    err = capsys.readouterr().err
    assert f"s3://ecg-main/store/{PROFILE}/manifest.json: object store not reachable" in err
    assert "Traceback" not in err and "endpoint_url" in err
