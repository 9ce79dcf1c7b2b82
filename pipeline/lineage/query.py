"""What the lineage queries share: where the pipeline keeps what they read (:class:`StoreLayout`),
their error, the artifact query's context (the lock, on-disk states computed once, warnings) and how
a store location is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from pipeline.lineage import dvc_lock as dl
from pipeline.lineage import lock_check as lc
from pipeline.store.root import StoreRoot, is_url


class LineageError(ValueError):
    """An artifact path or record id lineage cannot answer for; the message says why."""


@dataclass(frozen=True)
class StoreLayout:
    """Where the pipeline keeps what lineage reads (from params).

    ``store``: the shard store root (``ingest.store``, or ``ingest.object_store``'s URL), one store
    per profile; ``index_dir``: split indexes (``split.out_dir``); ``source_roots``: source name →
    raw root (``sources.*.root``).
    """

    store: StoreRoot | Path
    index_dir: Path
    source_roots: Mapping[str, Path] = field(default_factory=dict)
    # for the per-scheme "why" of a record's labels: the labels root (``labels.tables_dir``), the
    # source name → table source map and the PTB-XL likelihood threshold; None: no "why"
    labels_root: Path | None = None
    table_for: Mapping[str, str] = field(default_factory=dict)
    min_likelihood: float = 0.0


@dataclass
class LineageContext:
    root: Path
    lock: dl.DvcLock
    ignore: pathspec.GitIgnoreSpec | None
    warnings: list[str] = field(default_factory=list)
    _states: dict[tuple[str, str | None, int | None, int | None], lc.EntryState] = field(default_factory=dict)

    def state(self, entry: dl.LockEntry) -> lc.EntryState:
        """On-disk state of a lock entry, computed once per path and hash (code deps repeat a lot)."""
        key = (entry.path, entry.md5, entry.size, entry.nfiles)
        if key not in self._states:
            self._states[key] = lc.check_entry(self.root, entry, self.ignore)
        return self._states[key]


def shown_location(root: Path, location: str) -> str:
    """A store location as lineage shows it: relative to the project when local, else the URL."""
    return location if is_url(location) else dl.display_path(root, Path(location))
