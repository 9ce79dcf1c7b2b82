"""Plain-text rendering of the lineage documents
(:mod:`~pipeline.lineage.artifact`, :mod:`~pipeline.lineage.record`).

Readable trees without colours. Long lists (code deps, params, raw files) show counts and the first
few entries unless ``show_all``; the JSON document always holds everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FIRST = 5  # entries shown per long list without show_all
FIRST_PARAMS = 12


def render_artifact(doc: Mapping[str, Any], show_all: bool = False) -> str:
    """The artifact lineage document as text."""
    lines = _artifact_head(doc["artifact"])
    for stage in doc["stages"]:
        lines += ["", *_stage_lines(stage, show_all)]
    lines += ["", *_leaf_lines(doc["leaves"], show_all)]
    lines += ["", *_shard_lines(doc["shards"], show_all)]
    lines += ["", *_raw_lines(doc["raw_files"], show_all)]
    lines += ["", *_warning_lines(doc["warnings"])]
    if not show_all:
        lines += ["", "(lists are shortened: --all shows every entry, --json the whole document)"]
    return "\n".join(lines)


def render_record(doc: Mapping[str, Any], show_all: bool = False) -> str:
    """The record lineage document as text."""
    lines = [f"record {doc['record_id']}  (profiles searched: {', '.join(doc['profiles_searched'])})"]
    for occ in doc["occurrences"]:
        lines += ["", *_occurrence_lines(occ, show_all)]
    if not doc["models"]:
        lines += ["", "models: no model's split index holds this record"]
    for model in doc["models"]:
        lines += ["", *_model_lines(model)]
    lines += ["", *_warning_lines(doc["warnings"])]
    return "\n".join(lines)


# --------------------------------------------------------------------------- artifact parts


def _artifact_head(art: Mapping[str, Any]) -> list[str]:
    where = f"out {art['out']}" + (" (inside that folder out)" if art["inside_out"] else "")
    others = [s for s in art["stages"] if s != art["stage"]]
    return [
        f"artifact {art['path']}  ({art['kind']})",
        f"  produced by  {art['stage']}  ({where})" + (f"; also {', '.join(others)}" if others else ""),
        f"  on disk      {_state(art['state'])}",
    ]


def _stage_lines(stage: Mapping[str, Any], show_all: bool) -> list[str]:
    cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " && ".join(stage["cmd"])
    lines = [
        f"stage {stage['name']}"
        + (f"  (upstream: {', '.join(stage['upstream'])})" if stage["upstream"] else ""),
        f"  cmd     {cmd}",
        f"  version {_code_version(stage['code_version'])}",
    ]
    flow = stage["code_version"].get("prefect_flow_run_id")
    if flow:
        lines.append(f"  flow    Prefect flow run {flow}")
    lines += _param_lines(stage["params"], show_all)
    data = stage["deps"]["data"]
    for i, dep in enumerate(data):
        src = f"← {', '.join(dep['produced_by'])}" if dep.get("produced_by") else "← input (no stage)"
        lag = "  LOCKED WITH OLDER UPSTREAM" if dep.get("matches_producer") is False else ""
        lines.append(f"  {'data' if i == 0 else '':<7} {_entry(dep)}  {src}  {_state(dep['state'])}{lag}")
    lines += _code_dep_lines(stage["deps"]["code"], show_all)
    for i, out in enumerate(stage["outs"]):
        lines.append(f"  {'outs' if i == 0 else '':<7} {_entry(out)}  {_state(out['state'])}")
    return lines


def _code_version(cv: Mapping[str, Any]) -> str:
    if cv["status"] == "not recorded":
        return f"not recorded: {cv.get('note', '')}"
    if cv["status"] in ("missing", "unreadable"):
        return f"{cv['status']}: {cv.get('note', '')}"
    commit = (cv.get("git_commit") or "unknown")[:12]
    dirty = cv.get("git_dirty")
    files = cv.get("dirty_files") or []
    dirty_s = "unknown" if dirty is None else f"yes, {len(files)} file(s)" if dirty else "no"
    check = "consistent with dvc.lock" if cv["consistent_with_lock"] else f"STALE: {cv.get('note', '')}"
    return (
        f"git {commit} (dirty: {dirty_s}), ran {cv.get('started_utc')} → {cv.get('finished_utc')}; "
        f"{cv['record']} {check}"
    )


def _param_lines(params: Mapping[str, Mapping[str, Any]], show_all: bool) -> list[str]:
    flat = [
        (f"{f}: {k}" if len(params) > 1 else k, v)
        for f, values in params.items()
        for k, v in _flatten(values)
    ]
    if not flat:
        return ["  params  none"]
    shown = flat if show_all else flat[:FIRST_PARAMS]
    lines = [f"  {'params' if i == 0 else '':<7} {k} = {json.dumps(v)}" for i, (k, v) in enumerate(shown)]
    if len(shown) < len(flat):
        lines.append(f"          ... {len(flat) - len(shown)} more params")
    return lines


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _code_dep_lines(code: Sequence[Mapping[str, Any]], show_all: bool) -> list[str]:
    changed = [d for d in code if d["state"]["status"] not in ("unchanged",)]
    summary = f"{len(code)} path(s), " + (
        f"{len(changed)} changed since dvc.lock" if changed else "all unchanged since dvc.lock"
    )
    lines = [f"  code    {summary}"]
    listed = code if show_all else changed
    lines += [f"          {_entry(d)}  {_state(d['state'])}" for d in listed]
    return lines


def _leaf_lines(leaves: Mapping[str, Sequence[Mapping[str, Any]]], show_all: bool) -> list[str]:
    lines = ["inputs no stage produces (leaves)"]
    for dep in leaves["data"]:
        lines.append(f"  data  {_entry(dep)}  used by {', '.join(dep['used_by'])}  {_state(dep['state'])}")
    code = leaves["code"]
    changed = [d for d in code if d["state"]["status"] != "unchanged"]
    lines.append(f"  code  {len(code)} path(s), {len(changed)} changed since dvc.lock")
    for dep in code if show_all else changed:
        lines.append(f"        {_entry(dep)}  {_state(dep['state'])}")
    return lines


def _shard_lines(shards: Mapping[str, Any], show_all: bool) -> list[str]:
    items = shards["items"]
    runs = ", ".join(shards["flow_run_ids"]) or "none recorded"
    lines = [
        f"shards ({shards['scope']}): {len(items)} shard(s), {shards['n_records']} records; "
        f"Prefect flow runs: {runs}"
    ]
    for info in shards["indexes"]:
        splits = ", ".join(f"{k} {v}" for k, v in info.get("by_split", {}).items())
        lines.append(
            f"  index {info['path']}: profile {info.get('profile')}, {info.get('records')} records ({splits})"
        )
    shown = items if show_all else items[:FIRST]
    for s in shown:
        per = s.get("rows_by_split")
        per_s = f" ({', '.join(f'{k} {v}' for k, v in per.items())})" if per else ""
        lines.append(
            f"  {s['profile']}/{s['shard']}  sha256 {str(s['sha256'])[:16]}…  "
            f"{s['rows_used']} of {s['live_records']} live records used{per_s}  "
            f"flow run {s['flow_run_id']}  created {s['created']}"
        )
    if len(shown) < len(items):
        lines.append(f"  ... {len(items) - len(shown)} more shards (--all)")
    return lines


def _raw_lines(raw: Mapping[str, Any], show_all: bool) -> list[str]:
    lines = [f"raw files: {raw['n_files']} file(s) behind {raw['n_records']} record(s)"]
    for source, group in raw["by_source"].items():
        lines.append(
            f"  {source}  (root {group['root']}, reader {', '.join(group['readers'])}): "
            f"{group['n_files']} file(s), {group['n_records']} record(s)"
        )
        files = group["files"]
        shown = files if show_all else files[:FIRST]
        lines += [f"    {f['path']}  sha256 {f['sha256']}" for f in shown]
        if len(shown) < len(files):
            lines.append(f"    ... {len(files) - len(shown)} more (--all lists every file, --json too)")
    return lines


def _warning_lines(warnings: Sequence[str]) -> list[str]:
    if not warnings:
        return ["warnings: none"]
    return ["warnings:", *(f"  ! {w}" for w in warnings)]


def _entry(e: Mapping[str, Any]) -> str:
    n = f", {e['nfiles']} files" if e.get("nfiles") is not None else ""
    return f"{e['path']}  (md5 {e.get('md5')}{n})"


def _state(state: Mapping[str, Any]) -> str:
    status = str(state["status"])
    text = status if status == "unchanged" else status.upper()
    detail = f": {state['detail']}" if state.get("detail") and status != "unchanged" else ""
    return f"[{text} by {state['method']}{detail}]"


# --------------------------------------------------------------------------- record parts


def _occurrence_lines(occ: Mapping[str, Any], show_all: bool) -> list[str]:
    lines = [
        f"profile {occ['profile']}: shard {occ['shard']} row {occ['row']}  ({occ['shard_path']})",
        f"  shard     sha256 {str(occ['shard_sha256'])[:16]}…, written by Prefect flow run "
        f"{occ['flow_run_id']} at {occ['shard_created']}",
        f"  source    {occ['source']} (reader {occ['reader']}), unit {occ['unit']}, "
        f"patient {occ['patient_id']}",
    ]
    if occ.get("window"):
        lines.append(f"  window    samples {occ['window']} of {occ['parent_id']}")
    lines.append("  raw files")
    for f in occ["raw_files"]:
        now = "unchanged" if f["unchanged"] else "CHANGED" if f["unchanged"] is False else "not re-hashed"
        lines.append(f"    {f['path']}  sha256 {f['sha256']}  [{now if f['exists'] else 'MISSING'}]")
    raw = [_raw_label(lab) for lab in occ["raw_labels"]]
    unified = occ["unified_labels"]["positive"]
    if any(lab.get("name") for lab in occ["raw_labels"]):
        lines.append("  raw labels")  # one per line: the names have commas of their own
        lines += [f"    {text}" for text in raw]
    else:
        lines.append(f"  raw labels      {', '.join(raw) or 'none'}")
    lines.append(
        "  unified labels  " + ("not derived yet" if unified is None else ", ".join(unified) or "none")
    )
    lines += _scheme_lines(occ.get("schemes", {}))
    if show_all and occ.get("meta"):
        lines.append(f"  meta      {json.dumps(occ['meta'], sort_keys=True)}")
    return lines


def _raw_label(lab: Mapping[str, Any]) -> str:
    """``164889003 (0.5) atrial fibrillation [SNOMED CT]``: code, likelihood, and its name when known."""
    text = f"{lab['code']}" + (f" ({lab['likelihood']:g})" if lab["likelihood"] is not None else "")
    return f"{text}  {lab['name']} [{lab['code_system']}]" if lab.get("name") else text


def _scheme_lines(schemes: Mapping[str, Any]) -> list[str]:
    """Per scheme: its labels, then each distinct (raw code, scope, row, fate) with how often."""
    lines: list[str] = []
    for name, doc in schemes.items():
        positive = doc["positive"]
        shown = "not derived yet" if positive is None else ", ".join(positive) or "none"
        lines.append(f"  scheme {name} ({doc['rule']}): {shown}")
        seen: dict[tuple[Any, ...], int] = {}
        for w in doc["why"]:
            key = (w["code"], w["scope"], w["label"], w["row"], w["reaches"], w["because"])
            seen[key] = seen.get(key, 0) + 1
        for (code, scope, label, row, reaches, because), n in seen.items():
            times = f" x{n}" if n > 1 else ""
            target = "(no row)" if label is None else label or "(no label)"
            fate = "" if reaches else f"  not counted: {because}"
            lines.append(f"    {code} [{scope}]{times} -> {target}  {row or '-'}{fate}")
    return lines


def _model_lines(model: Mapping[str, Any]) -> list[str]:
    lines = [
        f"model {model['model']}: split {model['split']} ({model['role']}), group {model['group']}",
        f"  index       {model['index']}",
    ]
    ck = model["checkpoint"]
    if ck is None:
        lines.append("  checkpoint  none yet")
    elif "error" in ck:
        lines.append(f"  checkpoint  {ck['path']}: {ck['error']}")
    else:
        dirty = " (dirty tree)" if ck.get("git_dirty") else ""
        same = {True: "", False: "; trained on ANOTHER version of the index", None: ""}[
            ck["trained_on_this_index"]
        ]
        lines.append(
            f"  checkpoint  {ck['path']}: created {ck['created_utc']}, git {ck['git_commit']}{dirty}, "
            f"epoch {ck['epoch']}{same}"
        )
    ev = model["evaluation"]
    if ev["scored"]:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in ev["scores"].items())
        lines.append(
            f"  evaluation  {ev['path']}: labels {ev['labels'] or 'none'}, predicted "
            f"{ev['predicted'] or 'none'}; scores {scores}"
        )
    else:
        lines.append(f"  evaluation  {ev['reason']}")
    return lines
