"""Signal codecs on real records: stored size and one-core decode speed, against today's codec and
against a plain memory copy (the physical ceiling), measured in the same run (issue 19 item 5).

Records are the real PTB-XL 500 Hz records (profile ``ecg12``: 12 × 5000) and the first CinC 2017
records (``lead1_af``: 1 × 9000), read, filtered and quantised to int16 at 1 µV by the library, exactly
what a shard stores. Each candidate compresses chunks of the profile's ``records_per_chunk`` records
(as the shard's inner chunks) with numcodecs' Blosc (one thread, the ingest and loader setting) or
plain zstd; decode time is the best of ``--repeats`` passes over all chunks into a preallocated
buffer. Size is against the raw WFDB bytes of the same records (``.hea`` + ``.dat``/``.mat``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("ECGPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))
TODAY = "blosc zstd-3 bitshuffle"
SETS = {"ecg12": ("ptbxl", SHARED / "ptbxl"), "lead1_af": ("cinc2017", SHARED / "cinc2017")}


def candidates() -> dict[str, Any]:
    from numcodecs import Blosc, Zstd

    out: dict[str, Any] = {}
    for cname in ("lz4", "zstd"):
        levels = (1, 5, 9) if cname == "lz4" else (1, 3, 5)
        for level in levels:
            for name, shuffle in (("byteshuffle", Blosc.SHUFFLE), ("bitshuffle", Blosc.BITSHUFFLE)):
                out[f"blosc {cname}-{level} {name}"] = Blosc(cname=cname, clevel=level, shuffle=shuffle)
    out["zstd-3 (no shuffle)"] = Zstd(level=3)
    return out


def records(profile: str, n: int) -> tuple[npt.NDArray[np.int16], int, int]:
    """``(N, C, T)`` int16 as the store holds them, the profile's records per chunk, raw WFDB bytes."""
    from pipeline.config import load_params
    from pipeline.config.build import signal_plan, storage_spec
    from pipeline.core.records import Provenance, Record
    from pipeline.ingest.plan import plan_ingest
    from pipeline.signal.dsp import quantise_rows
    from pipeline.signal.preprocess import process
    from pipeline.sources.registry import build_readers
    from pipeline.store.manifest import Manifest

    source, root = SETS[profile]
    params = load_params(REPO / "params.yaml", [f"sources.{source}.root={root}"])
    prof = params.profiles[profile]
    plan = signal_plan(prof)
    readers = build_readers(params, [source])
    iplan = plan_ingest(profile, plan, storage_spec(prof), readers, Manifest(profile=profile), 10**6, n)
    recs: list[Record] = []
    raw = 0
    for task in iplan.todo:
        if profile == "ecg12" and not any("records500" in f for f in task.unit.files):
            continue  # the 500 Hz files only, as the ingest benchmark (its raw bytes are comparable)
        reader = readers[task.source]
        raw += sum((reader.root / f).stat().st_size for f in task.unit.files)
        prov = Provenance(files=tuple((f, "") for f in task.unit.files), reader=reader.reader_id)
        recs.extend(r for r in reader.read(task.unit, prov) if isinstance(r, Record))
    batch, _ = process(recs[:n], plan)
    q, _ = quantise_rows(batch.signal, prof.storage.scale_mv)
    return q, prof.storage.records_per_chunk, raw


def measure(x: npt.NDArray[np.int16], per_chunk: int, repeats: int) -> dict[str, dict[str, float]]:
    """Bytes and best decode records/s of every candidate; the candidates are interleaved in each
    repeat so that a busy spell on a shared machine hits all of them alike."""
    from numcodecs import blosc

    blosc.set_nthreads(1)
    chunks = [np.ascontiguousarray(x[i : i + per_chunk]) for i in range(0, len(x), per_chunk)]
    out = np.empty_like(chunks[0])
    codecs = candidates()
    encoded = {name: [c.encode(ch) for ch in chunks] for name, c in codecs.items()}
    for name, codec in codecs.items():
        back = [np.frombuffer(codec.decode(e), dtype=np.int16) for e in encoded[name]]
        assert all(np.array_equal(b, c.ravel()) for b, c in zip(back, chunks, strict=True)), name
    best = dict.fromkeys(["memory copy (ceiling)", *codecs], float("inf"))
    for _ in range(repeats):
        t0 = time.perf_counter()
        for c in chunks:  # the ceiling: copying the decoded bytes once, no codec
            np.copyto(out[: len(c)], c)
        best["memory copy (ceiling)"] = min(best["memory copy (ceiling)"], time.perf_counter() - t0)
        for name, codec in codecs.items():
            t0 = time.perf_counter()
            for e, c in zip(encoded[name], chunks, strict=True):
                codec.decode(e, out=out[: len(c)])
            best[name] = min(best[name], time.perf_counter() - t0)
    size = {name: float(sum(len(e) for e in enc)) for name, enc in encoded.items()}
    size["memory copy (ceiling)"] = float(x.nbytes)
    return {k: {"bytes": size[k], "records_per_s": len(x) / v} for k, v in best.items()}


def run(n: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": {"python": platform.python_version(), "load": os.getloadavg()}}
    for profile in SETS:
        x, per_chunk, raw = records(profile, n)
        figs = measure(x, per_chunk, repeats)
        today = figs[TODAY]["records_per_s"]
        out[profile] = {
            "records": len(x),
            "shape": list(x.shape[1:]),
            "raw_wfdb_bytes": raw,
            "codecs": {
                k: {
                    "x_raw": round(v["bytes"] / raw, 3),
                    "records_per_s": round(v["records_per_s"]),
                    "x_today_speed": round(v["records_per_s"] / today, 2),
                }
                for k, v in figs.items()
            },
        }
    return out


def markdown(res: dict[str, Any]) -> str:
    lines = []
    for profile in SETS:
        r = res[profile]
        lines += [f"### {profile}: {r['records']} records of {r['shape']} int16", ""]
        lines += ["| codec | size × raw WFDB | decode records/s (1 core) | × today |", "|---|---:|---:|---:|"]
        for k, v in r["codecs"].items():
            mark = " (today)" if k == TODAY else ""
            lines.append(
                f"| {k}{mark} | {v['x_raw']:.3f} | {v['records_per_s']:,} | {v['x_today_speed']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=512, help="records per profile")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args()
    res = run(args.n, args.repeats)
    args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
