"""How a raw source folder says it is the synthetic demo tree: a ``.ecgpipe-demo`` file at its root.

Kept apart from the writers so that what reads the mark (the train stage naming synthetic
sources in the model card) does not depend on the signal generator's code.
"""

from __future__ import annotations

from pathlib import Path

MARKER = ".ecgpipe-demo"


def is_demo_root(root: Path) -> bool:
    """True when ``root`` was written by ``ecgpipe demo-data`` (its marker file is there)."""
    return (Path(root) / MARKER).is_file()
