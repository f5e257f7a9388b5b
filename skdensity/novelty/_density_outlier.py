"""Novelty detection by thresholding a density's log-likelihood, in
scikit-learn's outlier API."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, OutlierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from ..gaussian import GaussianDensity
from ..utils._compat import HasMethods, Interval, StrOptions, _fit_context
from ..utils._validation import restore_on_failure, validate_fitted

__all__ = ["DensityOutlierDetector"]


class DensityOutlierDetector(OutlierMixin, MetaEstimatorMixin, BaseEstimator):
    """Flag samples that a density fitted on inliers finds unlikely.

    ``score_samples`` is the density's log-likelihood, minus a reference
    (background) density's when one is given: the likelihood ratio of Ren et
    al. (2019), which discounts what both densities find easy (smooth
    backgrounds, low-complexity images). ``decision_function`` subtracts
    ``offset_``; ``predict`` returns -1 for outliers (negative decision) and
    +1 for inliers, as scikit-learn's ``EllipticEnvelope`` and
    ``LocalOutlierFactor(novelty=True)`` do. ``score`` is the density's mean
    log-likelihood, so ``GridSearchCV`` tunes the density by held-out
    likelihood of the inliers.

    Parameters
    ----------
    density : estimator, default=None
        A density estimator with ``score_samples`` (skdensity's, or
        scikit-learn's ``KernelDensity`` or ``GaussianMixture``), fitted on a
        clone during ``fit``; None means ``GaussianDensity(reg=1e-6)``.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Share of the training data taken as outliers: ``offset_`` is that
        quantile of the training scores. ``"auto"`` assumes no share: the
        threshold is Tukey's lower fence of the training scores, ``Q1 - 1.5
        IQR``, so outliers are samples far in the low tail of what the
        training data score.
    reference : fitted estimator, default=None
        A fitted density with ``score_samples`` on the same features (for
        example a density of generic images); its log-likelihood is
        subtracted from the score.

    Attributes
    ----------
    density_ : estimator
        The fitted clone of ``density``.
    offset_ : float
        The threshold on ``score_samples``.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.novelty import DensityOutlierDetector
    >>> rng = np.random.default_rng(0)
    >>> detector = DensityOutlierDetector(contamination=0.05).fit(rng.normal(size=(500, 3)))
    >>> detector.predict([[0.0, 0.0, 0.0], [6.0, 6.0, 6.0]])
    array([ 1, -1])
    """

    _parameter_constraints: dict = {
        "density": [HasMethods(["fit", "score_samples"]), None],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "reference": [HasMethods(["score_samples"]), None],
    }

    def __init__(self, density=None, *, contamination="auto", reference=None):
        self.density = density
        self.contamination = contamination
        self.reference = reference

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the density on (mostly) inliers and set the threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
        """
        with restore_on_failure(self):
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
            self._check_reference(X.shape[1])
            density = GaussianDensity(reg=1e-6) if self.density is None else self.density
            density = clone(density).fit(X)
            scores = self._scores(density, X)
            finite = scores[np.isfinite(scores)]
            if finite.size == 0:
                raise ValueError(
                    f"{type(density).__name__} gives every training sample a log-likelihood "
                    "of -inf: no threshold can be set. Check the density's parameters."
                )
            if self.contamination == "auto":  # Tukey's lower fence
                q1, q3 = np.percentile(finite, [25.0, 75.0])
                offset = q1 - 1.5 * (q3 - q1)
            else:
                offset = np.percentile(scores, 100.0 * self.contamination)
        self.density_, self.offset_ = density, float(offset)
        return self

    def _check_reference(self, n_features):
        if self.reference is None:
            return
        try:
            check_is_fitted(self.reference)
        except NotFittedError:
            raise ValueError(
                f"The reference density {type(self.reference).__name__} is not fitted: fit it "
                "(on background data) before passing it."
            ) from None
        n_in = getattr(self.reference, "n_features_in_", n_features)
        if n_in != n_features:
            raise ValueError(
                f"The reference density was fitted on {n_in} features but X has {n_features}."
            )

    def _scores(self, density, X):
        scores = np.asarray(density.score_samples(X), dtype=np.float64)
        if self.reference is not None:
            scores = scores - np.asarray(self.reference.score_samples(X), dtype=np.float64)
        return scores

    def score_samples(self, X):
        """Log-likelihood (or log-likelihood ratio to the reference): the lower,
        the more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X = validate_fitted(self, X)
        return self._scores(self.density_, X)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        decision : ndarray of shape (n_samples,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """-1 for outliers, +1 for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def score(self, X, y=None):
        """Mean log-likelihood of ``X`` under the fitted density (not the
        ratio): what model selection on inliers maximises.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        score : float
        """
        X = validate_fitted(self, X)
        return float(np.mean(self.density_.score_samples(X)))
