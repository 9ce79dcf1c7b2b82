"""The model-side params sections (split, train, evaluate, export): the shipped file loads, and an
unknown key or an impossible value fails in ``load_params``, before any work, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.config import ConfigError, load_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def params_file(tmp_path: Path) -> Path:
    """A copy of the repository's params.yaml in a folder of its own, with the label schemes its
    models name (``labels.tables_dir`` is relative to the params file)."""
    path = tmp_path / "cfg" / "params.yaml"
    path.parent.mkdir()
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("tables_dir: data/labels", f"tables_dir: {REPO / 'data' / 'labels'}"))
    return path


def _fails(params_file: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_params(params_file, list(overrides))
    return str(err.value)


def test_the_shipped_model_sections_load_with_their_classes(params_file: Path) -> None:
    params = load_params(params_file)
    assert set(params.train.models) == {"resnet", "autoencoder", "crnn"}
    # the demo ResNet is on PTB-XL's superdiagnostic task, the CRNN on the CinC 2017 classes
    assert set(params.model_classes("resnet")) == {"NORM", "MI", "STTC", "CD", "HYP"}
    assert params.model_classes("crnn") == ("N", "A", "O", "NOISY")
    assert params.model_classes("autoencoder") == ()
    ae = params.train.models["autoencoder"]
    assert ae.task == "reconstruction" and ae.normal_class == "NORM" and ae.profile == "beats140"
    assert abs(sum(params.split.fractions.values()) - 1.0) < 1e-9
    assert params.split.fold_map == {"train": (1, 2, 3, 4, 5, 6, 7, 8), "val": (9,), "test": (10,)}
    assert params.evaluate.anomaly_threshold.method == "percentile" and params.export.opset >= 13


def test_classes_null_means_the_profiles_own_vocabulary(params_file: Path) -> None:
    params = load_params(
        params_file,
        [
            "profiles.lead1_af.vocabulary=[NORM, AF, OTHER, NOISY]",
            "train.models.crnn.labels=coarse",
            "train.models.crnn.classes=null",
            "train.models.crnn.f1_classes=[NORM, AF, OTHER]",
        ],
    )
    assert params.model_classes("crnn") == ("NORM", "AF", "OTHER", "NOISY")


def test_a_minimal_model_section_gets_the_defaults(params_file: Path) -> None:
    params = load_params(params_file, ["train.models.extra={profile: beats140, kind: autoencoder, "
                                       "task: reconstruction, normal_class: NORM}"])  # fmt: skip
    m = params.train.models["extra"]
    assert m.epochs >= 1 and m.batch_size >= 1 and m.lr > 0 and m.early_stopping.metric == "val_loss"


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        # unknown keys, one per section
        ("split.sed=1", ["split.sed"]),
        ("train.outdir=models", ["train.outdir"]),
        ("train.models.crnn.lrr=0.1", ["train.models.crnn.lrr"]),
        ("train.models.crnn.early_stopping.metrc=val_loss", ["train.models.crnn.early_stopping.metrc"]),
        ("evaluate.bootstrapp=10", ["evaluate.bootstrapp"]),
        ("evaluate.anomaly_threshold.q=3", ["evaluate.anomaly_threshold.q"]),
        ("export.opsett=17", ["export.opsett"]),
        # split
        ("split.fractions={train: 0.7, val: 0.2, test: 0.2}", ["split", "fractions", "sum to 1"]),
        ("split.fractions={train: 0.8, val: 0.2}", ["split", "fractions", "test"]),
        ("split.fractions={train: 1.0, val: 0.0, test: 0.0}", ["split", "fractions", "> 0"]),
        ("split.fold_map.val=[nine]", ["split.fold_map.val"]),
        # train
        ("train.models.crnn.profile=nosuch", ["train.models.crnn.profile", "nosuch"]),
        ("train.models.crnn.classes=[N, XX]", ["train.models.crnn", "XX", "vocabulary"]),
        ("train.models.crnn.f1_classes=[N, YY]", ["train.models.crnn", "YY"]),
        ("train.models.crnn.f1_classes=[N, MI]", ["train.models.crnn", "MI"]),
        ("train.models.autoencoder.normal_class=null", ["train.models.autoencoder", "normal_class"]),
        ("train.models.autoencoder.normal_class=ZZ", ["train.models.autoencoder", "ZZ"]),
        ("train.models.crnn.normal_class=NORM", ["train.models.crnn", "normal_class"]),
        ("train.models.crnn.kind=transformer", ["train.models.crnn.kind"]),
        ("train.models.crnn.task=regression", ["train.models.crnn.task"]),
        ("train.models.crnn.epochs=0", ["train.models.crnn.epochs"]),
        ("train.models.crnn.lr=-0.1", ["train.models.crnn.lr"]),
        ("train.models.crnn.batch_size=0", ["train.models.crnn.batch_size"]),
        ("train.models.crnn.early_stopping.mode=up", ["train.models.crnn.early_stopping.mode"]),
        ("train.models.crnn.early_stopping.patience=0", ["train.models.crnn.early_stopping.patience"]),
        ("train.models.crnn.model=[1, 2]", ["train.models.crnn.model"]),
        ("train.models.extra={kind: crnn, task: multiclass}", ["train.models.extra.profile"]),
        # evaluate / export
        ("evaluate.ci_level=1.5", ["evaluate.ci_level"]),
        ("evaluate.bootstrap=-1", ["evaluate.bootstrap"]),
        ("evaluate.anomaly_threshold.method=median", ["evaluate.anomaly_threshold.method"]),
        ("evaluate.anomaly_threshold.p=101", ["evaluate.anomaly_threshold.p"]),
        ("evaluate.n_strips=100", ["evaluate.n_strips"]),
        ("export.opset=9", ["export.opset"]),
        ("export.calibration_records=0", ["export.calibration_records"]),
    ],
)
def test_a_bad_model_side_param_fails_naming_the_key(
    params_file: Path, override: str, needles: list[str]
) -> None:
    message = _fails(params_file, override)
    assert str(params_file) in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in:\n{message}"


def test_a_warmup_longer_than_the_training_is_refused(params_file: Path) -> None:
    message = _fails(params_file, "train.models.crnn.epochs=4", "train.models.crnn.warmup_epochs=5")
    assert "train.models.crnn" in message and "warmup_epochs" in message


@pytest.mark.parametrize(
    ("model", "metric"),
    [
        ("crnn", "val_auroc"),
        ("autoencoder", "val_macro_auroc"),
        ("resnet", "val_f1_selected"),
        ("crnn", "val_lss"),
    ],
)
def test_an_early_stopping_metric_the_model_never_logs_fails_before_training(
    params_file: Path, model: str, metric: str
) -> None:
    # Logged per epoch: train_loss, val_loss, lr and val_<key> of the task's metrics (multilabel:
    # macro_auroc; multiclass: f1_selected, macro_auroc; reconstruction: auroc). Anything else
    # only fails in pipeline.training.loop.fit at the end of the first epoch.
    message = _fails(params_file, f"train.models.{model}.early_stopping.metric={metric}")
    assert f"train.models.{model}.early_stopping.metric" in message and metric in message


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.models.resnet.model.widht=[8, 16]", "train.models.resnet.model.widht"),
        ("train.models.crnn.model.rnn_hiden=8", "train.models.crnn.model.rnn_hiden"),
        ("train.models.autoencoder.model.latnt=4", "train.models.autoencoder.model.latnt"),
    ],
)
def test_an_unknown_model_constructor_key_fails_in_every_model_command_before_any_work(
    params_file: Path, capsys: pytest.CaptureFixture[str], override: str, needle: str
) -> None:
    # Without this check the typo surfaces as a TypeError traceback from the model constructor,
    # after the loaders were built (and not as a ConfigError naming the key). It runs in the model
    # commands (pipeline.cli.models.check_model_args): knowing the constructors means importing torch,
    # which loading params does not do.
    model = override.split(".")[2]
    load_params(params_file, [override])
    for command in ("split", "train", "evaluate", "export"):
        assert main([command, model, "--params", str(params_file), "--set", override]) == 2
        err = capsys.readouterr().err
        assert needle in err and "not an argument of the" in err
    assert not (params_file.parent / "data").exists()


def test_the_model_stages_output_folders_are_relative_to_the_params_file(params_file: Path) -> None:
    # params.yaml: "Paths are relative to this file" (as sources, ingest and labels already are).
    base = params_file.parent
    params = load_params(params_file)
    assert params.split.out_dir == base / "data" / "splits"
    assert params.train.out_dir == base / "models" and params.train.live_dir == base / "dvclive"
    assert params.evaluate.out_dir == base / "eval"
    assert params.export.out_dir == base / "export"


def test_the_cli_refuses_a_model_not_in_train_models(
    params_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("split", "train", "evaluate", "export"):
        assert main([command, "nosuch", "--params", str(params_file)]) == 2
        err = capsys.readouterr().err
        assert "nosuch" in err and "train.models" in err and "crnn" in err


def test_the_cli_refuses_bad_model_params_before_any_work(
    params_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = params_file.parent / "splits-out"
    rc = main(["split", "crnn", "--params", str(params_file), "--set", f"split.out_dir={out_dir}",
               "--set", "split.fractions={train: 0.5, val: 0.1, test: 0.1}"])  # fmt: skip
    assert rc == 2 and "fractions" in capsys.readouterr().err
    assert not out_dir.exists()
