"""WFDB records read without trusting them: header parsing, signal decoding, the MAT v4 check and
the annotation-file completeness rule, as private modules behind this flat API (as wfdb-python
does). The readers (:mod:`pipeline.sources.wfdb_io` and the source readers) and the landing check
both use these, so each rule is written once.

Owns: the WFDB/MAT v4 byte formats. May import: `pipeline.core`, `pipeline.sources.base`, numpy,
and `wfdb` (the fallback decoder).
"""

from pipeline.sources.wfdb._annotations import (
    MAX_ANNOTATION_BYTES,
    AnnotationProblem,
    annotation_problem,
    end_marker,
)
from pipeline.sources.wfdb._decode import (
    DECODED_FORMATS,
    INVALID_SAMPLE,
    FloatArray,
    decode_samples,
    read_signals,
    sample_rate_hz,
)
from pipeline.sources.wfdb._header import (
    BYTES_PER_SAMPLE,
    DEFAULT_FS_HZ,
    DEFAULT_GAIN,
    DEFAULT_UNITS,
    FLAC_FORMATS,
    KNOWN_FORMATS,
    MAX_HEADER_BYTES,
    SignalSpec,
    WfdbHeader,
    header_bytes_text,
    is_ecg_signal,
    mv_factor,
    parse_header,
    physical_units,
    read_header,
    signal_files,
)
from pipeline.sources.wfdb._mat import MAT4_HEADER, MAT4_INT16, MatLayout, MatV4Error, check_mat_v4
from pipeline.sources.wfdb._segments import (
    MultiSegmentHeader,
    Segment,
    SegmentedRecord,
    load_segments,
    read_any_header,
    read_segmented,
)

__all__ = [
    "MultiSegmentHeader",
    "Segment",
    "SegmentedRecord",
    "load_segments",
    "read_any_header",
    "read_segmented",
    "BYTES_PER_SAMPLE",
    "DECODED_FORMATS",
    "DEFAULT_FS_HZ",
    "DEFAULT_GAIN",
    "DEFAULT_UNITS",
    "FLAC_FORMATS",
    "INVALID_SAMPLE",
    "KNOWN_FORMATS",
    "MAT4_HEADER",
    "MAT4_INT16",
    "MAX_ANNOTATION_BYTES",
    "MAX_HEADER_BYTES",
    "AnnotationProblem",
    "FloatArray",
    "MatLayout",
    "MatV4Error",
    "SignalSpec",
    "WfdbHeader",
    "annotation_problem",
    "check_mat_v4",
    "decode_samples",
    "header_bytes_text",
    "is_ecg_signal",
    "end_marker",
    "mv_factor",
    "parse_header",
    "physical_units",
    "read_header",
    "read_signals",
    "sample_rate_hz",
    "signal_files",
]
