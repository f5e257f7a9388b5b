"""skdensity: scikit-learn-compatible density estimators for images.

Unnormalised models (Gaussian Markov random fields with a masked precision,
ZCA whitening as a Gaussian, energy models, densities of transformed data)
learned by score matching, maximum likelihood and noise-contrastive
estimation, with exact or estimated normalisation, sampling and
scikit-learn's API. TensorFlow is imported only by the energy model's fit.

The estimators live in subpackages by family (:mod:`skdensity.gaussian`,
:mod:`skdensity.energy`, :mod:`skdensity.whitening`); the numerical kernels
in :mod:`skdensity.linalg`. Everything public is re-exported here.
"""

from .energy import DeepEnergyModel
from .gaussian import (
    GaussianDensity,
    MaskedGaussianCNCE,
    MaskedGaussianMLE,
    MaskedGaussianNCE,
    MaskedGaussianSM,
    covariance_selection,
    masked_score_matching,
)
from .masks import check_mask, grid_mask
from .metrics import (
    bits_per_dimension,
    localization_index,
    mean_log_likelihood,
    orientation_index,
)
from .novelty import DensityOutlierDetector
from .whitening import TransformedDensity, ZCAWhitener, log_abs_det_jacobian, zca_whitening

__version__ = "0.1.0"

__all__ = [
    "DeepEnergyModel",
    "DensityOutlierDetector",
    "GaussianDensity",
    "MaskedGaussianCNCE",
    "MaskedGaussianMLE",
    "MaskedGaussianNCE",
    "MaskedGaussianSM",
    "TransformedDensity",
    "ZCAWhitener",
    "bits_per_dimension",
    "check_mask",
    "covariance_selection",
    "grid_mask",
    "localization_index",
    "log_abs_det_jacobian",
    "masked_score_matching",
    "mean_log_likelihood",
    "orientation_index",
    "zca_whitening",
]
