"""The installed genlab version, recorded in every saved config."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
