""" "Did you mean": the known names most like what was asked, by difflib's similarity ratio.

Nothing is offered because it comes first in a list: a suggestion must resemble the request
(``difflib.SequenceMatcher.ratio`` at or above a cutoff), best first.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

ID_CUTOFF = 0.8  # local ids differ in a digit or two: "A00001" vs "A0001" is 0.91, vs "A01234" 0.67
PATH_CUTOFF = 0.6


def close_record_ids(record_id: str, known: Sequence[str], n: int = 5) -> list[str]:
    """Known ``<source>:<local id>`` ids like ``record_id``: first the same id in another case or
    without its source (``00001`` → ``ptbxl:00001``), then local ids alike by ratio, within the
    named source when ``record_id`` names one."""
    ids = list(dict.fromkeys(known))
    wanted = record_id.lower()
    same = [i for i in ids if i.lower() == wanted or i.lower().split(":", 1)[-1] == wanted]
    source, _, local = record_id.rpartition(":")
    pool = [i for i in ids if not source or i.split(":", 1)[0] == source]
    by_local: dict[str, list[str]] = {}
    for i in pool:
        by_local.setdefault(i.split(":", 1)[-1], []).append(i)
    alike = difflib.get_close_matches(local, list(by_local), n=n, cutoff=ID_CUTOFF)
    return list(dict.fromkeys([*same, *(i for loc in alike for i in by_local[loc])]))[:n]


def close_paths(path: str, known: Sequence[str], n: int = 5) -> list[str]:
    """Known paths like ``path`` (whole-path ratio), best first."""
    return difflib.get_close_matches(path, list(dict.fromkeys(known)), n=n, cutoff=PATH_CUTOFF)
