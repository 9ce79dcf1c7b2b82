"""Cutting long ``(C, T)`` recordings into windows, and the annotation labels of each window.

Pure functions on sample indices; no I/O. Sample indices are at the recording's own ``fs_hz``
and windows are half-open ``[start, stop)``.

Window placement (:func:`window_starts`): windows of ``win`` samples start every ``hop``
samples from 0. A last *partial* window (fewer than ``win`` samples left) is dropped by
default, so every window has the same length and no padding is invented; with
``keep_partial=True`` one extra window ``[next_start, n_samples)`` is kept when the samples
after the last full window would otherwise be lost (downstream length fixing pads it).

Annotation semantics (WFDB, as in MIT-BIH and CPSC 2021 ``.atr`` files):

- *Beats* are annotations whose symbol is a WFDB QRS type (:data:`BEAT_SYMBOLS`: ``N``,
  ``V``, ``A``, ...). A beat belongs to a window when ``start <= sample < stop``.
- *Rhythms* are the aux notes (``(AFIB``, ``(N``, ...) of rhythm-change annotations (symbol
  ``+``). A rhythm holds from its annotation sample until the next rhythm change. The rhythms
  of a window are the one in effect at ``start`` (the last change at or before ``start``; a
  change exactly at ``start`` replaces the previous rhythm, which then covers no sample of the
  window) followed by every change with ``start < sample < stop``. A change at ``stop``
  belongs to the next window. Aux notes of other annotations (CPSC 2021 writes the text
  ``None`` on every beat) are not rhythms.
- Other annotation types (noise ``~``, artifact ``|``, comments ``"``, waveform points
  ``p``/``t``) are neither beats nor rhythms.

Raw labels of a window (:func:`window_labels`) carry their scope: each beat is a ``beat``
label with span ``(s, s + 1)``, each rhythm an ``interval`` label with the part of its span
inside the window, and the header classes are ``record`` labels (every window keeps them; the
label scheme decides whether they reach the window's unified labels). Spans are relative to
the window's first sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.core.records import RawLabel

IntArray = npt.NDArray[np.int64]

RHYTHM_SYMBOL = "+"

# WFDB annotation codes for which isqrs() is true (wfdb-python ``is_qrs``): normal, bundle
# branch block, aberrated, premature, escape, fusion, paced, unclassifiable, learning,
# ventricular flutter wave, R-on-T beats.
BEAT_SYMBOLS: frozenset[str] = frozenset(
    {"N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "B", "?", "!", "e", "n", "f", "r"}
)


def window_starts(n_samples: int, win: int, hop: int, keep_partial: bool = False) -> list[int]:
    """Start samples of the windows of ``win`` samples every ``hop`` samples over ``n_samples``.

    Full windows start at ``0, hop, 2*hop, ...`` while ``start + win <= n_samples``: there are
    ``(n_samples - win) // hop + 1`` of them (none when ``n_samples < win``). With
    ``keep_partial`` one more start is added when the next start is still inside the recording
    (its window is ``[start, n_samples)``, shorter than ``win``).
    """
    if win < 1 or hop < 1:
        raise ValueError(f"window ({win}) and hop ({hop}) must be at least 1 sample")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    n_full = (n_samples - win) // hop + 1 if n_samples >= win else 0
    starts = [i * hop for i in range(n_full)]
    next_start = n_full * hop
    if keep_partial and next_start < n_samples:
        starts.append(next_start)
    return starts


def window_stop(start: int, n_samples: int, win: int) -> int:
    """End (exclusive) of the window starting at ``start``: ``start + win`` clipped to the recording."""
    return min(start + win, n_samples)


@dataclass(frozen=True)
class AnnotationTrack:
    """A record's annotations split into beats and rhythm changes, each sorted by sample.

    ``beat_samples``/``beat_symbols``: the QRS annotations; ``rhythm_samples``/``rhythms``: the
    rhythm changes with their aux notes (NUL padding and whitespace removed).
    """

    beat_samples: IntArray
    beat_symbols: tuple[str, ...]
    rhythm_samples: IntArray
    rhythms: tuple[str, ...]

    def ending_before(self, n_samples: int) -> AnnotationTrack:
        """The track without rhythm changes on the recording's last sample.

        CPSC 2021 closes every AF episode with ``(N`` on its final sample, even in persistent-AF
        records; a change that lasts no sample is an end marker, not a rhythm of the recording.
        """
        keep = self.rhythm_samples < n_samples - 1
        rhythms = tuple(r for r, k in zip(self.rhythms, keep, strict=True) if k)
        return AnnotationTrack(self.beat_samples, self.beat_symbols, self.rhythm_samples[keep], rhythms)

    @classmethod
    def from_annotations(
        cls, samples: Sequence[int] | IntArray, symbols: Sequence[str], aux_notes: Sequence[str | None]
    ) -> AnnotationTrack:
        """Build from parallel arrays as ``wfdb.rdann`` returns them (``sample``, ``symbol``,
        ``aux_note``), in any order."""
        sample_arr = np.asarray(samples, dtype=np.int64).reshape(-1)
        if not len(sample_arr) == len(symbols) == len(aux_notes):
            raise ValueError(
                f"annotation arrays differ in length: {len(sample_arr)} samples, {len(symbols)} symbols, "
                f"{len(aux_notes)} aux notes"
            )
        order = np.argsort(sample_arr, kind="stable")
        beats = [int(i) for i in order if symbols[i] in BEAT_SYMBOLS]
        rhythm_idx = [int(i) for i in order if symbols[i] == RHYTHM_SYMBOL and clean_aux(aux_notes[i])]
        return cls(
            beat_samples=sample_arr[beats],
            beat_symbols=tuple(symbols[i] for i in beats),
            rhythm_samples=sample_arr[rhythm_idx],
            rhythms=tuple(clean_aux(aux_notes[i]) for i in rhythm_idx),
        )

    @classmethod
    def empty(cls) -> AnnotationTrack:
        """A record without annotations."""
        none = np.zeros(0, dtype=np.int64)
        return cls(none, (), none.copy(), ())


def clean_aux(aux: str | None) -> str:
    """An aux note without the NUL padding WFDB files carry (``'(N\\x00'`` → ``'(N'``)."""
    return (aux or "").replace("\x00", "").strip()


def beats_in_window(track: AnnotationTrack, start: int, stop: int) -> tuple[str, ...]:
    """Beat symbols with ``start <= sample < stop``, in time order, repeats kept."""
    lo, hi = np.searchsorted(track.beat_samples, [start, stop], side="left")
    return track.beat_symbols[int(lo) : int(hi)]


def rhythms_in_window(track: AnnotationTrack, start: int, stop: int) -> tuple[str, ...]:
    """Rhythms in effect during ``[start, stop)``, in time order, repeats kept.

    The first is the rhythm set by the last change at or before ``start`` (absent when no
    rhythm has been set yet), then every change with ``start < sample < stop``.
    """
    first = int(np.searchsorted(track.rhythm_samples, start, side="right"))
    end = int(np.searchsorted(track.rhythm_samples, stop, side="left"))
    lo = max(first - 1, 0)
    return track.rhythms[lo : max(end, lo)]


def distinct(codes: Sequence[str]) -> tuple[str, ...]:
    """``codes`` without repeats, in order of first appearance."""
    return tuple(dict.fromkeys(codes))


def rhythm_spans(track: AnnotationTrack, start: int, stop: int) -> tuple[tuple[str, int, int], ...]:
    """``(rhythm, first, end)`` of the rhythms in effect during ``[start, stop)``, in time order.

    ``first``/``end`` are absolute sample indices clipped to the window; the rhythms are those of
    :func:`rhythms_in_window`, each lasting until the next change (or ``stop``). A rhythm that
    covers no sample of the window (two changes on one sample) is left out.
    """
    first = int(np.searchsorted(track.rhythm_samples, start, side="right"))
    end = int(np.searchsorted(track.rhythm_samples, stop, side="left"))
    lo = max(first - 1, 0)
    spans: list[tuple[str, int, int]] = []
    for i in range(lo, max(end, lo)):
        begin = max(int(track.rhythm_samples[i]), start)
        until = int(track.rhythm_samples[i + 1]) if i + 1 < len(track.rhythm_samples) else stop
        until = min(until, stop)
        if begin < until:
            spans.append((track.rhythms[i], begin, until))
    return tuple(spans)


def window_labels(
    track: AnnotationTrack, start: int, stop: int, header_labels: Sequence[str]
) -> tuple[RawLabel, ...]:
    """Raw labels of ``[start, stop)``: beats, then rhythms, then the header's record classes.

    Spans are relative to ``start`` (see the module docstring); a header class stated twice is
    kept once.
    """
    lo, hi = np.searchsorted(track.beat_samples, [start, stop], side="left")
    beats = [
        RawLabel(symbol, scope="beat", span=(int(s) - start, int(s) - start + 1))
        for s, symbol in zip(
            track.beat_samples[int(lo) : int(hi)], track.beat_symbols[int(lo) : int(hi)], strict=True
        )
    ]
    rhythms = [
        RawLabel(code, scope="interval", span=(a - start, b - start))
        for code, a, b in rhythm_spans(track, start, stop)
    ]
    header = [RawLabel(code) for code in distinct(header_labels)]
    return (*beats, *rhythms, *header)
