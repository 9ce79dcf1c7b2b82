"""``ecgpipe predict``: score new, unlabelled records with a trained model.

A held-out set with no labels is scored the way evaluation scored the test split: the model's
own card (``ckpt["lineage"]["card"]``) gives the network, the profile's preprocessing and the
int16 scale of the training shards, and an optional decision rule (``thresholds.json`` written by
evaluation) turns scores into decisions.

Inputs and the reader rule
    Each input is a file or a folder (searched recursively; hidden files are ignored). Files
    are assigned to a reader by extension, then content:

    - ``<name>.hea``: a WFDB record, its header plus every signal file the header names
      (``.dat``, ``.mat`` behind a byte offset, ``.xyz``...). This covers CinC 2017 and CinC
      2020/21/Georgia ``.mat`` + ``.hea`` (including record lines such as ``E00271.mat 12 500``),
      PTB-XL and PTB Diagnostic ``.hea``/``.dat``, MIT-BIH-like long records (format 212) and
      CODE WFDB exams. They are read by the generic WFDB reader
      (:class:`pipeline.sources.wfdb_folder.WfdbFolderReader`, decoding by
      :mod:`pipeline.sources.wfdb_io`): the source-specific readers need label tables
      (``REFERENCE.csv``, ``ptbxl_database.csv``) that unlabelled data does not have, and they
      decode through the same ``wfdb_io`` functions. Non-voltage channels (plethysmogram,
      respiration) are dropped; annotation files are not read.
    - a signal file (``.dat``, ``.mat``, ``.xyz``) given on its own, or found in a folder: the
      record of the header in its folder that names it (``<stem>.hea``); with no such header the
      file is rejected ("signal file with no header").
    - ``.txt``, ``.tsv``, ``.arff``, ``.ts``: a UCR/UEA series file
      (:class:`pipeline.sources.ucr.UcrReader`), one record per row; the first column (``.txt``,
      ``.tsv``) or the class attribute is the label, which is ignored. A ``.txt``/``.tsv`` file
      is a series file only when its first line is numbers; other text files
      (``LICENSE.txt``, ``SHA256SUMS.txt``) are documentation.
    - ``.hdf5``/``.h5``: a CODE-15% part (:class:`pipeline.sources.code.CodeReader`), one record
      per exam. The CODE reader takes each exam's row from ``exams.csv``, so the part is read only
      when an ``exams.csv`` lies in its folder or a parent folder up to the input root; without
      one the part is rejected and the reason says so.
    - anything else (``.csv`` tables, ``RECORDS``, ``README``, ``.atr`` annotations...) found in a
      folder is listed as *skipped* in the JSON with its reason; named explicitly, it is a
      rejected row.

    A record reached twice (a folder and a file inside it, or a header and its ``.dat``) is
    scored once.

Record ids
    Stable and readable: the path relative to the input root (the folder given, or a given
    file's folder), in POSIX form. A WFDB record is its header path without ``.hea``
    (``sub/A00001``); a row of a multi-record file is the file path plus the reader's local id
    (``ECG5000_TRAIN.txt/00012`` for a UCR row, ``exams_part0.hdf5/1169160`` for a CODE-15% exam).
    A WFDB record laid out as PTB-XL (``records500/00000/00001_hr``) or CinC 2017 (``A00001``)
    stores it gets the store's id instead: ``ptbxl:00001``, ``cinc2017:A00001``.
    When two different inputs give the same id, the later one is prefixed with its position on
    the command line (``input2:A00001``).

Preprocessing (exactly as the training shards were written)
    :func:`pipeline.signal.preprocess.process` with ``card.plan()``: lead selection (profile aliases),
    crop at the input rate, quality gates (duration, NaN, flat leads), resampling, filters,
    zero padding to the profile length, normalisation. A record longer than the profile length
    is cropped as the profile says (``SignalPlan.crop``: ``start`` keeps the first ``length``
    samples, ``center`` the middle), like in training; it is not windowed. The signal then makes
    the int16 round trip at ``card.scale_mv`` (:func:`pipeline.signal.dsp.quantise_rows` and
    :func:`pipeline.signal.dsp.dequantise`, the functions the shard writer and reader use), so the
    model sees the values evaluation saw, clipping included.

Outputs
    :func:`predict_records` returns a :class:`PredictionTable`: per record its id, input, source
    files, status (``scored`` / ``rejected`` with the reason), scores
    (:func:`pipeline.models.scoring.output_scores`, one column per ``card.output_names``) and, with a
    rule, decisions: the predicted classes (multilabel: every class at or above its
    threshold; multiclass: the argmax class) or ``is_anomaly`` and ``threshold``
    (reconstruction). :func:`run_predict` writes it as ``predictions.csv`` and
    ``predictions.json`` (model card summary, checkpoint sha256, rule, counts, skipped files,
    rows), both atomically.

Modules
    :mod:`.units` (what discovery finds), :mod:`.files` (the reader rule for one file),
    :mod:`.discover` (inputs → units), :mod:`.read` (units → records), :mod:`.score`
    (records → scores and decisions), :mod:`.table` (rows, CSV and JSON rows), :mod:`.run`
    (the command: arguments, model, rule, files written).
"""

from pipeline.export.predict.discover import discover_inputs
from pipeline.export.predict.read import read_candidates
from pipeline.export.predict.run import CSV_NAME, JSON_NAME, run_predict
from pipeline.export.predict.score import predict_records
from pipeline.export.predict.table import PredictionRow, PredictionTable

__all__ = [
    "CSV_NAME",
    "JSON_NAME",
    "PredictionRow",
    "PredictionTable",
    "discover_inputs",
    "predict_records",
    "read_candidates",
    "run_predict",
]
