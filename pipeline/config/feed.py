"""One rule for turning a params section into a library settings object: every field fed, by name.

The library's settings objects (``TrainConfig``, ``LoaderSettings``, ``EvalSettings``, ``Tolerance``,
``SignalPlan``, ``StorageSpec``) are frozen dataclasses in the packages below ``config``; params are
pydantic models. Copying them field by field leaves a newly added field at its library default without
anyone noticing. :func:`from_params` instead builds the object with one constructor call, taking every
init field from the section's dump by name, and fails when params do not feed one, unless the caller
names it in ``library_default`` (a knob params do not expose, e.g. ``TrainConfig.log_every``).

May import: stdlib only (it runs in every command that builds a library object).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    D = TypeVar("D", bound=DataclassInstance)


def fed_fields(cls: type[DataclassInstance], library_default: Iterable[str] = ()) -> tuple[str, ...]:
    """The init fields of dataclass ``cls`` that params must feed (all but ``library_default``)."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    names = [f.name for f in fields(cls) if f.init]
    kept = set(library_default)
    if not kept <= set(names):
        raise TypeError(f"{cls.__name__} has no fields {sorted(kept - set(names))} (library_default)")
    return tuple(n for n in names if n not in kept)


def from_params(cls: type[D], values: Mapping[str, Any], *, library_default: Iterable[str] = ()) -> D:
    """``cls(**values)`` restricted to ``cls``'s fields; keys of ``values`` it does not take are other
    settings of the same section (used elsewhere). Raises ``TypeError`` naming any field of ``cls``
    that ``values`` lacks and ``library_default`` does not name: a mismatch between the params model
    and the library, not a mistake in the user's params file."""
    names = fed_fields(cls, library_default)
    missing = [n for n in names if n not in values]
    if missing:
        raise TypeError(
            f"{cls.__name__}: params do not feed {missing}; declare them in the params model "
            "(or name them in library_default where params deliberately leave them at the library default)"
        )
    return cls(**{n: values[n] for n in names})
