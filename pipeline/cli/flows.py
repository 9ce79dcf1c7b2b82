"""``ecgpipe serve | land``: the landing deployment, and one landing run by hand.

- ``ecgpipe serve``: register the scheduled landing deployment (schedule and concurrency limit from
  the ``deploy`` params) with the Prefect API in ``PREFECT_API_URL`` and serve its runs until
  interrupted (flows/serve.py).
- ``ecgpipe land``: one landing run now, in this process (take → ingest → ``dvc repro``); with
  ``--dry-run`` only say what would be taken and what would be left, and why.

Module-level imports stay light: every DVC stage's command imports this module through cli.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from pipeline.config import Params, require_local_store


def add_parsers(sub: Any, params_args: Any) -> None:
    """Register the ``serve`` and ``land`` sub-commands."""
    srv = sub.add_parser("serve", help="serve the scheduled landing deployment (Prefect)")
    params_args(srv)
    land = sub.add_parser("land", help="one landing run now: take landed records, ingest, dvc repro")
    params_args(land)
    land.add_argument("--dry-run", action="store_true", help="report what would be taken; move nothing")
    land.add_argument("--no-repro", action="store_true", help="take and ingest, but skip dvc repro")
    land.add_argument("--json", action="store_true", help="print the run's summary as JSON")


def cmd_serve(args: argparse.Namespace, params: Params) -> int:
    from flows.serve import serve_landing

    require_local_store(params, "ecgpipe serve")
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "warning: PREFECT_API_URL is not set; the deployment lives only as long as this process's "
            "temporary server. Start one with `prefect server start` and export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (README: Scheduled landing runs).",
            file=sys.stderr,
        )
    serve_landing(params, args.params, list(args.overrides))
    return 0


def cmd_land(args: argparse.Namespace, params: Params) -> int:
    require_local_store(params, "ecgpipe land")
    if args.dry_run:
        return _dry_run(args, params)
    from flows.landing import landing_pipeline

    summary = landing_pipeline(str(args.params), list(args.overrides), repro=False if args.no_repro else None)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        counts = summary["landing"]["counts"]
        print(f"landing: {counts}; report: {summary['report_file']}")
        print(f"ingested: {summary['ingest']}; dvc repro re-ran: {summary['repro_stages'] or 'nothing'}")
    return 0


def _dry_run(args: argparse.Namespace, params: Params) -> int:
    from flows.landing import take_from_params

    report = take_from_params(params, None, dry_run=True)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.markdown())
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Params], int]] = {"serve": cmd_serve, "land": cmd_land}
