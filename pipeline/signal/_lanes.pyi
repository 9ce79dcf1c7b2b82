"""Types of the compiled ``pipeline.signal._lanes`` (source: ``_lanes.c``)."""

import numpy as np
import numpy.typing as npt

def sosfilt(
    sos: npt.NDArray[np.float64], x: npt.NDArray[np.float64], zi: npt.NDArray[np.float64], reverse: bool, /
) -> None:
    """scipy's ``_sosfilt`` in place: sos (n_sections, 6), x (n_signals, n_samples), zi (n_signals,
    n_sections, 2), all C-contiguous float64; ``reverse`` walks the samples backwards."""
