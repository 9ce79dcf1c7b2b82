"""JSON without NaN: undefined metrics are ``null`` in every file the pipeline writes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def json_float(x: float) -> float | None:
    """A float for JSON: NaN/inf become None (JSON has no NaN; an undefined metric is null)."""
    return float(x) if math.isfinite(x) else None


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth of dicts/lists/tuples, replaced by None."""
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
