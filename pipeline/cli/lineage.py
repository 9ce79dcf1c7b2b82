"""``ecgpipe lineage``: where an artifact came from, or where a record went.

``ecgpipe lineage <path>`` walks ``dvc.lock`` from the stage that produced ``path`` back to the raw
files (:mod:`pipeline.lineage.artifact`); ``ecgpipe lineage --record <id>`` follows one record from its raw
files through its shard, splits, checkpoints and scores (:mod:`pipeline.lineage.record`). ``--json``
prints the whole document, ``--all`` lists every entry in the text form. An unknown path or record
exits 2 with ``error: ...``.

Module-level imports are stdlib only: ``ecgpipe lineage --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type names only: importing them at run time would slow down `--help`
    from pipeline.config import Params
    from pipeline.lineage.artifact import StoreLayout
    from pipeline.lineage.record import ModelRef


def add_arguments(command: str, p: argparse.ArgumentParser) -> None:
    """``lineage``: exactly one of ``path`` / ``--record`` (``--params``/``--set`` come from the caller)."""
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=None,
        help="an artifact: metrics file, checkpoint, plot, shard, parity report ... (an out in dvc.lock)",
    )
    what.add_argument("--record", metavar="ID", default=None, help="a record id, e.g. ptbxl:00001")
    p.add_argument("--json", action="store_true", help="print the lineage document as JSON")
    p.add_argument("--all", action="store_true", help="list every code dep, param, shard and raw file")


def cmd_lineage(args: argparse.Namespace, params: Params) -> int:
    """Print the lineage of ``args.path`` or ``args.record``; 2 (and ``error: ...``) when unknown."""
    from pipeline.labels.names import code_names, with_code_names
    from pipeline.lineage.artifact import LineageError, artifact_lineage
    from pipeline.lineage.dvc_lock import LockError, find_project_root
    from pipeline.lineage.record import record_lineage
    from pipeline.lineage.render import render_artifact, render_record

    try:
        root = find_project_root(Path(args.params).resolve().parent)
        layout = store_layout(params)
        if args.record is not None:
            doc = record_lineage(root, args.record, layout, list(params.profiles), model_refs(params))
            with_code_names(doc, code_names(params.labels.tables_dir))
            text = render_record(doc, show_all=args.all)
        else:
            doc = artifact_lineage(root, args.path, layout, cwd=Path.cwd())
            text = render_artifact(doc, show_all=args.all)
    except (LineageError, LockError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=1, default=str) if args.json else text)
    return 0


def store_layout(params: Params) -> StoreLayout:
    """Where lineage reads, from params: shard store (local or object store), split indexes, source roots."""
    from pipeline.config.build import store_root
    from pipeline.lineage.artifact import StoreLayout

    return StoreLayout(
        store=store_root(params.ingest),
        index_dir=params.split.out_dir,
        source_roots={name: src.root for name, src in params.sources.items()},
        labels_root=params.labels.tables_dir,
        table_for=params.label_tables_for(),
        min_likelihood=params.labels.ptbxl_min_likelihood,
    )


def model_refs(params: Params) -> list[ModelRef]:
    """Each model under ``train.models`` with its split index, checkpoint folder and eval folder."""
    from pipeline.cli.models import checkpoint_dir, eval_dir, index_path
    from pipeline.lineage.record import ModelRef

    return [
        ModelRef(
            name, m.profile, index_path(params, name), checkpoint_dir(params, name), eval_dir(params, name)
        )
        for name, m in params.train.models.items()
    ]


COMMANDS: dict[str, Callable[[argparse.Namespace, Params], int]] = {"lineage": cmd_lineage}
