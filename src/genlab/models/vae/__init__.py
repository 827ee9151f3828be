"""The VAE family: the model (model.py: the bound, sampling, encode/decode, log_prob), its config, the
networks with the importance-weighted bound, and TVAE on tables."""

from genlab.models.vae.config import VAEConfig
from genlab.models.vae.model import VAEModel

__all__ = ["VAEConfig", "VAEModel"]
