"""Shared fixtures-in-code of the landing-zone tests: the real record kinds, a landing zone under
``tmp_path`` (:class:`Zone`) and the check that a taken record arrived intact."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.fs import sha256_file
from pipeline.core.records import Provenance, Record
from pipeline.landing.take import LandingReport, LandingTarget, take_landed
from pipeline.sources.registry import make_reader

NOW = 1_750_000_000.0  # a fixed "now"; files are aged with os.utime instead of sleeping
SETTLE_S = 30.0


@dataclass(frozen=True)
class Kind:
    """A landing source built from one real record in the shared data."""

    source: str
    kind: str
    shared: str  # folder under shared data
    record: str  # record key below the landing source folder
    data_file: str  # the signal file cut and completed in tests
    annotation_ext: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        stem = Path(self.record).name
        suffixes = {"wfdb": [".dat"], "cinc2021": [".mat"], "ptb_diagnostic": [".dat", ".xyz"]}[self.kind]
        ann = [f".{self.annotation_ext}"] if self.annotation_ext else []
        return [f"{stem}{s}" for s in (*suffixes, *ann, ".hea")]


MITBIH = Kind("mitbih", "wfdb", "mitbih", "100", "100.dat", "atr", {"annotation_ext": "atr"})
CPSC = Kind(
    "cpsc2021", "wfdb", "cpsc2021", "data_8_2", "data_8_2.dat", "atr", {"patient_regex": r"data_(\d+)_\d+"}
)
CINC = Kind("cinc2021", "cinc2021", "cinc2021", "E00271", "E00271.mat")
PTB = Kind(
    "ptb_diagnostic", "ptb_diagnostic", "ptb_diagnostic/patient001", "patient001/s0010_re", "s0010_re.xyz"
)
KINDS = [MITBIH, CPSC, CINC, PTB]


@dataclass
class Zone:
    """A landing root, destination roots and a ledger, all under ``tmp_path``."""

    tmp: Path
    shared: Path

    @property
    def root(self) -> Path:
        return self.tmp / "landing"

    @property
    def ledger(self) -> Path:
        return self.tmp / "state" / "ledger.sqlite"

    def dest(self, kind: Kind) -> Path:
        return self.tmp / "raw" / kind.source

    def target(self, kind: Kind) -> LandingTarget:
        return LandingTarget(kind.source, kind.kind, self.dest(kind), kind.annotation_ext)

    def landed(self, kind: Kind, name: str) -> Path:
        return self.root / kind.source / Path(kind.record).parent / name

    def drop(self, kind: Kind, names: list[str] | None = None, age_s: float = 3600.0) -> None:
        """Copy (writable) files of the kind's record into its landing folder, ``age_s`` old."""
        for name in names if names is not None else kind.names:
            path = self.landed(kind, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.shared / kind.shared / name, path)
            age(path, age_s)

    def take(self, *kinds: Kind, now: float = NOW, **kwargs: Any) -> LandingReport:
        targets = [self.target(k) for k in (kinds or KINDS)]
        report = take_landed(self.root, targets, self.ledger, settle_s=SETTLE_S, now=now, **kwargs)
        json.dumps(report.to_json())  # always serialisable
        return report

    def original(self, kind: Kind, name: str) -> bytes:
        return (self.shared / kind.shared / name).read_bytes()


def age(path: Path, seconds: float, now: float = NOW) -> None:
    os.utime(path, (now - seconds, now - seconds))


def keys(items: tuple[Any, ...]) -> list[str]:
    return [i.record_key for i in items]


def left_of(report: LandingReport) -> dict[str, tuple[str, str]]:
    return {i.item: (i.category, i.reason) for i in report.left}


def assert_taken_intact(zone: Zone, kind: Kind) -> Record:
    """Byte-identical at the destination, nothing left in landing, and the destination reader
    discovers the record as one unit and reads it."""
    folder = zone.dest(kind) / Path(kind.record).parent
    for name in kind.names:
        assert (folder / name).read_bytes() == zone.original(kind, name), name
        assert not zone.landed(kind, name).exists(), name
    reader = make_reader(kind.source, kind.kind, zone.dest(kind), kind.options)
    discovery = reader.discover()
    unit_key = Path(kind.record).name if kind.kind == "cinc2021" else kind.record
    unit = next(u for u in discovery.units if u.key == unit_key)
    prefix = str(Path(kind.record).parent)
    expected = sorted(str(Path(prefix) / n) if prefix != "." else n for n in kind.names)
    assert sorted(unit.files) == expected
    assert discovery.rejected == ()
    provenance = Provenance(tuple((f, sha256_file(reader.resolve(f))) for f in unit.files), reader.reader_id)
    (record,) = list(reader.read(unit, provenance))
    assert isinstance(record, Record)
    assert record.signal.shape[1] > 0
    return record
