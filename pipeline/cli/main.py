"""``ecgpipe`` command-line entry points; DVC stages and users call these.

A table maps each command to the module that implements it (``add_arguments(command, parser)`` and
``COMMANDS[command](args, params) -> exit code``). Only the chosen command's module is imported, and
only when it is chosen: ``ecgpipe --help`` imports none, ``ecgpipe summary --help`` one light module,
and each DVC stage's command imports just its own work (dvc.yaml's deps list exactly that, see
``scripts/dvc_deps.py``). The Prefect flow commands (``ingest``, ``serve``, ``land``) are added by
``flows.cli``, whose ``main`` is the installed ``ecgpipe`` script; this module's :func:`main` runs the
library commands only, so ``pipeline`` never imports ``flows``.

Params come from ``--params`` (default ``params.yaml``) with ``--set dotted.key=value`` overrides;
invalid params fail before any work (exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import PipelineError

if TYPE_CHECKING:  # pydantic models take ~0.25 s to build: `ecgpipe --help` does not load them
    from pipeline.config import Params

CommandFn = Callable[[argparse.Namespace, "Params"], int]


@dataclass(frozen=True)
class Command:
    """A sub-command: the module that defines its arguments and runs it, and its one-line help."""

    module: str
    help: str


LIBRARY_COMMANDS: dict[str, Command] = {
    "demo-data": Command("pipeline.cli.data", "write the built-in synthetic multi-source raw tree"),
    "summary": Command("pipeline.cli.data", "per-profile counts, labels and quarantine"),
    "split": Command(
        "pipeline.cli.models", "patient-grouped, label-stratified train/val/test index for a model"
    ),
    "train": Command(
        "pipeline.cli.models", "train a model on its split (resumes an interrupted run with the same params)"
    ),
    "evaluate": Command(
        "pipeline.cli.models", "metrics, thresholds and plots of a trained model on its test split"
    ),
    "export": Command(
        "pipeline.cli.models",
        "ONNX FP32 + INT8 (calibrated on training records), evaluated the same way, latency",
    ),
    "predict": Command("pipeline.cli.models", "score new unlabelled records (any supported source kind)"),
    "cexport": Command(
        "pipeline.cli.parity", "write the trained model's C-kernel weight file (batch norms folded)"
    ),
    "parity": Command(
        "pipeline.cli.parity", "compare the C kernels with PyTorch layer by layer on the test split"
    ),
    "ctrain": Command(
        "pipeline.cli.ctrain", "train the autoencoder in C and in PyTorch from the same weights and compare"
    ),
    "lineage": Command(
        "pipeline.cli.lineage",
        "where an artifact came from (stages, params, code, shards, raw files) or where a record went",
    ),
    "verify": Command(
        "pipeline.cli.verify",
        "check shard stores against their manifests and raw inputs (exit 1 on any problem)",
    ),
}


def params_args(p: argparse.ArgumentParser) -> None:
    """``--params`` and ``--set``, which every command takes."""
    p.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)"
    )
    set_arg(p)


def set_arg(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``overrides``: the CLI's, and the benchmarks' that configure
    a run the same way."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param, e.g. --set sources.ptbxl.root=/data/ptb-xl (repeatable)",
    )


def _chosen(argv: Sequence[str], commands: Mapping[str, Command]) -> str | None:
    """The sub-command ``argv`` names (the top-level parser has no options but ``--help``)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in commands else None


def build_parser(commands: Mapping[str, Command], chosen: str | None) -> argparse.ArgumentParser:
    """Every command with its help line; only ``chosen`` gets its arguments (from its module)."""
    parser = argparse.ArgumentParser(prog="ecgpipe", description="Multi-source ECG data-and-model pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in commands.items():
        p = sub.add_parser(name, help=command.help)
        if name == chosen:
            params_args(p)
            importlib.import_module(command.module).add_arguments(name, p)
    return parser


def _record_stage_run(argv: Sequence[str], started: datetime) -> None:
    """Under ``dvc repro`` (``DVC_STAGE`` set), write its provenance record (pipeline.core.provenance)."""
    from pipeline.core.provenance import record_path, stage_context, stage_record
    from pipeline.store.local import write_json_atomic

    ctx = stage_context(os.environ)
    if ctx is not None:
        stage, root = ctx
        write_json_atomic(record_path(root, stage), stage_record(stage, argv, started, os.environ))


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors printed as one ``error:`` line (exit 2) rather than a traceback.

    ``StoreError`` lives in the store module, which a command that never opened a store has not
    imported (and then cannot have raised it), so it is looked up rather than imported here.
    """
    from pipeline.config import ConfigError

    store = sys.modules.get("pipeline.store.local")
    return (ConfigError, PipelineError, *((store.StoreError,) if store is not None else ()))


def run(argv: Sequence[str] | None, commands: Mapping[str, Command]) -> int:
    """Parse ``argv`` against ``commands``, load params and run the chosen command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    started = datetime.now(UTC)
    args = build_parser(commands, _chosen(argv, commands)).parse_args(argv)
    from pipeline.config import load_params

    try:
        params = load_params(args.params, args.overrides)
        command: CommandFn = importlib.import_module(commands[args.command].module).COMMANDS[args.command]
        rc = command(args, params)
        if rc == 0:
            _record_stage_run(["ecgpipe", *argv], started)
        return rc
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """The library commands (the installed ``ecgpipe`` adds the flow commands: ``flows.cli.main``)."""
    return run(argv, LIBRARY_COMMANDS)


if __name__ == "__main__":
    raise SystemExit(main())
