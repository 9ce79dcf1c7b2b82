"""Every DVC stage that runs ``ecgpipe`` lists, in its deps, exactly the project code its command imports.

The import set of a command is read from the source by ``scripts/dvc_deps.py`` (which also rewrites
dvc.yaml's lists): a new import that the stage's deps miss (so ``dvc repro`` would not re-run the
stage when that code changes) fails here, and so does a listed module the command never imports (so
editing ``lineage``'s help text does not retrain the models).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.script_module import load_script

REPO = Path(__file__).resolve().parents[1]
dvc_deps = load_script("dvc_deps")
STAGES: dict[str, Any] = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
ECGPIPE_STAGES = sorted(s for s, spec in STAGES.items() if dvc_deps.stage_command(spec))


def _code_deps(stage: str) -> list[str]:
    spec = STAGES[stage].get("do", STAGES[stage])
    return [str(d) for d in spec["deps"] if str(d).split("/")[0] in ("pipeline", "flows")]


def test_every_stage_that_runs_python_is_checked() -> None:
    expected = {"demo_data", "ingest", "split", "train", "evaluate", "export", "cexport", "parity", "ctrain"}
    assert set(ECGPIPE_STAGES) == expected


@pytest.mark.parametrize("stage", ECGPIPE_STAGES)
def test_stage_code_deps_are_exactly_what_its_command_imports(stage: str) -> None:
    command = dvc_deps.stage_command(STAGES[stage])
    listed, needed = set(_code_deps(stage)), set(dvc_deps.stage_code_deps(command))
    assert not needed - listed, f"{stage} imports {sorted(needed - listed)}; run scripts/dvc_deps.py"
    assert not listed - needed, f"{stage} lists {sorted(listed - needed)} it never imports"


def test_model_stages_do_not_depend_on_lineage_verify_or_flow_code() -> None:
    for stage in ("split", "train", "evaluate", "export", "cexport", "parity", "ctrain"):
        deps = _code_deps(stage)
        assert "pipeline/cli/lineage.py" not in deps and "pipeline/cli/verify.py" not in deps
        # flows/__init__ finds a running `ecgpipe server` (flows/server.py, standard library only) for
        # every command; no flow code proper is a model stage's dep
        entry = ("flows/__init__.py", "flows/cli.py", "flows/server.py")
        assert not [d for d in deps if d.startswith("flows/") and d not in entry]


def test_the_import_set_follows_a_lazy_import_inside_the_command() -> None:
    # cmd_train imports the training stage inside the function: it is a dep; the other commands'
    # work (evaluation report, ONNX export) is not
    train = dvc_deps.stage_code_deps("train")
    assert "pipeline/training/stage.py" in train and "pipeline/cli/models.py" in train
    assert "pipeline/export/onnx.py" not in train and "pipeline/evaluation/report.py" not in train


def test_ingest_depends_on_every_reader_module_the_registry_loads_by_name() -> None:
    # sources.registry imports readers with importlib (one broken reader cannot break the others), so a
    # plain import walk would miss them and editing a reader would not re-run ingest
    from pipeline.sources.options import OPTIONS
    from pipeline.sources.registry import reader_class

    deps = _code_deps("ingest")
    for kind in OPTIONS:
        module = reader_class(kind).__module__
        assert module.replace(".", "/") + ".py" in deps, f"ingest misses the {kind!r} reader ({module})"


def test_the_generator_is_current_for_dvc_yaml() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "dvc_deps.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
