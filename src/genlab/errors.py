"""The errors genlab raises for things a user can fix.

Every user-facing failure is a :class:`GenlabError` subclass whose message names the bad value and,
where there is a fixed set, the valid choices. The CLI turns these into one line and a non-zero exit;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GenlabError(Exception):
    """Base class of every error a user can act on."""


class DataError(GenlabError):
    """Input data is missing, empty, malformed, or holds NaN/infinite values."""


class ConfigError(GenlabError):
    """An unknown option, a wrong type, or a value out of range."""


class CheckpointError(GenlabError):
    """A run directory or checkpoint is missing, incomplete, corrupt or does not match its config."""


class OutputExistsError(GenlabError):
    """An output path already exists and overwriting was not asked for."""


class NotSupportedError(GenlabError):
    """The family has no such operation (e.g. ``encode`` on a Gaussian mixture)."""


def unknown_choice(kind: str, value: object, choices: "list[str] | tuple[str, ...]") -> ConfigError:
    """Build the standard 'unknown X' error listing the valid choices."""
    listed = ", ".join(sorted(str(c) for c in choices))
    return ConfigError(f"unknown {kind} {value!r}; choose one of: {listed}")
