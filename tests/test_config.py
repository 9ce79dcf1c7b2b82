"""Params validation: the shipped params.yaml loads; bad params fail naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import SOURCE_NAMES, ConfigError, load_params
from pipeline.config.build import signal_plan, storage_spec

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _base() -> dict[str, object]:
    return yaml.safe_load((REPO / "params.yaml").read_text())  # type: ignore[no-any-return]  # yaml.safe_load returns Any


def test_shipped_params_declare_every_source_kind_with_default_roots() -> None:
    params = load_params(REPO / "params.yaml")
    for name in SOURCE_NAMES:
        src = params.sources[name]
        assert src.root == REPO / "data" / "raw" / name
    assert {"ecg12", "lead1_af", "beats140"} <= set(params.profiles)


def test_set_overrides_parse_yaml_values_and_resolve_relative_paths(tmp_path: Path) -> None:
    params = load_params(
        REPO / "params.yaml",
        [
            "sources.ptbxl.root=/data/ptb-xl",
            "ingest.workers=4",
            "profiles.ecg12.notch_hz=60",
            "ingest.task_runner=processes",
        ],
    )
    assert params.sources["ptbxl"].root == Path("/data/ptb-xl")
    assert params.ingest.workers == 4 and params.ingest.task_runner == "processes"
    assert signal_plan(params.profiles["ecg12"]).notch_hz == 60.0


# The signal-plan digest is part of every shard's fingerprint: if it changed, every record would
# re-ingest. These are the digests of the shipped profiles before config built the plan from the dump.
PLAN_DIGESTS = {
    "ecg12": "99725aa6a98503da65aacda7e9afd2b9e5c275a8a4c1739a5310ee7826ff2897",
    "lead1_af": "c5f2f8d370b00c671a6a3cac9608f29717b70be90cccf9c7a39e0b032efb47c3",
    "beats140": "bc733ea9258b9cc14df78cf0f21732cdb4ddad934bc86b15f3f0cb04997fffec",
    "holter": "bedb08ee313617d35fc5f26bef5d48ad31509b30a450349a3ca69467b316b939",
}


def test_signal_plan_digests_of_the_shipped_profiles_are_unchanged() -> None:
    params = load_params(REPO / "params.yaml")
    assert {name: signal_plan(p).digest() for name, p in params.profiles.items()} == PLAN_DIGESTS
    spec = storage_spec(params.profiles["ecg12"])
    assert (spec.dtype, spec.scale_mv, spec.records_per_chunk) == ("int16", 0.001, 16)


def test_loading_params_imports_no_signal_store_model_or_landing_code() -> None:
    code = (
        "import sys; from pathlib import Path; from pipeline.config import load_params; "
        f"load_params(Path({str(REPO / 'params.yaml')!r})); "
        "heavy = ('torch', 'scipy', 'zarr', 's3fs', 'fsspec', 'pipeline.signal', 'pipeline.store', "
        "'pipeline.models', 'pipeline.landing', 'pipeline.sources'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))"
    )
    # The readers' options models (pydantic only) are the one part of pipeline.sources params load.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['pipeline.sources', 'pipeline.sources.options']"


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("ingest.wrokers=3", "ingest.wrokers"),
        ("ingest.workers=many", "ingest.workers"),
        ("profiles.ecg12.fs_hz=-5", "profiles.ecg12.fs_hz"),
        ("profiles.ecg12.notch_hz=55", "profiles.ecg12.notch_hz"),
        ("sources.ptbxl.kind=ptb", "sources.ptbxl"),
        ("profiles.lead1_af.sources=[nosuch]", "nosuch"),
        ("profiles.holter.bandpass_hz=[40, 10]", "bandpass_hz"),
        ("sources.cinc2017.labels=v2", "sources.cinc2017"),
    ],
)
def test_invalid_params_fail_naming_the_key(tmp_path: Path, override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_params(REPO / "params.yaml", [override])
    assert needle in str(err.value)


def test_notch_above_nyquist_is_rejected(tmp_path: Path) -> None:
    data = _base()
    data["profiles"]["beats140"].update({"fs_hz": 80, "length_samples": None, "length_s": 1, "notch_hz": 50})  # type: ignore[index]  # nested params dict typed object
    with pytest.raises(ConfigError, match="Nyquist"):
        load_params(_write(tmp_path, data))


def test_malformed_override_and_unreadable_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_params(REPO / "params.yaml", ["ingest.workers"])
    with pytest.raises(ConfigError, match="cannot read params file"):
        load_params(tmp_path / "missing.yaml")
