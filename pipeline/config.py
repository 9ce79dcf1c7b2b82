"""Typed, validated params: the only module that reads ``params.yaml``.

``params.yaml`` → :func:`load_params` (with ``--set dotted.key=value`` overrides) → :class:`Params`
→ plain arguments for the library. Unknown keys, wrong types and impossible values fail here,
before any work, with the dotted key and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.signal.preprocess import SignalPlan
from pipeline.store.local import StorageSpec
from pipeline.store.root import StoreRoot

if TYPE_CHECKING:  # readers are imported only by the stages that read raw files (see dvc.yaml deps)
    from pipeline.landing.take import LandingTarget
    from pipeline.sources.base import SourceReader

SOURCE_NAMES = ("ptbxl", "cinc2017", "cinc2021", "ptb_diagnostic", "code", "ucr", "mitbih", "cpsc2021")


# Validation metrics pipeline.training.stage.val_metric_fn logs per task (as val_<name>).
VAL_METRICS: dict[str, tuple[str, ...]] = {
    "multilabel": ("macro_auroc",),
    "multiclass": ("f1_selected", "macro_auroc"),
    "reconstruction": ("auroc",),
}
# Model constructor arguments pipeline.training.stage.make_card fills in from the data.
FILLED_MODEL_KWARGS = frozenset({"n_leads", "n_classes", "in_channels", "length"})


class ConfigError(ValueError):
    """Invalid params: the message names the key and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sources -----------------------------------------------------------------------------------


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


# --- profiles ----------------------------------------------------------------------------------


class Storage(_Strict):
    dtype: Literal["int16", "float32"] = "int16"
    scale_mv: float = Field(default=0.001, gt=0, description="mV per stored integer step (int16 only)")
    records_per_chunk: int = Field(default=16, ge=1, le=4096)


class Quality(_Strict):
    max_nan_fraction: float = Field(default=0.01, ge=0, le=1)
    flat_ptp_mv: float = Field(default=0.02, ge=0, description="a lead whose peak-to-peak is below is flat")
    reject_flat: bool = True
    min_duration_s: float = Field(default=1.0, ge=0)


class Profile(_Strict):
    sources: tuple[str, ...]
    leads: tuple[str, ...] = Field(min_length=1)
    lead_aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    fs_hz: float | None = Field(default=None, gt=0)
    length_s: float | None = Field(default=None, gt=0)
    length_samples: int | None = Field(default=None, gt=0)
    crop: Literal["start", "center"] = "start"
    baseline_hz: float | None = Field(default=0.5, gt=0)
    notch_hz: Literal[50, 60] | None = 50
    notch_q: float = Field(default=30.0, gt=0)
    bandpass_hz: tuple[float, float] | None = None
    filter_order: int = Field(default=2, ge=1, le=8)
    normalise: Literal["none", "zscore", "minmax"] = "none"
    storage: Storage = Storage()
    quality: Quality = Quality()
    vocabulary: tuple[str, ...] | None = None
    label_merge: dict[str, str] = Field(
        default_factory=dict, description="unified label → profile label, for labels outside its vocabulary"
    )

    @model_validator(mode="after")
    def _check(self) -> Profile:
        if (self.length_s is None) == (self.length_samples is None):
            raise ValueError("set exactly one of length_s (seconds, needs fs_hz) or length_samples")
        if self.length_s is not None and self.fs_hz is None:
            raise ValueError("length_s needs fs_hz; with native sampling use length_samples")
        filters = self.baseline_hz or self.notch_hz or self.bandpass_hz
        if self.fs_hz is None and filters:
            raise ValueError(
                "filters need a known fs_hz: set fs_hz or baseline_hz/notch_hz/bandpass_hz: null"
            )
        if self.fs_hz is not None:
            nyq = self.fs_hz / 2
            if self.notch_hz is not None and self.notch_hz >= nyq:
                raise ValueError(f"notch_hz {self.notch_hz} must be below Nyquist ({nyq} Hz at fs_hz)")
            if self.bandpass_hz is not None:
                lo, hi = self.bandpass_hz
                if not 0 < lo < hi < nyq:
                    raise ValueError(f"bandpass_hz must satisfy 0 < low < high < {nyq} (Nyquist)")
        return self

    @property
    def length(self) -> int:
        """Output length in samples at ``fs_hz``."""
        if self.length_samples is not None:
            return self.length_samples
        assert self.length_s is not None and self.fs_hz is not None
        return int(round(self.length_s * self.fs_hz))


# --- stages ------------------------------------------------------------------------------------


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


class ModelTrainParams(_Strict):
    """One model family's training: what it learns from (``profile``, ``classes``) and how."""

    profile: str
    kind: Literal["resnet1d", "autoencoder", "crnn"]
    task: Literal["multilabel", "multiclass", "reconstruction"]
    classes: tuple[str, ...] | None = Field(
        default=None, description="output classes, a subset of the profile vocabulary (null: all of it)"
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
    num_workers: int = Field(default=0, ge=0, le=64)
    shuffle_buffer: int = Field(default=512, ge=1)
    early_stopping: StoppingParams = StoppingParams()

    @model_validator(mode="after")
    def _check(self) -> ModelTrainParams:
        if self.task == "reconstruction" and self.normal_class is None:
            raise ValueError("task reconstruction needs normal_class (the class the autoencoder learns)")
        if self.task != "reconstruction" and self.normal_class is not None:
            raise ValueError(f"normal_class is only for task reconstruction, not {self.task}")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must not exceed epochs ({self.epochs})")
        return self


class TrainParams(_Strict):
    out_dir: Path = Path("models")
    live_dir: Path = Path("dvclive")
    models: dict[str, ModelTrainParams] = Field(default_factory=dict)


class AnomalyThresholdParams(_Strict):
    method: Literal["percentile", "mean_k_sigma"] = "percentile"
    p: float = Field(default=99.0, ge=0, le=100)
    k: float = Field(default=3.0, gt=0)


class EvaluateParams(_Strict):
    out_dir: Path = Path("eval")
    batch_size: int = Field(default=64, ge=1)
    bootstrap: int = Field(default=200, ge=0)
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 0
    anomaly_threshold: AnomalyThresholdParams = AnomalyThresholdParams()
    n_strips: int = Field(default=4, ge=0, le=16)


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
        self._check_landing()
        return self

    def _check_landing(self) -> None:
        # Only self-contained record kinds can land: PTB-XL, CinC 2017, CODE and UCR keep labels or
        # signals in shared tables that a landed file could only half-update.
        from pipeline.landing.take import LANDING_KINDS

        for name in self.landing.sources:
            if name not in self.sources:
                raise ValueError(f"landing.sources names {name!r}, not in sources ({sorted(self.sources)})")
            kind = self.sources[name].kind
            if kind not in LANDING_KINDS:
                raise ValueError(
                    f"landing.sources: {name!r} is a {kind} source, whose labels or signals live in shared "
                    "tables; the landing zone takes self-contained record kinds only "
                    f"({', '.join(LANDING_KINDS)})"
                )

    def _check_model(self, name: str, m: ModelTrainParams) -> None:
        where = f"train.models.{name}"
        if m.profile not in self.profiles:
            raise ValueError(f"{where}.profile {m.profile!r} is not in profiles ({sorted(self.profiles)})")
        vocab = self.vocabulary(m.profile)
        named = [*(m.classes or ()), *(m.f1_classes or ()), *([m.normal_class] if m.normal_class else [])]
        unknown = [c for c in named if c not in vocab]
        if unknown:
            raise ValueError(f"{where}: {unknown} not in the {m.profile} vocabulary {list(vocab)}")
        if m.f1_classes and not set(m.f1_classes) <= set(m.classes or vocab):
            raise ValueError(f"{where}.f1_classes must be among its classes")
        logged = ("train_loss", "val_loss", "lr", *(f"val_{k}" for k in VAL_METRICS[m.task]))
        if m.early_stopping.metric not in logged:
            raise ValueError(
                f"{where}.early_stopping.metric {m.early_stopping.metric!r} is never logged for a "
                f"{m.task} model; use one of {list(logged)}"
            )
        from pipeline.models import constructor_kwargs  # imports torch: only for model sections

        known = constructor_kwargs(m.kind) - FILLED_MODEL_KWARGS
        unknown = sorted(set(m.model) - known)
        if unknown:
            keys = ", ".join(f"{where}.model.{k}" for k in unknown)
            raise ValueError(f"{keys}: not an argument of the {m.kind} model (it takes {sorted(known)})")

    def model_classes(self, name: str) -> tuple[str, ...]:
        """Output classes of model ``name`` (empty for a reconstruction model)."""
        m = self.train.models[name]
        if m.task == "reconstruction":
            return ()
        return m.classes or self.vocabulary(m.profile)

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


# --- loading -----------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"sources.ptbxl.root=/data/ptb-xl"`` → (["sources", "ptbxl", "root"], "/data/ptb-xl").

    The value is parsed as a YAML scalar/flow value, so ``1``, ``true``, ``null`` and ``[I, II]`` work.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected dotted.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML: {exc}") from exc
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set each ``dotted.key=value`` in a nested dict (creating intermediate dicts)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:  # a null or absent section is set key by key
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[: i + 1])} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


_SOURCE_KINDS = frozenset({"ptbxl", "cinc2017", "cinc2021", "ptb_diagnostic", "code", "ucr", "wfdb"})
# A cross-field check's message starts with the field it is about ("notch_hz 60 must be below ...").
_LEADING_FIELD = re.compile(r"(?:Value error, )?([a-z][a-z0-9_]*)[ :(]")


def _field_names() -> frozenset[str]:
    seen: set[str] = set()
    todo: list[type[BaseModel]] = [_Strict]
    while todo:
        cls = todo.pop()
        seen.update(cls.model_fields)
        todo.extend(cls.__subclasses__())
    return frozenset(seen)


def _dotted_key(err: Any) -> str:
    """The dotted params key of a validation error: without the tag pydantic inserts for a source's
    kind, and ending with the field a cross-field check names first in its message."""
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-after")]
    if len(loc) >= 3 and loc[0] == "sources" and loc[2] in _SOURCE_KINDS:
        del loc[2]
    lead = _LEADING_FIELD.match(str(err["msg"]))
    if (
        err["type"] == "value_error"
        and lead
        and lead.group(1) in _field_names()
        and loc[-1:] != [lead.group(1)]
    ):
        loc.append(lead.group(1))
    return ".".join(loc)


def _format_error(exc: ValidationError, origin: str) -> str:
    lines = [f"{origin}: invalid params ({exc.error_count()} problem(s)):"]
    for err in exc.errors():
        loc = _dotted_key(err)
        got = err.get("input")
        got_s = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"  - {loc or '<top level>'}: {msg}{got_s}")
    return "\n".join(lines)


def params_from_dict(data: Mapping[str, Any], origin: str = "params", base_dir: Path | None = None) -> Params:
    """Validate a params mapping; relative paths are resolved against ``base_dir``."""
    try:
        params = Params.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, origin)) from None
    return _resolve_paths(params, base_dir) if base_dir is not None else params


def require_local_store(params: Params, command: str) -> None:
    """Commands that read store folders directly (verify, lineage, landing) refuse an object store."""
    if params.ingest.object_store is not None:
        raise ConfigError(
            f"ingest.object_store: `{command}` works on local stores (ingest.store) only, and "
            f"ingest.object_store is set to {params.ingest.object_store.url}; run it without that setting"
        )


def store_root(cfg: IngestParams, smoke: bool = False) -> StoreRoot:
    """Where the profile stores live: ``ingest.object_store`` when set, else the local folders."""
    if cfg.object_store is not None:
        root = StoreRoot.of(cfg.object_store.url, cfg.object_store.options)
        return root.child("_smoke") if smoke else root
    return StoreRoot.of(cfg.smoke_store if smoke else cfg.store)


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p)


def _resolve_paths(params: Params, base: Path) -> Params:
    sources = {n: s.model_copy(update={"root": _resolve(base, s.root)}) for n, s in params.sources.items()}
    ingest = params.ingest.model_copy(
        update={
            "store": _resolve(base, params.ingest.store),
            "smoke_store": _resolve(base, params.ingest.smoke_store),
        }
    )
    labels = params.labels.model_copy(update={"tables_dir": _resolve(base, params.labels.tables_dir)})
    demo = params.demo.model_copy(update={"out": _resolve(base, params.demo.out)})
    split = params.split.model_copy(update={"out_dir": _resolve(base, params.split.out_dir)})
    train = params.train.model_copy(
        update={
            "out_dir": _resolve(base, params.train.out_dir),
            "live_dir": _resolve(base, params.train.live_dir),
        }
    )
    evaluate = params.evaluate.model_copy(update={"out_dir": _resolve(base, params.evaluate.out_dir)})
    export = params.export.model_copy(update={"out_dir": _resolve(base, params.export.out_dir)})
    parity = params.parity.model_copy(
        update={
            "out_dir": _resolve(base, params.parity.out_dir),
            "library": _resolve(base, params.parity.library),
        }
    )
    landing = params.landing.model_copy(
        update={k: _resolve(base, getattr(params.landing, k)) for k in ("root", "ledger", "reports")}
    )
    return params.model_copy(
        update={"sources": sources, "ingest": ingest, "labels": labels, "demo": demo, "split": split,
                "train": train, "evaluate": evaluate, "export": export, "parity": parity,
                "landing": landing}
    )  # fmt: skip


def load_params(path: Path = Path("params.yaml"), overrides: Sequence[str] = ()) -> Params:
    """Read, override and validate a params file; paths resolve relative to the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read params file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    data = apply_overrides(data, overrides)
    return params_from_dict(data, origin=str(path), base_dir=path.resolve().parent)


# --- params → plain library arguments ----------------------------------------------------------

_NOT_READER_OPTIONS = {"kind", "root", "enabled", "label_table"}


def reader_options(src: _SourceBase) -> dict[str, Any]:
    """The keyword options of a source's reader (everything but kind/root/enabled/label_table)."""
    opts = src.model_dump(exclude=_NOT_READER_OPTIONS)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}


def signal_plan(profile: Profile) -> SignalPlan:
    q = profile.quality
    return SignalPlan(
        leads=profile.leads,
        lead_aliases=tuple(sorted((k, tuple(v)) for k, v in profile.lead_aliases.items())),
        fs_hz=profile.fs_hz,
        length=profile.length,
        crop=profile.crop,
        baseline_hz=profile.baseline_hz,
        notch_hz=float(profile.notch_hz) if profile.notch_hz is not None else None,
        notch_q=profile.notch_q,
        bandpass_hz=profile.bandpass_hz,
        filter_order=profile.filter_order,
        normalise=profile.normalise,
        max_nan_fraction=q.max_nan_fraction,
        flat_ptp_mv=q.flat_ptp_mv,
        reject_flat=q.reject_flat,
        min_duration_s=q.min_duration_s,
    )


def storage_spec(profile: Profile) -> StorageSpec:
    s = profile.storage
    return StorageSpec(dtype=s.dtype, scale_mv=s.scale_mv, records_per_chunk=s.records_per_chunk)


def build_readers(params: Params, names: Sequence[str]) -> dict[str, SourceReader]:
    """Readers for the named sources (disabled sources are left out)."""
    from pipeline.sources.registry import make_reader

    readers: dict[str, SourceReader] = {}
    for name in names:
        src = params.sources[name]
        if src.enabled:
            readers[name] = make_reader(name, src.kind, src.root, reader_options(src))
    return readers


def landing_targets(params: Params) -> list[LandingTarget]:
    """One target per ``landing.sources`` entry: its kind, raw root and required annotation file."""
    from pipeline.landing.take import LandingTarget

    targets = []
    for name in params.landing.sources:
        src = params.sources[name]
        required = isinstance(src, WfdbSource) and params.landing.require_annotations
        ann = src.annotation_ext if isinstance(src, WfdbSource) and required else None
        targets.append(LandingTarget(source=name, kind=src.kind, dest_root=src.root, annotation_ext=ann))
    return targets


def landing_profiles(params: Params) -> list[str]:
    """Profiles fed by at least one landing source, in params order."""
    fed = set(params.landing.sources)
    return [p for p, prof in params.profiles.items() if fed & set(prof.sources)]
