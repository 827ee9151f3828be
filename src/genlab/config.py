"""Typed, frozen configuration dataclasses and their strict conversion from plain dicts.

A component's config is a ``@dataclass(frozen=True, kw_only=True)``. :func:`from_dict` builds one from
JSON-like data and rejects unknown keys and wrong types with an error that lists the valid choices, so
a typo in a saved ``config.json`` or a CLI override never passes silently.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

from genlab.errors import ConfigError

C = TypeVar("C")


def to_dict(config: Any) -> dict[str, Any]:
    """Return a JSON-ready dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[C], values: dict[str, Any], *, what: str | None = None) -> C:
    """Build config ``cls`` from ``values``, checking every key and type.

    Raises:
        ConfigError: on an unknown key (listing the valid keys) or a value of the wrong type.
    """
    what = what or cls.__name__
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown {what} option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(fields))}"
        )
    hints = _type_hints(cls)
    converted = {name: _coerce(value, hints[name], f"{what}.{name}") for name, value in values.items()}
    try:
        return cls(**converted)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid {what}: {error}") from None


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, resolved once per class: under ``from __future__ import annotations`` every
    hint is a string to evaluate, and ``genlab serve`` builds a config per request (a sixth of its event loop's
    time at 16 streams went to resolving the same hints again)."""
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint``, converting lists to tuples and ints to floats."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} = {value!r} has the wrong type; expected {_name(hint)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where} = {value!r} is not allowed; choose one of: {', '.join(map(str, args))}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} = {value!r} has the wrong type; expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{where} = {value!r} needs exactly {len(args)} values")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args))
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where} = {value!r} has the wrong type; expected null")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is typing.Any:
        return value
    if isinstance(hint, type):
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{where} = {value!r} has the wrong type; expected {_name(hint)}")
    raise ConfigError(f"{where}: unsupported config type {hint!r}")  # pragma: no cover - developer error


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)
