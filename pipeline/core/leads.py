"""Lead-name canonicalisation: ``i``, ``AVR``, ``avr`` → ``I``, ``aVR``; unknown names kept as-is."""

from __future__ import annotations

STANDARD_12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

_ALIASES = {name.lower(): name for name in STANDARD_12}
_ALIASES.update({"lead i": "I", "lead ii": "II", "lead iii": "III", "d1": "I", "d2": "II", "d3": "III"})
_ALIASES.update({"di": "I", "dii": "II", "diii": "III"})


def canonical_lead(name: str) -> str:
    """Return the canonical name of one lead (``"avr"`` → ``"aVR"``); non-12-lead names unchanged."""
    stripped = name.strip()
    return _ALIASES.get(stripped.lower(), stripped)


def canonical_leads(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Canonicalise a sequence of lead names, keeping order."""
    return tuple(canonical_lead(n) for n in names)
