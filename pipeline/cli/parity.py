"""``ecgpipe cexport <model>`` (trained checkpoint → C weight file) and ``ecgpipe parity <model>`` (C vs
PyTorch on the model's test split; exits 1 on any violation, naming the first failing layer)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.cli.models import checkpoint_dir, eval_dir, index_path, model_params

if TYPE_CHECKING:  # pydantic: `ecgpipe parity --help` does not load it (nor numpy, imported where used)
    from pipeline.config import Params


def add_arguments(command: str, p: argparse.ArgumentParser) -> None:
    """``cexport`` and ``parity`` take a model name (``--params``/``--set`` come from the caller)."""
    p.add_argument("model", help="a model name under parity.models in params.yaml")


def weights_path(params: Params, model: str) -> Path:
    return params.parity.out_dir / model / "weights.ecgk"


def _check_model(params: Params, model: str) -> None:
    model_params(params, model)
    if model not in params.parity.models:
        raise SystemExit(f"error: {model!r} is not in parity.models {list(params.parity.models)}")


def cmd_cexport(args: argparse.Namespace, params: Params) -> int:
    from pipeline.ckernel.weights import model_weights, write_weights
    from pipeline.training.load import load_trained

    _check_model(params, args.model)
    model, card, ckpt_path = load_trained(checkpoint_dir(params, args.model))
    weights = model_weights(model, card.input_shape[1], card.task)
    out = weights_path(params, args.model)
    write_weights(out, weights)
    n = sum(a.size for _, a in weights.tensors)
    print(f"{args.model}: {out} ({len(weights.tensors)} tensors, {n} floats, {out.stat().st_size} bytes) "
          f"from {ckpt_path}")  # fmt: skip
    return 0


def _test_batches(
    params: Params, model: str, profile: str, labels: list[Any]
) -> Iterator[tuple[list[str], Any]]:
    """(record ids, (B, C, T) float32) of the test split in index order, up to ``parity.max_records``;
    each batch's vocabulary labels (B, V) are appended to ``labels`` as it goes (one read of the split)."""
    import numpy as np

    from pipeline.config.build import store_root
    from pipeline.training.load import split_loader

    loader = split_loader(store_root(params.ingest), profile, index_path(params, model), "test",
                          params.parity.batch_size)  # fmt: skip
    ids = list(loader.record_ids)
    limit = params.parity.max_records or len(ids)
    start = 0
    for x, y, _ in loader:
        take = min(len(x), limit - start)
        if take <= 0:
            return
        labels.append(y.numpy()[:take])
        yield ids[start : start + take], np.ascontiguousarray(x.numpy()[:take], dtype=np.float32)
        start += take


def cmd_parity(args: argparse.Namespace, params: Params) -> int:
    import numpy as np

    from pipeline.ckernel import parity
    from pipeline.ckernel import report as parity_report
    from pipeline.ckernel.model import CModel
    from pipeline.ckernel.weights import KIND_CODES
    from pipeline.config.feed import from_params
    from pipeline.dataset.targets import Targets
    from pipeline.evaluation.decisions import read_rule
    from pipeline.training.load import load_trained

    _check_model(params, args.model)
    p = params.parity
    tol = from_params(parity.Tolerance, p.model_dump())
    model, card, _ = load_trained(checkpoint_dir(params, args.model))
    weights = weights_path(params, args.model)
    with CModel(weights, p.library) as c_model:
        if c_model.kind_code != KIND_CODES[card.kind] or c_model.in_channels != card.input_shape[0]:
            raise SystemExit(f"error: {weights} holds another model than {args.model} ({card.kind}, "
                             f"input {card.input_shape}); re-run `ecgpipe cexport {args.model}`")  # fmt: skip
        plan = c_model.plan(card.input_shape[1])
        labels: list[Any] = []
        batches = _test_batches(params, args.model, card.profile, labels)
        run = parity.compare(plan, model, batches, tol, task=card.task)
        plan.close()
    rule = read_rule(eval_dir(params, args.model) / "thresholds.json")
    targets = Targets(card.task, card.vocabulary, card.classes, card.normal_class)
    y = np.concatenate(labels) if labels else np.zeros((0, len(card.vocabulary)), np.float32)
    positive = targets.of(y) > 0.5
    c_scores, t_scores = run.scores()
    if card.task == "reconstruction":
        c_scores, t_scores = c_scores.reshape(-1), t_scores.reshape(-1)
    report = parity_report.build_report(
        args.model, card.kind, run,
        parity.end_metrics(card.task, positive, c_scores, rule),
        parity.end_metrics(card.task, positive, t_scores, rule),
        parity.decision_agreement(rule, c_scores, t_scores, tol), tol,
    )  # fmt: skip
    out = p.out_dir / args.model
    parity_report.write_report(report, out)
    print(f"{args.model}: {'PASSED' if report['passed'] else 'FAILED'} on {report['records']} test records, "
          f"max |C − PyTorch| {report['max_abs_error']:.2e} (worst ratio to the bound "
          f"{report['worst_ratio']:.3f}); see {out / 'report.md'}")  # fmt: skip
    if not report["passed"]:
        print(parity_report.failure_message(report), file=sys.stderr)
        return 1
    return 0


COMMANDS = {"cexport": cmd_cexport, "parity": cmd_parity}
