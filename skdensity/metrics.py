"""Likelihoods in the units generative-model papers report, a scorer that puts
densities on one scale, and measures of learned filters."""

import numpy as np

from .energy._filter_metrics import localization_index, orientation_index

__all__ = ["bits_per_dimension", "localization_index", "mean_log_likelihood", "orientation_index"]


def bits_per_dimension(log_likelihood, n_dims, *, n_levels=256, data_range=1.0):
    r"""Mean log-likelihood of discrete images, in bits per dimension.

    A continuous density :math:`p` of images whose pixels take ``n_levels``
    values spread over ``data_range`` (256 levels scaled to [0, 1] by
    default, as ``pixels / 255`` nearly is) is turned into a probability of
    the discrete image by uniform dequantisation: each pixel's bin has width
    :math:`\Delta = \text{data\_range} / \text{n\_levels}`, and
    :math:`\log P(x) \ge \log p(x) + D\log\Delta`. Then

    .. math:: \text{bits/dim} = -\frac{\log p(x) + D \log\Delta}{D \log 2},

    the figure reported for generative models of images (8 for a uniform
    density on 256 levels; lower is better).

    Parameters
    ----------
    log_likelihood : float or array-like
        Log-likelihood in nats per image (e.g. ``estimator.score(X)``).
    n_dims : int
        Number of dimensions ``D`` (pixels times channels).
    n_levels : int, default=256
        Number of discrete values each pixel takes.
    data_range : float, default=1.0
        Width of the interval the levels span in the data given to the model.

    Returns
    -------
    bits : float or ndarray
        Bits per dimension.

    Examples
    --------
    >>> from skdensity.metrics import bits_per_dimension
    >>> float(bits_per_dimension(0.0, 784))   # uniform density on [0, 1]^784
    8.0
    """
    if not (isinstance(n_dims, (int, np.integer)) and n_dims >= 1):
        raise ValueError(f"n_dims must be a positive integer, got {n_dims!r}.")
    if not (isinstance(n_levels, (int, np.integer)) and n_levels >= 2):
        raise ValueError(f"n_levels must be an integer of at least 2, got {n_levels!r}.")
    if not (np.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}.")
    log_likelihood = np.asarray(log_likelihood, dtype=np.float64)
    if np.any(np.isnan(log_likelihood)):
        raise ValueError("log_likelihood contains NaN.")
    bin_width = data_range / n_levels
    bits = -(log_likelihood + n_dims * np.log(bin_width)) / (n_dims * np.log(2.0))
    return bits if bits.ndim else float(bits)


def mean_log_likelihood(estimator, X, y=None):
    """Scorer: the mean log-likelihood of ``X`` under a fitted density.

    A callable for ``scoring=`` in :func:`~sklearn.model_selection.cross_val_score`
    and :class:`~sklearn.model_selection.GridSearchCV` that puts densities
    with different ``score`` conventions on one scale: scikit-learn's
    :class:`~sklearn.neighbors.KernelDensity` scores the *total*
    log-likelihood, so its default ``score`` grows with the size of the fold
    and cannot be compared with :class:`~sklearn.mixture.GaussianMixture`'s
    or skdensity's means.

    Parameters
    ----------
    estimator : fitted estimator
        Has ``score_samples`` (log-density per row) or, failing that, a
        ``score`` that is already a mean (scikit-learn's covariance
        estimators).
    X : array-like of shape (n_samples, n_features)
        Held-out data.
    y : None
        Ignored.

    Returns
    -------
    score : float
        Mean log-likelihood in nats per row.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.neighbors import KernelDensity
    >>> from skdensity.metrics import mean_log_likelihood
    >>> X = np.random.default_rng(0).normal(size=(90, 2))
    >>> scores = cross_val_score(KernelDensity(), X, scoring=mean_log_likelihood, cv=3)
    >>> bool(np.all(scores < 0))
    True
    """
    if hasattr(estimator, "score_samples"):
        scores = np.asarray(estimator.score_samples(X), dtype=np.float64)
        if np.any(np.isnan(scores)):
            raise ValueError(f"{type(estimator).__name__}.score_samples returned NaN.")
        return float(np.mean(scores))
    if hasattr(estimator, "score"):
        return float(estimator.score(X))
    raise TypeError(
        f"{type(estimator).__name__} has neither score_samples nor score; "
        "mean_log_likelihood needs a fitted density."
    )
