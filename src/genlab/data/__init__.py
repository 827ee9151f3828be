"""Data loading: the :class:`Dataset` record, the registry of built-ins, and one loader file per modality.

The public entry point is :mod:`genlab.datasets`; this package holds the implementation.
"""

from genlab.data.dataset import Dataset
from genlab.data.registry import describe, load, names

__all__ = ["Dataset", "describe", "load", "names"]
