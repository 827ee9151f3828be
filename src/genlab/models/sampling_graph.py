"""A fitted model's sampling network as a graph an exporter can trace (``genlab export``, ONNX).

The families' networks differ, so the graph of each lives here, beside them, and the exporter
(:mod:`genlab.export.onnx`) only traces and checks what :func:`sampling_graph` returns:

- ``gan`` and ``vae`` (graph ``latent``): the generator ``G(z[, y])`` / the decoder's mean (and, for a
  Gaussian likelihood, scale) of ``z (B, latent_dim)``;
- ``diffusion`` (graph ``denoiser``): ``f(x_t, t[, y])``, the timestep an input so one graph serves every step;
- ``transformer`` (graph ``cached_decoder``): one decoding step with the key/value cache as inputs and
  outputs, as Hugging Face Optimum exports decoders.

``meta`` holds what a torch-free runner needs (:mod:`genlab.export.runner` reads it by its ``graph`` kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import NotSupportedError
from genlab.models.base import GenerativeModel
from genlab.sampling.onnx_denoiser import DenoiserCall

#: Families with an exportable sampling network.
EXPORTABLE: tuple[str, ...] = ("diffusion", "gan", "transformer", "vae")


@dataclass
class SamplingGraph:
    """What an exporter traces: ``module(*args)`` with named inputs and outputs, the dynamic axes of each
    input (``torch.export.Dim``), and JSON ``meta`` for the runner."""

    module: nn.Module
    args: tuple
    input_names: list[str]
    output_names: list[str]
    dynamic_shapes: dict[str, Any]
    meta: dict[str, Any]


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


def sampling_graph(model: GenerativeModel) -> SamplingGraph:
    """The sampling network of a fitted ``model`` as an exportable graph (module doc).

    Raises:
        NotSupportedError: a family without an exportable sampling network.
    """
    if model.record_modality != model.data_.modality:
        raise NotSupportedError(f"this {model.family} model writes {model.record_modality} of "
                                f"{model.data_.modality} (a captioner); its network is not exported yet")
    network = model.network_
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
        meta["graph"] = "cached_decoder"
        return SamplingGraph(_CachedGPT(gpt), args, ["input_ids", "past_keys", "past_values"],
                             ["logits", "present_keys", "present_values"], dynamic, meta)
    conditional = _conditional(model, network)
    y = torch.zeros(2, dtype=torch.long) if conditional else None
    meta["conditional"] = conditional
    if model.family == "gan":
        meta["graph"] = "latent"
        latent = model.config.latent_dim
        meta["latent_dim"] = latent
        args, names = (torch.zeros(2, latent),), ["z"]
        wrapper, outputs = _Generator(network.generator), ["x"]
        if conditional:
            meta["class_prior"] = network.class_log_prior.exp().tolist()
    elif model.family == "vae":
        meta["graph"] = "latent"
        latent = model.config.latent_dim
        meta |= {"latent_dim": latent, "likelihood": network.likelihood}
        if network.fitted_prior is not None and network.fitted_prior.is_fitted:   # the ex-post mixture
            mixture = network.fitted_prior
            meta["prior"] = {"log_weights": mixture.log_weights.tolist(), "means": mixture.means.tolist(),
                             "scale_tril": mixture.scale_tril.tolist()}
        args, names = (torch.zeros(2, latent),), ["z"]
        wrapper = _Decoder(network)
        outputs = ["mean", "scale"] if network.likelihood == "gaussian" else ["mean"]
        if conditional:
            meta["class_prior"] = network.class_log_prior.exp().tolist()
    elif model.family == "diffusion":
        meta["graph"] = "denoiser"
        meta |= {"prediction": model.config.prediction, "alpha_bar": model.schedule.alpha_bar.tolist(),
                 "timesteps": model.config.timesteps, "clip": 1.0 if model.data_.modality == "images" else None}
        if conditional:
            meta["null_class"] = network.classes.null_class
        args, names = (torch.zeros(2, *shape), torch.zeros(2, dtype=torch.long)), ["x", "t"]
        wrapper, outputs = DenoiserCall(network), ["prediction"]
    else:
        raise NotSupportedError(f"the {model.family} family has no exportable sampling network; "
                                f"families that have: {', '.join(EXPORTABLE)}")
    dynamic: dict[str, Any] = {name: {0: batch} for name in names}
    if conditional:
        args, names, dynamic["y"] = (*args, y), [*names, "y"], {0: batch}
    else:
        dynamic["y"] = None
        args = (*args, None)
    return SamplingGraph(wrapper, args, names, outputs, dynamic, meta)


def _conditional(model: GenerativeModel, network: nn.Module) -> bool:
    """Whether the sampling network takes class labels."""
    if model.family == "gan":
        return network.generator.embed is not None
    if model.family == "vae":
        return network.decoder_embed is not None
    return getattr(network, "classes", None) is not None
