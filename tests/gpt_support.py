"""A small GPT with perturbed biases and LayerNorm parameters, shared by the transformer tests."""

from __future__ import annotations

import torch

from genlab.models.transformer import GPT


def random_gpt(vocab: int = 37, block: int = 48, seed: int = 0, device: str = "cpu") -> GPT:
    """A seeded 2-layer GPT in eval mode, its biases and LayerNorms moved away from the init so mistakes show."""
    torch.manual_seed(seed)
    network = GPT(vocab, block, n_layer=2, n_head=4, n_embd=32).eval()
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if "ln" in name or name.endswith("bias"):
                parameter.add_(0.2 * torch.randn_like(parameter))
    return network.to(device)
