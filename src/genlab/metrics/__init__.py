"""Sample-quality metrics: generated samples scored against real data, all with ``real=``/``fake=``.

- :func:`mode_coverage` -> :class:`ModeCoverage`: modes captured, high-quality share and reverse KL
  of points from a known 2-D Gaussian mixture (VEEGAN, Srivastava et al., 2017; PacGAN, Lin et al., 2018).
- :func:`prdc` -> :class:`PRDC`: k-NN precision, recall, density and coverage of any feature vectors
  (Naeem et al., 2020).
- :func:`frechet_distance`: Fréchet distance between Gaussians fitted to any feature vectors, the
  formula behind FID (Heusel et al., 2017).
"""

from genlab.metrics.frechet import frechet_distance
from genlab.metrics.modes import ModeCoverage, mode_coverage
from genlab.metrics.precision_recall import PRDC, prdc

__all__ = ["ModeCoverage", "PRDC", "frechet_distance", "mode_coverage", "prdc"]
