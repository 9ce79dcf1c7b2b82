"""Malformed input corpus (issue 6): broken inputs derived from the real shared records.

:func:`build_corpus` writes, under ``<out>/raw/<source>/``, a few good real records of every
source kind plus hundreds of broken variants derived from them, each registered as a
:class:`Variant` with its expected outcome: which file (or quarantine item) must end up in the
quarantine report and a regex its reason must match. Everything is seeded and deterministic:
the same ``seed`` and shared records give byte-identical trees.

Source kinds and their sources (params names):

- ``ptbxl``, ``cinc2017`` (a whole label table that is unreadable fails the ingest instead:
  tests/test_structural_errors.py),
  ``cinc2021``, ``ptb_diagnostic``: WFDB headers with ``.dat``/``.mat`` signal files;
- ``code``: CODE-15% HDF5 parts
  ``tracings (N, 4096, 12)`` + ``exam_id (N,)`` and ``exams.csv``, built from real PTB-XL
  12-lead signals resampled to 400 Hz (no public CODE sample exists);
- ``ucr`` (``ucr``): ECG5000 rows in ``.txt``/``.ts``/``.arff``;
- ``wfdb`` (``mitbih``, ``cpsc2021``, ``wfdb_misc``): generic WFDB folders (formats 212, 16,
  80 and MAT v4), the first two cut into 10 s windows.

Categories (what a variant breaks): ``truncated``, ``empty_file``, ``alloc_bomb`` (a header
or dataset claims far more data than the file holds), ``header_non_numeric``,
``header_out_of_range``, ``header_truncated``, ``format_code``, ``lead_count``,
``length_mismatch``, ``nan_inf``, ``flat``, ``bad_encoding``, ``path_escape``,
``missing_file``, ``duplicate``, ``orphan``, ``stray``, ``label`` (malformed or missing
labels), ``unknown_label`` (well-formed but unknown codes: the record lands and mapping leaves

Modules: ``corpus`` (data model, per-source writer, shared reasons), ``wfdb`` (editable WFDB
templates and the variant writer), ``mutations`` (the WFDB mutations), one builder module per
source kind (``ptbxl``, ``cinc2017``, ``cinc2021``, ``ptb_diagnostic``, ``code15``, ``ucr``,
``wfdb_folders``) and ``build`` (:func:`build_corpus`). Test helpers only: it may import numpy,
scipy and h5py, never ``pipeline``, so the corpus stays independent of the code it tests.
"""

from tests.malformed.build import BUILDERS, build_corpus
from tests.malformed.corpus import SEED, Corpus, SourceSpec, Variant

__all__ = ["BUILDERS", "SEED", "Corpus", "SourceSpec", "Variant", "build_corpus"]
