"""The WFDB mutations: each breaks one copy of a template (an :class:`Edit`) in one way.

A mutation returns the :class:`Outcome` the ingest must report (category, reason regex, bytes
an allocation bomb claims), or ``None`` when it does not apply to that template. ``GENERIC``
applies to every WFDB source kind; ``WHOLE_ONLY`` only to records read whole (a windowed reader
sees NaN or flat lines per window, and some windows stay clean).
"""

from __future__ import annotations

import os
import re

import numpy as np

from tests.malformed.corpus import MAT4, MAT_MISMATCH, NAN_REASON, OVERSIZE_REASON, TRUNC_REASON, MiB
from tests.malformed.wfdb import INVALID, ZERO, Edit, Mutation, Outcome, filled


def m_truncated(e: Edit) -> Outcome:
    name = e.first_file()
    data = e.files[name]
    cut = int(len(data) * float(e.rng.uniform(0.1, 0.9)))
    e.files[name] = data[:cut]
    return Outcome("truncated", TRUNC_REASON)


def m_truncated_one_byte(e: Edit) -> Outcome:
    name = e.first_file()
    e.files[name] = e.files[name][:-1]
    return Outcome("truncated", TRUNC_REASON)


def m_empty_signal(e: Edit) -> Outcome:
    e.files[e.first_file()] = b""
    return Outcome("empty_file", r"holds only 0 bytes")


def m_empty_header(e: Edit) -> Outcome:
    e.header_bytes = b""
    return Outcome("empty_file", r"no record line")


def m_comments_only_header(e: Edit) -> Outcome:
    e.header_bytes = b"\n\n# nothing but comments\n   \n"
    return Outcome("empty_file", r"no record line")


def m_samples_2e31(e: Edit) -> Outcome:
    e.header.record[3] = str(2**31)
    return Outcome(
        "alloc_bomb", rf"declares {2**31} samples .*{TRUNC_REASON}", 2**31 * len(e.header.signals) * 8
    )


def m_samples_1e15(e: Edit) -> Outcome:
    e.header.record[3] = str(10**15)
    return Outcome("alloc_bomb", rf"declares {10**15} samples", 10**15 * len(e.header.signals) * 8)


def m_spf_huge(e: Edit) -> Outcome:
    for sig in e.header.signals:
        fmt = sig[1]
        sig[1] = re.sub(r"^(\d+)(x\d+)?", lambda m: f"{m.group(1)}x1000000", fmt)
    claimed = e.header.n_samples * 10**6 * len(e.header.signals) * 8
    # Readers of fixed databases refuse any spf > 1 before opening the signal file.
    return Outcome("alloc_bomb", rf"{TRUNC_REASON}|several samples per frame", claimed)


def m_offset_huge(e: Edit) -> Outcome:
    for sig in e.header.signals:
        sig[1] = re.sub(r"(\+\d+)?$", "+4294967296", sig[1], count=1)
    return Outcome("alloc_bomb", TRUNC_REASON, 2**32)


def m_many_signals(e: Edit) -> Outcome:
    n = 20_000
    line = list(e.header.signals[0])
    e.header.signals = [list(line) for _ in range(n)]
    e.header.record[1] = str(n)
    return Outcome("alloc_bomb", TRUNC_REASON, e.header.n_samples * n * 8)


def m_header_oversized(size: int) -> Mutation:
    """A header of ``size`` bytes (sparse: its record lines, then zeros)."""

    def mutate(e: Edit) -> Outcome:
        e.sparse_header = size
        return Outcome("alloc_bomb", r"header is \d+ bytes; expected at most", size)

    return mutate


def _record_field(index: int, value: str, category: str, reason: str) -> Mutation:
    def mutate(e: Edit) -> Outcome:
        while len(e.header.record) <= index:
            e.header.record.append("0")
        e.header.record[index] = value
        return Outcome(category, reason)

    return mutate


def _signal_field(index: int, value: str, category: str, reason: str) -> Mutation:
    def mutate(e: Edit) -> Outcome:
        for sig in e.header.signals:
            while len(sig) <= index:
                sig.append("0")
        e.header.set_field(index, value)
        return Outcome(category, reason)

    return mutate


def m_nsig_plus_one(e: Edit) -> Outcome:
    n = len(e.header.signals)
    e.header.record[1] = str(n + 1)
    return Outcome("lead_count", rf"declares {n + 1} signals but the header has {n} signal lines")


def m_nsig_minus_one(e: Edit) -> Outcome:
    n = len(e.header.signals)
    e.header.record[1] = str(n - 1)
    return Outcome("lead_count", rf"declares {n - 1} signals but the header has {n} signal lines")


def m_more_leads_than_data(e: Edit) -> Outcome:
    e.header.signals.append(list(e.header.signals[-1]))
    e.header.record[1] = str(len(e.header.signals))
    return Outcome("lead_count", TRUNC_REASON)


def m_fewer_leads_than_data(e: Edit) -> Outcome | None:
    if len(e.header.signals) < 2:
        return None
    last = e.header.signals.pop()
    if not any(s[0] == last[0] for s in e.header.signals):
        return None  # the dropped lead had a file of its own: nothing left over in the others
    e.header.record[1] = str(len(e.header.signals))
    return Outcome("lead_count", rf"{OVERSIZE_REASON}|{MAT_MISMATCH}")


def m_half_samples(e: Edit) -> Outcome:
    e.header.record[3] = str(e.header.n_samples // 2)
    return Outcome("length_mismatch", rf"{OVERSIZE_REASON}|{MAT_MISMATCH}")


def m_format_unknown(e: Edit) -> Outcome:
    for sig in e.header.signals:
        sig[1] = re.sub(r"^\d+", "999", sig[1])
    return Outcome("format_code", r"field format = '999.*expected one of the WFDB formats")


def m_format_garbage(e: Edit) -> Outcome:
    e.header.set_field(1, "int16le")
    return Outcome("format_code", r"field format = 'int16le'")


def m_format_wrong_width(e: Edit) -> Outcome:
    other = {"16": "212", "212": "16", "80": "16"}[e.fmt]
    for sig in e.header.signals:
        sig[1] = re.sub(r"^\d+", other, sig[1])
    # 16 read as 212 leaves a third of the file over (MAT v4 files say they hold int16 first)
    reason = rf"{OVERSIZE_REASON}|MAT v4 int16 matrix" if other == "212" else TRUNC_REASON
    return Outcome("format_code", reason)


def m_format_flac(e: Edit) -> Outcome:
    for sig in e.header.signals:
        sig[1] = re.sub(r"^\d+", "516", sig[1])
    return Outcome("format_code", r"wfdb could not decode|MAT v4")


def m_format_61_on_mat(e: Edit) -> Outcome | None:
    if not e.first_file().endswith(".mat"):
        return None
    for sig in e.header.signals:
        sig[1] = re.sub(r"^\d+", "61", sig[1])
    return Outcome("format_code", r"MAT v4 int16 matrix.*expected format 16")


def m_mixed_formats(e: Edit) -> Outcome | None:
    rows = e.template.file_rows(e.template.header.signals[0][0])
    if len(rows) < 2:
        return None
    sig = e.header.signals[rows[1]]
    sig[1] = re.sub(r"^\d+", "80" if e.fmt != "80" else "16", sig[1])
    return Outcome("format_code", r"signals stored in one file have different formats")


def m_units_pressure(e: Edit) -> Outcome:
    for sig in e.header.signals:
        sig[2] = re.sub(r"(/.*)?$", "/mmHg", sig[2], count=1)
    return Outcome("format_code", r"not in volts|no voltage channel")


def m_signal_escape(e: Edit) -> Outcome:
    rel = os.path.relpath(e.outside / "secret.dat", e.header_dir)
    e.header.set_field(0, rel)
    return Outcome("path_escape", r"escapes the source root")


def m_signal_absolute(e: Edit) -> Outcome:
    e.header.set_field(0, str(e.outside / "secret.dat"))
    return Outcome("path_escape", r"is absolute|escapes the source root")


# A unit file linked out of the root: the reader refuses it as escaping; the ingest refuses even to
# hash it and reports it as gone.
LINK_OUT_REASON = r"escapes the source root|disappeared before reading"


def m_signal_symlink(e: Edit) -> Outcome:
    e.links[e.first_file()] = e.outside / "secret.dat"
    return Outcome("path_escape", LINK_OUT_REASON)


def m_signal_nul(e: Edit) -> Outcome:
    e.header.set_field(0, "bad\x00name.dat")
    return Outcome("bad_encoding", r"NUL|null byte")


def m_signal_missing(e: Edit) -> Outcome:
    e.header.set_field(0, "nothere.dat")
    return Outcome("missing_file", r"does not exist|is missing")


def m_signal_tilde(e: Edit) -> Outcome:
    e.header.signals[0][0] = "~"
    return Outcome("missing_file", r"has no file \('~'\)")


def m_header_random(e: Edit) -> Outcome:
    e.header_bytes = e.rng.integers(0, 256, size=600, dtype=np.uint8).tobytes()
    return Outcome("bad_encoding", r"expected")


def m_header_utf16(e: Edit) -> Outcome:
    e.header_bytes = e.header.render().encode("utf-16")
    return Outcome("bad_encoding", r"number of signals|expected")


def m_header_nul(e: Edit) -> Outcome:
    e.header.record[3] = e.header.record[3][:1] + "\x00" + e.header.record[3][1:]
    return Outcome("bad_encoding", r"number of samples")


def m_multi_segment(e: Edit) -> Outcome:
    e.header.record[0] = e.header.record[0] + "/2"
    return Outcome("header_out_of_range", r"multi-segment|segment")


def m_record_line_name_only(e: Edit) -> Outcome:
    e.header.record = e.header.record[:1]
    return Outcome("header_truncated", r"number of signals")


def m_signal_line_no_format(e: Edit) -> Outcome:
    for sig in e.header.signals:
        del sig[1:]
    return Outcome("header_truncated", r"field format")


def m_all_invalid(e: Edit) -> Outcome:
    for name in list(e.files):
        e.files[name] = filled(e.files[name], e.offset, INVALID[e.fmt])
    return Outcome("nan_inf", NAN_REASON)


def m_partly_invalid(e: Edit) -> Outcome:
    name = e.first_file()
    e.files[name] = filled(e.files[name], e.offset, INVALID[e.fmt], 0.3)
    return Outcome("nan_inf", NAN_REASON)


def m_flat(e: Edit) -> Outcome:
    for name in list(e.files):
        e.files[name] = filled(e.files[name], e.offset, ZERO[e.fmt])
    return Outcome("flat", r"flat-line lead")


def m_mat_v5(e: Edit) -> Outcome | None:
    name = e.first_file()
    if not name.endswith(".mat"):
        return None
    data = e.files[name]
    e.files[name] = b"MATLAB 5.0 MAT-file, Platform: GLNXA64".ljust(128, b" ") + data[128:]
    return Outcome("format_code", r"MATLAB v5 file")


def m_mat_double(e: Edit) -> Outcome | None:
    name = e.first_file()
    if not name.endswith(".mat"):
        return None
    data = e.files[name]
    _, rows, cols, imag, namelen = MAT4.unpack(data[: MAT4.size])
    e.files[name] = MAT4.pack(0, rows, cols, imag, namelen) + data[MAT4.size :]
    return Outcome("format_code", r"MAT v4 type code 0")


def m_mat_small_dims(e: Edit) -> Outcome | None:
    name = e.first_file()
    if not name.endswith(".mat"):
        return None
    data = e.files[name]
    kind, rows, cols, imag, namelen = MAT4.unpack(data[: MAT4.size])
    e.files[name] = MAT4.pack(kind, rows, cols // 3, imag, namelen) + data[MAT4.size :]
    return Outcome("lead_count", rf"{MAT_MISMATCH}.*; the header declares")


def as_is(category: str, reason: str) -> Mutation:
    """A template that is broken as it stands (e.g. too short for its profile)."""

    def mutate(e: Edit) -> Outcome:
        return Outcome(category, reason)

    return mutate


def m_missing_lead(e: Edit) -> Outcome:
    for i, sig in enumerate(e.header.signals):
        while len(sig) < 9:
            sig.append("0")
        sig[8] = f"X{i}"
    return Outcome("lead_count", r"missing lead\(s\)")


GENERIC: dict[str, Mutation] = {
    "truncated": m_truncated,
    "truncated_one_byte": m_truncated_one_byte,
    "empty_signal": m_empty_signal,
    "empty_header": m_empty_header,
    "comments_only_header": m_comments_only_header,
    "samples_2e31": m_samples_2e31,
    "samples_1e15": m_samples_1e15,
    "samples_per_frame_1e6": m_spf_huge,
    "byte_offset_4g": m_offset_huge,
    "signals_20000": m_many_signals,
    "header_17mb": m_header_oversized(17 * MiB),
    "samples_text": _record_field(3, "many", "header_non_numeric", r"number of samples = 'many'"),
    "samples_negative": _record_field(
        3, "-1000", "header_out_of_range", r"number of samples = '-1000'; expected an integer >= 0"
    ),
    "fs_zero": _record_field(2, "0", "header_out_of_range", r"sampling frequency = '0'; expected a positive"),
    "fs_negative": _record_field(2, "-500", "header_out_of_range", r"sampling frequency = '-500'"),
    "fs_text": _record_field(2, "fast", "header_non_numeric", r"sampling frequency = 'fast'"),
    "fs_nan": _record_field(2, "nan", "header_non_numeric", r"sampling frequency = 'nan'"),
    "fs_overflow": _record_field(2, "1e999", "header_out_of_range", r"'1e999'; expected a finite number"),
    "nsig_text": _record_field(1, "twelve", "header_non_numeric", r"number of signals = 'twelve'"),
    "nsig_huge": _record_field(1, "999999999", "header_out_of_range", r"number of signals .*at most 100000"),
    "nsig_plus_one": m_nsig_plus_one,
    "nsig_minus_one": m_nsig_minus_one,
    "more_leads_than_data": m_more_leads_than_data,
    "fewer_leads_than_data": m_fewer_leads_than_data,
    "half_the_samples": m_half_samples,
    "format_unknown": m_format_unknown,
    "format_garbage": m_format_garbage,
    "format_wrong_width": m_format_wrong_width,
    "format_flac": m_format_flac,
    "format_61_on_mat": m_format_61_on_mat,
    "mixed_formats": m_mixed_formats,
    "gain_text": _signal_field(2, "high/mV", "header_non_numeric", r"field gain = 'high'"),
    "gain_nan": _signal_field(2, "nan/mV", "header_non_numeric", r"field gain = 'nan'"),
    "adc_resolution_65": _signal_field(3, "65", "header_out_of_range", r"ADC resolution = '65'"),
    "adc_zero_text": _signal_field(4, "zero", "header_non_numeric", r"ADC zero = 'zero'"),
    "baseline_text": _signal_field(2, "1000(base)/mV", "header_non_numeric", r"field baseline = 'base'"),
    "checksum_text": _signal_field(6, "sum", "header_non_numeric", r"field checksum = 'sum'"),
    "init_value_text": _signal_field(5, "start", "header_non_numeric", r"field initial value = 'start'"),
    "block_size_negative": _signal_field(7, "-4", "header_out_of_range", r"field block size = '-4'"),
    "units_pressure": m_units_pressure,
    "signal_path_escape": m_signal_escape,
    "signal_path_absolute": m_signal_absolute,
    "signal_symlink_outside": m_signal_symlink,
    "signal_name_nul": m_signal_nul,
    "signal_missing": m_signal_missing,
    "signal_tilde": m_signal_tilde,
    "header_random_bytes": m_header_random,
    "header_utf16": m_header_utf16,
    "header_nul": m_header_nul,
    "multi_segment": m_multi_segment,
    "record_line_name_only": m_record_line_name_only,
    "signal_line_no_format": m_signal_line_no_format,
    "all_invalid": m_all_invalid,
    "mat_v5": m_mat_v5,
    "mat_type_double": m_mat_double,
    "mat_small_dims": m_mat_small_dims,
}
# Whole records only (windowed sources see NaN per window, some windows stay clean).
WHOLE_ONLY: dict[str, Mutation] = {"partly_invalid": m_partly_invalid, "flat_zero": m_flat}
