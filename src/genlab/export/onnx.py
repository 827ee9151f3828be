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

The model's ``metadata_props`` hold ``genlab`` (JSON): the family, record shape, codec state, and the
family's sampling constants (``alpha_bar`` and the prediction type of diffusion, ``latent_dim``, the
cache geometry), read by :mod:`genlab.onnx_sampling`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError, NotSupportedError
from genlab.io import atomic_path
from genlab.models.base import GenerativeModel

#: Families with an exportable sampling network.
FAMILIES: tuple[str, ...] = ("diffusion", "gan", "transformer", "vae")
#: ONNX operator set of the exported graphs.
OPSET = 18


class _Generator(nn.Module):
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, y)


class _Decoder(nn.Module):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Any:
        params = self.network.decode(z, y)
        mean = self.network.mean(params)
        return (mean, self.network.scale(params)) if self.network.likelihood == "gaussian" else mean


class _Denoiser(nn.Module):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.network(x, t, y)


class _CachedGPT(nn.Module):
    """One decoding step of genlab's GPT with the cache as tensors (module doc); reads the GPT's own layers."""

    def __init__(self, gpt: nn.Module) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, input_ids: torch.Tensor, past_keys: torch.Tensor,
                past_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # input_ids: (B, T); past_*: (L, B, nh, P, hs) -> logits (B, T, V), present_*: (L, B, nh, P + T, hs)
        gpt = self.gpt
        B, T = input_ids.shape
        P = past_keys.shape[3]
        positions = torch.arange(T, device=input_ids.device) + P                         # (T,)
        x = gpt.wte(input_ids) + gpt.wpe(positions)[None]                                 # (B, T, C)
        C = x.shape[-1]
        keys_seen = torch.arange(T + P, device=input_ids.device)
        mask = keys_seen[None, :] <= positions[:, None]                                   # (T, P + T)
        keys, values = [], []
        for layer, block in enumerate(gpt.h):
            attn = block.attn
            nh = attn.n_head
            q, k, v = attn.qkv(block.ln_1(x)).split(C, dim=2)
            q, k, v = (z.view(B, T, nh, C // nh).transpose(1, 2) for z in (q, k, v))       # (B, nh, T, hs)
            k = torch.cat([past_keys[layer], k], dim=2)                                   # (B, nh, P + T, hs)
            v = torch.cat([past_values[layer], v], dim=2)
            keys.append(k)
            values.append(v)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)                  # (B, nh, T, hs)
            x = x + attn.proj(y.transpose(1, 2).reshape(B, T, C))
            x = x + block.mlp(block.ln_2(x))
        return gpt.lm_head(gpt.ln_f(x)), torch.stack(keys), torch.stack(values)


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
    if model.family not in FAMILIES:
        raise NotSupportedError(f"the {model.family} family has no exportable sampling network; "
                                f"families that have: {', '.join(FAMILIES)}")
    if model.data_.modality == "tables":
        raise NotSupportedError("ONNX export of table models is not supported (their decoding is per column)")
    network = model.network_.cpu().eval()
    wrapper, args, names, outputs, dynamic, meta = _graph(model, network)
    wrapper.eval()
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad():
        program = torch.onnx.export(wrapper, args, dynamo=True, input_names=names, output_names=outputs,
                                    dynamic_shapes=dynamic, opset_version=OPSET, optimize=True, verbose=False)
        proto = program.model_proto
        onnx.helper.set_model_props(proto, {"genlab": json.dumps(meta)})
        onnx.save_model(proto, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
    return path


def _graph(model: GenerativeModel, network: nn.Module) -> tuple[nn.Module, tuple, list[str], list[str], Any,
                                                                  dict[str, Any]]:
    """Wrapper module, example inputs, input/output names, dynamic shapes and metadata of ``model``'s graph."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    shape = tuple(model.data_.shape)
    meta: dict[str, Any] = {"family": model.family, "modality": model.data_.modality, "shape": list(shape),
                            "codec": model.codec_.state(), "n_classes": model.data_.n_classes}
    if model.family == "transformer":
        gpt = network
        n_layer, n_head = len(gpt.h), gpt.n_head
        head = gpt.wte.weight.shape[1] // n_head
        codec = model.codec_
        meta |= {"n_layer": n_layer, "n_head": n_head, "head_size": head, "block_size": gpt.block_size,
                 "vocab_size": gpt.wte.weight.shape[0], "bos": getattr(codec, "bos", None),
                 "eos": getattr(codec, "eos", None), "levels": getattr(codec, "levels", None),
                 "sequence_length": getattr(codec, "sequence_length", None), "first_class": codec.vocab_size}
        past = torch.export.Dim("past", min=0, max=gpt.block_size)
        new = torch.export.Dim("new", min=1, max=gpt.block_size)
        args = (torch.zeros(2, 3, dtype=torch.long), torch.zeros(n_layer, 2, n_head, 4, head),
                torch.zeros(n_layer, 2, n_head, 4, head))
        dynamic = {"input_ids": {0: batch, 1: new}, "past_keys": {1: batch, 3: past}, "past_values": {1: batch, 3: past}}
        return (_CachedGPT(gpt), args, ["input_ids", "past_keys", "past_values"],
                ["logits", "present_keys", "present_values"], dynamic, meta)
    conditional = _conditional(model, network)
    y = torch.zeros(2, dtype=torch.long) if conditional else None
    meta["conditional"] = conditional
    if model.family == "gan":
        latent = model.config.latent_dim
        meta["latent_dim"] = latent
        args, names = (torch.zeros(2, latent),), ["z"]
        wrapper, outputs = _Generator(network.generator), ["x"]
        if conditional:
            meta["class_prior"] = network.class_log_prior.exp().tolist()
    elif model.family == "vae":
        latent = model.config.latent_dim
        meta |= {"latent_dim": latent, "likelihood": network.likelihood}
        args, names = (torch.zeros(2, latent),), ["z"]
        wrapper = _Decoder(network)
        outputs = ["mean", "scale"] if network.likelihood == "gaussian" else ["mean"]
        if conditional:
            meta["class_prior"] = network.class_log_prior.exp().tolist()
    else:   # diffusion
        meta |= {"prediction": model.config.prediction, "alpha_bar": model.schedule.alpha_bar.tolist(),
                 "timesteps": model.config.timesteps, "clip": 1.0 if model.data_.modality == "images" else None}
        if conditional:
            meta["null_class"] = network.classes.null_class
        args, names = (torch.zeros(2, *shape), torch.zeros(2, dtype=torch.long)), ["x", "t"]
        wrapper, outputs = _Denoiser(network), ["prediction"]
    dynamic: dict[str, Any] = {name: {0: batch} for name in names}
    if conditional:
        args, names, dynamic["y"] = (*args, y), [*names, "y"], {0: batch}
    else:
        dynamic["y"] = None
        args = (*args, None)
    return wrapper, args, names, outputs, dynamic, meta


def _conditional(model: GenerativeModel, network: nn.Module) -> bool:
    """Whether the sampling network takes class labels."""
    if model.family == "gan":
        return network.generator.embed is not None
    if model.family == "vae":
        return network.decoder_embed is not None
    return getattr(network, "classes", None) is not None
