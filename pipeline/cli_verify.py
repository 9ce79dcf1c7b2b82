"""``ecgpipe verify``: check a shard store against its manifest and raw inputs (being written)."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any, params_args: Any) -> None:
    """Register the ``verify`` sub-command."""


COMMANDS: dict[str, Any] = {}
