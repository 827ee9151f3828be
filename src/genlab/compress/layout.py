"""A compressed run's share of its directory: ``config.json``'s ``compression`` record, replayed on load.

A compressed run's ``config.json`` holds ``"compression": {"parent": ..., "transforms": [...]}``; each
transform that changed tensor names or shapes (int8 layers, pruned widths) is replayed on the freshly
built network, in the order it was applied, before ``load_model(strict=True)``. This is a run extension
(:mod:`genlab.models.hooks`): the model contract knows nothing of compression.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from genlab.compress import prune, quantize
from genlab.errors import CheckpointError
from genlab.models.hooks import RunExtension, register_extension

#: The ``config.json`` key of the record.
KEY = "compression"


def restore_layout(network: nn.Module, compression: dict[str, Any]) -> None:
    """Replay ``compression["transforms"]`` on ``network`` in place (see the module doc).

    Raises:
        CheckpointError: an unknown transform or a record that names modules the network lacks.
    """
    try:
        for transform in compression["transforms"]:
            method = transform["method"]
            if method == prune.METHOD:
                prune.restore(network, transform.get("shapes", {}))
            elif method == quantize.METHOD:
                quantize.restore(network, transform)
            elif method == "distill":   # the student's own config already describes its network
                continue
            else:
                raise CheckpointError(f"unknown compression transform {method!r}; known: distill, prune, quantize")
    except (KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"the compression record in config.json does not fit the network ({error!s})") from None


def compression_of(model: Any) -> dict[str, Any] | None:
    """What :mod:`genlab.compress` did to ``model``'s parent run (``{"parent", "transforms"}``), or None."""
    return model.extension_records_.get(KEY)


class CompressionLayout(RunExtension):
    """Saves ``model``'s compression record and rebuilds the layout it describes before the weights load."""

    key = KEY

    def record(self, model: Any, directory: Path) -> dict[str, Any] | None:
        return compression_of(model)

    def prepare(self, network: nn.Module, record: Any) -> None:
        restore_layout(network, record)


register_extension(CompressionLayout())
