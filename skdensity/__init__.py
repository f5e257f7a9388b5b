"""skdensity: scikit-learn-compatible density estimators for images.

Unnormalised models (Gaussian Markov random fields with a masked precision,
ZCA whitening as a Gaussian, densities of transformed data, ...) learned by score matching, maximum likelihood and related objectives,
with exact or estimated normalisation, sampling and scikit-learn's API.
TensorFlow is imported only by the models that need it.
"""

from ._base import GaussianDensity
from ._covariance_selection import covariance_selection
from ._deep_energy import DeepEnergyModel
from ._masked_nce import MaskedGaussianCNCE, MaskedGaussianNCE
from ._mle import MaskedGaussianMLE
from ._score_matching import masked_score_matching
from ._sm import MaskedGaussianSM
from ._transformed import TransformedDensity, log_abs_det_jacobian
from ._zca import ZCAWhitener, zca_whitening
from .masks import check_mask, grid_mask

__version__ = "0.1.0"

__all__ = [
    "DeepEnergyModel",
    "GaussianDensity",
    "MaskedGaussianCNCE",
    "MaskedGaussianMLE",
    "MaskedGaussianNCE",
    "MaskedGaussianSM",
    "TransformedDensity",
    "ZCAWhitener",
    "check_mask",
    "covariance_selection",
    "grid_mask",
    "log_abs_det_jacobian",
    "masked_score_matching",
    "zca_whitening",
]
