"""Why a record has its labels in a scheme: each raw label with the table row that mapped it.

Pure: from a scheme's tables and one record's raw labels, the same lookup the mapper does
(:mod:`pipeline.labels.mapping`: ``(scope, code)``, dataset-qualified codes first, the likelihood
threshold, the record-scope ``windows`` rule, the beat rule), written out per raw label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.records import RawLabel
from pipeline.labels.tables import LabelTables, TableRow, normalise_code


@dataclass(frozen=True)
class Why:
    """One raw label's fate in a scheme.

    ``label``: the label its row gives (``""``: known, no label; None: no row, unmapped);
    ``row``: ``file:line`` of the table row (file relative to the labels root where possible);
    ``reaches``: whether the label counts for this record; ``because``: why not, when it does not.
    """

    code: str
    scope: str
    span: tuple[int, int] | None
    label: str | None
    row: str
    reaches: bool
    because: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "scope": self.scope,
            "span": list(self.span) if self.span else None,
            "label": self.label,
            "row": self.row,
            "reaches": self.reaches,
            "because": self.because,
        }


def _row_of(
    rows: Mapping[tuple[str, str, str], TableRow], table: str, scope: str, code: str, dataset: str | None
) -> TableRow | None:
    key = f"{dataset}:{code}" if dataset else code
    found = rows.get((table, scope, key))
    if found is None and dataset:
        found = rows.get((table, scope, code))
    return found


def _where(row: TableRow, root: Path | None) -> str:
    path = Path(row.file)
    if root is not None and path.is_relative_to(root):
        path = path.relative_to(root)
    return f"{path.as_posix()}:{row.line}"


def explain(
    tables: LabelTables,
    table: str,
    raw: Sequence[RawLabel],
    *,
    dataset: str | None = None,
    windowed: bool = False,
    rule: str = "multilabel",
    min_likelihood: float = 0.0,
    root: Path | None = None,
) -> list[Why]:
    """Each raw label of one record with its row and whether it reaches the record's labels.

    ``table`` is the table source the record's source maps through; ``windowed``: the record is a
    window of a longer recording; ``root`` shortens row file names. Under ``single`` every label
    that reaches is listed; the scheme keeps the first in vocabulary order.
    """
    has_interval = any(r.scope == "interval" for r in raw)
    out: list[Why] = []
    for item in raw:
        code = normalise_code(item.code)
        if item.likelihood is not None and item.likelihood < min_likelihood:
            out.append(
                Why(
                    code,
                    item.scope,
                    item.span,
                    None,
                    "",
                    False,
                    f"likelihood {item.likelihood:g} < threshold",
                )
            )
            continue
        if rule == "beat" and item.scope == "interval":
            out.append(
                Why(
                    code,
                    item.scope,
                    item.span,
                    None,
                    "",
                    False,
                    "interval labels play no part in a beat scheme",
                )
            )
            continue
        row = _row_of(tables.rows, table, item.scope, code, dataset)
        if row is None:
            out.append(Why(code, item.scope, item.span, None, "", False, "no table row (unmapped)"))
            continue
        reaches, because = bool(row.label), "" if row.label else "the row maps it to no label"
        if reaches and item.scope == "record" and windowed:
            if row.windows == "never":
                reaches, because = False, "record-scope row with windows=never"
            elif row.windows == "unannotated" and has_interval:
                reaches, because = False, "windows=unannotated and the window holds rhythm annotations"
        out.append(Why(code, item.scope, item.span, row.label, _where(row, root), reaches, because))
    return out
