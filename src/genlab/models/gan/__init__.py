"""The GAN family: the model (model.py: the game, sampling, rejection, latents), its config, the networks,
the losses, and CTGAN on tables."""

from genlab.models.gan.config import LOSSES, GANConfig
from genlab.models.gan.model import GANModel

__all__ = ["LOSSES", "GANConfig", "GANModel"]
