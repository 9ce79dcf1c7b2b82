"""The whole DVC pipeline on a shrunken copy of this repository: `dvc repro` end to end, a second
`dvc repro` that does nothing, `dvc metrics show`, `dvc plots show` (no external scripts), and
`dvc exp run -S <train epochs key>=...`. Real DVC, real Prefect (temporary local server), real
training; only the sizes are small (the full-size run is README command 1)."""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pipeline_repo import REPO, copy_of, run, tool_env


@pytest.fixture(scope="module")
def repo(reproduced_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own copy of the session's reproduced repo: its tests change outputs and params."""
    return copy_of(reproduced_repo, tmp_path_factory.mktemp("pipeline") / "repo")


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
    again = run(["dvc", "repro"], repo)
    assert "Data and pipelines are up to date" in again.stdout, again.stdout
    status = run(["dvc", "status"], repo)
    assert "up to date" in status.stdout, status.stdout


@pytest.mark.slow
@pytest.mark.prefect
def test_dvc_metrics_show_lists_every_evaluation_and_export(repo: Path) -> None:
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)
    files = next(iter(shown.values()))["data"]
    expected = [f"eval/{m}/metrics.json" for m in ("resnet", "crnn", "autoencoder")]
    expected += ["export/resnet/metrics.json", "dvclive/crnn/metrics.json", "metrics/ingest.json"]
    expected += [f"parity/{m}/metrics.json" for m in ("resnet", "crnn", "autoencoder")]
    for path in expected:
        assert path in files, sorted(files)
    crnn = files["eval/crnn/metrics.json"]["data"]
    assert 0.0 <= crnn["test"]["f1_selected"] <= 1.0
    parity = files["parity/resnet/metrics.json"]["data"]
    assert parity["passed"] is True and parity["worst_ratio"] < 1.0
    assert not any(path.endswith("parity.json") for path in files)  # per-layer detail is not a metric


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
        proc = subprocess.run(["dvc", "repro", "--single-item", "parity@resnet"], cwd=repo, env=tool_env(),
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        assert proc.returncode != 0, proc.stdout
        output = proc.stdout + proc.stderr
        assert "parity FAILED for resnet" in output and "first failing layer: stem (" in output, output[
            -3000:
        ]
        assert re.search(r"C = \S+, PyTorch = \S+, \|diff\|", output), output[-3000:]
    finally:
        weights.write_bytes(original)
    run(["dvc", "repro", "--single-item", "parity@resnet"], repo)


@pytest.mark.slow
@pytest.mark.prefect
def test_dvc_plots_show_writes_a_page_with_no_external_scripts(repo: Path) -> None:
    run(["dvc", "plots", "show", "--out", "plots_html"], repo)
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
    run(["dvc", "exp", "run", "-S", "train.models.crnn.epochs=2"], repo)
    after = json.loads((repo / "dvclive" / "crnn" / "metrics.json").read_text())
    assert after["step"] == before + 1  # two epochs logged: steps 0 and 1
    shown = run(["dvc", "exp", "show", "--json"], repo).stdout
    assert "train.models.crnn.epochs" in shown or '"epochs": 2' in shown


def _stage_loops() -> tuple[dict[str, Any], dict[str, Any]]:
    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    return dvc_yaml, params


def test_export_and_parity_loops_name_each_models_profile_as_params_do() -> None:
    """DVC cannot look up ``train.models.<model>.profile`` by a loop variable, so the export and parity
    loops name each model's profile; it must be the one params.yaml trains the model on."""
    stages, params = _stage_loops()
    models = params["train"]["models"]
    for stage in ("export", "parity", "ctrain"):
        loop = stages[stage]["foreach"]
        assert all(loop[m]["profile"] == models[m]["profile"] for m in loop), stage
        assert "data/shards/${item.profile}" in stages[stage]["do"]["deps"]
    assert list(stages["parity"]["foreach"]) == params["parity"]["models"]
    assert list(stages["ctrain"]["foreach"]) == params["ctrain"]["models"]


def test_no_stage_but_ingest_depends_on_every_profiles_store() -> None:
    stages, _ = _stage_loops()
    whole = [
        name for name, s in stages.items() if "data/shards" in s.get("deps", s.get("do", {}).get("deps", []))
    ]
    assert whole == []


@pytest.mark.slow
@pytest.mark.prefect
def test_a_changed_ecg12_store_makes_only_the_resnet_chain_stale(
    reproduced_repo: Path, tmp_path: Path
) -> None:
    """Landing a record of one profile changes that profile's store only: `dvc status` then lists the
    ingest stage (its output changed) and the stages of the model trained on that profile, no other."""
    repo = copy_of(reproduced_repo, tmp_path / "repo")
    (repo / "data" / "shards" / "ecg12" / "landed.json").write_text("{}")  # as a new shard would
    stale = set(json.loads(run(["dvc", "status", "--json"], repo).stdout))
    resnet = {f"{s}@resnet" for s in ("split", "train", "evaluate", "export", "cexport", "parity")}
    assert "ingest" in stale and stale - {"ingest"} <= resnet, sorted(stale)
    assert {"split@resnet", "export@resnet", "parity@resnet"} <= stale, sorted(stale)
