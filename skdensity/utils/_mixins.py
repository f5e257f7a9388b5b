"""Mixins shared by every density of the package."""

import numpy as np

__all__ = ["MeanLogLikelihoodMixin"]


class MeanLogLikelihoodMixin:
    """``score`` as the mean of ``score_samples``, for every density here."""

    def score(self, X, y=None):
        """Mean log-likelihood of ``X`` (nats per sample).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))
