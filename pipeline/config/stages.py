"""The stage sections of params: ingest, labels, demo, split, train, evaluate, export, parity, ctrain,
landing and deploy (one model each)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import _Strict
from pipeline.labels.schemes import DEFAULT_SCHEME, scheme_names

# Validation metrics pipeline.training.stage.val_metric_fn logs per task (as val_<name>).
VAL_METRICS: dict[str, tuple[str, ...]] = {
    "multilabel": ("macro_auroc",),
    "multiclass": ("f1_selected", "macro_auroc"),
    "reconstruction": ("auroc",),
}
# Model constructor arguments pipeline.training.stage.make_card fills in from the data.
FILLED_MODEL_KWARGS = frozenset({"n_leads", "n_classes", "in_channels", "length"})


class ObjectStoreParams(_Strict):
    """Shard stores on object storage instead of ``ingest.store`` (pipeline.store.remote)."""

    url: str  # s3://bucket/prefix: each profile's store under <url>/<profile>, smoke runs under <url>/_smoke
    options: dict[str, Any] = Field(default_factory=dict)  # fsspec/s3fs options, e.g. endpoint_url

    @field_validator("url")
    @classmethod
    def _is_object_url(cls, v: str) -> str:
        scheme, sep, rest = v.partition("://")
        if not sep or not scheme or not rest.strip("/") or scheme == "file":
            raise ValueError(f"expected an object-store URL such as s3://bucket/prefix, got {v!r}")
        return v.rstrip("/")

    @field_validator("options")
    @classmethod
    def _no_secrets(cls, v: dict[str, Any]) -> dict[str, Any]:
        secret = sorted(k for k in v if k in {"key", "secret", "token", "aws_secret_access_key"})
        if secret:
            raise ValueError(
                f"credentials {secret} do not belong in params (they would be committed); "
                "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment"
            )
        return v


class IngestParams(_Strict):
    store: Path = Path("data/shards")
    smoke_store: Path = Path("data/shards_smoke")
    object_store: ObjectStoreParams | None = None
    task_runner: Literal["threads", "processes", "dask"] = "threads"
    workers: int = Field(default=2, ge=1, le=256)
    dask_address: str | None = None
    batch_units: int = Field(default=256, ge=1, le=100_000)
    retries: int = Field(default=2, ge=0, le=10)
    retry_delay_s: float = Field(default=1.0, ge=0)


class LabelParams(_Strict):
    vocabulary: tuple[str, ...] = ("NORM", "AF", "MI", "BBB", "OTHER", "NOISY")
    tables_dir: Path = Path("data/labels")
    ptbxl_min_likelihood: float = Field(default=0.0, ge=0, le=100)
    unmapped: Literal["ignore", "OTHER"] = "ignore"
    # label schemes derived beside the default (coarse) one; None: every scheme under tables_dir/schemes
    schemes: tuple[str, ...] | None = None

    def derived_schemes(self) -> tuple[str, ...]:
        """The schemes each store keeps, the default first (names of ``tables_dir/schemes/*``)."""
        if self.schemes is None:
            return tuple(scheme_names(self.tables_dir)) or (DEFAULT_SCHEME,)
        return (DEFAULT_SCHEME, *dict.fromkeys(s for s in self.schemes if s != DEFAULT_SCHEME))


class DemoParams(_Strict):
    out: Path = Path("data/raw")
    seed: int = 0
    n_ptbxl: int = Field(default=240, ge=0)
    n_cinc2017: int = Field(default=240, ge=0)
    n_ucr: int = Field(default=300, ge=0)


class SplitParams(_Strict):
    out_dir: Path = Path("data/splits")
    seed: int = 0
    fractions: dict[str, float] = Field(default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15})
    fold_key: str | None = "strat_fold"
    fold_map: dict[str, tuple[int, ...]] = Field(
        default_factory=lambda: {"train": (1, 2, 3, 4, 5, 6, 7, 8), "val": (9,), "test": (10,)}
    )
    group_by_source: bool = True

    @model_validator(mode="after")
    def _check(self) -> SplitParams:
        if set(self.fractions) != {"train", "val", "test"}:
            raise ValueError(f"fractions needs exactly train, val and test, got {sorted(self.fractions)}")
        if any(v <= 0 for v in self.fractions.values()):
            raise ValueError(f"fractions must all be > 0, got {self.fractions}")
        if abs(sum(self.fractions.values()) - 1.0) > 1e-6:
            raise ValueError(f"fractions must sum to 1, got {sum(self.fractions.values())}")
        return self


class StoppingParams(_Strict):
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int | None = Field(default=None, ge=1)
    min_delta: float = Field(default=0.0, ge=0)


class AugmentParams(_Strict):
    """Training-batch augmentation, each knob off by default (``pipeline.training.augment``)."""

    crop_min: float = Field(default=1.0, gt=0, le=1, description="keep a random span of U(crop_min, 1) * T")
    shift_max: float = Field(default=0.0, ge=0, lt=1, description="random shift up to this fraction of T")
    scale: float = Field(default=0.0, ge=0, lt=1, description="amplitude times U(1 - scale, 1 + scale)")
    noise_mv: float = Field(default=0.0, ge=0, description="Gaussian noise std, mV")
    mixup_alpha: float = Field(default=0.0, ge=0, description="mixup Beta(alpha, alpha); 0: off")


class ModelTrainParams(_Strict):
    """One model family's training: what it learns from (``profile``, ``classes``) and how."""

    profile: str
    kind: Literal["resnet1d", "autoencoder", "crnn"]
    task: Literal["multilabel", "multiclass", "reconstruction"]
    labels: str = Field(
        default=DEFAULT_SCHEME,
        description="label scheme learnt (data/labels/schemes/<name>); coarse: the profile's",
    )
    classes: tuple[str, ...] | None = Field(
        default=None, description="output classes, a subset of the scheme's vocabulary (null: all of it)"
    )
    normal_class: str | None = Field(default=None, description="reconstruction: the class trained on")
    f1_classes: tuple[str, ...] | None = None
    model: dict[str, Any] = Field(default_factory=dict, description="model constructor kwargs")
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-2, ge=0)
    warmup_epochs: float = Field(default=0.0, ge=0)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    accumulation_steps: int = Field(default=1, ge=1)
    grad_clip: float | None = Field(default=1.0, gt=0)
    class_weights: bool = True
    class_weight_power: float = Field(
        default=1.0, ge=0, le=1, description="weights ** power: 1 balanced, 0.5 softened (rare classes)"
    )
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    deterministic: bool = True
    threads: int = Field(
        default=2, ge=1, le=256, description="torch CPU threads while training: same count, same weights"
    )
    num_workers: int = Field(default=0, ge=0, le=64)
    shuffle_buffer: int = Field(default=512, ge=1)
    sampler: Literal["shuffle", "balanced"] = Field(
        default="shuffle", description="balanced: records drawn with weight count(class) ** -balance_power"
    )
    balance_power: float = Field(default=1.0, ge=0, le=1)
    augment: AugmentParams = AugmentParams()
    early_stopping: StoppingParams = StoppingParams()

    @model_validator(mode="after")
    def _check(self) -> ModelTrainParams:
        if self.task == "reconstruction" and self.normal_class is None:
            raise ValueError("task reconstruction needs normal_class (the class the autoencoder learns)")
        if self.task != "reconstruction" and self.normal_class is not None:
            raise ValueError(f"normal_class is only for task reconstruction, not {self.task}")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must not exceed epochs ({self.epochs})")
        if self.task == "reconstruction" and (self.augment != AugmentParams() or self.sampler != "shuffle"):
            raise ValueError(
                "augment and the balanced sampler are for classification tasks, not reconstruction"
            )
        return self


class TrainParams(_Strict):
    out_dir: Path = Path("models")
    live_dir: Path = Path("dvclive")
    models: dict[str, ModelTrainParams] = Field(default_factory=dict)


class AnomalyThresholdParams(_Strict):
    method: Literal["percentile", "mean_k_sigma"] = "percentile"
    p: float = Field(default=99.0, ge=0, le=100)
    k: float = Field(default=3.0, gt=0)


# pipeline.evaluation.scheme_scores.FIELD_FAMILIES (not imported: loading params stays light); the
# tasks each family scores, checked against train.models.<m>.task when params load.
FieldScoreFamily = Literal["ptbxl", "cinc2021", "cinc2017", "aami", "multilabel_auroc"]
FIELD_SCORE_TASKS: dict[str, tuple[str, ...]] = {
    "ptbxl": ("multilabel", "multiclass"), "multilabel_auroc": ("multilabel", "multiclass"),
    "cinc2021": ("multilabel",), "cinc2017": ("multiclass",), "aami": ("multiclass",),
}  # fmt: skip


class EvaluateParams(_Strict):
    """``field_score``: model name → the score family the field uses for its label scheme (reported
    besides the standard metrics; a model not named gets none)."""

    out_dir: Path = Path("eval")
    batch_size: int = Field(default=64, ge=1)
    bootstrap: int = Field(default=200, ge=0)
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 0
    anomaly_threshold: AnomalyThresholdParams = AnomalyThresholdParams()
    n_strips: int = Field(default=4, ge=0, le=16)
    field_score: dict[str, FieldScoreFamily] = Field(default_factory=dict)


class ExportParams(_Strict):
    out_dir: Path = Path("export")
    opset: int = Field(default=17, ge=13)
    calibration_records: int = Field(default=256, ge=1)
    latency_warmup: int = Field(default=10, ge=0)
    latency_repeats: int = Field(default=100, ge=1)


class ParityParams(_Strict):
    """C kernels vs PyTorch: ``ecgpipe cexport`` writes ``<out_dir>/<model>/weights.ecgk``,
    ``ecgpipe parity`` compares every layer on the test split."""

    models: tuple[str, ...] = ("resnet", "autoencoder", "crnn")
    out_dir: Path = Path("parity")
    library: Path = Path("ckernels/build/libecgk.so")
    atol: float = Field(default=1e-5, gt=0)
    rtol: float = Field(default=1e-4, ge=0)
    metric_atol: float = Field(default=1e-4, ge=0)
    max_records: int | None = Field(default=None, ge=1)  # null: the whole test split
    batch_size: int = Field(default=16, ge=1)


class CTrainParams(_Strict):
    """Training in C vs PyTorch (``ecgpipe ctrain <model>``): both train the model from the same seeded
    initial weights and batch order; ``<out_dir>/<model>/report.json`` holds gradient errors on a real
    batch, both loss curves and both test AUROCs. Tolerances: docs/ckernels.md "Training in C"."""

    models: tuple[str, ...] = ("autoencoder",)
    out_dir: Path = Path("ctrain")
    epochs: int | None = Field(default=None, ge=1)  # null: the model's train.models.<m>.epochs
    grad_atol: float = Field(default=1e-7, ge=0)
    grad_rtol: float = Field(default=1e-3, ge=0)
    act_atol: float = Field(default=1e-5, ge=0)
    act_rtol: float = Field(default=1e-4, ge=0)
    exact_steps: int = Field(default=20, ge=1)  # the first steps' losses: loss_exact_rtol
    loss_exact_rtol: float = Field(default=1e-4, ge=0)
    loss_rtol: float = Field(default=0.15, ge=0)  # every step's loss (free-running drift: docs)
    auroc_atol: float = Field(default=0.01, ge=0)


_CRON_FIELD = r"[0-9A-Za-z*/,?#LW-]+"


class LandingParams(_Strict):
    """Landing zone: files dropped into ``<root>/<source>/`` are moved into ``sources.<source>.root``
    once every file of a record is complete and has not changed for ``settle_s`` seconds."""

    root: Path = Path("data/landing")
    ledger: Path = Path("data/landing_ledger.sqlite")
    reports: Path = Path("data/landing_reports")
    sources: tuple[str, ...] = ("cinc2021", "ptb_diagnostic", "mitbih", "cpsc2021")
    settle_s: float = Field(default=30.0, ge=0, description="a file modified more recently is still arriving")
    verify_checksums: bool = True  # WFDB header checksums (formats 16, 61, 160, 212, 24, 32, 80)
    require_annotations: bool = True  # wfdb sources: a record waits for <record>.<annotation_ext> too


class DeployParams(_Strict):
    """The scheduled deployment (``ecgpipe serve`` and ``prefect.yaml``): landing → ingest → dvc repro."""

    name: str = Field(default="landing-nightly", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    interval_s: float | None = Field(default=None, gt=0, description="replaces cron when set (demos, tests)")
    concurrency_limit: int = Field(default=1, ge=1)
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = "ENQUEUE"
    work_pool: str = "ecgpipe-process"
    repro: bool = True  # run `dvc repro` after ingest

    @field_validator("cron")
    @classmethod
    def _cron_fields(cls, v: str) -> str:

        fields = v.split()
        if len(fields) not in (5, 6) or not all(re.fullmatch(_CRON_FIELD, f) for f in fields):
            raise ValueError(f"expected a cron expression of 5 fields like '0 2 * * *', got {v!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'"
            ) from None
        return v
