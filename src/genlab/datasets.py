"""Datasets: ``genlab.datasets.load("ring8")``, a user file, or a folder of images.

>>> from genlab import datasets
>>> data = datasets.load("moons", seed=1)
>>> data.x_train.shape
(10000, 2)
"""

from genlab.data.dataset import Dataset
from genlab.data.registry import describe, load, names

__all__ = ["Dataset", "describe", "load", "names"]
