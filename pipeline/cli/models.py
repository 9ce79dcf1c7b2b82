"""``ecgpipe split | train | evaluate <model>``: the model-side DVC stages.

Each command turns its params section into arguments for the library; the library's settings objects
(``TrainConfig``, ``LoaderSettings``, ``EvalSettings``) are built from the section's dump by
:func:`pipeline.config.feed.from_params`, never copied field by field. Paths:
``<split.out_dir>/<model>.csv`` (index), ``<train.out_dir>/<model>/`` (checkpoints),
``<train.live_dir>/<model>/`` (per-epoch metrics and plots, kept apart from the checkpoints so DVC can
track them as metrics and plots), ``<evaluate.out_dir>/<model>/`` (metrics, report, rule, plots).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # config loads pydantic, the rest torch: `ecgpipe train --help` needs neither
    from pipeline.config import ModelTrainParams, Params
    from pipeline.dataset.targets import Targets
    from pipeline.evaluation.evaluate import EvalSettings
    from pipeline.training.options import TrainConfig
    from pipeline.training.stage import LoaderSettings

log = logging.getLogger(__name__)


def index_path(params: Params, model: str) -> Path:
    return params.split.out_dir / f"{model}.csv"


def checkpoint_dir(params: Params, model: str) -> Path:
    return params.train.out_dir / model


def live_dir(params: Params, model: str) -> Path:
    return params.train.live_dir / model


def eval_dir(params: Params, model: str) -> Path:
    return params.evaluate.out_dir / model


def model_params(params: Params, model: str) -> ModelTrainParams:
    """Model ``model``'s train section, its constructor arguments checked (:func:`check_model_args`)."""
    from pipeline.config import ConfigError

    if model not in params.train.models:
        known = ", ".join(params.train.models) or "none"
        raise ConfigError(f"model {model!r} is not in train.models (known: {known})")
    check_model_args(params, model)
    return params.train.models[model]


def check_model_args(params: Params, model: str) -> None:
    """Every key of ``train.models.<model>.model`` must be an argument of its family's constructor.

    Checked here, by the commands that build models, rather than when params load: the constructor
    signatures are only known by importing the models (torch), which the other commands never do.
    """
    from pipeline.config import FILLED_MODEL_KWARGS, ConfigError
    from pipeline.models import constructor_kwargs

    m = params.train.models[model]
    known = constructor_kwargs(m.kind) - FILLED_MODEL_KWARGS
    unknown = sorted(set(m.model) - known)
    if unknown:
        where = f"train.models.{model}"
        keys = ", ".join(f"{where}.model.{k}" for k in unknown)
        raise ConfigError(f"{keys}: not an argument of the {m.kind} model (it takes {sorted(known)})")


def targets_for(params: Params, model: str) -> Targets:
    from pipeline.config import ConfigError
    from pipeline.dataset.targets import Targets

    m = model_params(params, model)
    try:
        vocabulary, classes = params.model_vocabulary(model), params.model_classes(model)
    except ValueError as exc:  # LabelTableError: the scheme's files name file and line
        raise ConfigError(f"train.models.{model}.labels: {exc}") from None
    named = [*(m.classes or ()), *(m.f1_classes or ()), *([m.normal_class] if m.normal_class else [])]
    unknown = [c for c in named if c not in vocabulary]
    if unknown:
        raise ConfigError(
            f"train.models.{model}: {unknown} not in the {m.labels} vocabulary {list(vocabulary)}"
        )
    return Targets(m.task, vocabulary, classes, m.normal_class, scheme=m.labels)


def add_arguments(command: str, p: argparse.ArgumentParser) -> None:
    """The arguments of a model command (``--params``/``--set`` come from the caller)."""
    if command != "predict":
        p.add_argument("model", help="a model name under train.models in params.yaml")
        if command == "train":
            p.add_argument("--fresh", action="store_true", help="ignore an existing latest.pt; start over")
        return
    p.add_argument(
        "--model", type=Path, required=True, help="checkpoint file or training folder (models/<m>)"
    )
    p.add_argument("inputs", nargs="+", type=Path, help="record files (.hea/.dat/.mat, UCR, HDF5) or folders")
    p.add_argument("--out", type=Path, default=Path("predictions"), help="output folder (CSV + JSON)")
    p.add_argument("--rule", type=Path, default=None,
                   help="decision rule (default: eval/<model>/thresholds.json when it exists)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")


def cmd_split(args: argparse.Namespace, params: Params) -> int:
    from pipeline.config.build import store_root
    from pipeline.dataset.splits import index_from_store, write_index
    from pipeline.store.remote import open_store

    m = model_params(params, args.model)
    targets = targets_for(params, args.model)
    sp = params.split
    store = open_store(store_root(params.ingest), m.profile)
    index = index_from_store(
        store, sp.fractions, sp.seed, sp.fold_map, sp.fold_key, sp.group_by_source,
        normal_only_train=m.normal_class, keep=targets.usable, scheme=m.labels,
    )  # fmt: skip
    out = index_path(params, args.model)
    write_index(out, index.rows, {**index.header, "model": args.model})
    counts = ", ".join(f"{s} {len(index.split_rows(s)):,}" for s in sp.fractions)
    groups = ", ".join(f"{s} {index.header['groups'].get(s, 0):,}" for s in sp.fractions)
    print(f"{args.model}: {counts} records written to {out} ({index.header['excluded']:,} excluded; "
          f"patient groups: {groups})")  # fmt: skip
    return 0


def cmd_train(args: argparse.Namespace, params: Params) -> int:
    from pipeline.config.build import signal_plan, store_root
    from pipeline.training.options import ResumeMismatch
    from pipeline.training.stage import TrainJob, train_model

    m = model_params(params, args.model)
    profile = params.profiles[m.profile]
    job = TrainJob(
        name=args.model,
        kind=m.kind,
        model_kwargs=m.model,
        targets=targets_for(params, args.model),
        store_root=store_root(params.ingest),
        profile=m.profile,
        plan=signal_plan(profile),
        index_path=index_path(params, args.model),
        out_dir=checkpoint_dir(params, args.model),
        cfg=train_config(m),
        settings=loader_settings(m),
        use_class_weights=m.class_weights,
        class_weight_power=m.class_weight_power,
        f1_classes=m.f1_classes,
        params={"train": m.model_dump(mode="json"), "profile": profile.model_dump(mode="json")},
        live_dir=live_dir(params, args.model),
        synthetic_demo_sources=demo_sources(params, m.profile),
    )
    try:
        result = train_model(job, resume=not args.fresh)
    except ResumeMismatch as exc:
        # params (or the data) changed since latest.pt was written: that run cannot be continued
        print(f"{args.model}: not resuming {exc.path}, written with other settings: {exc.changes}; "
              "training from the start")  # fmt: skip
        result = train_model(job, resume=False)
    print(train_summary(args.model, result))
    return 0


def demo_sources(params: Params, profile: str) -> list[str]:
    """The profile's sources whose raw root ``ecgpipe demo-data`` wrote (its marker file is there)."""
    from pipeline.demo.marker import is_demo_root

    sources = params.profiles[profile].sources
    return [s for s in sources if s in params.sources and is_demo_root(params.sources[s].root)]


def train_summary(model: str, result: Any) -> str:
    """``crnn: 25 epochs (best 21: val_f1_selected 0.812); at the best epoch: train_loss 0.301, ...``

    Figures to 3 significant digits: enough to compare runs, short enough to read.
    """
    best = ", ".join(f"{k} {v:.3g}" for k, v in result.best_metrics.items() if k != "epoch")
    value = "n/a" if result.best_value is None else f"{result.best_value:.3g}"
    stopped = " (stopped early)" if result.stopped_early else ""
    rate = result.train_records_per_s
    speed = "" if rate is None else f"; training {rate:,.1f} records/s"
    return (f"{model}: {result.epochs_completed} epochs{stopped}; best epoch {result.best_epoch} "
            f"({result.metric} {value}); at the best epoch: {best}{speed}")  # fmt: skip


# --- params sections → the library's settings objects (one constructor call each, every field fed) ---


def train_config(m: ModelTrainParams) -> TrainConfig:
    """The model section's :class:`TrainConfig`; ``log_every`` (progress-bar updates) is not a param."""
    from pipeline.config.feed import from_params
    from pipeline.training.augment import Augment
    from pipeline.training.options import EarlyStopping, TrainConfig

    values = m.model_dump()
    values["early_stopping"] = from_params(EarlyStopping, values["early_stopping"])
    values["augment"] = from_params(Augment, values["augment"])
    return from_params(TrainConfig, values, library_default=("log_every",))


def loader_settings(m: ModelTrainParams) -> LoaderSettings:
    """How the train stage reads shards: the model section's batch size, workers and shuffle buffer."""
    from pipeline.config.feed import from_params
    from pipeline.training.stage import LoaderSettings

    return from_params(LoaderSettings, m.model_dump())


def eval_settings(params: Params, model: str) -> EvalSettings:
    """The ``evaluate`` section (``anomaly_threshold.<k>`` is ``EvalSettings.anomaly_<k>``) plus the
    model's ``f1_classes``; ``keep_examples`` is left at the library default (score_split is told its own)."""
    from pipeline.config.feed import from_params
    from pipeline.evaluation.evaluate import EvalSettings

    ev = params.evaluate.model_dump()
    values = {
        **ev,
        **{f"anomaly_{k}": v for k, v in ev["anomaly_threshold"].items()},
        "f1_classes": model_params(params, model).f1_classes,
        "field_score": params.evaluate.field_score.get(model),
    }
    return from_params(EvalSettings, values, library_default=("keep_examples",))


def _evaluate_runner(params: Params, model: str, card: Any, run: Any, settings: Any) -> tuple[Any, Any, Any]:
    """Score val/test (and train for the autoencoder) with ``run`` and evaluate: (evaluation, test, train)."""
    from pipeline.config.build import store_root
    from pipeline.evaluation.evaluate import evaluate, score_split
    from pipeline.training.load import split_loader

    idx = index_path(params, model)

    def scored(split: Any) -> Any:
        loader = split_loader(store_root(params.ingest), card.profile, idx, split, params.evaluate.batch_size)
        keep = 10**9 if card.task == "reconstruction" and split == "test" else 32
        return score_split(loader, run, card, split, keep)

    val, test = scored("val"), scored("test")
    train = scored("train") if card.task == "reconstruction" else None
    return evaluate(card, val, test, settings, train), test, train


def cmd_evaluate(args: argparse.Namespace, params: Params) -> int:
    from pipeline.core.fs import sha256_file
    from pipeline.evaluation.evaluate import torch_runner
    from pipeline.evaluation.report import write_evaluation
    from pipeline.training.load import load_trained

    model_params(params, args.model)
    model, card, ckpt_path = load_trained(checkpoint_dir(params, args.model))
    result, test, train = _evaluate_runner(
        params, args.model, card, torch_runner(model), eval_settings(params, args.model)
    )
    rule = dataclasses.replace(result.rule, checkpoint_sha256=sha256_file(ckpt_path))
    result = dataclasses.replace(result, rule=rule)
    out = eval_dir(params, args.model)
    write_evaluation(out, card, result, test, train, params.evaluate.n_strips)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in result.headline.items() if k.count("_") < 2)
    print(f"{args.model} ({ckpt_path.name}) on {len(test.record_ids)} test records: {shown}; see {out}")
    return 0


def cmd_export(args: argparse.Namespace, params: Params) -> int:
    from pipeline.config.build import store_root
    from pipeline.evaluation.evaluate import torch_runner
    from pipeline.export import onnx, quantize, runtime
    from pipeline.export import report as export_report
    from pipeline.training.load import calibration_batches, load_trained

    model_params(params, args.model)
    ex = params.export
    model, card, _ = load_trained(checkpoint_dir(params, args.model))
    out = params.export.out_dir / args.model
    fp32 = onnx.export_onnx(model, card.input_shape, out / "model_fp32.onnx", ex.opset)
    calib = calibration_batches(store_root(params.ingest), card.profile, index_path(params, args.model),
                                ex.calibration_records, params.evaluate.batch_size)  # fmt: skip
    int8 = quantize.quantize_int8(fp32, calib, out / "model_int8.onnx")
    runners: dict[str, tuple[Any, Any]] = {
        "pytorch_fp32": (torch_runner(model), runtime.torch_runner(model, threads=1)),
        "onnx_fp32": (runtime.OnnxRunner(fp32, threads=1),) * 2,
        "onnx_int8": (runtime.OnnxRunner(int8, threads=1),) * 2,
    }
    settings = eval_settings(params, args.model)
    metrics, latency = {}, {}
    x1 = None
    for variant, (run, timed) in runners.items():
        result, test, _ = _evaluate_runner(params, args.model, card, run, settings)
        metrics[variant] = result.headline
        x1 = test.x[:1] if x1 is None else x1
        latency[variant] = runtime.measure_latency(
            timed, x1, warmup=ex.latency_warmup, repeats=ex.latency_repeats
        )
        print(f"{args.model} {variant}: {latency[variant].median_ms:.2f} ms batch-1 median")
    sizes = {"pytorch_fp32": runtime.state_dict_nbytes(model), "onnx_fp32": fp32.stat().st_size,
             "onnx_int8": int8.stat().st_size}  # fmt: skip
    report = export_report.build_report(args.model, metrics, latency, sizes)
    export_report.write_report(report, out / "report.json", out / "report.md", out / "metrics.json")
    print(export_report.report_markdown(report))
    return 0


def cmd_predict(args: argparse.Namespace, params: Params) -> int:
    from pipeline.export.predict import run_predict

    return run_predict(
        args.model, args.inputs, args.out, args.rule, args.batch_size, args.device, params.evaluate.out_dir
    )


COMMANDS = {
    "split": cmd_split,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "predict": cmd_predict,
}
