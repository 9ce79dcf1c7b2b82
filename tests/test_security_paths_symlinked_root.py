"""Security (c), symlinked roots: the root a user names is trusted as given (a symlink to a large
download kept outside the repository reads exactly like the folder itself); what must not escape is
a path *inside* it (a ``../`` in a header, a symlink in the tree pointing out). The same rule holds
for every WFDB-based reader and for the landing check.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.landing.check import check_record
from pipeline.sources.ptb_diagnostic import PtbDiagnosticReader
from pipeline.sources.wfdb_folder import WfdbFolderReader
from tests.security_support import opened_under, read_all, recorded_opens


@pytest.mark.shared_data
@pytest.mark.parametrize(("folder", "count"), [("mitbih", 4), ("cpsc2021", 12)])
def test_a_wfdb_source_root_that_is_a_symlink_reads_every_record_like_the_real_folder(
    shared_data: Path, tmp_path: Path, folder: str, count: int
) -> None:
    link = tmp_path / "download"
    link.symlink_to(shared_data / folder)
    linked = WfdbFolderReader("s", link)
    direct = WfdbFolderReader("s", shared_data / folder)
    disc = linked.discover()
    assert disc.rejected == () and len(disc.units) == count
    records, reasons = read_all(linked, disc)
    assert reasons == {}
    expected, _ = read_all(direct, direct.discover())
    assert [r.record_id for r in records] == [r.record_id for r in expected]
    np.testing.assert_array_equal(records[0].signal, expected[0].signal)


@pytest.mark.shared_data
def test_other_wfdb_readers_accept_a_symlinked_root(shared_data: Path, tmp_path: Path) -> None:
    link = tmp_path / "ptb"
    link.symlink_to(shared_data / "ptb_diagnostic")
    records, reasons = read_all(PtbDiagnosticReader("ptb", link), PtbDiagnosticReader("ptb", link).discover())
    assert reasons == {} and len(records) == 1 and records[0].signal.shape[0] == 15


def _linked_tree(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A symlinked root holding one good MIT-BIH record, and a folder outside it with a copy."""
    real, outside = tmp_path / "real", tmp_path / "outside"
    real.mkdir()
    outside.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy2(shared_data / "mitbih" / f"100{suffix}", real / f"100{suffix}")
        shutil.copy2(shared_data / "mitbih" / f"100{suffix}", outside / f"200{suffix}")
    link = tmp_path / "link"
    link.symlink_to(real)
    return link, outside


@pytest.mark.shared_data
def test_inside_a_symlinked_root_links_and_dotdot_paths_pointing_out_are_refused_unread(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link, outside = _linked_tree(shared_data, tmp_path)
    (link / "linked.hea").symlink_to(outside / "200.hea")
    text = (outside / "200.hea").read_text()  # MIT-BIH 100's header: record 100, file 100.dat
    (link / "up.hea").write_text(text.replace("100.dat", "../outside/200.dat").replace("100 2", "up 2"))
    (link / "data.dat").symlink_to(outside / "200.dat")
    (link / "data.hea").write_text(text.replace("100", "data"))
    reader = WfdbFolderReader("s", link, annotation_ext=None)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["s:100"]
    rejected = {r.item: r.reason for r in disc.rejected} | reasons
    for item in ("linked.hea", "up.hea", "data.hea"):
        assert "escapes the source root" in rejected[item], item


@pytest.mark.shared_data
def test_the_landing_check_accepts_a_symlinked_root_and_refuses_links_out_of_it(
    shared_data: Path, tmp_path: Path
) -> None:
    link, outside = _linked_tree(shared_data, tmp_path)
    assert check_record(link, "100.hea").complete
    (link / "data.dat").symlink_to(outside / "200.dat")
    (link / "data.hea").write_text((outside / "200.hea").read_text().replace("100", "data"))
    check = check_record(link, "data.hea")
    assert not check.complete and "escapes the source root" in " ".join(check.problems)
