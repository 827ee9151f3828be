"""The autoregressive family: the model (model.py: likelihood training, decoding, streaming), its config,
the GPT network, the Hugging Face conversion, and the order-agnostic model of tables."""

from genlab.models.transformer.config import TransformerConfig
from genlab.models.transformer.gpt import GPT, next_token_loss
from genlab.models.transformer.hf import gpt_from_hf, gpt_to_hf
from genlab.models.transformer.likelihood import TokenLogLikelihood
from genlab.models.transformer.model import TransformerModel

__all__ = ["GPT", "TokenLogLikelihood", "TransformerConfig", "TransformerModel", "gpt_from_hf", "gpt_to_hf",
           "next_token_loss"]
