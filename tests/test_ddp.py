"""Data-parallel training: two CPU processes under torchrun (gloo) give the weights and metrics of
one process trained on the same global batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from pipeline.cli.main import main
from pipeline.training import distributed
from pipeline.training.checkpoint import load_checkpoint
from tests.ddp_support import run
from tests.model_stages import build_demo_store, cli_args, stage_dirs

REPO = Path(__file__).resolve().parents[1]


def test_two_gloo_processes_match_one_process_on_the_same_global_batches(tmp_path: Path) -> None:
    run(tmp_path / "single")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "ddp_support.py"), str(tmp_path / "ddp")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    one = load_checkpoint(tmp_path / "single" / "latest.pt")
    two = load_checkpoint(tmp_path / "ddp" / "latest.pt")
    assert one["epoch"] == two["epoch"] == 3
    assert one["model"].keys() == two["model"].keys()  # rank 0 saved the bare model, not DDP's wrapper
    for name, a in one["model"].items():
        assert torch.allclose(a, two["model"][name], rtol=1e-4, atol=1e-6), name
    for h1, h2 in zip(one["history"], two["history"], strict=True):
        assert h1.keys() == h2.keys()
        for key, value in h1.items():  # train_loss is the mean over both ranks' records
            assert abs(value - h2[key]) < 1e-5, key


def test_without_torchrun_nothing_is_distributed() -> None:
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.all_reduce_sum([1.5, 2.0]) == [1.5, 2.0]
    batches = [1, 2, 3]
    assert distributed.even(batches) is batches
    with distributed.process_group_from_env("cpu") as on:
        assert not on


def test_ecgpipe_train_under_torchrun_trains_data_parallel_and_rank_0_alone_writes(tmp_path: Path) -> None:
    base = build_demo_store(tmp_path, 0, 40, 0, ["lead1_af"]) + stage_dirs(tmp_path)
    tiny = ["train.models.crnn.model.conv_channels=[4,8]", "train.models.crnn.model.rnn_hidden=8",
            "train.models.crnn.epochs=2", "train.models.crnn.batch_size=4", "train.models.crnn.device=cpu",
            "train.models.crnn.augment.noise_mv=0.01", "train.models.crnn.sampler=balanced"]  # fmt: skip
    assert main(["split", "crnn", *cli_args(base)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pipeline.cli.main", "train", "crnn", *cli_args([*base, *tiny])]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "models" / "crnn" / "latest.pt")
    assert ckpt["epoch"] == 2 and ckpt["finished"]
    assert not any(k.startswith("module.") for k in ckpt["model"])
    assert done.stdout.count("crnn: 2 epochs") == 2  # both ranks finished the same run
    rows = (tmp_path / "dvclive" / "crnn" / "plots" / "metrics" / "val_loss.tsv").read_text().splitlines()
    assert len(rows) == 3  # header + one row per epoch: rank 1 logged nothing
