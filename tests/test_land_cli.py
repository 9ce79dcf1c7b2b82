"""`ecgpipe land` without a server: the landing flow takes a settled record, ingests it, and a second
run takes nothing and leaves the store byte-identical; `--dry-run` only reports."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from flows.cli import main
from pipeline.store.local import ShardStore, read_strings

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.shared_data, pytest.mark.prefect]


def _args(tmp: Path) -> list[str]:
    sets = {
        "landing.root": tmp / "landing",
        "landing.ledger": tmp / "ledger.sqlite",
        "landing.reports": tmp / "reports",
        "landing.settle_s": 3600,
        "sources.cinc2021.root": tmp / "raw" / "cinc2021",
        "sources.ptb_diagnostic.root": tmp / "raw" / "ptb_diagnostic",
        "sources.mitbih.root": tmp / "raw" / "mitbih",
        "sources.cpsc2021.root": tmp / "raw" / "cpsc2021",
        # the other sources of ecg12: left out (an explicit root that does not exist fails the ingest)
        "sources.ptbxl.enabled": "false",
        "sources.code.enabled": "false",
        "ingest.store": tmp / "store",
    }
    out = ["--params", str(REPO / "params.yaml")]
    for key, value in sets.items():
        out += ["--set", f"{key}={value}"]
    return out


def _drop(shared: Path, landing: Path, name: str, age_s: float) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    for ext in (".hea", ".mat"):
        dst = landing / f"{name}{ext}"
        shutil.copyfile(shared / "cinc2021" / f"{name}{ext}", dst)
        when = time.time() - age_s
        os.utime(dst, (when, when))


def test_land_takes_a_settled_record_ingests_it_and_a_second_run_changes_nothing(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(tmp_path)
    landing = tmp_path / "landing" / "cinc2021"
    _drop(shared_data, landing, "A0689", age_s=7200)
    _drop(shared_data, landing, "E00271", age_s=0)  # just arrived: settling

    assert main(["land", "--dry-run", "--json", *args]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and [t["record_key"] for t in dry["taken"]] == ["A0689"]
    assert (landing / "A0689.mat").exists() and not (tmp_path / "raw" / "cinc2021").exists()

    assert main(["land", "--no-repro", *args]) == 0
    store = ShardStore(tmp_path / "store" / "ecg12", "ecg12")
    ids = [
        i for name in store.load_manifest().shards for i in read_strings(store.open_shard(name), "record_id")
    ]
    assert ids == ["cinc2021:A0689"]
    taken = (tmp_path / "raw" / "cinc2021" / "A0689.mat").read_bytes()
    assert taken == (shared_data / "cinc2021" / "A0689.mat").read_bytes()
    assert not (landing / "A0689.mat").exists() and (landing / "E00271.mat").exists()
    (report,) = [json.loads(p.read_text()) for p in (tmp_path / "reports").glob("*.json")]
    assert [(x["item"], x["category"]) for x in report["left"]] == [("E00271", "settling")]

    for p in landing.glob("E00271.*"):
        p.unlink()
    kept = {p: p.read_bytes() for p in store.root.glob("*.json") if p.name != "file_cache.json"}
    assert main(["land", "--no-repro", *args]) == 0
    assert {p: p.read_bytes() for p in kept} == kept  # nothing new: the store is byte-identical
    second = max((tmp_path / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert json.loads(second.read_text())["taken"] == []
