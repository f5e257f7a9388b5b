"""Densities of transformed data, scored in the original space."""

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, clone
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from ..gaussian import GaussianDensity
from ..utils._compat import HasMethods, _fit_context
from ..utils._mixins import MeanLogLikelihoodMixin
from ..utils._random import sample_from
from ..utils._validation import check_n_samples, restore_on_failure, validate_fitted
from ._zca import ZCAWhitener

__all__ = ["TransformedDensity", "log_abs_det_jacobian"]


def log_abs_det_jacobian(transformer, X):
    """``log|det dT/dx|`` of a fitted transformer at each row of ``X``.

    Known: transformers that define ``log_abs_det_jacobian_`` (constant, as
    :class:`ZCAWhitener`) or a method ``log_abs_det_jacobian(X)``;
    scikit-learn's ``StandardScaler`` and full-rank ``PCA`` (whitened or
    not).

    Parameters
    ----------
    transformer : fitted transformer
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    log_det : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        When the Jacobian of ``transformer`` is not known, or it is not
        invertible (a dimension-reducing PCA has no density in the input
        space).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skdensity import log_abs_det_jacobian
    >>> X = np.array([[0.0, 0.0], [2.0, 4.0]])
    >>> log_abs_det_jacobian(StandardScaler().fit(X), X)   # -log(1 * 2)
    array([-0.69314718, -0.69314718])
    """
    check_is_fitted(transformer)  # "not fitted" rather than "unknown Jacobian"
    n = X.shape[0]
    if hasattr(transformer, "log_abs_det_jacobian_"):
        return np.full(n, float(transformer.log_abs_det_jacobian_))
    if callable(getattr(transformer, "log_abs_det_jacobian", None)):
        return np.asarray(transformer.log_abs_det_jacobian(X), dtype=float)
    if isinstance(transformer, StandardScaler):
        scale = transformer.scale_
        return np.full(n, 0.0 if scale is None else -np.log(scale).sum())
    if isinstance(transformer, PCA):
        if transformer.n_components_ != transformer.n_features_in_:
            raise ValueError(
                f"PCA keeps {transformer.n_components_} of {transformer.n_features_in_} "
                "dimensions: it is not invertible, so a density of its output is "
                "not a density of the input. Use n_components=None."
            )
        # components_ is orthogonal; whitening divides by sqrt(explained_variance_).
        logdet = -0.5 * np.log(transformer.explained_variance_).sum() if transformer.whiten else 0.0
        return np.full(n, logdet)
    raise ValueError(
        f"The log-Jacobian of {type(transformer).__name__} is unknown. "
        "TransformedDensity needs an invertible transformer whose Jacobian it "
        "knows: ZCAWhitener, StandardScaler, full-rank PCA, or one defining "
        "log_abs_det_jacobian_ (constant) or log_abs_det_jacobian(X)."
    )


class TransformedDensity(MeanLogLikelihoodMixin, DensityMixin, BaseEstimator):
    r"""A density fitted on transformed data, scored in the original space.

    ``score_samples(x) = density.score_samples(T(x)) + log|det J_T(x)|``
    (change of variables), and ``sample`` maps the density's samples back with
    ``inverse_transform``. A plain ``Pipeline(whitener, density)`` omits the
    Jacobian term, so its log-likelihoods live in the whitened space and
    change with the whitener's ``eps``: a grid search over ``eps`` then
    rewards the largest ``eps``. Here they do not, and ``GridSearchCV`` over
    ``transformer__eps`` or ``density__reg`` compares like with like.

    Parameters
    ----------
    transformer : transformer, default=None
        Invertible transformer with a known Jacobian (see
        :func:`log_abs_det_jacobian`); None means ``ZCAWhitener()``.
    density : density estimator, default=None
        Fitted on the transformed data; needs ``score_samples`` (and
        ``sample`` for sampling). None means ``GaussianDensity()``.

    Attributes
    ----------
    transformer_ : transformer
        Fitted clone of ``transformer``.
    density_ : estimator
        Fitted clone of ``density``.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import GaussianDensity, TransformedDensity, ZCAWhitener
    >>> X = np.random.default_rng(0).normal(size=(500, 4)) * [1, 2, 3, 4]
    >>> td = TransformedDensity(ZCAWhitener(eps=0.5), GaussianDensity()).fit(X)
    >>> bool(np.isclose(td.score(X), GaussianDensity().fit(X).score(X)))
    True
    """

    _parameter_constraints: dict = {
        "transformer": [HasMethods(["fit", "transform", "inverse_transform"]), None],
        "density": [HasMethods(["fit", "score_samples"]), None],
    }

    def __init__(self, transformer=None, density=None):
        self.transformer = transformer
        self.density = density

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the transformer, then the density on the transformed data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self : object
        """
        with restore_on_failure(self):
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
            transformer = clone(ZCAWhitener() if self.transformer is None else self.transformer)
            density = clone(GaussianDensity() if self.density is None else self.density)
            Z = transformer.fit_transform(X)
            log_abs_det_jacobian(transformer, X[:1])  # fail early if unknown
            density.fit(Z)
        self.transformer_, self.density_ = transformer, density
        return self

    def score_samples(self, X):
        """Log-density in the original space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        X = validate_fitted(self, X)
        Z = self.transformer_.transform(X)
        return self.density_.score_samples(Z) + log_abs_det_jacobian(self.transformer_, X)

    def sample(self, n_samples=1, random_state=None):
        """Sample the density and map back with ``inverse_transform``.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Passed to the density's ``sample`` when it accepts one.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        if not hasattr(self.density_, "sample"):
            raise ValueError(f"{type(self.density_).__name__} cannot be sampled.")
        Z = sample_from(self.density_, n_samples, random_state)
        return self.transformer_.inverse_transform(Z)
