"""Which code, command and orchestrator run produced an artifact: git state and stage run records.

A DVC stage command (``ecgpipe <stage> ...`` run by ``dvc repro``; DVC sets ``DVC_STAGE`` and
``DVC_ROOT``) writes ``<DVC_ROOT>/provenance/<stage>.json`` when it succeeds, declared in
``dvc.yaml`` as a ``cache: false`` output of the stage, so its hash sits in ``dvc.lock`` beside the
outputs it describes and ``ecgpipe lineage`` can tell a record that belongs to the locked outputs
from a stale one. The record holds:

``stage`` (DVC addressing, e.g. ``train@resnet``), ``argv``, ``git_commit`` and ``git_dirty`` at run
time (dirty = tracked files other than DVC stage outputs differ from the commit; ``dirty_files``
lists up to 50 of them),
``started_utc``/``finished_utc``, ``prefect_flow_run_id`` (the flow run the stage ran under, when a
Prefect deployment ran ``dvc repro``) and ``python``/``host``.

Git is asked at run time because the commit made after ``dvc repro`` is not yet known then: a
record with ``git_dirty: true`` means "this commit plus uncommitted edits", and the exact code is
pinned by the code dependencies' md5 in ``dvc.lock``.
"""

from __future__ import annotations

import fnmatch
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

PROVENANCE_DIR = "provenance"
RECORD_FORMAT = "ecgpipe.stage-run/1"
# The landing flow passes its Prefect flow-run id to the `dvc repro` it starts.
FLOW_RUN_ENV = "ECGPIPE_FLOW_RUN_ID"
MAX_DIRTY_FILES = 50


def _git(args: Sequence[str], repo_dir: Path | None) -> str | None:
    """stdout of ``git <args>`` in ``repo_dir`` (default: cwd), or None when git or the repo is absent."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            ["git", *args],  # noqa: S607 - git from PATH, like the user's own shell
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_commit(repo_dir: Path | None = None) -> str | None:
    """The commit checked out in the git repository containing ``repo_dir`` (default: cwd), or None."""
    out = _git(["rev-parse", "--verify", "HEAD"], repo_dir)
    return out.strip() if out else None


def dirty_files(repo_dir: Path | None = None) -> list[str] | None:
    """Tracked files that differ from the commit (untracked ignored); None outside a repo."""
    if git_commit(repo_dir) is None:
        return None
    out = _git(["status", "--porcelain", "--untracked-files=no"], repo_dir)
    if out is None:
        return None
    return [line[3:] for line in out.splitlines() if line.strip()]


def output_patterns(dvc_root: Path) -> list[str]:
    """Glob patterns of every stage output declared in ``dvc.yaml`` (``${key}``/``${item}`` → ``*``).

    Outputs with ``cache: false`` are tracked by git, so each ``dvc repro`` leaves them modified;
    they are results, not code, and must not make a run look like it ran on uncommitted code.
    """
    patterns = ["dvc.lock"]  # rewritten by every repro: a record of results, not code
    try:
        spec = yaml.safe_load((dvc_root / "dvc.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return patterns
    for stage in (spec.get("stages") or {}).values():
        body = stage.get("do", stage) if isinstance(stage, dict) else {}
        for kind in ("outs", "metrics", "plots"):
            for out in body.get(kind) or []:
                path = next(iter(out)) if isinstance(out, dict) else str(out)
                patterns.append(re.sub(r"\$\{[^}]*\}", "*", path))
    return patterns


def _is_output(path: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.rstrip("/") + "/*") for p in patterns)


def code_version(repo_dir: Path | None = None) -> dict[str, Any]:
    """``{"git_commit", "git_dirty", "dirty_files"}`` of the repository at ``repo_dir`` (default: cwd).

    Dirty means a tracked file that is not a DVC stage output differs from the commit.
    """
    files = dirty_files(repo_dir)
    if files is not None:
        patterns = output_patterns(repo_dir or Path.cwd())
        files = [f for f in files if not _is_output(f, patterns)]
    return {
        "git_commit": git_commit(repo_dir),
        "git_dirty": None if files is None else bool(files),
        "dirty_files": None if files is None else files[:MAX_DIRTY_FILES],
    }


def git_dirty(repo_dir: Path | None = None) -> bool | None:
    """Whether tracked code differs from the commit (see :func:`code_version`); None outside a repo."""
    dirty: bool | None = code_version(repo_dir)["git_dirty"]
    return dirty


def record_name(stage: str) -> str:
    """File name of a stage's record: ``train@resnet`` → ``train@resnet.json`` (path separators mapped)."""
    name = stage.split(":", 1)[1] if ":" in stage else stage  # "sub/dvc.yaml:train@x" → "train@x"
    return re.sub(r"[^A-Za-z0-9@._-]", "_", name) + ".json"


def record_path(dvc_root: Path, stage: str) -> Path:
    return Path(dvc_root) / PROVENANCE_DIR / record_name(stage)


def stage_context(env: Mapping[str, str]) -> tuple[str, Path] | None:
    """``(stage, dvc_root)`` when running as a DVC stage command, else None."""
    stage, root = env.get("DVC_STAGE"), env.get("DVC_ROOT")
    return (stage, Path(root)) if stage and root else None


def stage_record(
    stage: str, argv: Sequence[str], started: datetime, env: Mapping[str, str]
) -> dict[str, Any]:
    """The run record of one stage command (see the module docstring for the fields)."""
    root = Path(env["DVC_ROOT"]) if env.get("DVC_ROOT") else None
    return {
        "format": RECORD_FORMAT,
        "stage": stage,
        "argv": list(argv),
        **code_version(root),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "prefect_flow_run_id": env.get(FLOW_RUN_ENV) or None,
        "python": sys.version.split()[0],
        "host": platform.node(),
        "pid": os.getpid(),
    }
