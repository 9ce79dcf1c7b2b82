"""``Params``: the whole params file, with the checks that span sections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import field_validator, model_validator

from pipeline.config.base import ConfigError, _Strict
from pipeline.config.profiles import Profile
from pipeline.config.sources import SourceConfig
from pipeline.config.stages import (
    FIELD_SCORE_TASKS,
    VAL_METRICS,
    CTrainParams,
    DemoParams,
    DeployParams,
    EvaluateParams,
    ExportParams,
    IngestParams,
    LabelParams,
    LandingParams,
    ModelTrainParams,
    ParityParams,
    SplitParams,
    TrainParams,
)
from pipeline.labels.schemes import DEFAULT_SCHEME, load_scheme


class Params(_Strict):
    demo: DemoParams = DemoParams()
    ingest: IngestParams = IngestParams()
    labels: LabelParams = LabelParams()
    sources: dict[str, SourceConfig]
    profiles: dict[str, Profile]
    split: SplitParams = SplitParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    export: ExportParams = ExportParams()
    parity: ParityParams = ParityParams()
    ctrain: CTrainParams = CTrainParams()
    landing: LandingParams = LandingParams()
    deploy: DeployParams = DeployParams()

    @model_validator(mode="after")
    def _cross_check(self) -> Params:
        for pname, prof in self.profiles.items():
            for s in prof.sources:
                if s not in self.sources:
                    raise ValueError(
                        f"profiles.{pname}.sources names {s!r}, not in sources ({sorted(self.sources)})"
                    )
            vocab = prof.vocabulary or self.labels.vocabulary
            if len(set(vocab)) != len(vocab):
                raise ValueError(f"profiles.{pname}: vocabulary has duplicates: {list(vocab)}")
        for mname, m in self.train.models.items():
            self._check_model(mname, m)
        unknown = [m for m in self.parity.models if m not in self.train.models]
        if unknown:
            raise ValueError(f"parity.models {unknown} are not in train.models ({sorted(self.train.models)})")
        for name in self.ctrain.models:
            if name not in self.train.models or self.train.models[name].kind != "autoencoder":
                raise ValueError(f"ctrain.models: {name!r} is not an autoencoder in train.models (C training "
                                 "covers the autoencoder family only)")  # fmt: skip
        self._check_landing()
        self._check_field_scores()
        return self

    def _check_field_scores(self) -> None:
        for name, family in self.evaluate.field_score.items():
            if name not in self.train.models:
                raise ValueError(
                    f"evaluate.field_score names {name!r}, not in train.models ({sorted(self.train.models)})"
                )
            task = self.train.models[name].task
            if task not in FIELD_SCORE_TASKS[family]:
                raise ValueError(
                    f"evaluate.field_score.{name}: {family!r} scores {list(FIELD_SCORE_TASKS[family])} "
                    f"models, train.models.{name} is {task}"
                )

    def _check_landing(self) -> None:
        # Which kinds can land at all is the landing package's rule: flows.landing.landing_targets checks it
        # when `ecgpipe land` or `serve` starts, so loading params does not import the landing code.
        for name in self.landing.sources:
            if name not in self.sources:
                raise ValueError(f"landing.sources names {name!r}, not in sources ({sorted(self.sources)})")

    def _check_model(self, name: str, m: ModelTrainParams) -> None:
        where = f"train.models.{name}"
        if m.profile not in self.profiles:
            raise ValueError(f"{where}.profile {m.profile!r} is not in profiles ({sorted(self.profiles)})")
        logged = ("train_loss", "val_loss", "lr", *(f"val_{k}" for k in VAL_METRICS[m.task]))
        if m.early_stopping.metric not in logged:
            raise ValueError(
                f"{where}.early_stopping.metric {m.early_stopping.metric!r} is never logged for a "
                f"{m.task} model; use one of {list(logged)}"
            )
        if m.labels != DEFAULT_SCHEME:
            # the scheme's vocabulary (and so the classes) is checked when the model's targets are
            # built: tables_dir is resolved only after validation. Here: the store will hold it.
            if self.labels.schemes is not None and m.labels not in self.labels.schemes:
                listed = list(self.labels.schemes)
                raise ValueError(f"{where}.labels {m.labels!r} is not derived: labels.schemes lists {listed}")
            return
        vocab = self.vocabulary(m.profile)
        named = [*(m.classes or ()), *(m.f1_classes or ()), *([m.normal_class] if m.normal_class else [])]
        unknown = [c for c in named if c not in vocab]
        if unknown:
            raise ValueError(f"{where}: {unknown} not in the {m.profile} vocabulary {list(vocab)}")
        if m.f1_classes and not set(m.f1_classes) <= set(m.classes or vocab):
            raise ValueError(f"{where}.f1_classes must be among its classes")

    def model_vocabulary(self, name: str) -> tuple[str, ...]:
        """The label columns model ``name`` takes its classes from: its scheme's vocabulary (the
        profile's for the default scheme, which may subset or merge it)."""
        m = self.train.models[name]
        if m.labels == DEFAULT_SCHEME:
            return self.vocabulary(m.profile)
        return load_scheme(self.labels.tables_dir, m.labels).vocabulary

    def model_classes(self, name: str) -> tuple[str, ...]:
        """Output classes of model ``name`` (empty for a reconstruction model)."""
        m = self.train.models[name]
        if m.task == "reconstruction":
            return ()
        return m.classes or self.model_vocabulary(name)

    @field_validator("sources")
    @classmethod
    def _no_empty(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("at least one source is required")
        return v

    def label_tables_for(self) -> dict[str, str]:
        """Source name → the ``source`` column of the label rows it uses (default: its kind)."""
        return {n: s.label_table or s.kind for n, s in self.sources.items()}

    def vocabulary(self, profile: str) -> tuple[str, ...]:
        return self.profiles[profile].vocabulary or self.labels.vocabulary


def require_local_store(params: Params, command: str) -> None:
    """Commands that read store folders directly (verify, lineage, landing) refuse an object store."""
    if params.ingest.object_store is not None:
        raise ConfigError(
            f"ingest.object_store: `{command}` works on local stores (ingest.store) only, and "
            f"ingest.object_store is set to {params.ingest.object_store.url}; run it without that setting"
        )


def require_source_roots(params: Params, profiles: Sequence[str]) -> None:
    """Refuse an ingest whose sources have a root that must exist and does not (a mistyped
    ``--set sources.<name>.root=...``): one error naming every such key. Roots left at the default
    ``data/raw/<name>`` may be absent: those sources are skipped with a notice; so may the roots of
    ``landing.sources``, which the landing flow creates when their first records land."""
    names = sorted({s for p in profiles for s in params.profiles[p].sources} - set(params.landing.sources))
    bad = [
        n
        for n in names
        if params.sources[n].enabled and params.sources[n].required and not params.sources[n].root.is_dir()
    ]
    if bad:
        lines = [
            f"sources.{n}.root: {params.sources[n].root} does not exist or is not a folder; expected the "
            f"{params.sources[n].kind} source's folder"
            for n in bad
        ]
        hint = "fix the path, or leave a source out with --set sources.<name>.enabled=false"
        raise ConfigError("; ".join(lines) + f" ({hint})")
