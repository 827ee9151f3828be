"""Generative families, one per file; ``FAMILIES`` maps each family name to its class."""

from genlab.models.base import DataInfo, GenerativeModel, NotFittedError
from genlab.models.diffusion import DiffusionModel
from genlab.models.gaussian import GaussianConfig, GaussianMixtureModel
from genlab.models.gan import GANModel
from genlab.models.transformer import TransformerConfig, TransformerModel
from genlab.models.vae import VAEModel

FAMILIES: dict[str, type[GenerativeModel]] = {
    model.family: model for model in (GaussianMixtureModel, GANModel, VAEModel, DiffusionModel, TransformerModel)
}

__all__ = ["FAMILIES", "DataInfo", "GaussianConfig", "GaussianMixtureModel", "GenerativeModel", "NotFittedError",
           "TransformerConfig", "TransformerModel"]
