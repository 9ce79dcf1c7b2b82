"""The whole DVC pipeline on a shrunken copy of this repository: `dvc repro` end to end, a second
`dvc repro` that does nothing, `dvc metrics show`, `dvc plots show` (no external scripts), and
`dvc exp run -S <train epochs key>=...`. Real DVC, real Prefect (temporary local server), real
training; only the sizes are small (the full-size run is README command 1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SMALL: dict[str, Any] = {
    "demo": {"n_ptbxl": 48, "n_cinc2017": 48, "n_ucr": 90},
    "evaluate": {"bootstrap": 20, "n_strips": 2},
    "export": {"calibration_records": 16, "latency_warmup": 1, "latency_repeats": 5},
}
MODEL_SMALL: dict[str, dict[str, Any]] = {
    "resnet": {"epochs": 1, "model": {"widths": [8, 16], "kernel_size": 7, "dropout": 0.0}},
    "autoencoder": {"epochs": 2},
    "crnn": {"epochs": 1, "model": {"conv_channels": [8, 16], "rnn_hidden": 16}},
}


def _run(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def _shrink(params_path: Path) -> None:
    params = yaml.safe_load(params_path.read_text())
    for section, values in SMALL.items():
        params[section].update(values)
    for name, values in MODEL_SMALL.items():
        m = params["train"]["models"][name]
        m.update({k: v for k, v in values.items() if k != "model"})
        m["model"].update(values.get("model", {}))
        m["warmup_epochs"] = 0
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git clone-alike of the tracked files (no outputs, no dvc.lock), shrunk, with `dvc repro` run once."""
    root = tmp_path_factory.mktemp("pipeline") / "repo"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for rel in files.splitlines():
        src = REPO / rel
        if rel == "dvc.lock" or not src.is_file():
            continue
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    _shrink(root / "params.yaml")
    _run(["git", "init", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], root)
    _run(["dvc", "repro"], root)
    return root


@pytest.mark.slow
@pytest.mark.prefect
def test_dvc_repro_runs_every_stage_and_a_second_repro_does_nothing(repo: Path) -> None:
    for name in ("resnet", "autoencoder", "crnn"):
        assert (repo / "models" / name / "best.pt").is_file()
        metrics = json.loads((repo / "eval" / name / "metrics.json").read_text())
        assert metrics["model"] == name and metrics["n_test"] > 0
        assert (repo / "eval" / name / "thresholds.json").is_file()
    for name in ("resnet", "autoencoder"):
        report = json.loads((repo / "export" / name / "report.json").read_text())
        assert set(report["latency_ms"]) == {"pytorch_fp32", "onnx_fp32", "onnx_int8"}
    for name in ("resnet", "autoencoder", "crnn"):
        parity = json.loads((repo / "parity" / name / "parity.json").read_text())
        assert parity["passed"] and parity["violations"] == 0 and parity["records"] > 0, parity
        assert parity["decisions"]["differ"] == 0
    again = _run(["dvc", "repro"], repo)
    assert "Data and pipelines are up to date" in again.stdout, again.stdout
    status = _run(["dvc", "status"], repo)
    assert "up to date" in status.stdout, status.stdout


@pytest.mark.slow
@pytest.mark.prefect
def test_dvc_metrics_show_lists_every_evaluation_and_export(repo: Path) -> None:
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], repo).stdout)
    files = next(iter(shown.values()))["data"]
    expected = [f"eval/{m}/metrics.json" for m in ("resnet", "crnn", "autoencoder")]
    expected += ["export/resnet/report.json", "dvclive/crnn/metrics.json", "metrics/ingest.json"]
    expected += [f"parity/{m}/parity.json" for m in ("resnet", "crnn", "autoencoder")]
    for path in expected:
        assert path in files, sorted(files)
    crnn = files["eval/crnn/metrics.json"]["data"]
    assert 0.0 <= crnn["test"]["f1_selected"] <= 1.0
    parity = files["parity/resnet/parity.json"]["data"]
    assert parity["passed"] is True and parity["layers"]["stem"]["max_abs"] < 1e-3


@pytest.mark.slow
@pytest.mark.prefect
def test_parity_stage_fails_on_a_perturbed_weight_naming_the_layer_and_values(repo: Path) -> None:
    weights = repo / "parity" / "resnet" / "weights.ecgk"
    original = weights.read_bytes()
    blob = bytearray(original)
    # The stem's weights are the file's first tensor: its data starts at the first 16-byte boundary after
    # the tensor's header (FORMAT.md); nudge one float there.
    start = blob.index(b"stem.weight") + len("stem.weight") + 4 + 4 * 3
    start += -start % 16
    blob[start : start + 4] = struct.pack("<f", struct.unpack("<f", blob[start : start + 4])[0] + 0.25)
    weights.write_bytes(bytes(blob))
    try:
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = subprocess.run(["dvc", "repro", "--single-item", "parity@resnet"], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        assert proc.returncode != 0, proc.stdout
        output = proc.stdout + proc.stderr
        assert "parity FAILED for resnet" in output and "first failing layer: stem (" in output, output[
            -3000:
        ]
        assert re.search(r"C = \S+, PyTorch = \S+, \|diff\|", output), output[-3000:]
    finally:
        weights.write_bytes(original)
    _run(["dvc", "repro", "--single-item", "parity@resnet"], repo)


@pytest.mark.slow
@pytest.mark.prefect
def test_dvc_plots_show_writes_a_page_with_no_external_scripts(repo: Path) -> None:
    _run(["dvc", "plots", "show", "--out", "plots_html"], repo)
    html = (repo / "plots_html" / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), (
        "page loads something from the network"
    )
    assert html.count("vegaEmbed(") >= 8
    assert "ecg_strips.png" in html


@pytest.mark.slow
@pytest.mark.prefect
def test_dvc_exp_run_with_a_train_epochs_override_trains_again(repo: Path) -> None:
    before = json.loads((repo / "dvclive" / "crnn" / "metrics.json").read_text())["step"]
    _run(["dvc", "exp", "run", "-S", "train.models.crnn.epochs=2"], repo)
    after = json.loads((repo / "dvclive" / "crnn" / "metrics.json").read_text())
    assert after["step"] == before + 1  # two epochs logged: steps 0 and 1
    shown = _run(["dvc", "exp", "show", "--json"], repo).stdout
    assert "train.models.crnn.epochs" in shown or '"epochs": 2' in shown
