"""ONNX export of a fitted model's sampling network, with what a torch-free runner needs in its metadata.

One graph per family, exported by the dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``:
``torch.export`` traces the module, onnxscript translates it) with named dynamic axes, then checked with
``onnx.checker.check_model``:

- ``gan``: the generator ``G(z[, y])``: ``z (B, latent_dim)`` float32, ``y (B,)`` int64 -> ``x (B, *shape)``
  in model space;
- ``vae``: the decoder ``z[, y]`` -> ``mean (B, *shape)`` (``E[x|z]``) and, for a Gaussian likelihood,
  ``scale (B, *shape)``;
- ``diffusion``: the denoiser ``f(x_t, t[, y])``: ``x (B, *shape)``, ``t (B,)`` int64 (the timestep is an
  input, so one graph serves every step) -> ``prediction (B, out, ...)`` (eps, x0 or v: see metadata);
- ``transformer``: one decoding step with the key/value cache as inputs and outputs, as Hugging Face
  Optimum exports decoders: ``input_ids (B, T)`` int64, ``past_keys`` and ``past_values``
  ``(n_layer, B, n_head, P, head_size)`` (``P = 0``, empty, on the first step) -> ``logits (B, T, V)``,
  ``present_keys``/``present_values`` ``(n_layer, B, n_head, P + T, head_size)``. Positions are
  ``P .. P + T - 1``; query ``i`` attends to keys ``j <= P + i``.

The graphs are built by the families' side (:mod:`genlab.models.sampling_graph`); this module only exports
and checks them. The model's ``metadata_props`` hold ``genlab`` (JSON): the graph kind (``latent``,
``denoiser``, ``cached_decoder``), record shape, codec state, and the sampling constants (``alpha_bar`` and
the prediction type of diffusion, ``latent_dim``, the cache geometry), read by :mod:`genlab.export.runner`.
"""

from __future__ import annotations

import json
from pathlib import Path

from genlab.errors import ConfigError, NotSupportedError
from genlab.io import atomic_path
from genlab.models.base import GenerativeModel
from genlab.models.sampling_graph import sampling_graph
from genlab.sampling.onnx_denoiser import to_onnx


def export_onnx(model: GenerativeModel, path: str | Path, *, dynamo: bool = True) -> Path:
    """Export ``model``'s sampling network (module doc) to ``path`` and check it; returns ``path``.

    The file is written atomically. Weights are float32 (an int8-quantised run's dequantised layers export
    as float32 matrices).

    Raises:
        NotSupportedError: a family without an exportable network, or a table model.
        ConfigError: ``dynamo=False`` (the TorchScript exporter is not used).
    """
    import onnx

    if not dynamo:
        raise ConfigError("genlab exports with the dynamo-based exporter only (dynamo=True)")
    if model.data_.modality == "tables":
        raise NotSupportedError("ONNX export of table models is not supported (their decoding is per column)")
    model.network_.cpu().eval()
    graph = sampling_graph(model)
    wrapper, args, names, outputs, dynamic, meta = (graph.module, graph.args, graph.input_names,
                                                    graph.output_names, graph.dynamic_shapes, graph.meta)
    wrapper.eval()
    path = Path(path)
    with atomic_path(path) as tmp:
        proto = to_onnx(wrapper, args, input_names=names, output_names=outputs, dynamic_shapes=dynamic)
        onnx.helper.set_model_props(proto, {"genlab": json.dumps(meta)})
        onnx.save_model(proto, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
    return path
