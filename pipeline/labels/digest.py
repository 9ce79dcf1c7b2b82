"""The digest of label tables and mapper parameters: when it changes, stored labels are re-derived."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.core.fs import sha256_file

# Bump when the mapping semantics change (lookup, threshold, combination), so that digests of
# unchanged tables still change and labels are re-derived.
# "2": lookup by (scope, code), record-scope window rules, combination rules (single, beat).
MAPPER_VERSION = "2"


def digest_of(
    files: Sequence[tuple[str, str]],
    vocabulary: Sequence[str],
    ptbxl_min_likelihood: float,
    unmapped: str,
    table_for: Mapping[str, str] | None,
    merge: Mapping[str, str] | None,
    rule: str = "multilabel",
    precedence: Sequence[str] | None = None,
) -> str:
    """sha256 (hex) of the files' ``(name, sha256)``, the vocabulary and the mapper parameters."""
    payload = {
        "mapper_version": MAPPER_VERSION,
        "files": sorted([name, sha] for name, sha in files),
        "vocabulary": list(vocabulary),
        "ptbxl_min_likelihood": float(ptbxl_min_likelihood),
        "unmapped": unmapped,
        "table_for": dict(sorted((table_for or {}).items())),
        "merge": dict(sorted((merge or {}).items())),
        "rule": rule,
        "precedence": list(precedence or vocabulary),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def tables_digest(
    paths: Sequence[Path],
    vocabulary: Sequence[str],
    *,
    ptbxl_min_likelihood: float = 0.0,
    unmapped: str = "ignore",
    table_for: Mapping[str, str] | None = None,
    merge: Mapping[str, str] | None = None,
    rule: str = "multilabel",
    precedence: Sequence[str] | None = None,
) -> str:
    """sha256 (hex) of the tables' bytes, the vocabulary and the mapper parameters.

    Equal to :attr:`LabelMapper.digest` of a mapper built from the same files and arguments;
    when it changes, stored labels must be re-derived (signals need not be).
    """
    files = [(Path(p).name, sha256_file(Path(p))) for p in paths]
    return digest_of(files, vocabulary, ptbxl_min_likelihood, unmapped, table_for, merge, rule, precedence)
