"""The diffusion family: the model (model.py: objective, sampler, guidance), its config, the point and
row denoiser, the learned-variance bound, and one file per further concern: captions, editing (SDEdit,
inpainting, inversion) and tables (TabDDPM)."""

from genlab.models.diffusion.config import CPU_SAMPLE_VALUES, SAMPLERS, DiffusionConfig
from genlab.models.diffusion.model import DiffusionModel

__all__ = ["CPU_SAMPLE_VALUES", "SAMPLERS", "DiffusionConfig", "DiffusionModel"]
