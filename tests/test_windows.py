"""Window placement and per-window beat/rhythm labels, on hand-made annotation arrays."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.sources.windows import (
    BEAT_SYMBOLS,
    AnnotationTrack,
    beats_in_window,
    clean_aux,
    distinct,
    rhythms_in_window,
    window_starts,
    window_stop,
)

# A record of 1000 samples: AF from 100, sinus from 500, noise change at 600 (not a beat),
# beats every 100 samples from 50; a '+' without aux at 700 states no rhythm.
SAMPLES = [50, 100, 150, 250, 350, 450, 500, 550, 600, 650, 700, 750, 850, 950]
SYMBOLS = ["N", "+", "N", "A", "N", "V", "+", "N", "~", "N", "+", "N", "N", "N"]
AUX = ["", "(AFIB", "None", "None", "", "", "(N\x00", "", "cU", "", "", "", "", ""]


@pytest.fixture
def track() -> AnnotationTrack:
    return AnnotationTrack.from_annotations(SAMPLES, SYMBOLS, AUX)


def test_window_starts_count_is_floor_of_span_over_hop_plus_one() -> None:
    for n, win, hop in [(650_000, 3600, 3600), (650_000, 3600, 1800), (1000, 300, 70), (300, 300, 1)]:
        starts = window_starts(n, win, hop)
        assert len(starts) == (n - win) // hop + 1
        assert starts[0] == 0
        assert all(b - a == hop for a, b in zip(starts, starts[1:], strict=False))
        assert starts[-1] + win <= n < starts[-1] + hop + win


def test_window_starts_drops_the_partial_window_by_default() -> None:
    assert window_starts(1000, 300, 300) == [0, 300, 600]
    assert window_starts(299, 300, 300) == []
    assert window_starts(0, 300, 300) == []


def test_window_starts_keep_partial_adds_one_window_over_the_tail() -> None:
    assert window_starts(1000, 300, 300, keep_partial=True) == [0, 300, 600, 900]
    assert window_stop(900, 1000, 300) == 1000
    # An exact fit leaves no tail, so there is nothing partial to keep.
    assert window_starts(900, 300, 300, keep_partial=True) == [0, 300, 600]
    # Overlapping windows: only the first partial start is added, not one per hop.
    assert window_starts(10, 4, 1, keep_partial=True) == [0, 1, 2, 3, 4, 5, 6, 7]
    # A recording shorter than one window becomes one partial window.
    assert window_starts(120, 300, 300, keep_partial=True) == [0]
    # With gaps (hop > win) the partial window starts at the next hop, or nowhere past the end.
    assert window_starts(1000, 300, 800, keep_partial=True) == [0, 800]
    assert window_starts(1000, 300, 1100, keep_partial=True) == [0]


def test_window_starts_rejects_non_positive_window_or_hop() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        window_starts(100, 0, 10)
    with pytest.raises(ValueError, match="at least 1"):
        window_starts(100, 10, 0)


def test_track_separates_beats_from_rhythms_and_cleans_aux(track: AnnotationTrack) -> None:
    assert track.beat_symbols == ("N", "N", "A", "N", "V", "N", "N", "N", "N", "N")
    assert track.beat_samples.tolist() == [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]
    assert track.rhythm_samples.tolist() == [100, 500]
    assert track.rhythms == ("(AFIB", "(N")
    assert "~" not in BEAT_SYMBOLS and "+" not in BEAT_SYMBOLS


def test_track_sorts_annotations_given_out_of_order() -> None:
    t = AnnotationTrack.from_annotations([300, 10, 200, 5], ["V", "+", "N", "+"], ["", "(N", "", "(AFIB"])
    assert t.beat_samples.tolist() == [200, 300]
    assert t.beat_symbols == ("N", "V")
    assert t.rhythms == ("(AFIB", "(N")


def test_track_rejects_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        AnnotationTrack.from_annotations([1, 2], ["N"], ["", ""])


def test_beats_include_an_annotation_at_start_and_exclude_one_at_stop(track: AnnotationTrack) -> None:
    assert beats_in_window(track, 250, 450) == ("A", "N")
    assert beats_in_window(track, 251, 451) == ("N", "V")
    assert beats_in_window(track, 0, 1000) == track.beat_symbols


def test_rhythm_set_before_the_window_continues_into_it(track: AnnotationTrack) -> None:
    assert rhythms_in_window(track, 200, 400) == ("(AFIB",)
    assert rhythms_in_window(track, 800, 1000) == ("(N",)


def test_rhythm_changes_inside_the_window_are_added_in_order(track: AnnotationTrack) -> None:
    assert rhythms_in_window(track, 0, 1000) == ("(AFIB", "(N")
    assert rhythms_in_window(track, 400, 600) == ("(AFIB", "(N")


def test_rhythm_change_exactly_at_start_replaces_the_previous_rhythm(track: AnnotationTrack) -> None:
    assert rhythms_in_window(track, 500, 700) == ("(N",)
    assert rhythms_in_window(track, 100, 300) == ("(AFIB",)


def test_rhythm_change_exactly_at_stop_belongs_to_the_next_window(track: AnnotationTrack) -> None:
    assert rhythms_in_window(track, 300, 500) == ("(AFIB",)
    assert rhythms_in_window(track, 0, 100) == ()


def test_window_before_the_first_rhythm_has_no_rhythm(track: AnnotationTrack) -> None:
    assert rhythms_in_window(track, 0, 90) == ()
    assert beats_in_window(track, 0, 90) == ("N",)


def test_record_without_annotations_gives_no_labels() -> None:
    empty = AnnotationTrack.empty()
    assert beats_in_window(empty, 0, 1000) == ()
    assert rhythms_in_window(empty, 0, 1000) == ()
    none = AnnotationTrack.from_annotations(np.zeros(0, dtype=np.int64), [], [])
    assert rhythms_in_window(none, 10, 20) == () and beats_in_window(none, 10, 20) == ()


def test_clean_aux_and_distinct() -> None:
    assert clean_aux("(N\x00") == "(N"
    assert clean_aux(None) == ""
    assert distinct(["N", "A", "N", "V", "A"]) == ("N", "A", "V")


def test_rhythm_change_on_the_last_sample_is_an_end_marker_not_a_rhythm() -> None:
    track = AnnotationTrack.from_annotations([0, 50, 99], ["+", "N", "+"], ["(AFIB", None, "(N"])
    trimmed = track.ending_before(100)
    assert rhythms_in_window(trimmed, 0, 100) == ("(AFIB",)
    assert rhythms_in_window(track.ending_before(200), 0, 100) == ("(AFIB", "(N")
