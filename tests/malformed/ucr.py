"""UCR source (``ucr``): ECG5000 rows (a class label, then 140 values) in ``.txt``/``.ts``/``.arff``.

Broken rows sit among good ones at seeded positions; whole files are broken in encoding, header
or size. The record id of a row is ``<file stem>/<row index:05d>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.malformed.corpus import NAN_REASON, Corpus, MiB, Source, SourceSpec

# (label, category, reason regex, row) of a broken row; FileCase: (file name, label, category,
# reason regex, bytes) of a broken file.
RowCase = tuple[str, str, str, list[str]]
FileCase = tuple[str, str, str, str, bytes]


def _txt_row_cases(rows: list[list[str]]) -> tuple[list[RowCase], list[tuple[str, list[str]]]]:
    """Broken rows and rows with unknown class codes, derived from ``rows`` (split ``.txt`` lines)."""

    def row_with(i: int, column: int, value: str) -> list[str]:
        out = list(rows[i])
        out[column] = value
        return out

    bad: list[RowCase] = [
        ("row_139_values", "row_length", r"139 values; expected 140", rows[0][:-1]),
        ("row_141_values", "row_length", r"141 values; expected 140", rows[1] + ["0.1"]),
        ("row_5000_values", "row_length", r"5000 values; expected 140", rows[2][:1] + ["0.5"] * 5000),
        ("row_label_only", "row_length", r"no values", rows[3][:1]),
        ("row_text_value", "header_non_numeric", r"value 17 is 'abc', not a number", row_with(4, 17, "abc")),
        ("row_hex_value", "header_non_numeric", r"value 3 is '0x1F'", row_with(5, 3, "0x1F")),
        ("row_comma_decimal", "header_non_numeric", r"value 9 is '0,5'", row_with(6, 9, "0,5")),
        ("row_nan", "nan_inf", NAN_REASON, row_with(7, 20, "nan")),
        ("row_missing_marker", "nan_inf", NAN_REASON, row_with(8, 21, "?")),
        ("row_inf", "nan_inf", NAN_REASON, row_with(9, 22, "inf")),
        ("row_overflow_float64", "nan_inf", NAN_REASON, row_with(10, 23, "-1e999")),
        ("row_overflow_float32", "nan_inf", NAN_REASON, row_with(11, 24, "1e39")),
    ]
    unknown: list[tuple[str, list[str]]] = [
        ("row_unknown_class_9", row_with(12, 0, "9")),
        ("row_text_class", row_with(13, 0, "abnormal")),
    ]
    return bad, unknown


def _txt_rows(src: Source, lines: list[str], rng: np.random.Generator) -> None:
    """``ROWS_TRAIN.txt``: 40 good rows with the broken ones at seeded positions."""
    rows = [ln.split() for ln in lines[40:100]]
    bad, unknown = _txt_row_cases(rows)
    out_rows = [list(r) for r in rows[20:60]]
    positions = sorted(
        rng.choice(len(out_rows) + len(bad) + len(unknown), len(bad) + len(unknown), replace=False).tolist()
    )
    pending = [(b[0], b[1], b[2], b[3]) for b in bad] + [(n, "unknown_label", r".", r) for n, r in unknown]
    order = rng.permutation(len(pending)).tolist()
    assigned: dict[int, RowCase] = {}
    for slot, p in zip(positions, order, strict=True):
        assigned[slot] = pending[p]
    final: list[list[str]] = []
    it = iter(out_rows)
    for slot in range(len(out_rows) + len(pending)):
        item = src.record_id(f"ROWS_TRAIN/{slot:05d}")
        if slot not in assigned:
            final.append(next(it))
            src.good.append(item)
            continue
        label, category, reason, row = assigned[slot]
        final.append(row)
        outcome = "unmapped" if category == "unknown_label" else "quarantined"
        src.add(category, label, item, reason if outcome == "quarantined" else r".", [item], outcome=outcome)
    src.write("ROWS_TRAIN.txt", "\n".join(" ".join(r) for r in final) + "\n")


def _row_file(
    src: Source,
    name: str,
    ext: str,
    head: list[str],
    good: list[str],
    broken: list[tuple[str, str, str, str]],
) -> None:
    """``<name>.<ext>``: ``head``, the ``good`` rows, then the ``broken`` (label, category, reason, line)."""
    body = list(good)
    for label, category, reason, line in broken:
        body.append(line)
        item = src.record_id(f"{name}/{len(body) - 1:05d}")
        src.add(category, label, item, reason, [item])
    src.write(f"{name}.{ext}", "\n".join(head + body) + "\n")
    src.good.extend(src.record_id(f"{name}/{i:05d}") for i in range(len(good)))


def _arff_ts_rows(
    src: Source, arff_head: list[str], arff_rows: list[str], ts_head: list[str], ts_rows: list[str]
) -> None:
    """Broken rows in an ``.arff`` and a ``.ts`` file, after 10 good ones."""
    _row_file(
        src,
        "ROWSA_TRAIN",
        "arff",
        arff_head,
        arff_rows,
        [
            (
                "arff_undeclared_class",
                "label",
                r"class '7' not in the declared classes",
                arff_rows[0].rsplit(",", 1)[0] + ",7",
            ),
            ("arff_139_values", "row_length", r"139 values; expected 140", arff_rows[1].split(",", 1)[1]),
            ("arff_missing_value", "nan_inf", NAN_REASON, "?," + arff_rows[2].split(",", 1)[1]),
        ],
    )
    _row_file(
        src,
        "ROWST_TRAIN",
        "ts",
        ts_head,
        ts_rows,
        [
            ("ts_two_separators", "row_length", r"2 ':' separators", ts_rows[0] + ":1"),
            ("ts_no_separator", "row_length", r"0 ':' separators", ts_rows[1].rsplit(":", 1)[0]),
            (
                "ts_undeclared_class",
                "label",
                r"class 'X' not in the declared classes",
                ts_rows[2].rsplit(":", 1)[0] + ":X",
            ),
            ("ts_139_values", "row_length", r"139 values; expected 140", ts_rows[3].split(",", 1)[1]),
        ],
    )


def _text_files(good_txt: str, rng: np.random.Generator) -> list[FileCase]:
    """Empty or binary ``.txt`` files."""
    return [
        ("F01_TRAIN.txt", "empty_file", "empty_file", r"empty file", b""),
        ("F02_TRAIN.txt", "whitespace_only", "empty_file", r"empty file", b" \n\t\n\n"),
        (
            "F03_TRAIN.txt",
            "nul_bytes",
            "bad_encoding",
            r"binary content",
            good_txt.encode()[:200] + b"\x00\x00" + good_txt.encode()[200:],
        ),
        (
            "F04_TRAIN.txt",
            "utf16",
            "bad_encoding",
            r"binary content \(NUL bytes\)",
            good_txt.encode("utf-16"),
        ),
        (
            "F05_TRAIN.txt",
            "latin1",
            "bad_encoding",
            r"not UTF-8 text at byte",
            good_txt.replace("1.", "\xe9", 1).encode("latin-1"),
        ),
        (
            "F06_TRAIN.txt",
            "random_bytes",
            "bad_encoding",
            r"binary content|not UTF-8",
            rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        ),
    ]


def _arff_files(arff_head: list[str]) -> list[FileCase]:
    """``.arff`` files with broken headers or no rows."""
    return [
        (
            "F07_TRAIN.arff",
            "arff_no_data",
            "header_truncated",
            r"not an ARFF file",
            "\n".join(arff_head[:-1]).encode(),
        ),
        (
            "F08_TRAIN.arff",
            "arff_string_attribute",
            "header_non_numeric",
            r"attribute 2 has type 'string'",
            "\n".join(
                [
                    arff_head[0],
                    arff_head[1],
                    "@attribute att1 numeric",
                    "@attribute att2 string",
                    "@attribute target {1,2}",
                    "@data",
                    "0.1,abc,1",
                ]
            ).encode(),
        ),
        (
            "F09_TRAIN.arff",
            "arff_attribute_no_type",
            "header_truncated",
            r"has no type",
            b"@relation x\n@attribute att1\n@attribute target {1}\n@data\n0.1,1\n",
        ),
        ("F10_TRAIN.arff", "arff_no_rows", "empty_file", r"no data rows", "\n".join(arff_head).encode()),
    ]


def _ts_files(ts_head: list[str], ts_rows: list[str]) -> list[FileCase]:
    """``.ts`` files with broken or unsupported headers."""
    return [
        (
            "F11_TRAIN.ts",
            "ts_data_before_header",
            "header_truncated",
            r"data before @data",
            "\n".join(ts_rows[:2] + ts_head).encode(),
        ),
        (
            "F12_TRAIN.ts",
            "ts_no_data_line",
            "header_truncated",
            r"no @data line",
            "\n".join(ts_head[:-1]).encode(),
        ),
        (
            "F13_TRAIN.ts",
            "ts_timestamps",
            "header_out_of_range",
            r"@timeStamps true is unsupported",
            "\n".join(ts_head).replace("@timeStamps false", "@timeStamps true").encode(),
        ),
        (
            "F14_TRAIN.ts",
            "ts_multivariate",
            "header_out_of_range",
            r"@univariate false",
            "\n".join(ts_head + ts_rows[:2]).replace("@univariate true", "@univariate false").encode(),
        ),
        (
            "F15_TRAIN.ts",
            "ts_series_length_text",
            "header_non_numeric",
            r"@seriesLength 'long'",
            "\n".join(ts_head + ts_rows[:2]).replace("@seriesLength 140", "@seriesLength long").encode(),
        ),
        (
            "F16_TRAIN.ts",
            "ts_series_length_1e10",
            "alloc_bomb",
            r"140 values; expected 10000000000",
            "\n".join(ts_head + ts_rows[:2])
            .replace("@seriesLength 140", "@seriesLength 10000000000")
            .encode(),
        ),
    ]


def _data_section(text: str) -> tuple[list[str], list[str]]:
    """The lines up to and including ``@data``, and the first 10 data rows after it."""
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.lower().startswith("@data"))
    return lines[: at + 1], lines[at + 1 : at + 11]


def build_ucr(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    """Write the ``ucr`` source."""
    src = Source(corpus, SourceSpec("ucr", "ucr", "beats140"), rng)
    base = shared / "ucr_ecg5000"
    lines = (base / "ECG5000_TRAIN.txt").read_text().splitlines()
    src.write("ECG5000_TRAIN.txt", "\n".join(lines[:40]) + "\n")
    src.good += [src.record_id(f"ECG5000_TRAIN/{i:05d}") for i in range(40)]
    for ext in ("ts", "arff"):
        src.write(f"ECG5000_TRAIN.{ext}", (base / f"ECG5000_TRAIN.{ext}").read_bytes())
        src.add(
            "duplicate",
            f"same_split_as_{ext}",
            f"ECG5000_TRAIN.{ext}",
            r"same dataset\+split as ECG5000_TRAIN.txt",
        )
    _txt_rows(src, lines, rng)
    arff_head, arff_rows = _data_section((base / "ECG5000_TRAIN.arff").read_text())
    ts_head, ts_rows = _data_section((base / "ECG5000_TRAIN.ts").read_text())
    _arff_ts_rows(src, arff_head, arff_rows, ts_head, ts_rows)
    good_txt = "\n".join(lines[:3]) + "\n"
    files = _text_files(good_txt, rng) + _arff_files(arff_head) + _ts_files(ts_head, ts_rows)
    files += [
        ("notes.csv", "not_a_ucr_name", "stray", r"not a UCR file", b"a,b\n1,2\n"),
        ("F18_TRAIN.json", "unknown_extension", "stray", r"not a UCR file", b"{}"),
    ]
    for rel, label, category, reason, data in files:
        src.write(rel, data)
        claimed = 10**10 * 4 if category == "alloc_bomb" else 0
        src.add(category, label, rel, reason, claimed_bytes=claimed)
    src.sparse("F19_TRAIN.txt", 300 * MiB, good_txt.encode())
    src.add("alloc_bomb", "file_300mb", "F19_TRAIN.txt", r"larger than", claimed_bytes=300 * MiB)
