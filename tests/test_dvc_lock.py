"""pipeline.lineage.dvc_lock and .lock_check: parsing dvc.lock, finding the stage that produced a path,
and the cheap on-disk check, compared with what real DVC records and reports on a tiny project."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipeline.lineage import dvc_lock as dl
from pipeline.lineage import lock_check as lc
from tests.pipeline_repo import run

LOCK: dict[str, Any] = {
    "schema": "2.0",
    "stages": {
        "make": {
            "cmd": "python make.py",
            "deps": [{"path": "make.py", "hash": "md5", "md5": "a" * 32, "size": 10}],
            "params": {"params.yaml": {"make.n": 3}},
            "outs": [
                {"path": "data/out", "hash": "md5", "md5": "b" * 32 + ".dir", "size": 7, "nfiles": 2},
                {"path": "metrics/m.json", "hash": "md5", "md5": "c" * 32, "size": 5},
            ],
        },
        "use@x": {
            "cmd": ["python use.py x", "echo done"],
            "deps": [
                {"path": "data/out/sub", "hash": "md5", "md5": "d" * 32 + ".dir", "size": 3, "nfiles": 1}
            ],
            "outs": [{"path": "result/x.txt", "hash": "md5", "md5": "e" * 32, "size": 1}],
        },
        "all": {
            "cmd": "python all.py",
            "deps": [{"path": "data", "hash": "md5", "md5": "f" * 32 + ".dir", "size": 7, "nfiles": 2}],
            "outs": [],
        },
    },
}


def _lock(root: Path = Path("/p")) -> dl.DvcLock:
    return dl.parse_lock(LOCK, root)


def test_parse_keeps_cmds_params_and_hashes_as_the_lock_has_them() -> None:
    lock = _lock()
    make = lock.stage("make")
    assert make.cmd_json() == "python make.py" and lock.stage("use@x").cmd_json() == [
        "python use.py x",
        "echo done",
    ]
    assert make.params == {"params.yaml": {"make.n": 3}}
    assert [o.to_json() for o in make.outs] == [
        {"path": "data/out", "md5": "b" * 32 + ".dir", "size": 7, "nfiles": 2},
        {"path": "metrics/m.json", "md5": "c" * 32, "size": 5, "nfiles": None},
    ]
    assert make.outs[0].is_dir and not make.outs[1].is_dir
    with pytest.raises(dl.LockError, match="no stage 'nope'"):
        lock.stage("nope")


def test_producers_are_outs_equal_to_or_containing_the_path() -> None:
    lock = _lock()
    assert [(p.stage.name, p.out.path) for p in lock.producers("data/out/sub/f.bin")] == [
        ("make", "data/out")
    ]
    assert [p.stage.name for p in lock.producers("metrics/m.json")] == ["make"]
    assert lock.producers("data/outside.txt") == [] and lock.producers("metrics/m.json.bak") == []
    assert [p.out.path for p in lock.producers_inside("data")] == ["data/out"]


def test_dep_producers_cover_deps_inside_and_around_outs_but_not_the_stage_itself() -> None:
    lock = _lock()
    assert [p.stage.name for p in lock.dep_producers("data/out/sub")] == ["make"]
    assert [p.stage.name for p in lock.dep_producers("data")] == ["make"]
    assert lock.dep_producers("data/out", exclude="make") == []
    assert lock.dep_users("data/out/sub") == ["use@x", "all"]


def test_nearby_outs_share_the_longest_leading_folders() -> None:
    lock = _lock()
    assert dl.nearby_outs(lock, "data/out2/x") == ["data/out"]
    assert dl.nearby_outs(lock, "result/y.txt") == ["result/x.txt"]


def test_normalise_spells_paths_like_the_lock_and_refuses_outside_ones(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "sub").mkdir()
    assert dl.normalise(tmp_path, "sub/../data/x.csv", cwd=tmp_path) == "data/x.csv"
    assert dl.normalise(tmp_path, tmp_path / "a" / "b.pt") == "a/b.pt"
    assert dl.normalise(tmp_path, "x", cwd=tmp_path / "sub") == "sub/x"
    assert dl.find_project_root(tmp_path / "sub") == tmp_path.resolve()
    with pytest.raises(dl.LockError, match="outside the project"):
        dl.normalise(tmp_path / "sub", tmp_path / "other")


def test_malformed_or_missing_lock_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(dl.LockError, match="run `dvc repro` first"):
        dl.load_lock(tmp_path)
    (tmp_path / "dvc.lock").write_text("- just a list\n")
    with pytest.raises(dl.LockError, match="schema 2.0"):
        dl.load_lock(tmp_path)


def test_check_file_compares_size_then_md5(tmp_path: Path) -> None:
    f = tmp_path / "m.json"
    f.write_text('{"a": 1}')
    md5 = lc.md5_file(f)
    assert lc.check_file(f, md5, 8).status == "unchanged"
    f.write_text('{"a": 2}')  # same size: only the md5 sees it
    state = lc.check_file(f, md5, 8)
    assert (state.status, state.method) == ("modified", "md5")
    f.write_text('{"a": 22}')
    assert (lc.check_file(f, md5, 8).status, lc.check_file(f, md5, 8).method) == ("modified", "size")


def test_folder_check_counts_files_like_dvc_honouring_dvcignore(tmp_path: Path) -> None:
    out = tmp_path / "store"
    (out / "p").mkdir(parents=True)
    (out / "p" / "a.bin").write_bytes(b"12345")
    (out / "p" / ".lock").write_text("pid 1")
    (tmp_path / ".dvcignore").write_text("# writer locks\n.lock\n")
    entry = dl.LockEntry("store", "0" * 32 + ".dir", 5, 1, "md5")
    ignore = lc.load_ignore(tmp_path)
    assert lc.check_entry(tmp_path, entry, ignore).status == "unchanged"
    assert lc.check_entry(tmp_path, entry, None).status == "modified"  # the .lock would count
    (out / "p" / "b.bin").write_bytes(b"")
    state = lc.check_entry(tmp_path, entry, ignore)
    assert state.status == "modified" and state.nfiles == 2 and "now 2 files" in state.detail
    assert lc.check_entry(tmp_path, dl.LockEntry("gone", None, None, None, "md5"), ignore).status == "missing"


MAKE = """\
import pathlib, sys
out = pathlib.Path("out")
(out / "sub").mkdir(parents=True, exist_ok=True)
(out / "a.txt").write_text("alpha")
(out / "sub" / "b.txt").write_text("beta")
(out / ".lock").write_text("pid 1")
pathlib.Path("m.json").write_text('{"n": 1}')
"""


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real DVC project (no git) with one stage: a cached folder out and an uncached metrics file."""
    root = tmp_path_factory.mktemp("dvcproj")
    (root / "make.py").write_text(MAKE)
    (root / "dvc.yaml").write_text(textwrap.dedent(f"""\
        stages:
          make:
            cmd: {sys.executable} make.py
            deps: [make.py]
            outs:
              - out
            metrics:
              - m.json:
                  cache: false
        """))  # fmt: skip
    (root / ".dvcignore").write_text(".lock\n")
    run(["dvc", "init", "--no-scm", "-q"], root)
    run(["dvc", "repro", "-q"], root)
    return root


@pytest.mark.slow
def test_a_real_dvc_lock_reads_back_and_matches_the_disk(dvc_project: Path) -> None:
    lock = dl.load_lock(dvc_project)
    make = lock.stage("make")
    assert [o.path for o in make.outs] == ["m.json", "out"] and make.out("out") is not None
    ignore = lc.load_ignore(dvc_project)
    assert [lc.check_entry(dvc_project, o, ignore).status for o in make.outs] == ["unchanged", "unchanged"]
    out = make.out("out")
    assert out is not None and out.nfiles == 2  # DVC did not count the ignored .lock either
    listing = lc.dir_listing(dvc_project, out.md5 or "")
    assert listing is not None and set(listing) == {"a.txt", "sub/b.txt"}
    assert lc.check_inside(dvc_project, out, "out/sub/b.txt").status == "unchanged"
    assert lc.check_inside(dvc_project, out, "out/sub").status == "unchanged"


@pytest.mark.slow
def test_an_in_place_edit_inside_a_cached_folder_is_seen_like_dvc_status_sees_it(dvc_project: Path) -> None:
    lock = dl.load_lock(dvc_project)
    out = lock.stage("make").out("out")
    assert out is not None
    target = dvc_project / "out" / "sub" / "b.txt"
    target.write_text("BETA")  # same size and file count: the cheap folder check cannot tell
    try:
        assert lc.check_entry(dvc_project, out, lc.load_ignore(dvc_project)).status == "unchanged"
        state = lc.check_inside(dvc_project, out, "out/sub/b.txt")
        assert (state.status, state.method) == ("modified", "md5")
        assert lc.check_inside(dvc_project, out, "out/sub").status == "modified"
        status = json.loads(run(["dvc", "status", "--json"], dvc_project).stdout)
        assert "out" in json.dumps(status["make"]), status
    finally:
        target.write_text("beta")


def test_lock_stages_is_the_raw_stage_mapping_empty_before_the_first_repro(tmp_path: Path) -> None:
    assert dl.lock_stages(tmp_path) == {}
    body = {"cmd": "ecgpipe ingest", "outs": [{"path": "data/shards", "md5": "ab.dir", "size": 3}]}
    (tmp_path / "dvc.lock").write_text(json.dumps({"schema": "2.0", "stages": {"ingest": body}}))
    assert dl.lock_stages(tmp_path) == {"ingest": body}
    (tmp_path / "dvc.lock").write_text("stages: [1, 2]\n")
    with pytest.raises(dl.LockError, match="expected a mapping with 'stages'"):
        dl.lock_stages(tmp_path)
