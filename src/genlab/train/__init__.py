"""Gradient training shared by every neural family: phases, the Trainer, its config and callbacks."""

from genlab.train.callbacks import Callback, TrainState
from genlab.train.config import TrainConfig
from genlab.train.phase import Batch, Losses, Phase
from genlab.train.trainer import Trainer, TrainResult

__all__ = ["Batch", "Callback", "Losses", "Phase", "TrainConfig", "TrainResult", "TrainState", "Trainer"]
