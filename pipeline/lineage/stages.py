"""The DVC stage chain behind an artifact: the stages that produce it, their upstream stages through
data deps, each stage as JSON (command, params, deps and outs with their on-disk state, the code
version from its provenance record), the leaves no stage produces, and the warnings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.core.provenance import PROVENANCE_DIR, record_name
from pipeline.lineage import dvc_lock as dl
from pipeline.lineage import lock_check as lc
from pipeline.lineage.query import LineageContext, LineageError
from pipeline.lineage.similar import close_paths

# A dep no stage produces is code when it lies under one of these folders or has a code suffix;
# everything else (raw folders, label tables) is data.
CODE_ROOTS = ("pipeline", "flows", "ckernels", "scripts", "src")
CODE_SUFFIXES = frozenset({".py", ".c", ".h", ".cc", ".cpp", ".hpp", ".pyx", ".sh"})
CODE_NAMES = frozenset({"Makefile", "CMakeLists.txt", "pyproject.toml", "setup.py", "setup.cfg"})


def start_producers(lock: dl.DvcLock, rel: str, root: Path) -> list[dl.Producer]:
    found = lock.producers(rel) or lock.producers_inside(rel)
    if found:
        return found
    users = lock.dep_users(rel)
    if users:
        what = "code" if is_code_path(rel) else "a raw input"
        state = "" if (root / rel).exists() else " (and does not exist)"
        raise LineageError(
            f"{rel}: not produced by any stage{state}: it is {what}, a dependency of {', '.join(users[:8])}"
            f"{' ...' if len(users) > 8 else ''}; ask about an output of one of those stages"
        )
    on_disk = "exists but is" if (root / rel).exists() else "does not exist and is"
    near = close_paths(rel, lock.out_paths())
    raise LineageError(
        f"{rel}: {on_disk} not produced by any stage in dvc.lock"
        f"{'. Did you mean ' + ', '.join(near) + '?' if near else ''}"
    )


def stage_chain(lock: dl.DvcLock, start: Sequence[str]) -> dict[str, int]:
    """Stage name → depth, breadth first from the producing stages through data deps."""
    order: dict[str, int] = {}
    frontier = list(dict.fromkeys(start))
    depth = 0
    while frontier:
        nxt: list[str] = []
        for name in frontier:
            if name in order:
                continue
            order[name] = depth
            for dep in lock.stage(name).deps:
                nxt.extend(p.stage.name for p in lock.dep_producers(dep.path, exclude=name))
        frontier = [n for n in dict.fromkeys(nxt) if n not in order]
        depth += 1
    return order


def is_code_path(rel: str) -> bool:
    """Whether a dep no stage produces is code (see :data:`CODE_ROOTS`) rather than data."""
    p = PurePosixPath(rel)
    in_code_root = bool(p.parts) and p.parts[0] in CODE_ROOTS
    return in_code_root or p.suffix in CODE_SUFFIXES or p.name in CODE_NAMES


def artifact_json(ctx: LineageContext, rel: str, start: Sequence[dl.Producer]) -> dict[str, Any]:
    full = ctx.root / rel
    first = start[0]
    exact = [p for p in start if p.out.path == rel]
    if exact:
        state = ctx.state(exact[0].out)
    elif dl.is_within(rel, first.out.path):
        state = lc.check_inside(ctx.root, first.out, rel)
        if state.status == "unknown":  # no cached listing (a cache: false out): judge the whole folder
            outer = ctx.state(first.out)
            state = lc.EntryState(
                outer.status,
                f"{outer.method} of {first.out.path}",
                outer.size,
                outer.nfiles,
                None,
                outer.detail,
            )
    else:  # a folder holding outs: each out carries its own state in its stage
        state = lc.EntryState(
            "unknown", "none", detail="a folder holding several outs; see each stage's outs"
        )
    if not exact and state.status in ("modified", "missing"):  # an exact out is warned about by its stage
        ctx.warnings.append(f"artifact {rel}: {state.status} since dvc.lock ({state.detail})")
    return {
        "path": rel,
        "kind": "folder" if full.is_dir() else "file" if full.exists() else "missing",
        "exists": full.exists(),
        "stage": first.stage.name,
        "stages": sorted({p.stage.name for p in start}),
        "out": first.out.path,
        "inside_out": first.out.path != rel and dl.is_within(rel, first.out.path),
        "state": state.to_json(),
    }


def stage_json(ctx: LineageContext, stage: dl.LockStage, depth: int) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    code: list[dict[str, Any]] = []
    upstream: list[str] = []
    for dep in stage.deps:
        producers = ctx.lock.dep_producers(dep.path, exclude=stage.name)
        item = {**dep.to_json(), "state": ctx.state(dep).to_json()}
        if producers:
            names = sorted({p.stage.name for p in producers})
            upstream.extend(names)
            item["produced_by"] = names
            item["matches_producer"] = _matches_producer(dep, producers)
            data.append(item)
        elif is_code_path(dep.path):
            code.append(item)
        else:
            item["produced_by"] = []
            data.append(item)
    return {
        "name": stage.name,
        "depth": depth,
        "cmd": stage.cmd_json(),
        "params": {f: dict(v) for f, v in stage.params.items()},
        "code_version": code_version(ctx.root, stage),
        "deps": {"data": data, "code": code},
        "outs": [{**o.to_json(), "state": ctx.state(o).to_json()} for o in stage.outs],
        "upstream": sorted(set(upstream)),
    }


def _matches_producer(dep: dl.LockEntry, producers: Sequence[dl.Producer]) -> bool | None:
    """Whether the dep's locked hash is its producer's locked out hash (None: not the same path)."""
    same = [p.out for p in producers if p.out.path == dep.path]
    if not same:
        return None
    return all(o.md5 == dep.md5 for o in same)


def code_version(root: Path, stage: dl.LockStage) -> dict[str, Any]:
    """The stage's provenance record, checked against the md5 the lock holds for it."""
    rel = (PurePosixPath(PROVENANCE_DIR) / record_name(stage.name)).as_posix()
    entry = stage.out(rel)
    path = Path(root) / rel
    base: dict[str, Any] = {"record": rel, "status": "", "consistent_with_lock": None}
    if entry is None and not path.is_file():
        why = (
            "the locked run predates provenance records (re-run the stage to record one)"
            if _is_ecgpipe(stage.cmd)
            else "the stage writes no provenance record (not an ecgpipe command)"
        )
        return {**base, "record": None, "status": "not recorded", "note": why}
    if not path.is_file():
        return {
            **base,
            "status": "missing",
            "consistent_with_lock": False,
            "note": f"dvc.lock lists {rel} but it is not on disk",
        }
    consistent = entry is not None and entry.md5 == lc.md5_file(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return {**base, "status": "unreadable", "consistent_with_lock": False, "note": str(exc)}
    keys = (
        "git_commit",
        "git_dirty",
        "dirty_files",
        "argv",
        "started_utc",
        "finished_utc",
        "prefect_flow_run_id",
    )
    note = (
        ""
        if consistent
        else (
            "dvc.lock does not list this record"
            if entry is None
            else "the record differs from the one dvc.lock holds: it was written by another run than the "
            "locked outputs (stale)"
        )
    )
    return {
        **base,
        "status": "recorded" if consistent else "stale",
        "consistent_with_lock": consistent,
        **{k: record.get(k) for k in keys},
        "note": note,
    }


def _is_ecgpipe(cmd: str | tuple[str, ...]) -> bool:
    first = cmd if isinstance(cmd, str) else (cmd[0] if cmd else "")
    return first.split(" ", 1)[0] == "ecgpipe"


def stage_warnings(stages: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for s in stages:
        cv = s["code_version"]
        if cv["status"] in ("stale", "missing", "unreadable"):
            out.append(
                f"{s['name']}: provenance record {cv['record']} is {cv['status']}: {cv.get('note', '')}"
            )
        for o in s["outs"]:
            if o["state"]["status"] in ("modified", "missing"):
                out.append(
                    f"{s['name']}: out {o['path']} {o['state']['status']} since dvc.lock "
                    f"({o['state']['detail']})"
                )
        deps = [*s["deps"]["data"], *s["deps"]["code"]]
        changed = [d["path"] for d in deps if d["state"]["status"] in ("modified", "missing")]
        behind = [d["path"] for d in deps if d.get("matches_producer") is False]
        if changed:
            out.append(
                f"{s['name']}: not up to date: {len(changed)} dep(s) changed since dvc.lock "
                f"({_first(changed)})"
            )
        if behind:
            out.append(
                f"{s['name']}: not up to date: dep(s) {_first(behind)} locked with another hash "
                "than their producing stage now holds"
            )
    return out


def _first(items: Sequence[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def leaves(stages: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Deps no stage produces, once each, with the stages that use them."""
    found: dict[str, dict[str, dict[str, Any]]] = {"data": {}, "code": {}}
    for s in stages:
        for kind in ("data", "code"):
            for d in s["deps"][kind]:
                if d.get("produced_by"):
                    continue
                base = {k: v for k, v in d.items() if k != "produced_by"}
                item = found[kind].setdefault(d["path"], {**base, "used_by": []})
                item["used_by"].append(s["name"])
    return {k: [v for _, v in sorted(items.items())] for k, items in found.items()}
