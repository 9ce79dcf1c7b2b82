"""``ecgpipe train <model>`` killed and re-run: it resumes from ``latest.pt`` and ends with the
weights and metrics of an uninterrupted run; with a changed training param it starts over.

Each compared run is a separate ``python -m pipeline.cli.main train crnn`` process (a tiny CRNN, four
epochs, several batches per epoch so the shuffled order matters) on a small store built once
from the demo data. The kill lands after the second epoch's checkpoint: the killed process
pauses inside every checkpoint write (``ECGPIPE_TEST_CHECKPOINT_PAUSE_S``), which leaves the
poller time to see epoch 2 in ``latest.pt`` before epoch 3's is written. CPU only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.cli.main import main
from pipeline.training.checkpoint import TEMP_SUFFIX, TEST_PAUSE_ENV, CheckpointError, load_checkpoint
from tests.conftest import sigkill_when
from tests.model_stages import REPO, build_demo_store, cli_args

EPOCHS = 4
TRAIN = [
    "train.models.crnn.model.conv_channels=[4,8]",
    "train.models.crnn.model.rnn_hidden=8",
    f"train.models.crnn.epochs={EPOCHS}",
    "train.models.crnn.batch_size=8",
    "train.models.crnn.device=cpu",
]
PAUSE_S = 0.4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Runs:
    """A run killed after epoch 2 then resumed (``resumed``), and an uninterrupted one (``reference``)."""

    base: list[str]
    resumed: Path
    reference: Path
    killed_latest: dict[str, Any]
    resume_stderr: str


def _dirs(root: Path) -> list[str]:
    return [f"train.out_dir={root / 'models'}", f"train.live_dir={root / 'live'}"]


def _command(overrides: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli.main", "train", "crnn", *cli_args(overrides)]


def _env(pause: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != TEST_PAUSE_ENV}
    env["OMP_NUM_THREADS"] = "1"  # the same in every compared process
    if pause:
        env[TEST_PAUSE_ENV] = str(PAUSE_S)
    return env


def _latest_epoch(path: Path) -> int | None:
    try:
        return int(load_checkpoint(path)["epoch"])
    except CheckpointError:
        return None


def _kill_after_epoch_2(overrides: Sequence[str], run_dir: Path) -> None:
    latest = run_dir / "models" / "crnn" / "latest.pt"
    err = run_dir / "killed-stderr.txt"
    with err.open("wb") as fh:
        proc = subprocess.Popen(_command(overrides), cwd=REPO, env=_env(pause=True), stdout=fh, stderr=fh)
        never = "epoch 2's checkpoint never appeared"
        sigkill_when(proc, lambda: _latest_epoch(latest) == 2, 120, err, never)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("train-stage")
    base = build_demo_store(root, 0, 40, 0, ["lead1_af"]) + [f"split.out_dir={root / 'splits'}", *TRAIN]
    assert main(["split", "crnn", *cli_args(base)]) == 0
    resumed, reference = root / "resumed", root / "reference"
    # the uninterrupted run goes on while the other one is killed
    ref_log = (root / "reference-log.txt").open("wb")
    ref = subprocess.Popen(_command([*base, *_dirs(reference)]), cwd=REPO, env=_env(pause=False),
                           stdout=ref_log, stderr=ref_log)  # fmt: skip
    try:
        resumed.mkdir()
        _kill_after_epoch_2([*base, *_dirs(resumed)], resumed)
        killed_latest = load_checkpoint(resumed / "models" / "crnn" / "latest.pt")
        again = subprocess.run(_command([*base, *_dirs(resumed)]), cwd=REPO, env=_env(pause=False),
                               capture_output=True, timeout=300)  # fmt: skip
        assert again.returncode == 0, again.stderr.decode(errors="replace")[-3000:]
        assert ref.wait(timeout=300) == 0, (root / "reference-log.txt").read_text()[-3000:]
    finally:
        if ref.poll() is None:
            ref.kill()
            ref.wait()
        ref_log.close()
    return Runs(base, resumed, reference, killed_latest, again.stderr.decode(errors="replace"))


def _ckpt(run: Path, name: str) -> dict[str, Any]:
    return load_checkpoint(run / "models" / "crnn" / name)


def _assert_close(got: object, want: object, where: str, atol: float = 1e-6) -> None:
    """Equal structure; tensors and floats within ``atol``; everything else equal."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor) and got.shape == want.shape, where
        if want.is_floating_point():
            assert torch.allclose(got, want, rtol=0.0, atol=atol), (
                f"{where}: max diff {(got - want).abs().max()}"
            )
        else:
            assert torch.equal(got, want), where
    elif isinstance(want, Mapping):
        assert isinstance(got, Mapping), where
        assert set(got) == set(want), f"{where}: {set(got) ^ set(want)}"
        for key in want:
            _assert_close(got[key], want[key], f"{where}.{key}", atol)
    elif isinstance(want, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, f"{where}[{i}]", atol)
    elif isinstance(want, float):
        assert isinstance(got, float) and got == pytest.approx(want, rel=0, abs=atol), (
            f"{where}: {got} != {want}"
        )
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def test_the_kill_left_epoch_2_in_latest(runs: Runs) -> None:
    assert runs.killed_latest["epoch"] == 2 and not runs.killed_latest["finished"]
    assert len(runs.killed_latest["history"]) == 2


def test_the_rerun_resumed_after_epoch_2_instead_of_starting_over(runs: Runs) -> None:
    # the progress bars of the re-run: epochs 3 and 4 only
    assert f"epoch 3/{EPOCHS}" in runs.resume_stderr and f"epoch {EPOCHS}/{EPOCHS}" in runs.resume_stderr
    assert f"epoch 1/{EPOCHS}" not in runs.resume_stderr and f"epoch 2/{EPOCHS}" not in runs.resume_stderr
    assert "not resuming" not in runs.resume_stderr
    folder = runs.resumed / "models" / "crnn"
    assert not list(folder.glob(f".*{TEMP_SUFFIX}"))  # a write torn by the kill was cleaned up


@pytest.mark.parametrize("name", ["latest.pt", "best.pt"])
def test_resumed_weights_and_metrics_equal_the_uninterrupted_run(runs: Runs, name: str) -> None:
    got, want = _ckpt(runs.resumed, name), _ckpt(runs.reference, name)
    assert got["epoch"] == want["epoch"] and got["finished"] == want["finished"]
    for key in ("model", "optimizer", "scheduler", "early_stopping", "history", "metrics", "class_weights",
                "config", "lineage"):  # fmt: skip
        _assert_close(got[key], want[key], key)
    if name == "latest.pt":
        assert got["epoch"] == EPOCHS and got["finished"]
        assert [h["epoch"] for h in got["history"]] == [float(e) for e in range(1, EPOCHS + 1)]


def test_resumed_dvclive_log_has_each_epoch_once_with_the_reference_values(runs: Runs) -> None:
    def rows(run: Path) -> list[tuple[int, float]]:
        lines = (run / "live" / "crnn" / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()
        header = lines[0].split("\t")
        step, value = header.index("step"), header.index("val_loss")
        return [(int(p[step]), float(p[value])) for p in (line.split("\t") for line in lines[1:])]

    got, want = rows(runs.resumed), rows(runs.reference)
    assert [s for s, _ in got] == list(range(1, EPOCHS + 1)) == [s for s, _ in want]
    for (_, g), (_, w) in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=1e-6)


def _copy_run(runs: Runs, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(runs.resumed, copy)
    return copy


def test_rerunning_a_finished_run_with_the_same_params_trains_nothing(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(runs, tmp_path)
    before = (run / "models" / "crnn" / "latest.pt").read_bytes()
    assert main(["train", "crnn", *cli_args([*runs.base, *_dirs(run)])]) == 0
    out = capsys.readouterr()
    assert "not resuming" not in out.out and "epoch 1/" not in out.err
    assert (run / "models" / "crnn" / "latest.pt").read_bytes() == before


def test_changing_a_training_param_starts_over(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(runs, tmp_path)
    overrides = [*runs.base, *_dirs(run), "train.models.crnn.lr=0.0005"]
    assert main(["train", "crnn", *cli_args(overrides)]) == 0
    out = capsys.readouterr().out
    assert "not resuming" in out and "config.lr" in out
    line = next(x for x in out.splitlines() if "not resuming" in x)
    assert "→ 0.0005" in line and len(line) < 400, line  # the changed values, not whole param dumps
    summary = out.splitlines()[-1]  # rounded figures, no dict repr
    assert summary.startswith("crnn: ") and "{" not in summary and not re.search(r"\d\.\d{6}", summary)
    latest = _ckpt(run, "latest.pt")
    assert latest["config"]["lr"] == 0.0005 and latest["epoch"] == EPOCHS and latest["finished"]
    old = _ckpt(runs.reference, "latest.pt")
    assert not torch.equal(latest["model"]["head.weight"], old["model"]["head.weight"])
    assert _ckpt(run, "best.pt")["config"]["lr"] == 0.0005  # no best.pt of the old run survives


def test_a_moved_workspace_resumes_its_run(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same store, index and checkpoints under another folder (a `dvc exp run --temp`
    # workspace, a copy of the repository on a GPU machine): the data are identical (same
    # manifest and index sha256), so the run must continue, not start over.
    root = runs.resumed.parent
    moved = tmp_path / "moved"
    for name in ("shards", "splits", "resumed"):
        shutil.copytree(root / name, moved / name)
    run = moved / "resumed"
    before = (run / "models" / "crnn" / "latest.pt").read_bytes()
    overrides = [
        *runs.base,
        f"ingest.store={moved / 'shards'}",
        f"split.out_dir={moved / 'splits'}",
        *_dirs(run),
    ]
    assert main(["train", "crnn", *cli_args(overrides)]) == 0
    out = capsys.readouterr().out
    assert "not resuming" not in out, out
    assert (run / "models" / "crnn" / "latest.pt").read_bytes() == before
