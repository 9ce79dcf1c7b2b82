"""``ecgpipe demo-data`` (the built-in synthetic raw tree) and ``ecgpipe summary`` (per-profile counts)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type names only: this module is imported for `ecgpipe summary --help`
    from pipeline.config import Params


def add_arguments(command: str, p: argparse.ArgumentParser) -> None:
    """The arguments of ``demo-data`` or ``summary`` (``--params``/``--set`` come from the caller)."""
    if command == "demo-data":
        p.add_argument("--out", type=Path, default=None, help="output folder (default: params demo.out)")
        p.add_argument("--seed", type=int, default=None)
    else:
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--profile", action="append", default=None)
        p.add_argument("--smoke", action="store_true", help="summarise the --limit smoke store")


def cmd_demo_data(args: argparse.Namespace, params: Params) -> int:
    from pipeline.cli.human import demo_lines
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
    print("\n".join(demo_lines(summary)))
    return 0


def cmd_summary(args: argparse.Namespace, params: Params) -> int:
    from pipeline.cli.human import store_lines
    from pipeline.config.build import store_root
    from pipeline.ingest.report import profile_summary
    from pipeline.store.remote import open_store

    root = store_root(params.ingest, smoke=args.smoke)
    out: dict[str, Any] = {}
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
            print("\n".join(store_lines(name, s)))
            for scheme, sc in s.get("schemes", {}).items():
                per = sc["unmapped_per_source"] or {}
                counts = ", ".join(f"{src} {n:,}" for src, n in sorted(per.items())) or "none"
                print(f"  scheme {scheme}: unmapped code occurrences per source: {counts}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Params], int]] = {
    "demo-data": cmd_demo_data,
    "summary": cmd_summary,
}
