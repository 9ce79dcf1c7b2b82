"""The ``sources`` section: one params model per reader kind.

Each model is the reader's own options model (:mod:`pipeline.sources.options`, where the fields,
defaults and checks are declared) plus what params add: ``kind``, ``root``, ``enabled`` and
``label_table``. The readers are built from it by :func:`pipeline.sources.registry.build_readers`.

May import: ``pipeline.sources.options`` (pydantic only; loading params stays light).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from pipeline.config.base import _Strict
from pipeline.sources.options import (
    Cinc2017Options,
    Cinc2021Options,
    CodeOptions,
    EdfOptions,
    PtbDiagnosticOptions,
    PtbXlOptions,
    UcrOptions,
    WfdbFolderOptions,
)

SOURCE_NAMES = ("ptbxl", "cinc2017", "cinc2021", "ptb_diagnostic", "code", "ucr", "mitbih", "cpsc2021")


DEFAULT_ROOT = Path("data/raw")  # a source's root by default: data/raw/<name>, beside params.yaml


class _SourceBase(_Strict):
    root: Path
    enabled: bool = True
    required: bool | None = Field(
        default=None,
        description="a root that does not exist fails the ingest (null: unless root is data/raw/<name>, "
        "the default of a source not set up, which is skipped with a notice)",
    )
    label_table: str | None = Field(
        default=None, description="which label table's `source` rows apply (default: the source's kind)"
    )


# Options first in the bases so the fields read root, enabled, label_table, <options>, kind.
class PtbXlSource(PtbXlOptions, _SourceBase):
    kind: Literal["ptbxl"]


class Cinc2017Source(Cinc2017Options, _SourceBase):
    kind: Literal["cinc2017"]


class Cinc2021Source(Cinc2021Options, _SourceBase):
    kind: Literal["cinc2021"]


class PtbDiagnosticSource(PtbDiagnosticOptions, _SourceBase):
    kind: Literal["ptb_diagnostic"]


class CodeSource(CodeOptions, _SourceBase):
    kind: Literal["code"]


class UcrSource(UcrOptions, _SourceBase):
    kind: Literal["ucr"]


class WfdbSource(WfdbFolderOptions, _SourceBase):
    kind: Literal["wfdb"]


class EdfSource(EdfOptions, _SourceBase):
    kind: Literal["edf"]


SourceConfig = Annotated[
    PtbXlSource
    | Cinc2017Source
    | Cinc2021Source
    | PtbDiagnosticSource
    | CodeSource
    | UcrSource
    | WfdbSource
    | EdfSource,
    Field(discriminator="kind"),
]
