"""Hugging Face ``GPT2LMHeadModel`` <-> genlab's GPT: a rename plus a transpose of its ``Conv1D`` weights."""

from __future__ import annotations

import torch

from genlab.errors import NotSupportedError
from genlab.models.transformer.gpt import GPT


_HF_NAMES = {"attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj", "mlp.fc": "mlp.c_fc", "mlp.proj": "mlp.c_proj"}


# ---------------------------------------------------------------------------------------- HF interop
# GPT-2's Conv1D stores weights as (in, out), the transpose of nn.Linear's (out, in).
_CONV1D = ("attn.qkv.weight", "attn.proj.weight", "mlp.fc.weight", "mlp.proj.weight")


def _hf_name(name: str) -> str:
    if name.startswith("h."):
        for ours, theirs in _HF_NAMES.items():
            name = name.replace(ours, theirs)
    return name if name.startswith("lm_head") else f"transformer.{name}"


def _hf_config(network: GPT):
    try:
        from transformers import GPT2Config
    except ImportError:
        raise NotSupportedError("Hugging Face interop needs transformers: pip install 'genlab[test]'") from None
    dropout = network.dropout
    return GPT2Config(vocab_size=network.wte.num_embeddings, n_positions=network.block_size,
                      n_embd=network.wte.embedding_dim, n_layer=len(network.h), n_head=network.n_head,
                      activation_function="gelu_new", resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                      layer_norm_epsilon=1e-5, bos_token_id=None, eos_token_id=None, pad_token_id=None,
                      tie_word_embeddings=True)


def gpt_to_hf(network: GPT):
    """Copy ``network`` into a new ``transformers.GPT2LMHeadModel`` (eval mode, on CPU)."""
    config = _hf_config(network)   # raises NotSupportedError without transformers
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(config).eval()
    state = {}
    for name, tensor in network.state_dict().items():
        tensor = tensor.detach().cpu()
        state[_hf_name(name)] = tensor.T.contiguous() if name.endswith(_CONV1D) else tensor.clone()
    for name, tensor in hf.state_dict().items():
        if name.endswith(".bias") and not name.endswith(".attn.bias") and name not in state:
            state[name] = torch.zeros_like(tensor)    # a bias-free GPT is GPT-2 with zero biases
    missing, unexpected = hf.load_state_dict(state, strict=False)
    leftover = [m for m in missing if not m.startswith("lm_head") and not m.endswith(".attn.bias")]
    if leftover or unexpected:
        raise NotSupportedError(f"GPT2LMHeadModel layout differs: missing {leftover}, unexpected {unexpected}")
    return hf


def gpt_from_hf(hf_model) -> GPT:
    """A :class:`GPT` holding a ``GPT2LMHeadModel``'s weights (tied head; GELU must be ``gelu_new``)."""
    hf = hf_model.config
    if hf.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
        raise NotSupportedError(f"GPT-2 with activation {hf.activation_function!r}: genlab's GPT uses tanh GELU")
    network = GPT(hf.vocab_size, hf.n_positions, hf.n_layer, hf.n_head, hf.n_embd, float(hf.resid_pdrop))
    theirs = hf_model.state_dict()
    state = {}
    for name in network.state_dict():
        tensor = theirs[_hf_name(name)].detach().cpu()
        state[name] = tensor.T.contiguous() if name.endswith(_CONV1D) else tensor.clone()
    network.load_state_dict(state, strict=True)
    return network
