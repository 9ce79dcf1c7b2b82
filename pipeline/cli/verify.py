"""``ecgpipe verify``: check shard stores against manifests and raw inputs (:mod:`pipeline.ingest.verify`).

``ecgpipe verify [--profile P ...] [--smoke] [--json]`` checks each profile's store (all profiles by
default; ``--smoke`` the ``--limit`` smoke store): shard hashes and record counts, duplicate record
ids, unit segments, unified labels, the quarantine and ingest reports, and that every raw input
file is accounted for exactly once with the sha256 it was ingested with. Exit 0 when every store
is clean, 1 with the report when not, 2 for invalid params or an unknown profile.

Module-level imports are stdlib only: ``ecgpipe verify --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type names only: importing them at run time would slow down `--help`
    from pipeline.config import Params
    from pipeline.ingest.verify import VerifyResult


def add_arguments(command: str, p: argparse.ArgumentParser) -> None:
    """The arguments of the ``verify`` sub-command (``--params``/``--set`` come from the caller)."""
    p.add_argument("--profile", action="append", default=None, help="only this profile (repeatable)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--smoke", action="store_true", help="verify the --limit smoke store (ingest.smoke_store)")


def cmd_verify(args: argparse.Namespace, params: Params) -> int:
    """Verify the named (or all) profiles' stores; print the report; 0 clean, 1 not clean."""
    from pipeline.config import ConfigError

    names = list(args.profile or params.profiles)
    unknown = [n for n in names if n not in params.profiles]
    if unknown:
        raise ConfigError(f"--profile {', '.join(unknown)}: not in profiles ({', '.join(params.profiles)})")
    results = {name: verify_profile(params, name, smoke=args.smoke) for name in names}
    if args.json:
        print(json.dumps({n: r.to_json() for n, r in results.items()}, indent=1))
    else:
        print("\n".join(r.markdown() for r in results.values()))
    bad = [f"{n} ({len(r.problems)})" for n, r in results.items() if not r.ok]
    if bad:
        print(f"error: verify found problems in {', '.join(bad)}; see the report above", file=sys.stderr)
        return 1
    return 0


def verify_profile(params: Params, name: str, smoke: bool = False) -> VerifyResult:
    """Verify one profile's store with its readers, preprocessing plan and label mapping."""
    from pipeline.config import ConfigError
    from pipeline.config.build import signal_plan, store_root
    from pipeline.ingest.verify import verify_store
    from pipeline.labels.mapping import LabelMapper
    from pipeline.labels.schemes import DEFAULT_SCHEME, load_scheme
    from pipeline.sources.registry import build_readers
    from pipeline.store.remote import open_store

    prof = params.profiles[name]
    try:
        mapper = LabelMapper(
            load_scheme(params.labels.tables_dir, DEFAULT_SCHEME).tables,
            params.vocabulary(name),
            params.labels.ptbxl_min_likelihood,
            params.labels.unmapped,
            params.label_tables_for(),
            prof.label_merge,
        )
    except ValueError as exc:  # LabelTableError and invalid mapper options: a config problem
        raise ConfigError(f"{params.labels.tables_dir}: {exc}") from None
    return verify_store(
        open_store(store_root(params.ingest, smoke), name),
        build_readers(params, prof.sources),
        plan_digest=signal_plan(prof).digest(),
        mapper_digest=mapper.digest,
    )


COMMANDS = {"verify": cmd_verify}
