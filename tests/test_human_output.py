"""Output written for people: no Python reprs, rounded figures, units, and where to look next."""

from __future__ import annotations

import json
import re
from difflib import SequenceMatcher
from pathlib import Path

import pytest

from flows.cli import ingest_line
from pipeline.cli.main import main
from pipeline.demo.raw_tree import write_demo_data
from pipeline.labels.names import CodeName, code_names
from pipeline.lineage.similar import close_paths, close_record_ids
from tests.model_stages import cli_args, ingest_raw_tree

REPR = re.compile(r"PosixPath\(|[A-Z][a-zA-Z]+\(\w+=|\{'|\d\.\d{7,}")


def test_demo_data_prints_counts_per_source_not_a_dataclass_repr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "raw"
    assert main(["demo-data", "--out", str(out_dir), *cli_args([])]) == 0
    text = capsys.readouterr().out
    assert not REPR.search(text), text
    assert f"synthetic demo data (seed 0) in {out_dir}:" in text
    assert re.search(r"cinc2017\s+\d[\d,]* records in .*cinc2017 \(N \d+, A \d+, O \d+, ~ \d+\)", text), text
    assert re.search(r"ucr\s+[\d,]+ beats .*class 1 \d+", text), text


@pytest.fixture(scope="module")
def damaged_store(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Demo stores: lead1_af with three CinC 2017 signal files cut short, and ecg12 (6 PTB-XL records)."""
    root = tmp_path_factory.mktemp("human")
    write_demo_data(root / "raw", seed=0, n_ptbxl=6, n_cinc2017=24, n_ucr=0)
    for name in ("A00002", "A00005", "A00007"):
        mat = root / "raw" / "cinc2017" / "training2017" / f"{name}.mat"
        mat.write_bytes(mat.read_bytes()[:40])
    return ingest_raw_tree(root, ["lead1_af", "ecg12"])


def test_summary_shows_the_top_quarantine_reasons_with_counts_and_where_the_list_is(
    damaged_store: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", "--profile", "lead1_af", *cli_args(damaged_store)]) == 0
    text = capsys.readouterr().out
    assert not REPR.search(text), text
    lines = text.splitlines()
    assert re.match(r"lead1_af: 21 records \(cinc2017 21\) in ", lines[0]), text
    assert any(re.match(r"  labels: .*AF \d+", line) for line in lines), text
    q = next(i for i, line in enumerate(lines) if line.startswith("  quarantined:"))
    assert lines[q].startswith("  quarantined: 3 inputs; commonest reasons (1 of 1):"), text
    assert re.match(r"    3  cinc2017: ", lines[q + 1]), text
    assert re.match(r"  full list: .*lead1_af/quarantine\.json \(or `ecgpipe summary --json`\)", lines[q + 2])


# --------------------------------------------------------------------------- did you mean


IDS = [f"cinc2017:A{i:05d}" for i in range(1, 400)] + [f"ptbxl:{i:05d}" for i in range(1, 400)]


def test_did_you_mean_offers_only_ids_that_resemble_the_request() -> None:
    assert close_record_ids("A00017", IDS)[0] == "cinc2017:A00017"  # the source prefix was left out
    assert close_record_ids("CINC2017:a00017", IDS)[0] == "cinc2017:A00017"  # another case
    typo = close_record_ids("cinc2017:A0017", IDS)  # one zero short: A00017, A00317... all one edit away
    assert len(typo) == 5 and all(i.startswith("cinc2017:A") for i in typo)
    assert all(SequenceMatcher(None, "A0017", i.split(":")[1]).ratio() >= 0.8 for i in typo)
    assert close_record_ids("cinc2017:B99999", IDS) == []  # nothing like it: no list's head instead
    assert close_record_ids("cpsc2021:data_1_1", IDS) == []
    assert IDS[-5:] != close_record_ids("ptbxl:99999", IDS)


def test_did_you_mean_for_paths_ranks_by_similarity() -> None:
    outs = ["eval/resnet/metrics.json", "eval/resnet/plots", "eval/crnn/metrics.json", "models/resnet"]
    assert close_paths("eval/resnet/metric.json", outs)[0] == "eval/resnet/metrics.json"
    assert close_paths("provenance/nothing_like_it.txt", outs) == []


def test_lineage_names_each_raw_code_and_its_code_system(
    damaged_store: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lineage", "--record", "ptbxl:00002", *cli_args(damaged_store)]) == 0
    text = capsys.readouterr().out
    raw = text.split("  raw labels\n", 1)[1].split("  unified labels", 1)[0].splitlines()
    assert raw and all(re.fullmatch(r"    \S+ \(\d+\)  [a-z].* \[SCP-ECG\]", line) for line in raw), raw
    names = code_names(Path("data/labels"))
    assert names[("cinc2021", "164889003")] == CodeName("atrial fibrillation", "SNOMED CT")
    assert names[("ptbxl", "NORM")] == CodeName("normal ECG", "SCP-ECG")


def test_an_unknown_record_gets_suggestions_by_similarity_only(
    damaged_store: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lineage", "--record", "ptbxl:0002", *cli_args(damaged_store)]) == 2
    err = capsys.readouterr().err
    assert "Did you mean ptbxl:00002?" in err and "cinc2017:" not in err.split("Did you mean", 1)[1]
    assert main(["lineage", "--record", "ptbxl:zz", *cli_args(damaged_store)]) == 2
    assert "Did you mean" not in capsys.readouterr().err


def test_ingest_line_reads_as_a_sentence(damaged_store: list[str]) -> None:
    store = Path(next(o for o in damaged_store if o.startswith("ingest.store=")).split("=", 1)[1])
    report = json.loads((store / "lead1_af" / "ingest_report.json").read_text())
    line = ingest_line("lead1_af", report)
    assert line == (
        "lead1_af: 21 records in the store (21 processed in this run); not ingested: error 3; "
        "every input accounted for"
    )
