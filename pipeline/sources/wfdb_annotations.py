"""Reading a WFDB annotation file (``wfdb.rdann``) into an :class:`AnnotationTrack`, after the
completeness check the landing check shares (:func:`pipeline.sources.wfdb.annotation_problem`).

May import: ``pipeline.sources.wfdb``, ``pipeline.sources.windows``, ``pipeline.core``; ``wfdb`` lazily.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipeline.core.records import ReadError
from pipeline.sources.wfdb import annotation_problem
from pipeline.sources.windows import AnnotationTrack


def read_annotation_track(
    path: Path, extension: str, fs_hz: float, rel: str, frame_fs_hz: float | None = None
) -> AnnotationTrack:
    """Read a WFDB annotation file with ``wfdb.rdann`` into an :class:`AnnotationTrack`.

    Sample indices are rescaled to ``fs_hz`` when the file declares another time resolution, or,
    when it declares none, from ``frame_fs_hz`` (the record's frame rate: WFDB counts annotation
    times in frames, which differ from samples in a multi-rate record; default ``fs_hz``).
    ``rel`` names the file in errors.
    """
    import wfdb

    _check_annotation_file(path, rel)
    record_path = str(path)[: -len(extension) - 1]
    try:
        ann = wfdb.rdann(record_path, extension)
    except Exception as exc:  # wfdb raises many types on a corrupt file (ValueError, IndexError, ...)
        raise ReadError(f"{rel}: wfdb could not read the annotations: {exc}") from exc
    undefined = sum(1 for s in ann.symbol if not isinstance(s, str))
    if undefined:
        # wfdb gives an annotation code with no standard or file-defined label a NaN symbol;
        # a file full of them is damaged, and its other codes cannot be trusted either.
        raise ReadError(
            f"{rel}: {undefined} of {len(ann.symbol)} annotations have undefined codes; expected WFDB "
            "annotation codes"
        )
    samples = np.asarray(ann.sample, dtype=np.int64)
    ann_fs = float(ann.fs) if ann.fs else frame_fs_hz
    if ann_fs is not None and not math.isclose(ann_fs, fs_hz, rel_tol=1e-9):
        samples = np.rint(samples * (fs_hz / ann_fs)).astype(np.int64)
    symbols = [str(s) for s in ann.symbol]
    aux = [a if isinstance(a, str) else None for a in ann.aux_note]
    return AnnotationTrack.from_annotations(samples, symbols, aux)


def _check_annotation_file(path: Path, rel: str) -> None:
    """ReadError unless the annotation file is complete (:func:`pipeline.sources.wfdb.annotation_problem`,
    the rule the landing check uses too)."""
    try:
        problem = annotation_problem(path, rel)
    except OSError as exc:
        raise ReadError(f"{rel}: cannot read the annotations: {exc.strerror or exc}") from exc
    if problem is not None:
        raise ReadError(f"{problem.reason}; expected a complete WFDB annotation file")
