"""``ecgpipe ingest`` then ``ecgpipe verify`` over a folder of the inputs issue 16 added: multi-segment
records (good and damaged: missing segment, layout mismatch, segment longer than the master says),
EDF files (good and damaged: truncated data records, wrong header byte count, non-ASCII label) and
symlink escapes inside a symlinked root. Everything broken is quarantined with a reason, nothing
crashes, the good records land, every source reconciles and the store verifies clean.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.store.local import ShardStore, read_strings
from tests.edf_support import EdfSignalSpec, write_edf
from tests.multisegment_support import ramp, write_layout, write_master, write_segment

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.prefect, pytest.mark.slow]

_CHILD = """
import sys
from prefect.testing.utilities import prefect_test_harness
from flows.cli import main
with prefect_test_harness(server_startup_timeout=120):
    rc = main(sys.argv[1:])
sys.exit(rc)
"""


def _noise(n: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-400, 400, size=(n, c)).astype(np.int16)


def _multisegment(root: Path) -> None:
    """Good: ``ok`` (variable layout, 25 s at 100 Hz, a 1 s gap). Damaged: ``nomiss`` (a segment
    missing), ``badlay`` (a segment with a signal the layout lacks), ``long`` (a segment longer
    than the master lists)."""
    for name in ("ok", "nomiss", "badlay", "long"):
        write_layout(root, f"{name}_layout", ["II", "V"])
        write_segment(root, f"{name}_a", ["II", "V"], _noise(1200, 2, 1))
        write_segment(root, f"{name}_b", ["V", "II"], _noise(1200, 2, 2))
        listed_b = 1100 if name == "long" else 1200
        segments = [(f"{name}_layout", 0), (f"{name}_a", 1200), ("~", 100), (f"{name}_b", listed_b)]
        write_master(root, name, 2, segments)
    (root / "nomiss_b.hea").unlink()
    write_segment(root, "badlay_b", ["V", "AVR"], ramp(1200, 2))


def _escapes(root: Path, outside: Path) -> None:
    write_segment(outside, "secret", ["II"], _noise(1500, 1, 3))
    (root / "linked.hea").symlink_to(outside / "secret.hea")
    text = (outside / "secret.hea").read_text()
    (root / "up.hea").write_text(
        text.replace("secret.dat", "../outside/secret.dat").replace("secret ", "up ", 1)
    )
    (root / "data.dat").symlink_to(outside / "secret.dat")
    (root / "data.hea").write_text(text.replace("secret", "data"))


def _edf(root: Path) -> None:
    ecg = EdfSignalSpec("ECG II", "mV", 250, _noise(250 * 12, 1, 4)[:, 0], (-3.2768, 3.2767))
    for name in ("good", "truncated", "header_bytes", "non_ascii"):
        write_edf(root / f"{name}.edf", [ecg], n_records=12, annotations=[(1.0, 2.0, "Artifact")])
    (root / "truncated.edf").write_bytes((root / "truncated.edf").read_bytes()[:-300])
    wrong = bytearray((root / "header_bytes.edf").read_bytes())
    wrong[184:192] = b"1024    "
    (root / "header_bytes.edf").write_bytes(bytes(wrong))
    label = bytearray((root / "non_ascii.edf").read_bytes())
    label[256:272] = "ÉCG II".encode("latin-1").ljust(16)
    (root / "non_ascii.edf").write_bytes(bytes(label))


def _run(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-c", _CHILD, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def test_ingest_quarantines_every_damaged_input_with_a_reason_and_verify_is_clean(tmp_path: Path) -> None:
    real, outside, edf = tmp_path / "real", tmp_path / "outside", tmp_path / "edf"
    for folder in (real, outside, edf):
        folder.mkdir()
    _multisegment(real)
    _escapes(real, outside)
    _edf(edf)
    link = tmp_path / "download"  # the source root is a symlink: trusted as given
    link.symlink_to(real)
    store = tmp_path / "store"
    sets = [
        f"ingest.store={store}",
        "sources.msrec.kind=wfdb",
        f"sources.msrec.root={link}",
        "sources.msrec.window_s=10.0",
        "sources.edfrec.kind=edf",
        f"sources.edfrec.root={edf}",
        "sources.edfrec.label_table=wfdb",  # no label table has edf rows yet
        "profiles.holter.sources=[msrec, edfrec]",
    ]
    common = ["--params", str(REPO / "params.yaml"), *[a for s in sets for a in ("--set", s)]]
    ingest = _run(tmp_path, "ingest", "--profile", "holter", *common)
    assert ingest.returncode == 0, ingest.stdout[-3000:] + ingest.stderr[-3000:]
    quarantine = json.loads((store / "holter" / "quarantine.json").read_text())
    reasons = {e["item"]: e["reason"] for e in quarantine}
    expected = {
        "nomiss.hea": r"segment nomiss_b\.hea is missing",
        "msrec/badlay": r"do not match the layout",
        "msrec/long": r"segment holds 1200 samples but the master long lists 1100",
        "linked.hea": r"escapes the source root",
        "up.hea": r"escapes the source root",
        "data.hea": r"escapes the source root",
        "edfrec/truncated": r"declares 12 data records",
        "edfrec/header_bytes": r"header declares 1024 header bytes",
        "edfrec/non_ascii": r"non-ASCII",
    }
    for item, reason in expected.items():
        found = [r for i, r in reasons.items() if i == item]
        assert found and re.search(reason, found[0]), (item, found, sorted(reasons))
    shards = ShardStore(store / "holter", "holter")
    landed = set()
    for name, entry in shards.load_manifest().shards.items():
        ids = read_strings(shards.open_shard(name), "record_id")
        landed |= {ids[i] for i in entry.live_rows()}
    assert {"msrec:ok/w0000", "edfrec:good"} <= landed, sorted(landed)
    assert not {
        i for i in landed if re.match(r"msrec:(nomiss|badlay|long|linked|up|data)|edfrec:(?!good)", i)
    }
    verify = _run(tmp_path, "verify", "--profile", "holter", *common)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
