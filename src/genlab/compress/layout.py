"""Rebuild the module layout a compressed run was saved with, so its weights load strictly.

A compressed run's ``config.json`` holds ``"compression": {"parent": ..., "transforms": [...]}``; each
transform that changed tensor names or shapes (int8 layers, pruned widths) is replayed on the freshly
built network, in the order it was applied, before ``load_model(strict=True)``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from genlab.compress import prune, quantize
from genlab.errors import CheckpointError


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
