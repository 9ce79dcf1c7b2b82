"""Checkpoint files: weights_only loading, refusing pickled objects, atomic writes under SIGKILL, RNG, git."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.lineage.provenance import git_commit, git_dirty
from pipeline.training.checkpoint import (
    CHECKPOINT_FORMAT,
    TEMP_SUFFIX,
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    remove_stale_temps,
    restore_rng_state,
    save_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]
CALLS: list[str] = []


def _record_call(tag: str) -> str:
    CALLS.append(tag)
    return tag


class _Payload:
    """Pickles as a call to ``_record_call``: loading it with plain pickle would run that call."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _record_call, ("code ran while loading",)


def _state() -> dict[str, object]:
    model = torch.nn.Linear(3, 2)
    return {
        "model": model.state_dict(),
        "epoch": 3,
        "history": [{"val_loss": 0.5}, {"val_loss": 0.25}],
        "best": None,
        "betas": (0.9, 0.999),
        "rng": capture_rng_state(),
        "lineage": {"manifest_hash": "abc", "git_commit": None, "git_dirty": False},
    }


def test_checkpoint_round_trips_and_plain_torch_load_with_weights_only_reads_it(tmp_path: Path) -> None:
    state = _state()
    path = tmp_path / "latest.pt"
    save_checkpoint(state, path)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT
    loaded = load_checkpoint(path)
    assert isinstance(loaded["model"], OrderedDict)
    model = state["model"]
    assert isinstance(model, dict)
    assert all(torch.equal(loaded["model"][k], v) for k, v in model.items())
    assert loaded["history"] == state["history"] and loaded["betas"] == (0.9, 0.999)
    assert loaded["lineage"] == state["lineage"] and loaded["epoch"] == 3 and loaded["best"] is None
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_save_writes_the_same_bytes_to_every_destination(tmp_path: Path) -> None:
    save_checkpoint(_state(), tmp_path / "best.pt", tmp_path / "latest.pt")
    assert (tmp_path / "best.pt").read_bytes() == (tmp_path / "latest.pt").read_bytes()


def test_a_pickled_object_in_a_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "payload": _Payload()}, path)
    CALLS.clear()
    with pytest.raises(
        CheckpointError, match=r"evil\.pt: refused, not loadable with torch\.load\(weights_only"
    ):
        load_checkpoint(path)
    assert CALLS == []


def test_a_truncated_checkpoint_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latest.pt"
    save_checkpoint(_state(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"latest\.pt: unreadable or truncated"):
        load_checkpoint(path)


def test_a_weights_only_file_that_is_not_an_ecgpipe_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"bare\.pt: not an ecgpipe checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"missing\.pt: no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    ("value", "where"),
    [(np.float64(0.5), "checkpoint.metrics.auroc"), (Path("x"), "checkpoint.metrics.auroc")],
)
def test_save_refuses_values_weights_only_could_not_load_naming_the_key(
    tmp_path: Path, value: object, where: str
) -> None:
    with pytest.raises(TypeError, match=rf"^{where}: "):
        save_checkpoint({"metrics": {"auroc": value}}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []


def test_rng_states_survive_a_checkpoint_and_restore_the_same_streams(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in numpy's state
    save_checkpoint({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    expected = (torch.rand(5), np.random.standard_normal(5), [random.random() for _ in range(5)])
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    got = (torch.rand(5), np.random.standard_normal(5), [random.random() for _ in range(5)])
    assert torch.equal(expected[0], got[0])
    assert np.array_equal(expected[1], got[1]) and expected[2] == got[2]


_WRITER = """
import os, sys, torch
from pathlib import Path
from pipeline.training.checkpoint import TEST_PAUSE_ENV, save_checkpoint
path = Path(sys.argv[1])
save_checkpoint({"tag": "old", "w": torch.zeros(50_000)}, path)
os.environ[TEST_PAUSE_ENV] = "300"
save_checkpoint({"tag": "new", "w": torch.ones(50_000)}, path)
"""


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_file_loadable(tmp_path: Path) -> None:
    path = tmp_path / "latest.pt"
    with (tmp_path / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], cwd=REPO, stderr=err)
        try:
            temps = _wait_for_second_temp(path, proc)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    loaded = load_checkpoint(path)
    assert loaded["tag"] == "old" and torch.equal(loaded["w"], torch.zeros(50_000))
    assert 0 < temps[0].stat().st_size < path.stat().st_size  # the kill came mid-write
    assert remove_stale_temps(tmp_path) == temps and not temps[0].exists()
    save_checkpoint({"tag": "after"}, path)
    assert load_checkpoint(path)["tag"] == "after"


def _wait_for_second_temp(path: Path, proc: subprocess.Popen[bytes]) -> list[Path]:
    """The temporary file of the writer's second save, once it holds data.

    The first save's temporary file is renamed to ``path``; a kill while only that one exists
    would leave no previous file at all. So wait for ``path`` first: from then on the first
    temporary file is gone (the rename removed its name), and any temporary file with data is
    the second save's, paused half-written.
    """
    deadline = time.monotonic() + 60
    log = path.parent / "stderr.txt"
    while time.monotonic() < deadline:
        if path.exists():
            temps = sorted(path.parent.glob(f".*{TEMP_SUFFIX}"))
            if temps and temps[0].stat().st_size > 0:
                return temps
        assert proc.poll() is None, log.read_text()
        time.sleep(0.02)
    raise AssertionError("the writer never started its second checkpoint")


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_git_commit_and_dirty_flag_inside_a_repo_and_none_outside(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_commit(outside) is None and git_dirty(outside) is None
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("1\n")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "first")
    assert git_commit(repo) == _git(repo, "rev-parse", "HEAD") and git_dirty(repo) is False
    (repo / "untracked.txt").write_text("not part of the code\n")
    assert git_dirty(repo) is False
    (repo / "a.txt").write_text("2\n")
    assert git_dirty(repo) is True
