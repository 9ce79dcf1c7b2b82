"""What a landing check found so far, and the one way it looks at a landed file.

The worst finding wins: a record is ``invalid`` (wrong beyond being incomplete) over
``incomplete`` (still arriving) over ``complete``.

May import: ``pipeline.core``, ``pipeline.sources.base``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pipeline.core.records import ReadError
from pipeline.sources.base import confined_path

COMPLETE = "complete"
INCOMPLETE = "incomplete"
INVALID = "invalid"
HEADER_SUFFIX = ".hea"


class Findings:
    """Problems found so far; the worst status wins (invalid over incomplete over complete)."""

    def __init__(self) -> None:
        self.invalid: list[str] = []
        self.incomplete: list[str] = []
        self.notes: list[str] = []

    def status(self) -> str:
        if self.invalid:
            return INVALID
        return INCOMPLETE if self.incomplete else COMPLETE

    def problems(self) -> tuple[str, ...]:
        return (*self.invalid, *self.incomplete)


def regular_file(root: Path, rel: str, missing: str, found: Findings) -> tuple[Path, os.stat_result] | None:
    """``rel`` confined to ``root`` and its lstat, or None with the problem recorded in ``found``."""
    try:
        path = confined_path(root, rel)
        info = path.lstat()
    except ReadError as exc:
        found.invalid.append(str(exc))
        return None
    except OSError:
        found.incomplete.append(f"{rel}: {missing}")
        return None
    if not stat.S_ISREG(info.st_mode):
        found.invalid.append(f"{rel}: not a regular file")
        return None
    return path, info
