"""The ``sources`` section: one params model per reader kind, and the readers built from it.

May import: ``pipeline.sources`` (lazily, only where readers are built).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from pipeline.config.base import _Strict

if TYPE_CHECKING:  # readers are imported only by the stages that read raw files (see dvc.yaml deps)
    from pipeline.config.params import Params
    from pipeline.sources.base import SourceReader

SOURCE_NAMES = ("ptbxl", "cinc2017", "cinc2021", "ptb_diagnostic", "code", "ucr", "mitbih", "cpsc2021")


class _SourceBase(_Strict):
    root: Path
    enabled: bool = True
    label_table: str | None = Field(
        default=None, description="which label table's `source` rows apply (default: the source's kind)"
    )


class PtbXlSource(_SourceBase):
    kind: Literal["ptbxl"]
    rates: tuple[Literal[100, 500], ...] = (500, 100)


class Cinc2017Source(_SourceBase):
    kind: Literal["cinc2017"]
    labels: Literal["v1", "v3"] = "v1"


class Cinc2021Source(_SourceBase):
    kind: Literal["cinc2021"]


class PtbDiagnosticSource(_SourceBase):
    kind: Literal["ptb_diagnostic"]


class CodeSource(_SourceBase):
    kind: Literal["code"]
    csv: str = "exams.csv"
    hdf5_glob: str = "*.hdf5"
    fs_hz: float = Field(default=400.0, gt=0)
    wfdb_csv: str | None = None
    hdf5_scale_to_mv: float = Field(default=0.5, gt=0, description="stored CODE-15% value x this = mV")
    block_size: int = Field(default=256, ge=1, le=65536)


class UcrSource(_SourceBase):
    kind: Literal["ucr"]
    prefer: tuple[Literal["txt", "tsv", "ts", "arff"], ...] = ("txt", "tsv", "ts", "arff")
    fs_hz: float | None = Field(default=None, gt=0)


class WfdbSource(_SourceBase):
    kind: Literal["wfdb"]
    pattern: str = "**/*.hea"
    use_records_file: bool = True
    annotation_ext: str | None = "atr"
    window_s: float | None = Field(default=None, gt=0)
    hop_s: float | None = Field(default=None, gt=0)
    keep_partial: bool = False
    header_labels: bool = True
    voltage_only: bool = True
    patient_regex: str | None = None

    @model_validator(mode="after")
    def _hop_needs_window(self) -> WfdbSource:
        if self.hop_s is not None and self.window_s is None:
            raise ValueError("hop_s is set but window_s is not; set both (seconds) or neither")
        return self


SourceConfig = Annotated[
    PtbXlSource | Cinc2017Source | Cinc2021Source | PtbDiagnosticSource | CodeSource | UcrSource | WfdbSource,
    Field(discriminator="kind"),
]


# --- params → reader arguments ------------------------------------------------------------------

_NOT_READER_OPTIONS = {"kind", "root", "enabled", "label_table"}


def reader_options(src: _SourceBase) -> dict[str, Any]:
    """The keyword options of a source's reader (everything but kind/root/enabled/label_table)."""
    opts = src.model_dump(exclude=_NOT_READER_OPTIONS)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}


def build_readers(params: Params, names: Sequence[str]) -> dict[str, SourceReader]:
    """Readers for the named sources (disabled sources are left out)."""
    from pipeline.sources.registry import make_reader

    readers: dict[str, SourceReader] = {}
    for name in names:
        src = params.sources[name]
        if src.enabled:
            readers[name] = make_reader(name, src.kind, src.root, reader_options(src))
    return readers
