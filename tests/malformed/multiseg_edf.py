"""Multi-segment WFDB records and EDF files (issue 16): a ``wfdb`` source of multi-segment records
(good, and damaged: missing segment, layout mismatch, segment longer than the master says, every
segment missing, an escaping segment name) and an ``edf`` source (good, and damaged: truncated data
records, wrong header byte counts, non-ASCII labels, every numeric header field broken, EDF+D,
allocation bombs, an annotation that is not UTF-8). Files are written with wfdb-python's writers
and, for EDF, edfio (:mod:`tests.edf_support`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.edf_support import EdfSignalSpec, write_edf
from tests.malformed.corpus import Corpus, Source, SourceSpec
from tests.multisegment_support import write_layout, write_master, write_segment


def _noise(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    return rng.integers(-400, 400, size=(n, c)).astype(np.int16)


def _master(src: Source, name: str, listed_b: int = 1200, layout_b: tuple[str, str] = ("V", "II")) -> None:
    """Variable layout ``name``: layout (II, V), ``<name>_a`` 1200 samples, a 100-sample gap,
    ``<name>_b`` (signals ``layout_b``, 1200 samples, listed as ``listed_b``), all at 100 Hz."""
    write_layout(src.root, f"{name}_layout", ["II", "V"])
    write_segment(src.root, f"{name}_a", ["II", "V"], _noise(src.rng, 1200, 2))
    write_segment(src.root, f"{name}_b", list(layout_b), _noise(src.rng, 1200, 2))
    segments = [(f"{name}_layout", 0), (f"{name}_a", 1200), ("~", 100), (f"{name}_b", listed_b)]
    write_master(src.root, name, 2, segments)


def build_multisegment(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    del shared  # generated records only
    src = Source(corpus, SourceSpec("multiseg", "wfdb", "holter", {"window_s": 10.0}), rng)
    _master(src, "good")
    src.good.append(src.record_id("good/w0000"))
    _master(src, "miss")
    (src.root / "miss_b.hea").unlink()
    src.add("multi_segment", "missing_segment", "miss.hea", r"segment miss_b\.hea is missing")
    _master(src, "lay", layout_b=("V", "AVR"))
    src.add("multi_segment", "layout_mismatch", "lay.hea", r"do not match the layout", ("multiseg:lay/",))
    _master(src, "long", listed_b=1100)
    longer = r"segment holds 1200 samples but the master long lists 1100"
    src.add("multi_segment", "segment_longer", "long.hea", longer, ("multiseg:long/",))
    _master(src, "short", listed_b=1300)
    src.add("multi_segment", "segment_shorter", "short.hea", r"master short lists 1300")
    src.write("gaps.hea", "gaps/2 1 100 2000\n~ 1000\n~ 1000\n")
    src.add("multi_segment", "only_gaps", "gaps.hea", r"every segment is a gap")
    src.write("esc.hea", "esc/1 1 100 1200\n../outside/x 1200\n")
    src.add("path_escape", "segment_escape", "esc.hea", r"segment name = '\.\./outside/x'")
    src.write("count.hea", "count/3 2 100 2400\ncount_a 1200\n")
    src.add("multi_segment", "segment_count", "count.hea", r"declares 3 segments but the header lists 1")
    src.write("sum.hea", "sum/1 2 100 9999\ngood_a 1200\n")
    src.add("multi_segment", "segment_sum", "sum.hea", r"segments add up to 1200 samples")


_Damage = Callable[[bytearray], bytes]


def _field(offset: int, width: int, value: bytes) -> _Damage:
    def damage(raw: bytearray) -> bytes:
        raw[offset : offset + width] = value.ljust(width)
        return bytes(raw)

    return damage


# Per-signal header fields of a one-signal file start at 256: label 16, transducer 80, units 8,
# physical min/max 8+8, digital min/max 8+8, prefiltering 80, samples 8, reserved 32.
_EDF_DAMAGE: dict[str, tuple[str, _Damage, str]] = {
    "truncated_record": ("truncated", lambda raw: bytes(raw[:-7]), r"declares 6 data records"),
    "truncated_half": ("truncated", lambda raw: bytes(raw[: len(raw) // 2]), r"declares 6 data records"),
    "header_only": ("truncated", lambda raw: bytes(raw[:768]), r"declares 6 data records"),
    "short_header": ("truncated", lambda raw: bytes(raw[:100]), r"expected a 256-byte EDF header"),
    "empty": ("empty_file", lambda raw: b"", r"0 bytes; expected a 256-byte EDF header"),
    "header_bytes_small": ("header_bytes", _field(184, 8, b"256"), r"header declares 256 header bytes"),
    "header_bytes_large": ("header_bytes", _field(184, 8, b"99999"), r"header declares 99999 header bytes"),
    "header_bytes_text": ("header_non_numeric", _field(184, 8, b"abc"), r"header bytes = 'abc'"),
    "label_latin1": ("bad_encoding", _field(256, 16, "ÉCG".encode("latin-1")), r"non-ASCII"),
    "label_utf8": ("bad_encoding", _field(256, 16, "ЭКГ".encode()), r"non-ASCII"),
    "units_micro": ("bad_encoding", _field(352, 8, "µV".encode("latin-1")), r"non-ASCII"),
    "patient_utf8": ("bad_encoding", _field(8, 80, "Zoë".encode()), r"non-ASCII"),
    "version_bdf": ("format_code", _field(0, 8, b"\xffBIOSEMI"), r"version field"),
    "records_text": ("header_non_numeric", _field(236, 8, b"many"), r"number of data records = 'many'"),
    "records_negative": ("header_out_of_range", _field(236, 8, b"-5"), r"declares -5 data records"),
    "duration_zero": ("header_out_of_range", _field(244, 8, b"0"), r"duration 0.0 s"),
    "duration_nan": ("header_non_numeric", _field(244, 8, b"nan"), r"finite number"),
    "signals_zero": ("header_out_of_range", _field(252, 4, b"0"), r"0 signals; expected 1 to"),
    "signals_huge": ("header_out_of_range", _field(252, 4, b"9999"), r"9999 signals; expected 1 to"),
    "digital_swapped": ("header_out_of_range", _field(376, 8, b"40000"), r"digital min < max"),
    "physical_equal": ("header_out_of_range", _field(368, 8, b"-3.2768"), r"distinct physical limits"),
    "samples_zero": ("header_out_of_range", _field(472, 8, b"0"), r"samples per record"),
    "samples_text": ("header_non_numeric", _field(472, 8, b"x"), r"samples per data record of signal 1"),
    "records_bomb": ("alloc_bomb", _field(236, 8, b"99999999"), r"declares 99999999 data records"),
    "plus_d": ("format_code", _field(192, 44, b"EDF+D"), r"EDF\+D"),
}


def build_edf(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    del shared  # generated files only
    src = Source(corpus, SourceSpec("edf", "edf", "holter", {"label_table": "wfdb"}), rng)
    ecg = EdfSignalSpec("ECG II", "mV", 250, rng.integers(-2000, 2000, 250 * 12).astype(np.int16))
    write_edf(src.root / "good.edf", [ecg], n_records=12, annotations=[(1.0, 2.0, "Artifact")])
    src.good.append(src.record_id("good"))
    # EDF+ annotation text must be UTF-8: a Latin-1 byte in an otherwise good file
    write_edf(src.root / "annotation_latin1.edf", [ecg], n_records=12, annotations=[(1.0, 2.0, "Artefakt")])
    raw = (src.root / "annotation_latin1.edf").read_bytes()
    src.write("annotation_latin1.edf", raw.replace(b"\x14Artefakt\x14", "\x14Artéfakt\x14".encode("latin-1")))
    latin1_reason = r"annotation bytes b'\\xe9' are not UTF-8"
    src.add(
        "bad_encoding",
        "annotation_latin1",
        "annotation_latin1.edf",
        latin1_reason,
        (src.record_id("annotation_latin1"),),
    )
    plain = EdfSignalSpec("ECG II", "mV", 250, rng.integers(-2000, 2000, 250 * 6).astype(np.int16))
    write_edf(src.root / "template.edf", [plain], n_records=6, plus=None)
    template = bytearray((src.root / "template.edf").read_bytes())
    (src.root / "template.edf").unlink()
    for name, (category, damage, reason) in _EDF_DAMAGE.items():
        src.write(f"{name}.edf", damage(bytearray(template)))
        claimed = 99999999 * 500 * 4 if name == "records_bomb" else 0
        src.add(category, name, f"{name}.edf", reason, (src.record_id(name),), claimed_bytes=claimed)
    temp = EdfSignalSpec("Temp", "degC", 1, np.zeros(6, np.int16), (0, 50))
    write_edf(src.root / "no_ecg.edf", [temp], n_records=6, plus=None)
    src.add("lead_count", "no_ecg", "no_ecg.edf", r"no ECG signal")
    src.write("notes.csv", "a,b\n")
    src.add("stray", "stray_csv", "notes.csv", r"not an EDF file")
