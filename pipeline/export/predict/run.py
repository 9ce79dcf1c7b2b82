"""``ecgpipe predict`` end to end: check the arguments, load the model and rule, score, write the files."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from pipeline.core.fs import sha256_file, write_atomic
from pipeline.evaluation.decisions import DecisionRule, read_rule
from pipeline.evaluation.jsonable import json_safe
from pipeline.export.predict.discover import discover_inputs
from pipeline.export.predict.read import read_candidates
from pipeline.export.predict.score import check_rule, predict_records
from pipeline.export.predict.table import REJECTED, SCORED, PredictionTable
from pipeline.export.predict.units import InputScan
from pipeline.models.card import ModelCard, card_from_checkpoint, describe_training_data
from pipeline.signal.preprocess import SignalPlan
from pipeline.training.checkpoint import CheckpointError, load_checkpoint
from pipeline.training.load import pick_checkpoint
from pipeline.training.optim import resolve_device

PREDICTIONS_FORMAT = "ecgpipe-predictions/1"
CSV_NAME = "predictions.csv"
JSON_NAME = "predictions.json"

EXIT_SCORED = 0
EXIT_NONE_SCORED = 1
EXIT_BAD_ARGUMENTS = 2


@dataclass(frozen=True)
class _Loaded:
    model: nn.Module
    card: ModelCard
    checkpoint: dict[str, Any]
    path: Path
    sha256: str


class _BadArguments(ValueError):
    """An argument of :func:`run_predict` that makes the run impossible (exit code 2)."""


def _load(model_path: Path) -> _Loaded:
    """The checkpoint at ``model_path`` (a file, or a training folder: ``best.pt``, else
    ``latest.pt``), its card and the card's network with the weights loaded, in eval mode."""
    if not model_path.exists():
        raise _BadArguments(f"{model_path}: no such model checkpoint file")
    try:
        path = pick_checkpoint(model_path)
    except FileNotFoundError as exc:
        raise _BadArguments(str(exc)) from None
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise _BadArguments(str(exc)) from None
    try:
        card = card_from_checkpoint(ckpt, str(path))
    except (ValueError, TypeError, KeyError) as exc:
        raise _BadArguments(_naming(path, f"unusable model card: {exc}")) from None
    state = ckpt.get("model")
    if not isinstance(state, Mapping):
        raise _BadArguments(f"{path}: no model weights ('model' state dict) in the checkpoint")
    model = card.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise _BadArguments(f"{path}: weights do not fit the card's {card.kind} network: {exc}") from None
    return _Loaded(model.eval(), card, ckpt, path, sha256_file(path))


def _naming(path: Path, message: str) -> str:
    """``message`` starting with the file's name unless it already names it."""
    return message if str(path) in message else f"{path}: {message}"


def _load_rule(
    rule_path: Path | None, card: ModelCard, checkpoint_sha256: str, explicit: bool = True
) -> tuple[DecisionRule | None, str]:
    """The rule (checked against the card) and a note for the JSON; (None, why) when absent.

    A rule chosen for other weights is refused when given explicitly and passed over (scores only,
    with a note) when it is only the default one found beside the model's evaluation."""
    if rule_path is None:
        return None, "no decision rule was available (none given): scores only"
    if not Path(rule_path).is_file():
        return None, f"no decision rule was available ({rule_path} does not exist): scores only"
    try:
        rule = read_rule(Path(rule_path))
        check_rule(rule, card)
        stale = rule.checkpoint_sha256 is not None and rule.checkpoint_sha256 != checkpoint_sha256
        if stale and explicit:
            raise ValueError("it was chosen for another checkpoint (checkpoint_sha256 differs)")
    except (ValueError, KeyError, TypeError) as exc:
        raise _BadArguments(_naming(Path(rule_path), f"unusable decision rule: {exc}")) from None
    if stale:
        note = (
            f"{rule_path} was chosen for another checkpoint: scores only "
            "(re-run ecgpipe evaluate, or pass --rule)"
        )
        print(f"note: {note}", file=sys.stderr)
        return None, note
    return rule, f"decisions by {rule_path}"


def run_predict(
    model_path: Path,
    inputs: Sequence[Path],
    out_dir: Path,
    rule_path: Path | None,
    batch_size: int = 64,
    device: str = "cpu",
    default_rules: Path | None = None,
) -> int:
    """Score ``inputs`` with the checkpoint at ``model_path`` and write ``predictions.csv`` and
    ``predictions.json`` into ``out_dir`` (atomically).

    Without ``rule_path``, the rule evaluation wrote for this model,
    ``<default_rules>/<card name>/thresholds.json``, is used if it was chosen for this very checkpoint.

    Returns 0 when at least one record was scored, 1 when none was (the files are still
    written), 2 for bad arguments (missing model file or input, checkpoint without a card,
    unusable rule, impossible device or batch size), with a message on stderr naming the file.
    """
    try:
        loaded, rule, note, scan = _prepare(model_path, inputs, rule_path, batch_size, device, default_rules)
    except _BadArguments as exc:
        print(f"ecgpipe predict: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    trained_on = describe_training_data(loaded.card)
    if loaded.card.training_data.get("synthetic_demo_sources"):
        print(f"warning: {trained_on}", file=sys.stderr)
    table = predict_records(
        loaded.model, loaded.card, rule, read_candidates(scan), batch_size, device, progress=True
    )
    report = predictions_report(table, loaded, rule, note, inputs, scan)
    out_dir = Path(out_dir)
    write_atomic(out_dir / CSV_NAME, (csv_preamble(loaded.card) + table.csv_text()).encode("utf-8"))
    text = json.dumps(json_safe(report), indent=1, allow_nan=False) + "\n"
    write_atomic(out_dir / JSON_NAME, text.encode("utf-8"))
    counts = table.counts()
    print(
        f"ecgpipe predict: {counts[SCORED]} scored, {counts[REJECTED]} rejected, "
        f"{len(scan.skipped)} files skipped -> {out_dir / CSV_NAME}, {out_dir / JSON_NAME}"
    )
    return EXIT_SCORED if counts[SCORED] else EXIT_NONE_SCORED


def _prepare(
    model_path: Path,
    inputs: Sequence[Path],
    rule_path: Path | None,
    batch_size: int,
    device: str,
    default_rules: Path | None = None,
) -> tuple[_Loaded, DecisionRule | None, str, InputScan]:
    """Everything that can fail on the arguments, checked before any record is read."""
    if batch_size < 1:
        raise _BadArguments(f"batch size must be at least 1, got {batch_size}")
    if not inputs:
        raise _BadArguments("no inputs: give record files and/or folders")
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise _BadArguments(f"{', '.join(missing)}: no such file or folder")
    loaded = _load(Path(model_path))
    if rule_path is None and default_rules is not None:
        default = Path(default_rules) / loaded.card.name / "thresholds.json"
        rule, note = _load_rule(default, loaded.card, loaded.sha256, explicit=False)
    else:
        rule, note = _load_rule(rule_path, loaded.card, loaded.sha256)
    try:
        resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise _BadArguments(f"device {device!r}: {exc}") from None
    try:
        scan = discover_inputs([Path(p) for p in inputs])
    except OSError as exc:
        raise _BadArguments(str(exc)) from None
    return loaded, rule, note, scan


def predictions_report(
    table: PredictionTable,
    loaded: _Loaded,
    rule: DecisionRule | None,
    note: str,
    inputs: Sequence[Path],
    scan: InputScan,
) -> dict[str, Any]:
    """The ``predictions.json`` document."""
    card, plan = loaded.card, loaded.card.plan()
    return {
        "format": PREDICTIONS_FORMAT,
        "model": {**card.to_dict(), "output_names": list(card.output_names), "plan_digest": plan.digest()},
        "checkpoint": {
            "path": str(loaded.path),
            "sha256": loaded.sha256,
            "epoch": loaded.checkpoint.get("epoch"),
            "code": loaded.checkpoint.get("code"),
        },
        "training_data": {**card.training_data, "summary": describe_training_data(card)},
        "decision_rule": None if rule is None else rule.to_dict(),
        "decision_rule_note": note,
        "preprocessing": _preprocessing_note(card, plan),
        "inputs": [str(p) for p in inputs],
        "counts": {**table.counts(), "skipped_files": len(scan.skipped)},
        "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
        "rows": table.json_rows(),
    }


def csv_preamble(card: ModelCard) -> str:
    """``# key: <json>`` lines above the CSV header (the split index's convention): the model and
    what it was trained on. Read the table with ``pandas.read_csv(path, comment="#")``."""
    lines = {
        "format": PREDICTIONS_FORMAT,
        "model": card.name,
        "trained_on": describe_training_data(card),
        "training_data": dict(card.training_data),
    }
    return "".join(f"# {k}: {json.dumps(v, sort_keys=True)}\n" for k, v in lines.items())


def _preprocessing_note(card: ModelCard, plan: SignalPlan) -> dict[str, Any]:
    rate = "the native rate" if plan.fs_hz is None else f"{plan.fs_hz:g} Hz"
    return {
        "profile": card.profile,
        "leads": list(plan.leads),
        "fs_hz": plan.fs_hz,
        "length": plan.length,
        "crop": plan.crop,
        "long_records": (
            f"records longer than {plan.length} samples at {rate} are cropped ({plan.crop}) exactly as "
            "when the training shards were written, not windowed; shorter ones are zero-padded "
            "(valid_len = samples of real signal)"
        ),
        "quantisation": f"int16 round trip at {card.scale_mv} mV per step, as stored in the training shards",
    }
