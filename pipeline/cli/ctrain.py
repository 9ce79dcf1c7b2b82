"""``ecgpipe ctrain <model>``: the autoencoder trained in C and in PyTorch from the same seeded initial
weights (those ``ecgpipe train`` starts from) and the same batch order on the model's training split;
writes ``<ctrain.out_dir>/<model>/report.json``, ``losses.tsv`` and ``losses.png``; exits 1 on any
violation, naming it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.cli.models import index_path, model_params, targets_for, train_config

if TYPE_CHECKING:  # pydantic, numpy and torch load only when the command runs
    from pipeline.config import Params


def add_arguments(command: str, p: argparse.ArgumentParser) -> None:
    """``ctrain`` takes a model name (``--params``/``--set`` come from the caller)."""
    p.add_argument("model", help="a model name under ctrain.models in params.yaml")


def _split_arrays(params: Params, model: str, split: str) -> tuple[Any, Any]:
    """Every record of ``split`` in index order: ``(N, C, L)`` float32 mV and the vocabulary labels."""
    import numpy as np

    from pipeline.config.build import store_root
    from pipeline.training.load import split_loader

    m = params.train.models[model]
    loader = split_loader(store_root(params.ingest), m.profile, index_path(params, model), split, 256)
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y, _ in loader), strict=True) if len(loader) else ((), ())
    if not xs:
        raise SystemExit(f"error: {index_path(params, model)}: the {split} split of {model!r} is empty")
    return np.ascontiguousarray(np.concatenate(xs), dtype=np.float32), np.concatenate(ys)


def cmd_ctrain(args: argparse.Namespace, params: Params) -> int:
    import dataclasses

    import torch

    from pipeline.ckernel.train_stage import CTrainTolerance, ThresholdRule, run_ctrain, write_outputs
    from pipeline.config.build import signal_plan
    from pipeline.config.feed import from_params
    from pipeline.models.autoencoder import ConvAutoencoder
    from pipeline.training.stage import make_card

    m = model_params(params, args.model)
    c = params.ctrain
    if args.model not in c.models:
        raise SystemExit(f"error: {args.model!r} is not in ctrain.models {list(c.models)}")
    cfg = dataclasses.replace(train_config(m), epochs=c.epochs or m.epochs, device="cpu")
    targets = targets_for(params, args.model)
    x_train, _ = _split_arrays(params, args.model, "train")
    x_test, y_test = _split_arrays(params, args.model, "test")
    card = make_card(args.model, m.kind, m.model, targets, m.profile, signal_plan(params.profiles[m.profile]),
                     (int(x_train.shape[1]), int(x_train.shape[2])), 0.0)  # fmt: skip
    torch.manual_seed(cfg.seed)  # the initial weights of `ecgpipe train`: the same seed, the same constructor
    model = card.build()
    assert isinstance(model, ConvAutoencoder)  # ctrain.models holds autoencoders only (Params checks it)
    torch.set_num_threads(1)  # the C side is single-threaded; one thread keeps torch's sums in one order
    rule = from_params(ThresholdRule, params.evaluate.anomaly_threshold.model_dump())
    tol = from_params(CTrainTolerance, c.model_dump())
    report, _ = run_ctrain(model, x_train, x_test, targets.of(y_test) > 0.5, cfg, m.batch_size, tol, rule,
                           params.parity.library)  # fmt: skip
    report["model"] = args.model
    out = Path(c.out_dir) / args.model
    write_outputs(report, out)
    mt, loss = report["metrics"], report["loss"]
    print(f"{args.model}: {'PASSED' if report['passed'] else 'FAILED'}; {loss['steps']} steps, max loss "
          f"rel diff {loss['max_rel']:.2e}; test AUROC C {mt['c']['auroc']:.4f} vs PyTorch "
          f"{mt['pytorch']['auroc']:.4f}; see {out / 'report.json'}")  # fmt: skip
    if not report["passed"]:
        failures = report["failures"]
        print(f"{len(failures)} violations; the first {min(len(failures), 10)}:", *failures[:10], sep="\n",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


COMMANDS = {"ctrain": cmd_ctrain}
