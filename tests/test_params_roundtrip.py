"""``params.yaml`` survives DVC's own ``dvc exp run -S`` round trip: running DVC's set-param function
(``dvc.utils.hydra.apply_overrides``, what ``-S`` calls on the workspace's params file) changes only
the lines of the keys it sets, and the file still loads as the same params apart from those keys."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from typing import Any

import yaml
from dvc.utils.hydra import apply_overrides

from pipeline.config import load_params
from tests.script_module import REPO, load_script

OVERRIDES = {
    "train.models.crnn.epochs": (1, "      epochs: 1"),
    "deploy.interval_s": (60, "  interval_s: 60            # seconds; replaces cron when set"),
    "evaluate.bootstrap": (100, "  bootstrap: 100"),
}


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    for part in path:
        data = data[part]
    data[last] = value


def test_shipped_params_are_in_dvcs_round_trip_form() -> None:
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    assert load_script("format_params").formatted(text) == text, "run python scripts/format_params.py"


def test_dvc_set_param_changes_only_the_lines_of_the_keys_it_sets(tmp_path: Path) -> None:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    before = (tmp_path / "params.yaml").read_text(encoding="utf-8")
    apply_overrides(tmp_path / "params.yaml", [f"{k}={v}" for k, (v, _) in OVERRIDES.items()])
    after = (tmp_path / "params.yaml").read_text(encoding="utf-8")
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm=""))
    removed = [ln for ln in diff if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in diff if ln.startswith("+") and not ln.startswith("+++")]
    assert len(removed) == len(added) == len(OVERRIDES), "\n".join(diff)
    assert all(any(a.startswith(want) for a in added) for _, want in OVERRIDES.values()), added
    expected = yaml.safe_load(before)
    for key, (value, _) in OVERRIDES.items():
        _set(expected, key, value)
    assert yaml.safe_load(after) == expected
    params = load_params(tmp_path / "params.yaml")
    assert params.train.models["crnn"].epochs == 1 and params.deploy.interval_s == 60
