"""skdensity: scikit-learn-compatible density estimators for images.

Unnormalised models (Gaussian Markov random fields with a masked precision,
...) learned by score matching, maximum likelihood and related objectives,
with exact or estimated normalisation, sampling and scikit-learn's API.
TensorFlow is imported only by the models that need it.
"""

from ._covariance_selection import covariance_selection
from ._mle import MaskedGaussianMLE
from ._score_matching import masked_score_matching
from ._sm import MaskedGaussianSM
from .masks import check_mask, grid_mask

__version__ = "0.1.0"

__all__ = [
    "MaskedGaussianMLE",
    "MaskedGaussianSM",
    "check_mask",
    "covariance_selection",
    "grid_mask",
    "masked_score_matching",
]
