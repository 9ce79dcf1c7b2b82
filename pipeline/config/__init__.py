"""Typed, validated params: the only package that reads ``params.yaml``.

``params.yaml`` → :func:`load_params` (with ``--set dotted.key=value`` overrides) → :class:`Params`
→ plain arguments for the library. Unknown keys, wrong types and impossible values fail here,
before any work, with the dotted key and what was expected. One params model per section:
``sources`` (:mod:`.sources`), ``profiles`` (:mod:`.profiles`), the stage sections (:mod:`.stages`),
the whole file (:mod:`.params`), reading it (:mod:`.load`).

Loading params imports only pydantic and yaml. :mod:`pipeline.config.build` turns params into the
library's objects (SignalPlan, StorageSpec, StoreRoot) and is imported only by the commands that
need them; every library settings object is built by :func:`pipeline.config.feed.from_params` (one
constructor call from a section's dump, failing when params do not feed one of its fields). Checks
that need other packages run where those packages are used: a model section's constructor arguments
in the model commands (pipeline.cli.models), which source kinds can land in ``ecgpipe land``/``serve``
(flows.landing).

Each source section inherits its reader's options model (:mod:`pipeline.sources.options`); the
readers are built from params by :func:`pipeline.sources.registry.build_readers`.

May import: pydantic, yaml, ``pipeline.sources.options`` (pydantic only); ``build`` also
``pipeline.signal`` and ``pipeline.store``. It sits above the stage packages (it may import them) but
imports none today: params stay plain values that the CLI hands to them.
"""

from __future__ import annotations

from pipeline.config.base import ConfigError
from pipeline.config.load import apply_overrides, load_params, params_from_dict, parse_override
from pipeline.config.params import Params, require_local_store, require_source_roots
from pipeline.config.profiles import Profile, Quality, Storage
from pipeline.config.sources import SOURCE_NAMES, SourceConfig, WfdbSource
from pipeline.config.stages import (
    FILLED_MODEL_KWARGS,
    VAL_METRICS,
    DeployParams,
    IngestParams,
    LandingParams,
    ModelTrainParams,
    ObjectStoreParams,
)

__all__ = [
    "FILLED_MODEL_KWARGS",
    "SOURCE_NAMES",
    "VAL_METRICS",
    "ConfigError",
    "DeployParams",
    "IngestParams",
    "LandingParams",
    "ModelTrainParams",
    "ObjectStoreParams",
    "Params",
    "Profile",
    "Quality",
    "SourceConfig",
    "Storage",
    "WfdbSource",
    "apply_overrides",
    "load_params",
    "params_from_dict",
    "parse_override",
    "require_local_store",
    "require_source_roots",
]
