"""Compare two shard stores file by file: are they the same data?

    python scripts/compare_stores.py STORE_A STORE_B

Every file under the two store roots is hashed (sha256) and compared by relative path. The
``manifest.json`` of each profile is compared as JSON with its run bookkeeping left out (the flow-run id
and the start time of each run, and the ``run``/``created`` fields of each shard entry), because those
name *when and by which run* a shard was written, not what it holds. ``ingest_report.json`` is compared
without the absolute source roots it names (the same raw tree read from another folder). Skipped:
``.lock`` files, ``file_cache.json`` (a cache of raw-file hashes keyed by absolute path and mtime) and
``runs.json`` (the run log).

Exit status 0 when the stores hold the same bytes (manifests: the same apart from run bookkeeping), 1
otherwise; the differences are printed one per line. Used to show that a refactor leaves stored data
unchanged (docs/NOTES.md, issue 14).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipeline.core.fs import sha256_file

_RUN_FIELDS = ("run", "created")


_SKIPPED = (".lock", "file_cache.json", "runs.json")


def _files(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file() and p.name not in _SKIPPED
    }


def _manifest_without_runs(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    doc.pop("runs", None)
    for shard in doc.get("shards", {}).values():
        for field in _RUN_FIELDS:
            shard.pop(field, None)
    return doc


def _report_without_roots(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    for source in doc.get("sources", {}).values():
        if isinstance(source, dict):
            source.pop("root", None)
    return doc


_AS_JSON = {"manifest.json": _manifest_without_runs, "ingest_report.json": _report_without_roots}


def compare(a: Path, b: Path) -> list[str]:
    """The differences between the stores at ``a`` and ``b``, one line each (empty: the same data)."""
    fa, fb = _files(a), _files(b)
    out = [f"only in {a}: {k}" for k in sorted(fa.keys() - fb.keys())]
    out += [f"only in {b}: {k}" for k in sorted(fb.keys() - fa.keys())]
    same = 0
    for key in sorted(fa.keys() & fb.keys()):
        as_json = _AS_JSON.get(Path(key).name)
        if as_json is not None:
            equal = as_json(fa[key]) == as_json(fb[key])
        else:
            equal = sha256_file(fa[key]) == sha256_file(fb[key])
        if equal:
            same += 1
        else:
            out.append(f"differs: {key}")
    print(f"{same} of {len(fa.keys() | fb.keys())} files the same")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    diffs = compare(Path(argv[0]), Path(argv[1]))
    for line in diffs:
        print(line)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
