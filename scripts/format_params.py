"""Write ``params.yaml`` in the form DVC's own round trip keeps, so ``dvc exp run -S key=value`` changes
only the lines of the keys it sets.

    python scripts/format_params.py [PARAMS] [--check]

``dvc exp run -S`` (and ``dvc exp apply``) rewrite the whole params file with ruamel.yaml: a flow list
``[a, b]`` it sets or merges comes back as a block list, ``null`` as an empty value, a quoted string
without its quotes when it needs none, and a long flow mapping wrapped mid-line. A file already in
that form is a fixed point: this script loads ``PARAMS`` (default ``params.yaml``) with DVC's own
loader, turns every flow list and mapping into block style and dumps it with DVC's own dumper, keeping
every comment. ``--check`` only says whether the file is already in that form (exit 1 when not).
tests/test_params_roundtrip.py runs DVC's ``-S`` function on the shipped file and checks that only the
set line changes.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from dvc.utils.serialize._yaml import _get_yaml, parse_yaml_for_update
from ruamel.yaml.comments import CommentedMap, CommentedSeq


def _block_style(node: Any) -> None:
    if isinstance(node, CommentedMap | CommentedSeq):
        node.fa.set_block_style()
        for child in node.values() if isinstance(node, CommentedMap) else node:
            _block_style(child)


def formatted(text: str, where: str = "params.yaml") -> str:
    """``text`` in the form DVC's round trip keeps (same data, same comments)."""
    data = parse_yaml_for_update(text, where)
    _block_style(data)
    out = io.StringIO()
    _get_yaml().dump(data, out)
    return out.getvalue()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("params", nargs="?", type=Path, default=Path("params.yaml"))
    ap.add_argument("--check", action="store_true", help="exit 1 when the file is not in that form")
    args = ap.parse_args(argv)
    text = args.params.read_text(encoding="utf-8")
    new = formatted(text, str(args.params))
    if args.check:
        if new != text:
            print(f"{args.params}: not in DVC's round-trip form; run python scripts/format_params.py")
            return 1
        print(f"{args.params}: in DVC's round-trip form")
        return 0
    if new != text:
        args.params.write_text(new, encoding="utf-8")
    print(f"{args.params}: {'rewritten' if new != text else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
