"""Sufficient statistics of a Gaussian: count, mean and covariance, computed
in one pass and merged exactly for streaming fits."""

from dataclasses import dataclass

import numpy as np

from ..utils._compat import _assert_all_finite

__all__ = ["Moments"]


@dataclass(frozen=True)
class Moments:
    """Count, mean and (biased) covariance of a sample set."""

    n_samples: int
    mean: np.ndarray
    covariance: np.ndarray

    @property
    def n_features(self):
        return self.mean.shape[0]

    @classmethod
    def of(cls, X, assume_centered=False):
        """The moments of ``X`` (not modified): one product of the centred data."""
        n = X.shape[0]
        if assume_centered:
            return cls(n, np.zeros(X.shape[1]), X.T @ X / n)
        mean = X.mean(axis=0)
        Xc = X - mean
        return cls(n, mean, Xc.T @ Xc / n)

    @classmethod
    def of_finite(cls, X, assume_centered=False):
        """:meth:`of` for data not yet checked for NaN and infinity.

        NaN or infinity anywhere makes a column mean or a variance
        non-finite, so the moments replace scikit-learn's separate scan of
        the data; only then is the data scanned, for scikit-learn's own error.
        """
        with np.errstate(all="ignore"):  # non-finite input is reported below
            moments = cls.of(X, assume_centered)
        if not (
            np.all(np.isfinite(moments.mean)) and np.all(np.isfinite(np.diag(moments.covariance)))
        ):
            _assert_all_finite(X, input_name="X")
        return moments

    def merge(self, other):
        """Exact pooled moments of two sample sets (Chan, Golub & LeVeque 1979).

        Merging centred scatter matrices plus a rank-one mean correction avoids
        the cancellation of the naive ``E[xx'] - mean mean'`` formula.
        """
        n1, n2 = self.n_samples, other.n_samples
        n = n1 + n2
        delta = other.mean - self.mean
        mean = self.mean + delta * (n2 / n)
        covariance = (
            (n1 / n) * self.covariance
            + (n2 / n) * other.covariance
            + np.outer(delta, delta) * (n1 * n2 / n**2)
        )
        return Moments(n, mean, covariance)
