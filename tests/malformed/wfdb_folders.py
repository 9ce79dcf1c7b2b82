"""Generic WFDB folder sources (``mitbih``, ``cpsc2021``, ``wfdb_misc``): formats 212, 16, 80 and
MAT v4; the first two are cut into 10 s windows and carry ``.atr`` annotations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tests.malformed.corpus import Corpus, GiB, MiB, Source, SourceSpec
from tests.malformed.mutations import GENERIC, WHOLE_ONLY, as_is, m_header_oversized, m_missing_lead
from tests.malformed.wfdb import (
    Edit,
    Mutation,
    Outcome,
    Template,
    copy_record,
    emit_wfdb,
    load_template,
    write_template,
)


def _atr_mutations(template: Template) -> dict[str, Callable[[Edit], Outcome]]:
    assert template.annotation is not None
    atr = template.annotation

    def truncated(e: Edit) -> Outcome:
        e.atr = atr[: len(atr) // 3]
        return Outcome("annotation", r"end-of-file marker")

    def empty(e: Edit) -> Outcome:
        e.atr = b""
        return Outcome("annotation", r"end-of-file marker")

    def garbage(e: Edit) -> Outcome:
        e.atr = e.rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() + b"\x00\x00"
        # caught by the word walk (marker early, or words running past the end) or by wfdb.rdann
        return Outcome("annotation", r"annotation")

    def bomb(e: Edit) -> Outcome:
        e.sparse_atr = 200 * MiB
        return Outcome("alloc_bomb", r"larger than", 200 * MiB)

    return {"atr_truncated": truncated, "atr_empty": empty, "atr_garbage": garbage, "atr_200mb": bomb}


def _wfdb_generic() -> dict[str, Mutation]:
    """GENERIC for discovery-time header readers: the oversized header is 1 GiB (nothing hashes
    a header rejected at discovery, and a claim that large shows in any memory measurement)."""
    return {
        ("header_1gb" if k == "header_17mb" else k): (m_header_oversized(GiB) if k == "header_17mb" else v)
        for k, v in GENERIC.items()
    }


def _wfdb_source(corpus: Corpus, name: str, rng: np.random.Generator, options: Mapping[str, Any]) -> Source:
    return Source(corpus, SourceSpec(name, "wfdb", "holter", options), rng)


def build_mitbih(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _wfdb_source(corpus, "mitbih", rng, {})
    base = shared / "mitbih"
    copy_record(src, base, "100", with_atr=True)
    copy_record(src, base, "106")
    src.good += [src.record_id("100/"), src.record_id("106/")]
    t100 = load_template(base, "100", n_frames=21_600, atr=True)
    t106 = load_template(base, "106", n_frames=21_600)
    emit_wfdb(src, [t100, t106], _wfdb_generic(), lambda i: f"m1_{i:03d}", windowed=True)
    emit_wfdb(src, [t100], _atr_mutations(t100), lambda i: f"m2_{i:03d}", windowed=True)
    emit_wfdb(src, [t106], {"missing_lead": m_missing_lead}, lambda i: f"m3_{i:03d}", windowed=True)
    short = load_template(base, "106", n_frames=1800)
    too_short = {"shorter_than_a_window": as_is("too_short", r"fewer than one window")}
    emit_wfdb(src, [short], too_short, lambda i: f"m4_{i:03d}", windowed=True)
    # A RECORDS file in a subfolder governs it: a header it does not list, an entry with no header.
    write_template(src, t106, "listed/106")
    src.good.append(src.record_id("listed/106/"))
    write_template(src, load_template(base, "108", n_frames=21_600), "listed/108")
    src.write("listed/RECORDS", "106\nghost\n")
    src.add(
        "records_file",
        "header_not_listed",
        "listed/108.hea",
        r"not listed in listed/RECORDS",
        [src.record_id("listed/108/")],
    )
    src.add(
        "records_file",
        "listed_without_header",
        "listed/ghost",
        r"listed in listed/RECORDS but listed/ghost.hea does not exist",
    )
    write_template(src, t106, "bomb/106")
    src.sparse("bomb/RECORDS", GiB, b"106\n")
    src.add("alloc_bomb", "records_file_1gb", "bomb/RECORDS", r"larger than", claimed_bytes=GiB)
    src.good.append(src.record_id("bomb/106/"))
    src.write("stray.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "stray.bin", r"no WFDB header names this file")


def build_cpsc2021(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _wfdb_source(corpus, "cpsc2021", rng, {})
    base = shared / "cpsc2021"
    for stem in ("data_8_2", "data_21_7"):
        copy_record(src, base, stem, with_atr=True)
        src.good.append(src.record_id(f"{stem}/"))
    template = load_template(base, "data_21_8", n_frames=12_000, atr=True)
    mutations = {**_wfdb_generic(), **_atr_mutations(template)}
    emit_wfdb(src, [template], mutations, lambda i: f"data_9_{i:03d}", windowed=True)


def build_wfdb_misc(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    src = _wfdb_source(corpus, "wfdb_misc", rng, {"annotation_ext": None})
    base = shared / "wfdb_misc"
    for stem in ("a103l", "v102s", "3000003_0003"):
        copy_record(src, base, stem)
        src.good.append(src.record_id(stem))
    fmt80 = load_template(base, "3000003_0003")
    fmt212 = load_template(base, "v102s", n_frames=15_000)
    mat = load_template(base, "a103l", n_frames=15_000)
    mat_only = ("mat_v5", "mat_type_double", "mat_small_dims", "format_61_on_mat")
    mutations = {k: v for k, v in {**_wfdb_generic(), **WHOLE_ONLY}.items() if k not in mat_only}
    emit_wfdb(src, [fmt80, fmt212, mat], mutations, lambda i: f"x1_{i:03d}")
    emit_wfdb(src, [mat], {k: GENERIC[k] for k in mat_only}, lambda i: f"x2_{i:03d}")
    tiny = load_template(base, "3000003_0003", n_frames=3)
    emit_wfdb(src, [tiny], {"three_samples": as_is("too_short", r"too short")}, lambda i: f"x3_{i:03d}")
