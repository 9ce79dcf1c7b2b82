"""Params sections reach the library's settings objects whole: every field of each object is fed
from params (adding a library field without a param fails here, not silently at its default), and
every param is either fed to an object or used by its command (adding a param that nothing reads
fails here too)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pipeline.ckernel.parity import Tolerance
from pipeline.ckernel.train_stage import CTrainTolerance
from pipeline.cli.models import eval_settings, loader_settings, train_config
from pipeline.config import ModelTrainParams, Params, Storage, load_params
from pipeline.config.build import storage_spec
from pipeline.config.feed import fed_fields, from_params
from pipeline.config.stages import (
    AnomalyThresholdParams,
    AugmentParams,
    CTrainParams,
    EvaluateParams,
    ParityParams,
    StoppingParams,
)
from pipeline.evaluation.evaluate import EvalSettings
from pipeline.store.local import StorageSpec
from pipeline.training.augment import Augment
from pipeline.training.options import EarlyStopping, TrainConfig
from pipeline.training.stage import LoaderSettings

REPO = Path(__file__).resolve().parents[1]

# Params the commands pass on themselves rather than through a settings object. A new param must be
# fed to one of FED_TO's objects or listed here (after wiring it into its command).
USED_BY_COMMAND: dict[type[BaseModel], set[str]] = {
    ModelTrainParams: {
        "profile",
        "kind",
        "classes",
        "normal_class",
        "f1_classes",
        "model",
        "class_weights",
        "class_weight_power",
        "labels",  # the scheme: targets_for reads its vocabulary, split stratifies on it
    },
    EvaluateParams: {"out_dir", "batch_size", "n_strips", "anomaly_threshold"},  # the latter as anomaly_<k>
    ParityParams: {"models", "out_dir", "library", "max_records", "batch_size"},
    CTrainParams: {"models", "out_dir", "epochs"},
    Storage: set(),
    StoppingParams: set(),
    AugmentParams: set(),
}
FED_TO: dict[type[BaseModel], tuple[type[Any], ...]] = {
    ModelTrainParams: (TrainConfig, LoaderSettings),
    EvaluateParams: (EvalSettings,),
    ParityParams: (Tolerance,),
    CTrainParams: (CTrainTolerance,),
    Storage: (StorageSpec,),
    StoppingParams: (EarlyStopping,),
    AugmentParams: (Augment,),
}


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params(REPO / "params.yaml")


@pytest.mark.parametrize("section", list(FED_TO), ids=lambda c: c.__name__)
def test_every_param_is_fed_to_a_settings_object_or_used_by_its_command(section: type[BaseModel]) -> None:
    fed = {f.name for cls in FED_TO[section] for f in fields(cls)}
    declared = set(section.model_fields)
    assert declared - fed - USED_BY_COMMAND[section] == set(), "a param nothing reads"
    assert USED_BY_COMMAND[section] <= declared, "USED_BY_COMMAND names a param that no longer exists"


def test_every_anomaly_threshold_param_is_an_eval_setting() -> None:
    names = {f"anomaly_{k}" for k in AnomalyThresholdParams.model_fields}
    assert names <= {f.name for f in fields(EvalSettings)}


def test_each_model_sections_train_config_and_loader_settings_carry_its_values(params: Params) -> None:
    assert params.train.models, "params.yaml has no models to check"
    for m in params.train.models.values():
        cfg, loader = train_config(m), loader_settings(m)
        for name in fed_fields(TrainConfig, ("log_every", "early_stopping", "augment")):
            assert getattr(cfg, name) == getattr(m, name), name
        assert cfg.early_stopping == EarlyStopping(**m.early_stopping.model_dump())
        assert cfg.augment == Augment(**m.augment.model_dump())
        assert cfg.log_every == TrainConfig(task=m.task).log_every  # not a param: the library default
        assert (loader.batch_size, loader.num_workers, loader.shuffle_buffer, loader.sampler,
                loader.balance_power) == (
            m.batch_size, m.num_workers, m.shuffle_buffer, m.sampler, m.balance_power,
        )  # fmt: skip


def test_eval_settings_carry_the_evaluate_section_and_the_models_f1_classes(params: Params) -> None:
    ev = params.evaluate
    for name, m in params.train.models.items():
        s = eval_settings(params, name)
        assert (s.bootstrap, s.ci_level, s.seed) == (ev.bootstrap, ev.ci_level, ev.seed)
        a = ev.anomaly_threshold
        assert (s.anomaly_method, s.anomaly_p, s.anomaly_k) == (a.method, a.p, a.k)
        assert s.f1_classes == m.f1_classes


def test_storage_spec_carries_the_profiles_storage(params: Params) -> None:
    for prof in params.profiles.values():
        assert storage_spec(prof) == StorageSpec(**prof.storage.model_dump())


def test_a_library_field_params_do_not_feed_is_an_error_naming_it() -> None:
    m = ModelTrainParams(profile="p", kind="crnn", task="multiclass")
    values = m.model_dump(exclude={"lr"})
    with pytest.raises(TypeError, match=r"TrainConfig: params do not feed \['lr', 'early_stopping'\]"):
        from_params(TrainConfig, {k: v for k, v in values.items() if k != "early_stopping"},
                    library_default=("log_every",))  # fmt: skip


def test_library_default_must_name_a_field() -> None:
    with pytest.raises(TypeError, match="no fields"):
        from_params(Tolerance, {"atol": 1.0, "rtol": 0.0, "metric_atol": 0.0}, library_default=("atl",))


def test_extra_section_keys_are_left_to_the_command_and_values_pass_unchanged() -> None:
    @dataclass(frozen=True)
    class Pair:
        a: int
        b: tuple[str, ...] = ()

    assert from_params(Pair, {"a": 3, "b": ("x",), "other": 1}) == Pair(3, ("x",))
    assert from_params(Pair, {"a": 3}, library_default=("b",)) == Pair(3)
