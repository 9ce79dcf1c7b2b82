"""Structural errors fail the ingest loudly, through the CLI: a PTB-XL table without ``scp_codes``, a
CinC 2017 ``REFERENCE.csv`` without its label column, or a root the user set that does not exist give
one ``error:`` line naming the file (or key) and what was expected, and exit 2, so ``dvc repro`` stops.
A source left at its default root ``data/raw/<name>`` that is absent is still skipped with a notice.
Per-record damage keeps being quarantined (tests/malformed/)."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.demo.raw_tree import write_demo_data
from pipeline.sources.base import SourceLayoutError
from pipeline.sources.cinc2017 import Cinc2017Reader
from pipeline.sources.ptbxl import PtbXlReader
from tests.pipeline_repo import REPO, tool_env

pytestmark = [pytest.mark.prefect]


@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("demo") / "raw"
    write_demo_data(raw, seed=0, n_ptbxl=6, n_cinc2017=6, n_ucr=0)
    return raw


def _project(tmp: Path) -> Path:
    """A project folder with params.yaml (label tables from this repo) and no data/raw."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["labels"]["tables_dir"] = str(REPO / "data" / "labels")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp


def _ingest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["ecgpipe", "ingest", "--set", f"ingest.store={project / 'shards'}", *args]
    return subprocess.run(cmd, cwd=project, env=tool_env(), capture_output=True, text=True, timeout=600)


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def _drop_column(path: Path, column: str) -> None:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, [c for c in rows[0] if c != column])
        w.writeheader()
        w.writerows({k: v for k, v in r.items() if k != column} for r in rows)


@pytest.mark.slow
def test_a_ptbxl_table_without_scp_codes_fails_the_ingest_naming_file_and_column(
    demo_raw: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ptbxl"
    shutil.copytree(demo_raw / "ptbxl", root)
    _drop_column(root / "ptbxl_database.csv", "scp_codes")
    proc = _ingest(_project(tmp_path / "p"), "--profile", "ecg12", "--set", f"sources.ptbxl.root={root}")
    assert proc.returncode == 2
    line = _error_line(proc)
    assert f"source ptbxl: {root / 'ptbxl_database.csv'}: missing column(s) scp_codes" in line
    assert not (tmp_path / "p" / "shards" / "ecg12" / "manifest.json").exists()


@pytest.mark.slow
def test_a_reference_csv_without_its_label_column_fails_the_ingest(demo_raw: Path, tmp_path: Path) -> None:
    root = tmp_path / "cinc2017"
    shutil.copytree(demo_raw / "cinc2017", root)
    (ref,) = root.rglob("REFERENCE.csv")
    ref.write_text("".join(line.split(",")[0] + "\r\n" for line in ref.read_text().splitlines()))
    proc = _ingest(
        _project(tmp_path / "p"), "--profile", "lead1_af", "--set", f"sources.cinc2017.root={root}"
    )
    assert proc.returncode == 2
    assert f"source cinc2017: {ref}: line 1: 'A00001' has no label column" in _error_line(proc)


@pytest.mark.slow
def test_a_root_set_by_the_user_that_does_not_exist_fails_naming_the_key(tmp_path: Path) -> None:
    proc = _ingest(
        _project(tmp_path / "p"),
        "--profile",
        "lead1_af",
        "--set",
        "sources.cinc2017.root=/data/does-not-exist",
    )
    assert proc.returncode == 2
    line = _error_line(proc)
    assert "sources.cinc2017.root: /data/does-not-exist does not exist or is not a folder" in line
    assert "sources.<name>.enabled=false" in line


@pytest.mark.slow
def test_a_default_root_that_is_absent_is_skipped_with_a_notice_and_exit_0(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    proc = _ingest(project, "--profile", "lead1_af")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "source cinc2017 skipped: root does not exist" in proc.stderr + proc.stdout


def test_unreadable_label_tables_are_layout_errors_not_quarantine(demo_raw: Path, tmp_path: Path) -> None:
    ptbxl = tmp_path / "ptbxl"
    shutil.copytree(demo_raw / "ptbxl", ptbxl)
    table = ptbxl / "ptbxl_database.csv"
    table.write_bytes(table.read_bytes().replace(b"\n", b"\n# caf\xe9\n", 1))
    with pytest.raises(SourceLayoutError, match=r"ptbxl_database\.csv: unreadable CSV: .*expected UTF-8 CSV"):
        PtbXlReader("ptbxl", ptbxl).discover()
    cinc = tmp_path / "cinc2017"
    shutil.copytree(demo_raw / "cinc2017", cinc)
    (ref,) = cinc.rglob("REFERENCE.csv")
    with ref.open("r+b") as fh:  # sparse: claims 1 GiB, refused unread
        fh.truncate(1 << 30)
    with pytest.raises(SourceLayoutError, match=r"REFERENCE\.csv: unreadable label file: larger than"):
        Cinc2017Reader("cinc2017", cinc).discover()
