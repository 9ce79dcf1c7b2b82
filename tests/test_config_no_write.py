"""An invalid params.yaml fails every command before any work: exit 2, a message naming the dotted key
and what was expected, and nothing written (the project tree stays byte-identical; no store, no
Prefect home contents, nothing in $HOME).

Each bad params.yaml is written into a fresh copy of a small project (the shipped params.yaml, the
label tables and a tiny raw UCR file, so a valid run would have work to do and would write a store).
The whole matrix (every case x ``ingest``, ``train resnet``, ``land``, ``verify``) runs in-process
through ``flows.cli.main`` (``ecgpipe``); one case per command also runs as a real subprocess with
its own ``HOME`` and ``PREFECT_HOME``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows import cli

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

COMMANDS: dict[str, list[str]] = {
    "ingest": ["ingest"],
    "train": ["train", "resnet"],
    "land": ["land"],
    "verify": ["verify"],
}


def _set(*pairs: tuple[str, Any]) -> Callable[[dict[str, Any]], None]:
    """An edit of the params mapping setting each dotted key (creating sections as needed)."""

    def edit(data: dict[str, Any]) -> None:
        for dotted, value in pairs:
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value

    return edit


# (id, edit, dotted key the message must name, what the message must say was expected)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    # unknown keys
    ("unknown-top-level", _set(("trainn", {"epochs": 3})), "trainn", "Extra inputs are not permitted"),
    ("unknown-ingest", _set(("ingest.wrokers", 3)), "ingest.wrokers", "Extra inputs are not permitted"),
    (
        "unknown-nested-storage",
        _set(("profiles.ecg12.storage.scale_uv", 1.0)),
        "profiles.ecg12.storage.scale_uv",
        "Extra inputs are not permitted",
    ),
    (
        "unknown-nested-quality",
        _set(("profiles.holter.quality.min_duration", 5)),
        "profiles.holter.quality.min_duration",
        "Extra inputs are not permitted",
    ),
    (
        "unknown-model-argument",
        _set(("train.models.resnet.model.depth", 5)),
        "train.models.resnet.model.depth",
        "not an argument of the resnet1d model",
    ),
    # wrong types
    ("type-int", _set(("ingest.workers", "many")), "ingest.workers", "valid integer"),
    ("type-tuple", _set(("profiles.lead1_af.leads", "I")), "profiles.lead1_af.leads", "valid tuple"),
    (
        "type-nested-int",
        _set(("train.models.crnn.epochs", "ten")),
        "train.models.crnn.epochs",
        "valid integer",
    ),
    ("type-number", _set(("landing.settle_s", [1])), "landing.settle_s", "valid number"),
    ("type-vocabulary", _set(("labels.vocabulary", 5)), "labels.vocabulary", "valid tuple"),
    # impossible values
    (
        "notch-70-at-100-hz",
        _set(("profiles.ecg12.fs_hz", 100), ("profiles.ecg12.notch_hz", 70)),
        "profiles.ecg12.notch_hz",
        "50 or 60",
    ),
    ("workers-zero", _set(("ingest.workers", 0)), "ingest.workers", "greater than or equal to 1"),
    (
        "scale-negative",
        _set(("profiles.ecg12.storage.scale_mv", -1)),
        "profiles.ecg12.storage.scale_mv",
        "greater than 0",
    ),
    (
        "nan-fraction-above-one",
        _set(("profiles.ecg12.quality.max_nan_fraction", 1.5)),
        "profiles.ecg12.quality.max_nan_fraction",
        "less than or equal to 1",
    ),
    (
        "task-runner",
        _set(("ingest.task_runner", "gpu")),
        "ingest.task_runner",
        "'threads', 'processes' or 'dask'",
    ),
    ("lr-zero", _set(("train.models.resnet.lr", 0)), "train.models.resnet.lr", "greater than 0"),
    (
        "unknown-profile",
        _set(("train.models.resnet.profile", "nosuch")),
        "train.models.resnet.profile",
        "not in profiles",
    ),
    ("time-zone", _set(("deploy.timezone", "Mars/Base")), "deploy.timezone", "unknown time zone"),
]

# Cross-field checks (the field is named first in their message) and per-kind source errors.
UNNAMED_KEY_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "notch-above-nyquist",
        _set(("profiles.ecg12.fs_hz", 100), ("profiles.ecg12.notch_hz", 60)),
        "profiles.ecg12.notch_hz",
        "Nyquist",
    ),
    (
        "bandpass-reversed",
        _set(("profiles.ecg12.bandpass_hz", [40, 10])),
        "profiles.ecg12.bandpass_hz",
        "Nyquist",
    ),
    (
        "fractions-sum",
        _set(("split.fractions", {"train": 0.5, "val": 0.1, "test": 0.1})),
        "split.fractions",
        "sum to 1",
    ),
    ("source-labels", _set(("sources.cinc2017.labels", 3)), "sources.cinc2017.labels", "'v1' or 'v3'"),
    ("source-hop", _set(("sources.mitbih.hop_s", -1)), "sources.mitbih.hop_s", "greater than 0"),
]


# --------------------------------------------------------------------------- project copies


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid project: params.yaml, the label tables and one raw UCR file to ingest."""
    root = tmp_path_factory.mktemp("pristine") / "project"
    root.mkdir()
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "data" / "labels", root / "data" / "labels")
    raw = root / "data" / "raw" / "ucr"
    raw.mkdir(parents=True)
    (raw / "ECG_TRAIN.txt").write_text("".join(f"{1 + i % 2} " + " 0.5" * 140 + "\n" for i in range(4)))
    return root


def tree_state(root: Path) -> dict[str, str]:
    """Every entry under ``root``: files by sha256 and mode, folders and links by kind."""
    state: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = f"link:{path.readlink()}"
            elif path.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = f"{oct(path.stat().st_mode)}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    return state


def bad_project(pristine: Path, dest: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    project = dest / "project"
    shutil.copytree(pristine, project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    edit(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def require_command(command: str) -> None:
    if command not in cli.all_commands():
        pytest.skip(f"`ecgpipe {command}` is not a registered command yet")


def assert_refused(rc: int | None, err: str, key: str, expected: str) -> None:
    assert rc == 2, err
    assert f"{key}:" in err or f"{key} " in err, f"message does not name {key}:\n{err}"
    assert expected in err, f"message does not say {expected!r}:\n{err}"


# --------------------------------------------------------------------------- in-process matrix


# Model constructor arguments are checked by the commands that build models (loading params does not
# import torch): the other commands never read them.
MODEL_COMMANDS_ONLY = {"unknown-model-argument"}
MATRIX = [
    (cmd, *case) for case in CASES for cmd in COMMANDS if case[0] not in MODEL_COMMANDS_ONLY or cmd == "train"
]


@pytest.mark.parametrize(
    ("command", "case", "edit", "key", "expected"), MATRIX, ids=[f"{c[1]}-{c[0]}" for c in MATRIX]
)
def test_invalid_params_exit_2_naming_the_key_and_write_nothing(
    pristine: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    case: str,
    edit: Callable[[dict[str, Any]], None],
    key: str,
    expected: str,
) -> None:
    require_command(command)
    project = bad_project(pristine, tmp_path, edit)
    prefect_home = tmp_path / "prefect-home"
    prefect_home.mkdir()
    monkeypatch.setenv("PREFECT_HOME", str(prefect_home))
    monkeypatch.chdir(project)
    before = tree_state(project)
    rc = cli.main([*COMMANDS[command], "--params", str(project / "params.yaml")])
    assert_refused(rc, capsys.readouterr().err, key, expected)
    assert tree_state(project) == before
    assert list(prefect_home.iterdir()) == []


@pytest.mark.parametrize(
    ("case", "edit", "key", "expected"),
    UNNAMED_KEY_CASES,
    ids=[c[0] for c in UNNAMED_KEY_CASES],
)
def test_cross_field_and_source_errors_name_the_dotted_key(
    pristine: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    edit: Callable[[dict[str, Any]], None],
    key: str,
    expected: str,
) -> None:
    project = bad_project(pristine, tmp_path, edit)
    before = tree_state(project)
    rc = cli.main(["ingest", "--params", str(project / "params.yaml")])
    err = capsys.readouterr().err
    assert tree_state(project) == before and rc == 2  # refused before any work in any case
    assert_refused(rc, err, key, expected)


# --------------------------------------------------------------------------- real subprocesses

# One case per command, rotating through unknown key, wrong type and impossible value.
_BY_ID = {c[0]: c for c in CASES}
SUBPROCESS_RUNS = [
    ("ingest", _BY_ID["unknown-nested-storage"]),
    ("train", _BY_ID["type-nested-int"]),
    ("land", _BY_ID["notch-70-at-100-hz"]),
    ("verify", _BY_ID["scale-negative"]),
]


@pytest.mark.parametrize(
    ("command", "case"), SUBPROCESS_RUNS, ids=[f"{c}-{k[0]}" for c, k in SUBPROCESS_RUNS]
)
def test_ecgpipe_subprocess_with_invalid_params_exits_2_and_writes_nothing(
    pristine: Path, tmp_path: Path, command: str, case: tuple[str, Callable[[dict[str, Any]], None], str, str]
) -> None:
    require_command(command)
    _, edit, key, expected = case
    project = bad_project(pristine, tmp_path, edit)
    home, prefect_home = tmp_path / "home", tmp_path / "prefect-home"
    home.mkdir()
    prefect_home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(HOME=str(home), PREFECT_HOME=str(prefect_home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    before = tree_state(project)
    proc = subprocess.run(
        # the installed `ecgpipe` script runs flows.cli.main (pyproject.toml [project.scripts])
        [sys.executable, "-m", "flows.cli", *COMMANDS[command], "--params", "params.yaml"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert_refused(proc.returncode, proc.stderr, key, expected)
    assert "Traceback" not in proc.stderr
    assert tree_state(project) == before
    assert list(prefect_home.iterdir()) == [] and list(home.iterdir()) == []


def test_the_tree_check_sees_a_valid_run_write(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Guards the tests above against a state function that cannot see writes: `demo-data` with
    # valid params writes the raw tree into the project.
    project = bad_project(
        pristine, tmp_path, _set(("demo.n_ptbxl", 1), ("demo.n_cinc2017", 1), ("demo.n_ucr", 2))
    )
    before = tree_state(project)
    assert cli.main(["demo-data", "--params", str(project / "params.yaml")]) == 0
    capsys.readouterr()
    assert tree_state(project) != before
