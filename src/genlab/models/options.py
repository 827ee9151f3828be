"""Sampling options as data: each family declares the options a person or a client may set, once.

A :class:`SampleOption` says an option's JSON type, range or choices, whether ``null`` is allowed, its
default and a line of help. A family lists its options in ``declared_options`` and
:meth:`~genlab.models.base.GenerativeModel.sampling_options` gives those a fitted model takes, with its
own defaults (a diffusion model's saved sampler and steps; text-only options only on text). The server's
request checks and ``GET /v1/models``, the playground's controls and the CLI's checks of
``genlab sample`` flags all read them, so a new option is declared in one place.

Options that need Python objects or only change speed (``logits_processors``, ``initial_noise``,
``init``, ``batch_size``, ``compile``...) stay in the family's ``sample_options`` (the names ``sample``
accepts) and out of the declared ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from genlab.errors import ConfigError

#: The JSON types an option can have, and the Python types that carry them.
TYPES: dict[str, tuple[type, ...]] = {"integer": (int,), "number": (int, float), "boolean": (bool,),
                                      "string": (str,), "array": (list, tuple)}


@dataclass(frozen=True)
class SampleOption:
    """One declared sampling option (module doc).

    Attributes:
        type: ``integer``, ``number``, ``boolean``, ``string`` or ``array`` (of non-empty strings).
        help: one line for ``--help``, ``/v1/models`` and the playground.
        default: the value ``sample`` uses when the option is not given.
        minimum, maximum: an inclusive range (numbers), or None.
        choices: the allowed strings, or None.
        nullable: whether ``None`` is a value (e.g. ``top_k=None``: every token).
        modalities: the modalities that take the option, or None for all the family models.
    """

    type: str
    help: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    modalities: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        assert self.type in TYPES, self.type

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it fits this option, else a ConfigError that names the option and what fits."""
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) != (self.type == "boolean") or not isinstance(value, TYPES[self.type]):
            article = "an" if self.type[0] in "ai" else "a"
            raise ConfigError(f"option {name} must be {'null or ' if self.nullable else ''}{article} {self.type}, "
                              f"got {json.dumps(value) if _jsonable(value) else repr(value)}")
        if self.type == "number" and not math.isfinite(value):
            raise ConfigError(f"option {name} must be a finite number, got {value}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"option {name}={value!r} is not one of: {', '.join(self.choices)}")
        if self.minimum is not None and not self.minimum <= value <= self.maximum:
            raise ConfigError(f"option {name}={value} is outside [{self.minimum:g}, {self.maximum:g}]")
        if self.type == "array" and not all(isinstance(item, str) and item for item in value):
            raise ConfigError(f"option {name} must be a list of non-empty strings")
        return value

    def describe(self, name: str) -> dict[str, Any]:
        """The option as JSON (``GET /v1/models``): name, type, default, nullable, help, range or choices."""
        out: dict[str, Any] = {"name": name, "type": self.type, "default": _json_default(self.default),
                               "nullable": self.nullable, "help": self.help}
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"], out["maximum"] = self.minimum, self.maximum
        return out


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _json_default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
