"""The malformed input corpus (tests/malformed/) through the readers and the real ingest.

One ingest of the whole corpus (every profile, through ``pipeline.cli.main.main`` in a child process
with a temporary Prefect server) must exit 0, reconcile every source, quarantine every broken
variant with the reason its expectation names, land every good record and none of the broken
ones, and stay within a memory cap. Directly, every reader's ``discover()``/``read()`` on the
corpus may only raise ``ReadError`` (or yield rejections), and no allocation bomb may allocate
anything like what it claims.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.config import load_params
from pipeline.core.records import Provenance, ReadError, Record
from pipeline.sources.registry import build_readers
from pipeline.store.labels import read_labels
from pipeline.store.local import ShardStore, raw_labels_from_json, read_strings
from tests.malformed import Corpus, build_corpus

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
pytestmark = [pytest.mark.shared_data, pytest.mark.prefect, pytest.mark.slow]

# Peak resident memory of the whole ingest process (Prefect engine, readers, preprocessing,
# zarr writer; the Prefect server runs in a process of its own).
MAX_INGEST_RSS_BYTES = 1536 * 2**20
# A reader call on an allocation bomb may allocate at most this (tracemalloc peak above what was
# allocated before the call), and at most a quarter of what the bomb claims.
MAX_BOMB_BYTES = 64 * 2**20

_CHILD = """
import json, resource, sys
from prefect.testing.utilities import prefect_test_harness
from flows.cli import main
with prefect_test_harness(server_startup_timeout=120):
    rc = main(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": rc, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, fh)
"""


@dataclass(frozen=True)
class Ingested:
    """What one ingest run of the corpus left: exit code, peak RSS, per-profile reports."""

    rc: int
    maxrss_bytes: int
    output: str
    store: Path
    reports: dict[str, dict[str, Any]]
    quarantine: dict[str, list[dict[str, Any]]]  # source -> its quarantine entries

    def landed(self, profile: str) -> dict[str, str]:
        """Record id -> raw labels JSON of every live row of a profile's store."""
        store = ShardStore(self.store / profile, profile)
        out: dict[str, str] = {}
        for name, entry in store.load_manifest().shards.items():
            group = store.open_shard(name)
            ids, labels = read_strings(group, "record_id"), read_strings(group, "raw_labels")
            out.update((ids[i], labels[i]) for i in entry.live_rows())
        return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Corpus:
    return build_corpus(shared_data, tmp_path_factory.mktemp("malformed"))


@pytest.fixture(scope="module")
def ingested(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    work = tmp_path_factory.mktemp("ingest")
    store = work / "store"
    args = ["ingest", "--params", str(PARAMS), "--set", f"ingest.store={store}"]
    for override in corpus.overrides():
        args += ["--set", override]
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    result = work / "result.json"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(result), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = proc.stdout[-4000:] + proc.stderr[-8000:]
    assert result.exists(), f"the ingest process died (exit {proc.returncode}):\n{output}"
    outcome = json.loads(result.read_text())
    profiles = sorted({s.profile for s in corpus.sources.values()})
    reports = {p: json.loads((store / p / "ingest_report.json").read_text()) for p in profiles}
    quarantine: dict[str, list[dict[str, Any]]] = {}
    for p in profiles:
        for entry in json.loads((store / p / "quarantine.json").read_text()):
            quarantine.setdefault(entry["source"], []).append(entry)
    return Ingested(outcome["rc"], outcome["maxrss_kb"] * 1024, output, store, reports, quarantine)


def _all_landed(corpus: Corpus, ingested: Ingested) -> dict[str, str]:
    out: dict[str, str] = {}
    for profile in sorted({s.profile for s in corpus.sources.values()}):
        out.update(ingested.landed(profile))
    return out


def _is_landed(record: str, landed: Mapping[str, str]) -> bool:
    """``record`` is a landed id, or (ending in ``/``) the prefix of one (a window)."""
    if record.endswith("/"):
        return any(i.startswith(record) for i in landed)
    return record in landed


# ------------------------------------------------------------------------------ the corpus


def test_the_corpus_has_over_200_variants_covering_every_kind_and_category(corpus: Corpus) -> None:
    counts = corpus.counts()
    assert len(corpus.variants) >= 200
    assert set(counts) == {"ptbxl", "cinc2017", "cinc2021", "ptb_diagnostic", "code", "ucr", "wfdb", "edf"}
    categories = {c for per_kind in counts.values() for c in per_kind}
    for needed in (
        "truncated", "alloc_bomb", "header_non_numeric", "header_out_of_range", "format_code", "lead_count",
        "nan_inf", "empty_file", "bad_encoding", "row_length", "label", "unknown_label", "duplicate",
        "path_escape", "hdf5_shape",
    ):  # fmt: skip
        assert needed in categories, needed
    assert all(sum(per_kind.values()) >= 20 for per_kind in counts.values()), counts
    assert sum(v.claimed_bytes >= 2**31 for v in corpus.variants) >= 10


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> content fingerprint, with the corpus folder written as ``<tmp>`` (absolute
    paths to files outside the root are part of some variants); sparse giants by size + head."""
    base = str(root.parent).encode()
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "link:" + str(path.readlink()).replace(str(root.parent), "<tmp>")
        elif path.is_file():
            size = path.stat().st_size
            with path.open("rb") as fh:
                head = fh.read(32 << 20).replace(base, b"<tmp>")
            out[rel] = f"{size - len(base) * head.count(b'<tmp>')}:{hashlib.sha256(head).hexdigest()}"
    return out


def test_the_corpus_is_deterministic(corpus: Corpus, shared_data: Path, tmp_path: Path) -> None:
    again = build_corpus(shared_data, tmp_path / "again")
    assert again.variants == corpus.variants
    assert again.good == corpus.good
    assert _tree(again.raw) == _tree(corpus.raw)


# ------------------------------------------------------------------------------ readers directly


def _reset_peak() -> int:
    """Start a new peak measurement; returns the memory traced now (the baseline)."""
    tracemalloc.reset_peak()
    return tracemalloc.get_traced_memory()[0]


# UCR rows with values beyond float32 become inf with a cast warning; preprocessing rejects them
# (the reader's own handling is tests/test_properties_readers.py's known xfail).
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_readers_raise_only_read_errors_and_no_bomb_allocates_its_claim(corpus: Corpus) -> None:
    params = load_params(PARAMS, corpus.overrides())
    readers = build_readers(params, list(corpus.sources))
    bombs = [v for v in corpus.variants if v.category == "alloc_bomb"]
    other: list[str] = []
    discover_peak: dict[str, int] = {}
    unit_peak: dict[tuple[str, str], int] = {}
    unit_files: dict[str, dict[str, str]] = {}  # source -> file -> unit key
    tracemalloc.start()
    try:
        for name, reader in readers.items():
            base = _reset_peak()
            try:
                discovery = reader.discover()
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                other.append(f"{name}: discover(): {type(exc).__name__}: {exc}")
                continue
            discover_peak[name] = tracemalloc.get_traced_memory()[1] - base
            for unit in discovery.units:
                unit_files.setdefault(name, {}).update(dict.fromkeys(unit.files, unit.key))
                provenance = Provenance(tuple((f, "0" * 64) for f in unit.files), reader.reader_id)
                base = _reset_peak()
                try:
                    for item in reader.read(unit, provenance):
                        assert isinstance(item, Record) or item.reason.strip(), (name, unit.key)
                except ReadError as exc:
                    assert str(exc).strip(), (name, unit.key)
                except Exception as exc:  # noqa: BLE001 - collected and reported below
                    other.append(f"{name}/{unit.key}: read(): {type(exc).__name__}: {exc}")
                unit_peak[(name, unit.key)] = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert not other, "readers raised something other than ReadError:\n" + "\n".join(other)
    heavy = []
    for bomb in bombs:
        key = unit_files.get(bomb.source, {}).get(bomb.target)
        peak = unit_peak[(bomb.source, key)] if key is not None else discover_peak[bomb.source]
        if peak > min(MAX_BOMB_BYTES, bomb.claimed_bytes // 8):
            heavy.append(f"{bomb.name}: peak {peak} bytes for a claim of {bomb.claimed_bytes}")
    assert not heavy, "allocation bombs allocated too much:\n" + "\n".join(heavy)


# ------------------------------------------------------------------------------ the whole ingest


def test_the_ingest_of_the_whole_corpus_exits_0_and_every_source_reconciles(
    corpus: Corpus, ingested: Ingested
) -> None:
    assert ingested.rc == 0, ingested.output
    for profile, report in ingested.reports.items():
        assert report["reconciled"], (profile, report["sources"])
        for name, source in report["sources"].items():
            assert "skipped" not in source, (name, source)
            assert source["unaccounted_files"] == 0, (name, source)
            assert source["units_ingested"] + source["units_quarantined"] == source["units_on_disk"]
    fed = {name for report in ingested.reports.values() for name in report["sources"]}
    assert fed == set(corpus.sources)


def test_every_broken_variant_is_quarantined_with_its_reason(corpus: Corpus, ingested: Ingested) -> None:
    missing = []
    for variant in corpus.variants:
        if variant.outcome != "quarantined":
            continue
        entries = ingested.quarantine.get(variant.source, [])
        if not any(variant.matches(e) for e in entries):
            named = [e["reason"] for e in entries if variant.target in (e["item"], *e["files"])]
            missing.append(f"{variant.name} ({variant.target}): want /{variant.reason}/, got {named[:2]}")
    assert not missing, f"{len(missing)} variant(s) not quarantined as expected:\n" + "\n".join(missing)


def test_no_broken_variant_lands_and_every_good_record_does(corpus: Corpus, ingested: Ingested) -> None:
    landed = _all_landed(corpus, ingested)
    broken = [
        f"{v.name}: {record}"
        for v in corpus.variants
        if v.outcome == "quarantined"
        for record in v.absent
        if _is_landed(record, landed)
    ]
    assert not broken, "broken variants landed:\n" + "\n".join(broken)
    lost = [
        record for records in corpus.good.values() for record in records if not _is_landed(record, landed)
    ]
    assert not lost, f"good records missing from the shards: {lost}"


def test_unknown_label_codes_land_with_their_raw_code_and_no_unified_label(
    corpus: Corpus, ingested: Ingested
) -> None:
    unknown = [v for v in corpus.variants if v.outcome == "unmapped"]
    assert len(unknown) >= 5
    for variant in unknown:
        profile = corpus.sources[variant.source].profile
        landed = ingested.landed(profile)
        (record,) = variant.absent
        assert record in landed, variant.name
        codes = [label.code for label in raw_labels_from_json(landed[record])]
        labels = read_labels(ShardStore(ingested.store / profile, profile))
        assert labels is not None
        row = labels.record_id.index(record)
        assert not labels.y[row].any(), (
            variant.name,
            codes,
            dict(zip(labels.vocabulary, labels.y[row], strict=True)),
        )
        assert codes, variant.name


def test_peak_memory_of_the_ingest_stays_bounded(ingested: Ingested) -> None:
    assert 0 < ingested.maxrss_bytes < MAX_INGEST_RSS_BYTES, ingested.maxrss_bytes / 2**20


def test_quarantine_reasons_are_never_unexpected_exceptions(ingested: Ingested) -> None:
    unexpected = [
        f"{source}: {e['item']}: {e['reason']}"
        for source, entries in ingested.quarantine.items()
        for e in entries
        if re.search(r"unexpected \w+: .*\(at \w+\.py:\d+\)", e["reason"]) or not e["reason"].strip()
    ]
    assert not unexpected, "\n".join(unexpected)
    assert np.mean([len(e["reason"]) for es in ingested.quarantine.values() for e in es]) > 20
