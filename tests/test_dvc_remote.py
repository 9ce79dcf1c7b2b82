"""The pipeline's DVC outputs through an S3 remote (a real moto server on 127.0.0.1), the way a team
shares them: configure the remote, `dvc push`, `git clone` elsewhere, `dvc pull`, rebuild what is
never shipped, `dvc repro` re-runs nothing.

Remote URL in the committed ``.dvc/config``; endpoint in ``.dvc/config.local`` (never committed: it is
where *this* machine reaches the store), so the clone sets its own; credentials only in the environment.

Two kinds of outputs are neither cached by DVC nor tracked by git, so no remote carries them and a
clone rebuilds them on its own machine, byte-identical to what dvc.lock records:
``ckernels/build`` (``make -C ckernels all``: same compiler and machine give the same bytes; the
Makefile's ``-march=native`` makes another CPU's build differ, and then ckernels and parity re-run) and the
synthetic ``data/raw/*`` (``ecgpipe demo-data``: seeded, and outside DVC it writes no provenance record).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pipeline_repo import copy_of, run
from tests.s3_server import HOST, S3Server, moto_s3, port_open

REMOTE = "storage"
PREFIX = "dvc"
# Stage outputs with `cache: false` that git ignores: no `dvc pull` brings them, the clone rebuilds them.
NOT_SHIPPED = frozenset({"ckernels/build", "data/raw/ptbxl", "data/raw/cinc2017", "data/raw/ucr"})
OBJECTS = Path("files") / "md5"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def dvc_env(server: S3Server) -> dict[str, str]:
    """The server's credentials without its endpoint variables, so that DVC reaches moto only through
    the endpoint the repo's config names (the thing under test), not through ``AWS_ENDPOINT_URL``."""
    return {k: v for k, v in server.env().items() if not k.startswith("AWS_ENDPOINT_URL")}


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def dvcignored(repo: Path) -> frozenset[str]:
    """File names the repo's ``.dvcignore`` excludes from directory hashes (plain names only)."""
    lines = (repo / ".dvcignore").read_text().splitlines()
    names = frozenset(s for s in (line.strip() for line in lines) if s and not s.startswith("#"))
    assert all("/" not in n and "*" not in n for n in names), f"teach dir_md5 these patterns: {names}"
    return names


def dir_md5(root: Path, ignored: frozenset[str]) -> str:
    """DVC's directory hash: md5 of the JSON list of ``{md5, relpath}`` entries, sorted by path parts,
    plus ``.dir`` (what dvc.lock records for a folder output)."""
    entries = [
        {"md5": file_md5(p), "relpath": p.relative_to(root).as_posix()}
        for p in root.rglob("*")
        if p.is_file() and p.name not in ignored
    ]
    entries.sort(key=lambda e: tuple(e["relpath"].split("/")))
    return hashlib.md5(json.dumps(entries).encode()).hexdigest() + ".dir"


def locked_outs(repo: Path) -> dict[str, str]:
    """Every stage output dvc.lock records, path → md5 (``<md5>.dir`` for folders)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for stage in lock["stages"].values() for o in stage.get("outs", [])}


def out_mismatches(repo: Path, outs: Mapping[str, str]) -> dict[str, str]:
    """Outputs present in ``repo`` whose content hash differs from ``outs``: path → what it hashes to."""
    ignored = dvcignored(repo)
    found = {}
    for rel, md5 in outs.items():
        path = repo / rel
        if path.exists():
            actual = dir_md5(path, ignored) if path.is_dir() else file_md5(path)
            if actual != md5:
                found[rel] = actual
    return found


def cache_objects(repo: Path) -> dict[str, int]:
    """The repo's DVC cache objects, ``files/md5/xx/yyyy`` → size in bytes."""
    cache = repo / ".dvc" / "cache"
    return {
        p.relative_to(cache).as_posix(): p.stat().st_size for p in (cache / OBJECTS).rglob("*") if p.is_file()
    }


def object_key(md5: str) -> str:
    return (OBJECTS / md5[:2] / md5[2:]).as_posix()


def referenced_objects(repo: Path) -> set[str]:
    """Cache objects dvc.lock's outputs refer to (folders: the ``.dir`` listing and every entry), limited
    to those in the cache: `cache: false` outputs have none."""
    cache = repo / ".dvc" / "cache"
    keys: set[str] = set()
    for md5 in locked_outs(repo).values():
        key = object_key(md5)
        if not (cache / key).is_file():
            continue
        keys.add(key)
        if md5.endswith(".dir"):
            keys.update(object_key(e["md5"]) for e in json.loads((cache / key).read_text()))
    return keys


def remote_objects(server: S3Server, bucket: str) -> dict[str, dict[str, Any]]:
    """Objects under the remote's prefix, ``files/md5/xx/yyyy`` → size, ETag and LastModified."""
    root = f"{bucket}/{PREFIX}/"
    listing = server.filesystem().find(root, detail=True)
    assert isinstance(listing, dict)
    return {
        key[len(root) :]: {f: info[f] for f in ("size", "ETag", "LastModified")}
        for key, info in listing.items()
    }


def pushed_count(stdout: str) -> int:
    """N from DVC's ``N files pushed``."""
    words = stdout.split()
    return int(words[words.index("pushed") - 2]) if "pushed" in words else 0


@dataclass(frozen=True)
class Origin:
    """A copy of the reproduced repo with everything committed and pushed once."""

    repo: Path
    bucket: str
    first_push: str


@dataclass(frozen=True)
class Clone:
    """A `git clone` of the origin after `dvc pull`; ``missing`` were the locked outputs absent then."""

    repo: Path
    missing: frozenset[str]
    had_cache_before_pull: bool


@pytest.fixture(scope="module")
def origin(reproduced_repo: Path, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Origin:
    repo = copy_of(reproduced_repo, tmp_path_factory.mktemp("dvc_remote") / "origin")
    env = dvc_env(s3_server)
    bucket = f"ecgpipe-dvc-{uuid.uuid4().hex[:8]}"
    s3_server.make_bucket(bucket)
    run(["dvc", "remote", "add", "-d", REMOTE, f"s3://{bucket}/{PREFIX}"], repo)
    run(["dvc", "remote", "modify", "--local", REMOTE, "endpointurl", s3_server.endpoint_url], repo)
    run(["git", "add", "-A"], repo)
    run([*GIT, "commit", "-qm", "dvc.lock, stage outputs git tracks, S3 remote"], repo)
    first = run(["dvc", "push"], repo, env=env).stdout
    return Origin(repo=repo, bucket=bucket, first_push=first)


@pytest.fixture(scope="module")
def clone(origin: Origin, s3_server: S3Server) -> Clone:
    repo = origin.repo.parent / "clone"
    run(["git", "clone", "-q", str(origin.repo), str(repo)], origin.repo.parent)
    had_cache = (repo / ".dvc" / "cache").exists()
    run(["dvc", "remote", "modify", "--local", REMOTE, "endpointurl", s3_server.endpoint_url], repo)
    run(["dvc", "pull"], repo, env=dvc_env(s3_server))
    missing = frozenset(rel for rel in locked_outs(repo) if not (repo / rel).exists())
    return Clone(repo=repo, missing=missing, had_cache_before_pull=had_cache)


@pytest.mark.slow
def test_remote_url_is_committed_and_the_endpoint_stays_in_config_local(origin: Origin) -> None:
    committed = run(["git", "show", "HEAD:.dvc/config"], origin.repo).stdout
    assert f"url = s3://{origin.bucket}/{PREFIX}" in committed and f"remote = {REMOTE}" in committed
    assert "endpointurl" not in committed, committed
    assert "endpointurl" in (origin.repo / ".dvc" / "config.local").read_text()
    run(["git", "check-ignore", "-q", ".dvc/config.local"], origin.repo)
    assert run(["git", "status", "--porcelain"], origin.repo).stdout == ""


@pytest.mark.slow
def test_dvc_push_uploads_every_cached_output_object_and_a_second_push_is_a_no_op(
    origin: Origin, s3_server: S3Server
) -> None:
    remote = remote_objects(s3_server, origin.bucket)
    cached = cache_objects(origin.repo)
    expected = referenced_objects(origin.repo)
    assert expected and set(remote) == expected, (
        sorted(expected - set(remote)),
        sorted(set(remote) - expected),
    )
    assert {k: v["size"] for k, v in remote.items()} == {k: cached[k] for k in expected}
    assert pushed_count(origin.first_push) == len(remote), origin.first_push
    env = dvc_env(s3_server)
    again = run(["dvc", "push"], origin.repo, env=env).stdout
    assert "Everything is up to date" in again and pushed_count(again) == 0, again
    assert remote_objects(s3_server, origin.bucket) == remote
    status = run(["dvc", "status", "--cloud"], origin.repo, env=env).stdout
    assert f"Cache and remote '{REMOTE}' are in sync" in status, status


@pytest.mark.slow
def test_a_fresh_clone_pulls_every_cached_output_with_the_hashes_dvc_lock_records(clone: Clone) -> None:
    assert not clone.had_cache_before_pull
    assert clone.missing == NOT_SHIPPED, sorted(clone.missing)
    assert out_mismatches(clone.repo, locked_outs(clone.repo)) == {}
    for name in ("resnet", "autoencoder", "crnn"):
        assert (clone.repo / "models" / name / "best.pt").is_file()


@pytest.mark.slow
def test_pull_then_make_ckernels_and_demo_data_leaves_dvc_repro_nothing_to_run(clone: Clone) -> None:
    lock_before = (clone.repo / "dvc.lock").read_bytes()
    models = sorted((clone.repo / "models").rglob("*.pt"))
    stamps = {p: (p.stat().st_mtime_ns, file_md5(p)) for p in models}
    run(["make", "-C", "ckernels", "all"], clone.repo)
    run(["ecgpipe", "demo-data"], clone.repo)
    outs = locked_outs(clone.repo)
    rebuilt = {rel: outs[rel] for rel in NOT_SHIPPED}
    # The machine-built outputs come back byte-identical to the origin's build, so no stage is stale.
    assert all((clone.repo / rel).exists() for rel in rebuilt)
    assert out_mismatches(clone.repo, rebuilt) == {}
    repro = run(["dvc", "repro"], clone.repo).stdout
    assert "Running stage" not in repro and "Data and pipelines are up to date" in repro, repro
    assert (clone.repo / "dvc.lock").read_bytes() == lock_before
    assert {p: (p.stat().st_mtime_ns, file_md5(p)) for p in models} == stamps
    assert run(["git", "status", "--porcelain"], clone.repo).stdout == ""


def test_moto_server_listens_on_loopback_serves_s3_and_frees_its_port_on_exit(tmp_path: Path) -> None:
    with moto_s3(tmp_path) as server:
        port = int(server.endpoint_url.rsplit(":", 1)[1])
        assert server.endpoint_url == f"http://{HOST}:{port}" and port_open(port)
        url = server.make_bucket("ecg-probe")
        fs = server.filesystem()
        fs.pipe_file("ecg-probe/a/b.bin", b"\x00\x01")
        assert url == "s3://ecg-probe" and fs.find("ecg-probe") == ["ecg-probe/a/b.bin"]
        assert fs.cat_file("ecg-probe/a/b.bin") == b"\x00\x01"
    assert not port_open(port)
    assert "PUT /ecg-probe/a/b.bin" in (tmp_path / "moto_server.log").read_text()


def test_server_env_and_storage_options_point_only_at_the_local_server() -> None:
    server = S3Server(endpoint_url=f"http://{HOST}:1", pid=0)
    env = server.env()
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    urls = [v for v in env.values() if "://" in v]
    assert urls and all(u == server.endpoint_url for u in urls)
    assert not any(Path(env[k]).exists() for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"))
    assert "AWS_PROFILE" not in env and env["AWS_EC2_METADATA_DISABLED"] == "true"
    opts = server.storage_options()
    assert (opts["endpoint_url"], opts["key"], opts["secret"]) == (server.endpoint_url, "testing", "testing")


@pytest.mark.parametrize("name", ["b1", "Upper-case", "under_score", "-leading", "trailing-", "x" * 64])
def test_make_bucket_refuses_names_s3_would_reject(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid S3 bucket name"):
        S3Server(endpoint_url=f"http://{HOST}:1", pid=0).make_bucket(name)
