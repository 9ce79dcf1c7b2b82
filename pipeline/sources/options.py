"""Each reader's options, declared once: one typed, validated model per source kind.

A reader takes its model (``SourceReader.Options``) and ``pipeline.config``'s source sections
inherit it, so a field, its default and its check live here only. The module imports nothing but
pydantic: loading ``params.yaml`` imports it, and must stay light (no numpy, no reader code).

May import: pydantic.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The two sampling rates PTB-XL publishes (records100/, records500/).
PTBXL_RATES = (100, 500)
UcrFormat = Literal["txt", "tsv", "ts", "arff"]
UCR_FORMATS: tuple[UcrFormat, ...] = ("txt", "tsv", "ts", "arff")


def relative_glob(pattern: str) -> str:
    """``pattern`` when it is a glob relative to a source root (no absolute path, no ``..``)."""
    if not pattern or PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
        raise ValueError(f"pattern {pattern!r} must be a glob relative to the root, such as '**/*.hea'")
    return pattern


def one_group_regex(pattern: str | None) -> str | None:
    """``pattern`` when it is a valid regular expression with exactly one group (the patient id)."""
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"patient_regex {pattern!r} is not a valid regular expression: {exc}") from exc
    if compiled.groups != 1:
        raise ValueError(f"patient_regex {pattern!r} must have exactly one group (the patient id)")
    return pattern


class ReaderOptions(BaseModel):
    """Options of a reader with none; the base of every kind's model (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


PTBXL_QUALITY_COLUMNS = ("static_noise", "burst_noise", "baseline_drift", "electrodes_problems")


class PtbXlOptions(ReaderOptions):
    """``rates``: the sampling rates (Hz) to read, in order of preference. ``noise_columns``: the
    signal-quality columns of ``ptbxl_database.csv`` that, when non-empty, give the record a raw label
    of that name (record scope; the label table maps it to NOISY). Baseline drift is left out by
    default: the baseline filter removes most of it, and it is stated for 44 of the 300 shared rows."""

    rates: tuple[Literal[100, 500], ...] = (500, 100)
    noise_columns: tuple[
        Literal["static_noise", "burst_noise", "baseline_drift", "electrodes_problems"], ...
    ] = ("static_noise", "burst_noise", "electrodes_problems")

    @field_validator("rates")
    @classmethod
    def _distinct_rates(cls, rates: tuple[int, ...]) -> tuple[int, ...]:
        if not rates or len(set(rates)) != len(rates):
            raise ValueError(f"rates must be distinct values from {list(PTBXL_RATES)}, got {rates!r}")
        return rates

    @field_validator("noise_columns")
    @classmethod
    def _distinct_columns(cls, columns: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(columns)) != len(columns):
            raise ValueError(f"noise_columns must be distinct, got {list(columns)}")
        return columns


class Cinc2017Options(ReaderOptions):
    """``labels``: ``v1`` reads ``REFERENCE.csv``, ``v3`` reads ``REFERENCE-v3.csv``."""

    labels: Literal["v1", "v3"] = "v1"


class Cinc2021Options(ReaderOptions):
    """CinC 2020/21 records have no reader options."""


class PtbDiagnosticOptions(ReaderOptions):
    """PTB Diagnostic records have no reader options."""


class CodeOptions(ReaderOptions):
    """CODE exam tables and signals: where they are and how to scale them."""

    csv: str = "exams.csv"
    hdf5_glob: str = "*.hdf5"
    fs_hz: float = Field(default=400.0, gt=0, allow_inf_nan=False)
    wfdb_csv: str | None = None
    hdf5_scale_to_mv: float = Field(
        default=0.5, gt=0, allow_inf_nan=False, description="stored CODE-15% value x this = mV"
    )
    block_size: int = Field(default=256, ge=1, le=65536, description="exams read per HDF5 block")


class UcrOptions(ReaderOptions):
    """``prefer``: file formats in order of preference; ``fs_hz``: the rate to state (Hz), or None."""

    prefer: tuple[UcrFormat, ...] = UCR_FORMATS
    fs_hz: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("prefer")
    @classmethod
    def _some_format(cls, prefer: tuple[str, ...]) -> tuple[str, ...]:
        if not prefer:
            raise ValueError(f"prefer=(): expected a non-empty tuple drawn from {UCR_FORMATS}")
        return prefer


class WfdbFolderOptions(ReaderOptions):
    """A folder of WFDB records: which headers, which annotator, windows (s), labels, channels, patients.

    ``hop_s`` without ``window_s`` is refused; ``window_s`` without ``hop_s`` means windows that do
    not overlap (see :attr:`hop`).
    """

    pattern: str = "**/*.hea"
    use_records_file: bool = True
    annotation_ext: str | None = "atr"
    window_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    hop_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    keep_partial: bool = False
    header_labels: bool = True
    voltage_only: bool = True
    patient_regex: str | None = None

    @property
    def hop(self) -> float | None:
        """The window step in seconds: ``hop_s``, or ``window_s`` when unset (None without windows)."""
        return self.window_s if self.hop_s is None else self.hop_s

    @field_validator("pattern")
    @classmethod
    def _relative_glob(cls, pattern: str) -> str:
        return relative_glob(pattern)

    @field_validator("annotation_ext")
    @classmethod
    def _bare_extension(cls, ext: str | None) -> str | None:
        if ext is not None and not re.fullmatch(r"\w+", ext):
            raise ValueError(f"annotation_ext {ext!r} must be a bare extension such as 'atr'")
        return ext

    @field_validator("patient_regex")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        return one_group_regex(pattern)

    @model_validator(mode="after")
    def _hop_needs_window(self) -> Self:
        if self.hop_s is not None and self.window_s is None:
            raise ValueError("hop_s is set but window_s is not; set both (seconds) or neither")
        return self


class EdfOptions(ReaderOptions):
    """EDF/EDF+ files: which files (glob below the root), ECG channels only, patients from the path."""

    pattern: str = "**/*.edf"
    voltage_only: bool = True
    patient_regex: str | None = None

    @field_validator("pattern")
    @classmethod
    def _relative_glob(cls, pattern: str) -> str:
        return relative_glob(pattern)

    @field_validator("patient_regex")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        return one_group_regex(pattern)


# params ``kind`` → its options model; the readers' own table is pipeline.sources.registry.
OPTIONS: dict[str, type[ReaderOptions]] = {
    "ptbxl": PtbXlOptions,
    "cinc2017": Cinc2017Options,
    "cinc2021": Cinc2021Options,
    "ptb_diagnostic": PtbDiagnosticOptions,
    "code": CodeOptions,
    "ucr": UcrOptions,
    "wfdb": WfdbFolderOptions,
    "edf": EdfOptions,
}

__all__ = [
    "OPTIONS",
    "PTBXL_RATES",
    "UCR_FORMATS",
    "Cinc2017Options",
    "Cinc2021Options",
    "CodeOptions",
    "EdfOptions",
    "PtbDiagnosticOptions",
    "PtbXlOptions",
    "ReaderOptions",
    "UcrFormat",
    "UcrOptions",
    "WfdbFolderOptions",
]
