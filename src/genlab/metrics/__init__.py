"""Sample-quality metrics: generated samples scored against real data, all with ``real=``/``fake=``.

- :func:`mode_coverage` -> :class:`ModeCoverage`: modes captured, high-quality share and reverse KL
  of points from a known 2-D Gaussian mixture (VEEGAN, Srivastava et al., 2017; PacGAN, Lin et al., 2018).
- :func:`prdc` -> :class:`PRDC`: k-NN precision, recall, density and coverage of any feature vectors
  (Naeem et al., 2020).
- :func:`frechet_distance`: Fréchet distance between Gaussians fitted to any feature vectors, the
  formula behind FID (Heusel et al., 2017).
- :func:`kernel_distance`: unbiased squared MMD with a cubic polynomial kernel, the formula behind KID
  (Bińkowski et al., 2018).
- :func:`memorisation` -> :class:`Memorisation`: share of generated records nearer to a training
  record than the 5th percentile of held-out real records, and the exact-copy rate.
- :func:`bootstrap_intervals`, :func:`percentile_interval`: percentile bootstrap confidence intervals;
  :func:`prdc_per_record` / :func:`prdc_from_terms` and :func:`kernel_distance_replicates` let the
  k-NN and kernel metrics be bootstrapped without the bias that repeated records cause.
- :func:`feature_classifier` -> :class:`FeatureClassifier`: genlab's own CNN image classifier, trained
  (and cached) per labelled image dataset, whose features the image metrics use;
  :func:`conditional_accuracy`: the share of samples generated for class ``y`` that it calls ``y``.
"""

from genlab.metrics.bootstrap import bootstrap_intervals, percentile_interval
from genlab.metrics.features import (ClassifierConfig, FeatureClassifier, class_counts, conditional_accuracy,
                                     feature_classifier, sample_per_class)
from genlab.metrics.frechet import frechet_distance
from genlab.metrics.kid import kernel_distance, kernel_distance_replicates
from genlab.metrics.memorisation import (Memorisation, copies_training_data, memorisation, memorisation_from_distances,
                                         nearest_distances)
from genlab.metrics.modes import ModeCoverage, mode_coverage
from genlab.metrics.precision_recall import PRDC, prdc, prdc_from_terms, prdc_per_record

__all__ = ["ClassifierConfig", "FeatureClassifier", "Memorisation", "ModeCoverage", "PRDC", "bootstrap_intervals",
           "class_counts", "conditional_accuracy", "copies_training_data", "feature_classifier", "frechet_distance",
           "kernel_distance", "kernel_distance_replicates", "memorisation", "memorisation_from_distances", "mode_coverage",
           "nearest_distances", "percentile_interval", "prdc", "prdc_from_terms", "prdc_per_record", "sample_per_class"]
