"""The Gaussian family: a full-covariance Gaussian and Gaussian Markov random
fields whose precision is supported on a mask, each estimator beside its
solver.

- :mod:`._base`: the shared base (sufficient statistics, exact log-density,
  sampling) and :class:`GaussianDensity`;
- :mod:`._score_matching`: :class:`MaskedGaussianSM` and
  :func:`masked_score_matching`;
- :mod:`._covariance_selection`: :class:`MaskedGaussianMLE` and
  :func:`covariance_selection` (maximum likelihood);
- :mod:`._nce`, :mod:`._cnce`: :class:`MaskedGaussianNCE` and
  :class:`MaskedGaussianCNCE` with their losses;
- :mod:`._quadratic_features`: the NCE design matrix;
- :mod:`._moments`, :mod:`._decoupling`: sufficient statistics, and features
  the data decouple.
"""

from ._base import GaussianDensity
from ._cnce import MaskedGaussianCNCE, cnce_loss
from ._covariance_selection import CovarianceSelectionInfo, MaskedGaussianMLE, covariance_selection
from ._nce import MaskedGaussianNCE, nce_accuracy, nce_loss
from ._score_matching import (
    MaskedGaussianSM,
    ScoreMatchingInfo,
    masked_score_matching,
    metric_score_matching,
)

__all__ = [
    "CovarianceSelectionInfo",
    "GaussianDensity",
    "MaskedGaussianCNCE",
    "MaskedGaussianMLE",
    "MaskedGaussianNCE",
    "MaskedGaussianSM",
    "ScoreMatchingInfo",
    "cnce_loss",
    "covariance_selection",
    "masked_score_matching",
    "metric_score_matching",
    "nce_accuracy",
    "nce_loss",
]
