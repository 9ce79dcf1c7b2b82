"""PTB-XL source (``ptbxl``): WFDB records named by ``ptbxl_database.csv`` rows.

Every broken record gets a database row of its own (a copy of a real row with a new ``ecg_id``
and ``filename_lr``), so the rows accumulate while the records are written and the CSV is
written last.
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

import numpy as np

from tests.malformed.corpus import PTBXL_DB, Corpus, Source, SourceSpec, csv_text
from tests.malformed.mutations import GENERIC, WHOLE_ONLY
from tests.malformed.wfdb import Template, copy_record, emit_wfdb, load_template, write_template

# The first ecg_id the broken records take (real PTB-XL ids in the sample are 1-11).
FIRST_NEW_ID = 1000


class _Ptbxl:
    """The ``ptbxl`` source under construction: its database rows and the next free ``ecg_id``."""

    def __init__(self, corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
        self.src = Source(corpus, SourceSpec("ptbxl", "ptbxl", "ecg12"), rng)
        self.rng = rng
        self.base = shared / "ptbxl"
        with (self.base / PTBXL_DB).open(newline="", encoding="utf-8") as fh:
            table = csv.DictReader(fh)
            self.columns = list(table.fieldnames or [])
            self.real = {int(r["ecg_id"]): r for r in table}
        self.rows: list[dict[str, str]] = []
        self.templates: list[Template] = []
        self.next_id = FIRST_NEW_ID

    def good_records(self) -> None:
        """Five real records; the first three at both rates (the 500 Hz copy is a duplicate)."""
        src = self.src
        src.write("scp_statements.csv", (self.base / "scp_statements.csv").read_bytes())
        for ecg_id in (1, 2, 3, 4, 5):
            self.rows.append(dict(self.real[ecg_id]))
            for rate, folder in ((100, "records100"), (500, "records500")):
                if rate == 500 and ecg_id > 3:
                    continue
                suffix = "lr" if rate == 100 else "hr"
                copy_record(src, self.base / folder / "00000", f"{ecg_id:05d}_{suffix}", f"{folder}/00000")
            src.good.append(src.record_id(f"{ecg_id:05d}"))
            if ecg_id <= 3:
                src.add(
                    "duplicate",
                    f"both_rates_{ecg_id}",
                    f"records100/00000/{ecg_id:05d}_lr.hea",
                    r"is read from",
                )

    def new_row(self, stem_rel: str, template_id: int) -> dict[str, str]:
        """Append a copy of real row ``template_id`` naming ``stem_rel`` under the next ``ecg_id``."""
        self.next_id = max(self.next_id + 1, int(PurePosixPath(stem_rel).name[:5]))
        row = dict(self.real[template_id])
        row.update(
            ecg_id=str(self.next_id),
            filename_lr=stem_rel,
            filename_hr=f"records500/01000/{self.next_id}_hr",
        )
        self.rows.append(row)
        return row

    def signal_variants(self) -> None:
        """Signal and header variants: one ecg_id each, files under records100/01000/."""
        self.templates = [
            load_template(self.base / "records100" / "00000", f"{i:05d}_lr") for i in range(6, 11)
        ]

        def add_row(path: str, template: Template) -> None:
            self.new_row(path, self.templates.index(template) + 6)

        mutations = {**GENERIC, **WHOLE_ONLY}
        emit_wfdb(
            self.src,
            self.templates,
            mutations,
            lambda i: f"records100/01000/{1001 + i:05d}_lr",
            lambda p: p[-8:-3],
            on_write=add_row,
        )
        self.next_id = FIRST_NEW_ID + len(mutations)

    def record_files(self, template_index: int) -> tuple[int, str]:
        """Write a good copy of a template as the next ecg_id; returns (ecg_id, its stem path)."""
        ecg_id = self.next_id + 1
        path = f"records100/01000/{ecg_id:05d}_lr"
        write_template(self.src, self.templates[template_index], path)
        return ecg_id, path

    def plain(self, label: str, category: str, reason: str, **changes: str) -> None:
        """A good record whose database row carries ``changes``."""
        t_index = int(self.rng.integers(len(self.templates)))
        ecg_id, stem = self.record_files(t_index)
        self.new_row(stem, 6 + t_index).update(changes)
        outcome = "unmapped" if category == "unknown_label" else "quarantined"
        record = self.src.record_id(f"{ecg_id:05d}")
        self.src.add(category, label, f"{stem}.hea", reason, [record], outcome=outcome)

    def row_variants(self) -> None:
        """Rows with broken labels, and rows that cannot be used (their files then have no row)."""
        self.plain("scp_not_a_dict", "label", r"is not a dict literal", scp_codes="NORM")
        self.plain("scp_text_likelihood", "label", r"is not a dict literal", scp_codes="{'NORM': 'high'}")
        self.plain("scp_infinite_likelihood", "label", r"is not a dict literal", scp_codes="{'NORM': 1e999}")
        self.plain("scp_call", "label", r"is not a dict literal", scp_codes="{'NORM': float('nan')}")
        self.plain(
            "scp_huge", "label", r"scp_codes is \d+ characters", scp_codes="{'" + "N" * 20000 + "': 100.0}"
        )
        self.plain("scp_nested", "label", r"is not a dict literal", scp_codes="[" * 3000 + "]" * 3000)
        self.plain("scp_unknown_code", "unknown_label", r".", scp_codes="{'ZZZ_NOT_AN_SCP_CODE': 100.0}")
        no_row = r"record file with no row in ptbxl_database.csv"
        self.plain("ecg_id_text", "label", no_row, ecg_id="twelve")
        self.plain("ecg_id_negative", "label", no_row, ecg_id="-7")
        self.plain("ecg_id_repeated", "duplicate", no_row, ecg_id="1")

    def bad_path(self, label: str, category: str, value: str, reason: str) -> None:
        """A row whose ``filename_lr`` is ``value`` (no files written)."""
        self.next_id += 1
        row = dict(self.real[7])
        row.update(ecg_id=str(self.next_id), filename_lr=value, filename_hr="")
        self.rows.append(row)
        item = f"{PTBXL_DB}:ecg_id={self.next_id}"
        self.src.add(category, label, item, reason, [self.src.record_id(f"{self.next_id:05d}")])

    def path_variants(self) -> None:
        """Rows naming paths out of the root or with NUL bytes, and two rows sharing files."""
        outside = self.src.corpus.outside
        self.bad_path("filename_escape", "path_escape", "../../outside/secret", r"escapes the source root")
        self.bad_path("filename_absolute", "path_escape", str(outside / "secret"), r"is absolute")
        self.bad_path("filename_nul", "bad_encoding", "records100/00000/00001\x00_lr", r"NUL")
        # Two rows naming the same files: the first row's record lands, the second is a duplicate.
        first_id, stem = self.record_files(0)
        self.new_row(stem, 6)
        self.src.good.append(self.src.record_id(f"{first_id:05d}"))
        self.new_row(stem, 7)
        self.src.add(
            "duplicate",
            "rows_share_files",
            f"{PTBXL_DB}:ecg_id={self.next_id}",
            rf"names the files of ecg_id {first_id}",
            [self.src.record_id(f"{self.next_id:05d}")],
        )

    def file_variants(self) -> None:
        """Files with no row, an incomplete record, a stray file."""
        src = self.src
        copy_record(src, self.base / "records100" / "00000", "00011_lr", "records100/00000")
        src.add("orphan", "no_csv_row", "records100/00000/00011_lr.dat", r"record file with no row")
        self.next_id += 1
        incomplete = f"{self.next_id:05d}_lr"
        row = dict(self.real[8])
        row.update(ecg_id=str(self.next_id), filename_lr=f"records100/01000/{incomplete}", filename_hr="")
        self.rows.append(row)
        write_template(src, self.templates[0], f"records100/01000/{incomplete}", lambda e: e.files.clear())
        src.add("missing_file", "dat_missing", f"records100/01000/{incomplete}.hea", r"incomplete record")
        src.write("records100/notes.bin", self.rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
        src.add("stray", "stray_binary", "records100/notes.bin", r"not a PTB-XL record or metadata file")


def build_ptbxl(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    """Write the ``ptbxl`` source (the order keeps ``rng`` draws stable). A database CSV that is not
    UTF-8 fails the whole ingest (tests/test_structural_errors.py), so it is not in this corpus."""
    ptbxl = _Ptbxl(corpus, shared, rng)
    ptbxl.good_records()
    ptbxl.signal_variants()
    ptbxl.row_variants()
    ptbxl.path_variants()
    ptbxl.file_variants()
    ptbxl.src.write(PTBXL_DB, csv_text(ptbxl.columns, ptbxl.rows))
