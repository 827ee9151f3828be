"""Generative families, one per file; ``FAMILIES`` maps each family name to its class."""

from genlab.models.base import DataInfo, GenerativeModel, NotFittedError
from genlab.models.gaussian import GaussianConfig, GaussianMixtureModel

FAMILIES: dict[str, type[GenerativeModel]] = {
    model.family: model for model in (GaussianMixtureModel,)
}

__all__ = ["FAMILIES", "DataInfo", "GaussianConfig", "GaussianMixtureModel", "GenerativeModel", "NotFittedError"]
