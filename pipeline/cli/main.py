"""``ecgpipe`` command-line entry points; DVC stages and users call these.

Commands: ``demo-data``, ``ingest``, ``summary``, and the model stages ``split``, ``train``,
``evaluate``, ``export``, ``predict`` (:mod:`pipeline.cli.models`), and the C-kernel stages ``cexport``,
``parity`` (:mod:`pipeline.cli.parity`). Params come from ``--params`` (default
``params.yaml``) with ``--set dotted.key=value`` overrides; invalid params fail before any work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.cli import flows as cli_flows
from pipeline.cli import lineage as cli_lineage
from pipeline.cli import models as cli_models
from pipeline.cli import parity as cli_parity
from pipeline.cli import verify as cli_verify
from pipeline.config import ConfigError, Params, load_params, store_root
from pipeline.core.errors import PipelineError
from pipeline.lineage.provenance import record_path, stage_context, stage_record
from pipeline.store.local import write_json_atomic
from pipeline.store.manifest import StoreError
from pipeline.store.remote import open_store


def _params_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param, e.g. --set sources.ptbxl.root=/data/ptb-xl (repeatable)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgpipe", description="Multi-source ECG data-and-model pipeline")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-data", help="write the built-in synthetic multi-source raw tree")
    _params_args(demo)
    demo.add_argument("--out", type=Path, default=None, help="output folder (default: params demo.out)")
    demo.add_argument("--seed", type=int, default=None)

    ing = sub.add_parser("ingest", help="ingest raw sources into zarr shards (a Prefect flow)")
    _params_args(ing)
    ing.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="first N units per source, into the smoke store (ingest.smoke_store)",
    )
    ing.add_argument("--profile", action="append", default=None, help="only this profile (repeatable)")
    ing.add_argument(
        "--metrics", type=Path, default=None, help="write per-profile counts as a DVC metrics JSON"
    )

    summ = sub.add_parser("summary", help="per-profile counts, labels and quarantine")
    _params_args(summ)
    summ.add_argument("--json", action="store_true", help="print JSON")
    summ.add_argument("--profile", action="append", default=None)
    summ.add_argument("--smoke", action="store_true", help="summarise the --limit smoke store")
    cli_models.add_parsers(sub, _params_args)
    cli_parity.add_parsers(sub, _params_args)
    cli_lineage.add_parsers(sub, _params_args)
    cli_flows.add_parsers(sub, _params_args)
    cli_verify.add_parsers(sub, _params_args)
    return parser


def cmd_demo_data(args: argparse.Namespace, params: Params) -> int:
    from pipeline.demo.raw_tree import write_demo_data

    out = args.out or params.demo.out
    seed = params.demo.seed if args.seed is None else args.seed
    summary = write_demo_data(
        out,
        seed=seed,
        n_ptbxl=params.demo.n_ptbxl,
        n_cinc2017=params.demo.n_cinc2017,
        n_ucr=params.demo.n_ucr,
        progress=True,
    )
    print(f"demo data written to {out}: {summary}")
    return 0


def cmd_ingest(args: argparse.Namespace, params: Params) -> int:
    from flows.ingest import ingest
    from pipeline.ingest.report import ingest_metrics

    names = args.profile or list(params.profiles)
    unknown = [n for n in names if n not in params.profiles]
    if unknown:
        raise ConfigError(f"--profile {', '.join(unknown)}: not in profiles ({', '.join(params.profiles)})")
    reports: dict[str, Any] = ingest(str(args.params), list(args.overrides), args.limit, names)
    bad = [n for n, r in reports.items() if not r["reconciled"]]
    if args.metrics is not None:
        write_json_atomic(args.metrics, ingest_metrics(reports))
    for name, rep in reports.items():
        cats = ", ".join(f"{k} {v}" for k, v in sorted(rep["quarantined_by_category"].items())) or "none"
        print(
            f"{name}: {rep['records_total']} records ({rep['records_processed_this_run']} processed now); "
            f"not ingested: {cats}; reconciled={rep['reconciled']}"
        )
    if bad:
        print(f"error: inputs do not reconcile for {', '.join(bad)}; see ingest_report.json", file=sys.stderr)
        return 1
    return 0


def cmd_summary(args: argparse.Namespace, params: Params) -> int:
    from pipeline.ingest.report import profile_summary

    root = store_root(params.ingest, smoke=args.smoke)
    out = {}
    for name in args.profile or list(params.profiles):
        store = open_store(root, name)
        if not store.has_manifest():
            out[name] = {"profile": name, "store": store.location(), "records": 0, "note": "not ingested yet"}
            continue
        out[name] = profile_summary(store)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name, s in out.items():
            print(f"{name}: {s['records']} records {s.get('records_per_source', '')}")
            for label, n in s.get("unified_label_counts", {}).items():
                print(f"  {label:>8}: {n}")
            print(f"  quarantined: {len(s.get('quarantined', []))}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Params], int]] = {
    "demo-data": cmd_demo_data,
    "ingest": cmd_ingest,
    "summary": cmd_summary,
    **cli_models.COMMANDS,
    **cli_parity.COMMANDS,
    **cli_lineage.COMMANDS,
    **cli_flows.COMMANDS,
    **cli_verify.COMMANDS,
}


def _record_stage_run(argv: Sequence[str], started: datetime) -> None:
    """Under ``dvc repro`` (``DVC_STAGE`` set), write its provenance record (pipeline.lineage.provenance)."""
    ctx = stage_context(os.environ)
    if ctx is not None:
        stage, root = ctx
        write_json_atomic(record_path(root, stage), stage_record(stage, argv, started, os.environ))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    started = datetime.now(UTC)
    args = _parser().parse_args(argv)
    try:
        params = load_params(args.params, args.overrides)
        rc = COMMANDS[args.command](args, params)
        if rc == 0:
            _record_stage_run(["ecgpipe", *argv], started)
        return rc
    except (ConfigError, StoreError, PipelineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
