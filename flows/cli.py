"""The installed ``ecgpipe`` command: the library commands plus the ones that start Prefect flows.

- ``ecgpipe ingest``: the ingest flow (flows/ingest.py) for all or the named profiles.
- ``ecgpipe serve``: register the scheduled landing deployment (schedule and concurrency limit from
  the ``deploy`` params) with the Prefect API in ``PREFECT_API_URL`` and serve its runs until
  interrupted (flows/serve.py).
- ``ecgpipe server start|stop|status``: the long-lived local Prefect server on 127.0.0.1 that every
  command reuses while it runs (flows/server.py); without it each flow command starts a temporary one.
- ``ecgpipe land``: one landing run now, in this process (take → ingest → ``dvc repro``); with
  ``--dry-run`` only say what would be taken and what would be left, and why.

``pipeline.cli.main`` knows nothing of these: this module adds them to its command table, so the
library never imports ``flows``. Module-level imports stay light (no Prefect): ``ecgpipe --help`` and
every DVC stage's command import this module.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.cli.main import LIBRARY_COMMANDS, Command, run

if TYPE_CHECKING:
    from pipeline.config import Params

FLOW_COMMANDS: dict[str, Command] = {
    "ingest": Command("flows.cli", "ingest raw sources into zarr shards (a Prefect flow)"),
    "serve": Command("flows.cli", "serve the scheduled landing deployment (Prefect)"),
    "land": Command("flows.cli", "one landing run now: take landed records, ingest, dvc repro"),
    "server": Command("flows.cli", "start|stop|status of the local Prefect server every command reuses"),
}


def all_commands() -> dict[str, Command]:
    """Library and flow commands, in the order ``ecgpipe --help`` lists them."""
    order = ("demo-data", "ingest", "summary", "split", "train", "evaluate", "export", "predict", "cexport",
             "parity", "ctrain", "lineage", "serve", "land", "server", "verify")  # fmt: skip
    table = {**LIBRARY_COMMANDS, **FLOW_COMMANDS}
    return {name: table[name] for name in sorted(table, key=lambda n: order.index(n) if n in order else 99)}


def add_arguments(command: str, p: argparse.ArgumentParser) -> None:
    """The arguments of ``ingest``, ``serve``, ``land`` or ``server`` (``--params``/``--set`` come from the
    caller)."""
    if command == "ingest":
        p.add_argument(
            "--limit",
            type=int,
            default=None,
            metavar="N",
            help="first N units per source, into the smoke store (ingest.smoke_store)",
        )
        p.add_argument("--profile", action="append", default=None, help="only this profile (repeatable)")
        p.add_argument(
            "--metrics", type=Path, default=None, help="write per-profile counts as a DVC metrics JSON"
        )
    elif command == "land":
        p.add_argument("--dry-run", action="store_true", help="report what would be taken; move nothing")
        p.add_argument("--no-repro", action="store_true", help="take and ingest, but skip dvc repro")
        p.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    elif command == "server":
        p.add_argument("action", choices=("start", "stop", "status"))
        p.add_argument(
            "--port", type=int, default=None, help="start: port on 127.0.0.1 (default 4200, else free)"
        )


def cmd_ingest(args: argparse.Namespace, params: Params) -> int:
    from flows.noop import idle_ingest
    from pipeline.config import ConfigError, require_source_roots
    from pipeline.ingest.report import ingest_metrics
    from pipeline.store.local import write_json_atomic

    names = args.profile or list(params.profiles)
    unknown = [n for n in names if n not in params.profiles]
    if unknown:
        raise ConfigError(f"--profile {', '.join(unknown)}: not in profiles ({', '.join(params.profiles)})")
    require_source_roots(params, names)  # a mistyped root fails before the no-op path or the flow
    # nothing new and `ecgpipe server` running: recorded without importing Prefect (flows/noop.py)
    reports = idle_ingest(params, str(args.params), list(args.overrides), args.limit, names)
    if reports is None:
        from flows.ingest import ingest

        reports = ingest(str(args.params), list(args.overrides), args.limit, names)
    bad = [n for n, r in reports.items() if not r["reconciled"]]
    if args.metrics is not None:
        write_json_atomic(args.metrics, ingest_metrics(reports))
    for name, rep in reports.items():
        print(ingest_line(name, rep))
    if bad:
        print(f"error: inputs do not reconcile for {', '.join(bad)}; see ingest_report.json", file=sys.stderr)
        return 1
    return 0


def ingest_line(name: str, rep: Mapping[str, Any]) -> str:
    """One profile's ingest report for people: records, what was new, what was kept out and whether
    every input is accounted for (``ecgpipe summary`` lists the reasons)."""
    from pipeline.cli.human import counts_phrase

    cats = counts_phrase(dict(sorted(rep["quarantined_by_category"].items())))
    check = "every input accounted for" if rep["reconciled"] else "INPUTS DO NOT RECONCILE"
    return (
        f"{name}: {rep['records_total']:,} records in the store ({rep['records_processed_this_run']:,} "
        f"processed in this run); not ingested: {cats}; {check}"
    )


def cmd_serve(args: argparse.Namespace, params: Params) -> int:
    from flows.landing import landing_targets
    from flows.serve import serve_landing
    from pipeline.config import require_local_store

    landing_targets(params)  # refuses a landing source whose kind cannot land, before serving
    require_local_store(params, "ecgpipe serve")
    if not os.environ.get("PREFECT_API_URL"):  # set by flows/__init__ when `ecgpipe server` runs
        print(
            "warning: PREFECT_API_URL is not set; the deployment lives only as long as this process's "
            "temporary server. Start one with `ecgpipe server start` (docs/ingest.md) or point "
            "PREFECT_API_URL at your own (README: Scheduled landing runs).",
            file=sys.stderr,
        )
    serve_landing(params, args.params, list(args.overrides))
    return 0


def cmd_land(args: argparse.Namespace, params: Params) -> int:
    from flows.landing import landing_pipeline, landing_targets, take_from_params
    from pipeline.config import require_local_store

    landing_targets(params)  # refuses a landing source whose kind cannot land, before any work
    require_local_store(params, "ecgpipe land")
    if args.dry_run:
        report = take_from_params(params, None, dry_run=True)
        print(json.dumps(report.to_json(), indent=2) if args.json else report.markdown())
        return 0
    summary = landing_pipeline(str(args.params), list(args.overrides), repro=False if args.no_repro else None)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        from pipeline.cli.human import counts_phrase

        print(f"landing: {counts_phrase(summary['landing']['counts'])}; report: {summary['report_file']}")
        ingested = counts_phrase(summary["ingest"], "records") if summary["ingest"] else "nothing"
        print(f"ingested: {ingested}; dvc repro re-ran: {', '.join(summary['repro_stages']) or 'nothing'}")
    return 0


def cmd_server(args: argparse.Namespace, params: Params) -> int:
    """Start, stop or report the local server; ``status`` exits 1 when none is running."""
    from flows import server

    if args.action == "start":
        state = server.start(args.port)
        print(f"Prefect server running: pid {state.pid}, {state.api_url} (log {state.log})")
        print("every ecgpipe command in this project now uses it; `ecgpipe server stop` ends it")
        return 0
    if args.action == "stop":
        stopped = server.stop()
        print(
            f"stopped Prefect server pid {stopped.pid} ({stopped.api_url})"
            if stopped
            else "no server recorded"
        )
        return 0
    report = server.status()
    print(json.dumps(report, indent=2))
    return 0 if report["running"] else 1


COMMANDS: dict[str, Callable[[argparse.Namespace, Params], int]] = {
    "ingest": cmd_ingest,
    "serve": cmd_serve,
    "land": cmd_land,
    "server": cmd_server,
}


def main(argv: Sequence[str] | None = None) -> int:
    """``ecgpipe``: every command (the console script in pyproject.toml)."""
    return run(argv, all_commands())


if __name__ == "__main__":
    raise SystemExit(main())
