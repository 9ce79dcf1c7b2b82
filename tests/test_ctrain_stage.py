"""``ecgpipe ctrain autoencoder`` on a small generated store: the report (gradients on a real batch, both
loss curves, both test AUROCs), the plots, and exit 1 naming the violation when a tolerance is 0."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.cli.main import main
from pipeline.models.autoencoder import ConvAutoencoder
from tests.ckernel_parity import built_kernels
from tests.model_stages import TINY, build_demo_store, cli_args, stage_dirs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Run:
    overrides: list[str]
    out: Path
    rc: int
    report: dict[str, Any]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    built_kernels()
    root = tmp_path_factory.mktemp("ctrain")
    overrides = build_demo_store(root, 4, 4, 120, ["beats140"])
    overrides += [*stage_dirs(root), *TINY, f"ctrain.out_dir={root / 'ctrain'}", "ctrain.epochs=3"]
    assert main(["split", "autoencoder", *cli_args(overrides)]) == 0
    rc = main(["ctrain", "autoencoder", *cli_args(overrides)])
    out = root / "ctrain" / "autoencoder"
    return Run(overrides, out, rc, json.loads((out / "report.json").read_text()))


def test_ctrain_passes_and_reports_every_parameter_and_activation_gradient_at_init_and_trained(
    run: Run,
) -> None:
    assert run.rc == 0, run.report["failures"]
    assert run.report["passed"] and run.report["failures"] == [] and run.report["grad_violations"] == 0
    params = {n for n, _ in ConvAutoencoder(widths=(4, 8), latent=4).named_parameters()}
    for where in ("init", "trained"):
        table = run.report["gradients"][where]
        assert set(table) == {"loss", "act", "act_grad", "param_grad"}
        assert set(table["param_grad"]) == params
        assert "recon" in table["act_grad"] and "encoder.0.0" in table["act_grad"]
        assert all(v["violations"] == 0 for kind in table.values() for v in kind.values())


def test_ctrain_loss_curves_cover_every_step_of_both_sides_and_agree(run: Run) -> None:
    r = run.report
    steps = r["epochs"] * -(-r["n_train"] // r["batch_size"])
    curves = r["loss_curves"]
    assert len(curves["pytorch"]) == len(curves["c"]) == len(curves["lr"]) == steps == r["loss"]["steps"]
    assert r["loss"]["max_rel_exact_steps"] <= r["tolerance"]["loss_exact_rtol"]
    assert curves["c"][-1] < curves["c"][0]  # it trains
    rows = (run.out / "losses.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["step", "pytorch_loss", "c_loss", "lr"] and len(rows) == steps + 1
    assert np.allclose([float(x.split("\t")[2]) for x in rows[1:]], curves["c"], rtol=0, atol=0)
    assert (run.out / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ctrain_end_metrics_use_one_threshold_rule_and_agree_within_auroc_atol(run: Run) -> None:
    m = run.report["metrics"]
    for side in ("pytorch", "c"):
        assert set(m[side]) == {"auroc", "f1", "threshold", "mean_mse"}
        assert 0.0 <= m[side]["auroc"] <= 1.0 and m[side]["threshold"] > 0
    assert abs(m["diff"]["auroc"]) <= run.report["tolerance"]["auroc_atol"]
    assert run.report["threshold_rule"] == {"method": "percentile", "p": 99.0, "k": 3.0}


def test_ctrain_exits_1_naming_the_gradients_when_their_tolerance_is_zero(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strict = [*run.overrides, f"ctrain.out_dir={tmp_path}", "ctrain.grad_atol=0", "ctrain.grad_rtol=0",
              "ctrain.epochs=1"]  # fmt: skip
    assert main(["ctrain", "autoencoder", *cli_args(strict)]) == 1
    report = json.loads((tmp_path / "autoencoder" / "report.json").read_text())
    assert not report["passed"] and report["grad_violations"] > 0
    assert all(f.startswith("gradients at ") for f in report["failures"])
    err = capsys.readouterr().err
    assert f"{len(report['failures'])} violations" in err and "gradients at init: act_grad" in err


def test_ctrain_refuses_a_model_that_is_not_an_autoencoder(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ctrain", "resnet", *cli_args([*run.overrides, "ctrain.models=[autoencoder,resnet]"])]) == 2
    assert "ctrain.models: 'resnet' is not an autoencoder" in capsys.readouterr().err
