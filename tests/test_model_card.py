"""The model card a checkpoint carries: it survives a real checkpoint (saved by
:mod:`pipeline.training.checkpoint`, loaded with ``weights_only``), gives back the profile's exact signal
plan, rebuilds the right network for the saved weights, and refuses other versions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from pipeline.config import Params, load_params
from pipeline.config.build import signal_plan
from pipeline.dataset.targets import Targets
from pipeline.models import ConvAutoencoder, ResNet1d, StftCrnn
from pipeline.models.card import CARD_VERSION, ModelCard, card_from_checkpoint
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from pipeline.training.stage import make_card

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "train.models.resnet.model.widths=[8,16]",
    "train.models.crnn.model.conv_channels=[4,8]",
    "train.models.crnn.model.rnn_hidden=8",
    "train.models.autoencoder.model.widths=[4,8]",
    "train.models.autoencoder.model.latent=4",
]
MODELS = {"resnet": ResNet1d, "crnn": StftCrnn, "autoencoder": ConvAutoencoder}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params(REPO / "params.yaml", TINY)


def _card(params: Params, name: str) -> ModelCard:
    """The card ``ecgpipe train <name>`` makes, with the input shape the profile's shards hold."""
    m = params.train.models[name]
    prof = params.profiles[m.profile]
    targets = Targets(m.task, params.vocabulary(m.profile), params.model_classes(name), m.normal_class)
    shape = (len(prof.leads), prof.length)
    return make_card(
        name, m.kind, m.model, targets, m.profile, signal_plan(prof), shape, prof.storage.scale_mv
    )


def _through_checkpoint(card: ModelCard, model: torch.nn.Module, path: Path) -> dict[str, object]:
    save_checkpoint({"model": model.state_dict(), "lineage": {"card": card.to_dict()}}, path)
    return load_checkpoint(path)


@pytest.mark.parametrize("name", list(MODELS))
def test_card_round_trips_through_a_weights_only_checkpoint(
    tmp_path: Path, params: Params, name: str
) -> None:
    card = _card(params, name)
    ckpt_path = tmp_path / "best.pt"
    _through_checkpoint(card, card.build(), ckpt_path)
    # the file is readable by the safe unpickler alone, with no ecgpipe class involved
    raw = torch.load(ckpt_path, weights_only=True)
    assert raw["lineage"]["card"] == card.to_dict()
    back = card_from_checkpoint(load_checkpoint(ckpt_path), str(ckpt_path))
    assert back.to_dict() == card.to_dict()
    assert (back.name, back.kind, back.task, back.profile) == (card.name, card.kind, card.task, card.profile)
    assert back.classes == card.classes and isinstance(back.classes, tuple)
    assert back.vocabulary == card.vocabulary and back.input_shape == card.input_shape
    assert back.normal_class == card.normal_class and back.scale_mv == card.scale_mv
    assert back.version == CARD_VERSION


@pytest.mark.parametrize("profile", ["ecg12", "lead1_af", "beats140", "holter"])
def test_plan_after_a_checkpoint_equals_the_configs_signal_plan(
    tmp_path: Path, params: Params, profile: str
) -> None:
    expected = signal_plan(params.profiles[profile])
    card = dataclasses.replace(
        _card(params, "crnn"), profile=profile, signal_plan=dataclasses.asdict(expected)
    )
    back = card_from_checkpoint(_through_checkpoint(card, card.build(), tmp_path / "c.pt"))
    assert back.plan() == expected
    assert back.plan().digest() == expected.digest()  # the digest the shards were written under


def test_plan_keeps_lead_aliases_and_a_bandpass(tmp_path: Path) -> None:
    params = load_params(
        REPO / "params.yaml",
        [*TINY, "profiles.lead1_af.bandpass_hz=[0.5, 40]", "profiles.lead1_af.notch_hz=60"],
    )
    expected = signal_plan(params.profiles["lead1_af"])
    assert expected.lead_aliases == (("I", ("ECG",)),) and expected.bandpass_hz == (0.5, 40.0)
    card = _card(params, "crnn")
    back = card_from_checkpoint(_through_checkpoint(card, card.build(), tmp_path / "c.pt"))
    assert back.plan() == expected


@pytest.mark.parametrize("name", list(MODELS))
def test_build_makes_the_cards_network_which_takes_the_saved_weights(
    tmp_path: Path, params: Params, name: str
) -> None:
    card = _card(params, name)
    torch.manual_seed(0)
    trained = card.build()
    assert type(trained) is MODELS[name]
    back = card_from_checkpoint(_through_checkpoint(card, trained, tmp_path / "c.pt"))
    rebuilt = back.build()
    assert type(rebuilt) is MODELS[name]
    rebuilt.load_state_dict(load_checkpoint(tmp_path / "c.pt")["model"])  # strict: same layers
    x = torch.randn(2, *card.input_shape)
    trained.eval()
    rebuilt.eval()
    with torch.no_grad():
        out, want = rebuilt(x), trained(x)
    assert torch.equal(out, want)
    if card.task == "reconstruction":
        assert out.shape == x.shape and card.output_names == ("anomaly_score",)
    else:
        assert out.shape == (2, len(card.classes)) and card.output_names == card.classes


def test_make_card_fills_shape_and_class_count_from_the_data(params: Params) -> None:
    resnet, crnn, ae = (_card(params, n) for n in ("resnet", "crnn", "autoencoder"))
    # the demo ResNet is on PTB-XL's superdiagnostic task: NORM MI STTC CD HYP
    assert resnet.kwargs["n_leads"] == 12 and resnet.kwargs["n_classes"] == 5
    assert list(resnet.kwargs["widths"]) == [8, 16]
    assert crnn.kwargs["n_classes"] == 4 and crnn.classes == ("N", "A", "O", "NOISY")
    assert ae.kwargs["in_channels"] == 1 and ae.kwargs["length"] == 140
    assert ae.classes == () and ae.normal_class == "NORM"
    assert resnet.input_shape == (12, 5000) and crnn.input_shape == (1, 9000) and ae.input_shape == (1, 140)


def test_another_card_version_is_refused_saying_to_retrain(params: Params) -> None:
    data = _card(params, "crnn").to_dict()
    for version in (CARD_VERSION + 1, 0):
        with pytest.raises(ValueError, match="re-train"):
            ModelCard.from_dict({**data, "version": version})
    no_version = {k: v for k, v in data.items() if k != "version"}
    with pytest.raises(ValueError, match="version"):
        ModelCard.from_dict(no_version)


def test_a_checkpoint_without_a_card_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    save_checkpoint({"model": {"w": torch.zeros(2)}, "lineage": {"params": {}}}, path)
    with pytest.raises(ValueError, match="plain.pt.*no model card"):
        card_from_checkpoint(load_checkpoint(path), str(path))
    save_checkpoint({"model": {"w": torch.zeros(2)}}, path)
    with pytest.raises(ValueError, match="no model card"):
        card_from_checkpoint(load_checkpoint(path), str(path))


def test_a_card_must_be_consistent_with_its_task(params: Params) -> None:
    card = _card(params, "autoencoder")
    with pytest.raises(ValueError, match="normal_class"):
        dataclasses.replace(card, normal_class=None)
    with pytest.raises(ValueError, match="classes"):
        dataclasses.replace(_card(params, "crnn"), classes=())
    with pytest.raises(ValueError, match="task"):
        dataclasses.replace(card, task="regression")  # type: ignore[arg-type]  # an unknown task on purpose
