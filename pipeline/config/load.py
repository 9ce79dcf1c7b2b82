"""Reading ``params.yaml``: ``--set`` overrides, validation with dotted-key messages, path resolution."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.config.base import ConfigError, _Strict
from pipeline.config.params import Params
from pipeline.config.sources import DEFAULT_ROOT
from pipeline.labels.schemes import DEFAULT_SCHEME
from pipeline.labels.tables import LabelTableError
from pipeline.sources.options import OPTIONS


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


_SOURCE_KINDS = frozenset(OPTIONS)
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
    if base_dir is None:
        return params
    params = _resolve_paths(params, base_dir)
    _check_scheme_classes(params, origin)
    return params


def _check_scheme_classes(params: Params, origin: str) -> None:
    """Classes of models on a named scheme must be in that scheme's vocabulary: checked once the
    label root is resolved (the default scheme's are checked by :class:`Params` itself)."""
    for name, m in params.train.models.items():
        if m.labels == DEFAULT_SCHEME or m.task == "reconstruction":
            continue
        where = f"{origin}: train.models.{name}"
        try:
            vocab = params.model_vocabulary(name)
        except LabelTableError:
            # a params file copied without its label tables: the scheme is reported (with its folder)
            # when the model's targets are built, by the commands that need them
            continue
        unknown = [c for c in (*(m.classes or ()), *(m.f1_classes or ())) if c not in vocab]
        if unknown:
            raise ConfigError(f"{where}: {unknown} not in the {m.labels} vocabulary {list(vocab)}")
        if m.f1_classes and not set(m.f1_classes) <= set(m.classes or vocab):
            raise ConfigError(f"{where}.f1_classes must be among its classes")


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p)


def _root_required(name: str, root: Path, required: bool | None) -> bool:
    """Whether a missing root fails the ingest: a root the user chose (anything but the default
    ``data/raw/<name>``) must exist; the default may be absent (that source is not set up)."""
    return required if required is not None else root != DEFAULT_ROOT / name


def _resolve_paths(params: Params, base: Path) -> Params:
    sources = {
        n: s.model_copy(
            update={"root": _resolve(base, s.root), "required": _root_required(n, s.root, s.required)}
        )
        for n, s in params.sources.items()
    }
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
