"""ZCA whitening with an empirical or learned covariance, as a Gaussian density."""

import warnings
from numbers import Real

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    DensityMixin,
    OneToOneFeatureMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..exceptions import IllConditionedWarning
from ..gaussian._inputs import check_finite_covariance, unit_scale
from ..gaussian._moments import Moments
from ..utils._compat import HasMethods, Interval, _fit_context
from ..utils._mixins import MeanLogLikelihoodMixin
from ..utils._validation import check_n_samples, restore_on_failure, validate_fitted

__all__ = ["ZCAWhitener", "zca_whitening"]

# Below this ratio of smallest to largest (eigenvalue + eps), whitening
# amplifies a direction by more than 1e4 relative to the strongest one.
_CONDITION_WARNING = 1e-8


def zca_whitening(covariance=None, *, precision=None, eps=0.1, relative_eps=True):
    r"""ZCA whitening and de-whitening matrices of a covariance.

    ``W = U diag((lambda + eps)^(-1/2)) U'`` is the symmetric (zero-phase)
    whitening: of all whitening matrices it keeps the whitened data closest
    to the original, which is why ZCA-whitened images look like edge maps
    rather than noise (PCA whitening, ``diag(...) U'``, rotates them away).

    Parameters
    ----------
    covariance : ndarray of shape (n_features, n_features), default=None
        Symmetric positive semi-definite covariance.
    precision : ndarray of shape (n_features, n_features), default=None
        Positive definite precision, used instead of ``covariance`` (the
        learned precision of a Gaussian Markov random field): its eigenvectors
        are the covariance's and its eigenvalues the reciprocals, so no dense
        inverse is formed.
    eps : float, default=0.1
        Added to every eigenvalue of the covariance before the inverse square
        root. With ``relative_eps`` it is a fraction of the mean eigenvalue
        ``trace(C) / n_features``, which makes it independent of the data's
        scale; otherwise it is in squared data units (UFLDL's advice for
        pixels in [0, 1] is 0.01 to 0.1).
    relative_eps : bool, default=True
        Interpret ``eps`` relative to the mean eigenvalue.

    Returns
    -------
    whitening : ndarray of shape (n_features, n_features)
    dewhitening : ndarray of shape (n_features, n_features)
        Its inverse.
    eigenvalues : ndarray of shape (n_features,)
        Eigenvalues of the covariance, descending, without ``eps``.
    eps : float
        The absolute value added to the eigenvalues.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import zca_whitening
    >>> W, Winv, lam, eps = zca_whitening(np.diag([4.0, 1.0]), eps=0.0)
    >>> np.diag(W)
    array([0.5, 1. ])
    """
    if (covariance is None) == (precision is None):
        raise ValueError("Give exactly one of covariance and precision.")
    if precision is not None:
        precision = np.asarray(precision, dtype=np.float64)
        try:
            la.cholesky(precision, lower=True)
        except la.LinAlgError:
            raise ValueError(
                "The precision matrix is not positive definite; it cannot be used for whitening."
            ) from None
        mu, U = la.eigh(precision)  # ascending: covariance eigenvalues descending
        lam = 1.0 / mu
    else:
        covariance = np.asarray(covariance, dtype=np.float64)
        lam, U = la.eigh(covariance)
        lam, U = lam[::-1], U[:, ::-1]
        if lam[-1] < -1e-10 * max(lam[0], 1e-300):
            raise ValueError(
                f"The covariance has a negative eigenvalue ({lam[-1]:.3g}); it is "
                "not a covariance matrix."
            )
        lam = np.clip(lam, 0.0, None)  # round-off below zero
    if not np.all(np.isfinite(lam)):
        raise ValueError("The covariance has non-finite eigenvalues.")
    eps_abs = float(eps * lam.mean()) if relative_eps else float(eps)
    d = lam + eps_abs
    if d[-1] <= len(d) * np.finfo(float).eps * d[0]:
        raise ValueError(
            "The covariance is singular (smallest eigenvalue "
            f"{lam[-1]:.3g}) and eps={eps:g} adds nothing: whitening would divide "
            "by zero. Use eps > 0."
        )
    if d[-1] < _CONDITION_WARNING * d[0]:
        warnings.warn(
            f"Whitening divides by eigenvalues down to {d[-1] / d[0]:.1e} of the "
            "largest; the whitened data will amplify noise in those directions. "
            "Increase eps.",
            IllConditionedWarning,
            stacklevel=2,
        )
    root = np.sqrt(d)
    whitening = (U / root) @ U.T
    dewhitening = (U * root) @ U.T
    return whitening, dewhitening, lam, eps_abs


class ZCAWhitener(
    MeanLogLikelihoodMixin, OneToOneFeatureMixin, TransformerMixin, DensityMixin, BaseEstimator
):
    """ZCA whitening with an empirical or learned covariance; also a Gaussian.

    ``transform(X) = (X - location_) @ whitening_`` with the symmetric
    whitening ``W = (C + eps I)^(-1/2)``. The covariance ``C`` is the
    empirical one, or the ``covariance_`` / ``precision_`` of any covariance
    estimator (``MaskedGaussianSM``/``MaskedGaussianMLE``, scikit-learn's
    ``LedoitWolf``, ``OAS``, ``GraphicalLasso``...): whitening with the
    learned covariance ``C = inv(Lambda)``, for which ``W = Lambda^(1/2)``
    when ``eps = 0``.

    The whitener is also the density ``N(location_, C + eps I)``
    (``score_samples``, ``score``, ``sample``), and
    ``log_abs_det_jacobian_ = log|det W|`` is what a density fitted on the
    whitened data needs to be scored in the original space (see
    :class:`TransformedDensity`).

    Parameters
    ----------
    eps : float, default=0.1
        Added to the eigenvalues of the covariance. With ``relative_eps``
        (default) it is a fraction of the mean eigenvalue, so it does not
        depend on the data's scale; otherwise in squared data units.
    relative_eps : bool, default=True
        Interpret ``eps`` relative to the mean eigenvalue.
    covariance_estimator : estimator, default=None
        Fitted on ``X`` (a clone) and providing ``precision_`` (preferred:
        no inverse is formed) or ``covariance_``, and ``location_`` if it
        has one. None: the empirical covariance.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Mean subtracted before whitening.
    whitening_ : ndarray of shape (n_features, n_features)
        Symmetric whitening matrix ``W``.
    dewhitening_ : ndarray of shape (n_features, n_features)
        Its inverse.
    eigenvalues_ : ndarray of shape (n_features,)
        Eigenvalues of the covariance used, descending, without ``eps``.
    eps_ : float
        Absolute value added to the eigenvalues.
    covariance_ : ndarray of shape (n_features, n_features)
        ``C + eps_ I``: the covariance of the Gaussian the whitener defines.
    log_abs_det_jacobian_ : float
        ``log|det W|``.
    covariance_estimator_ : estimator or None
        The fitted clone of ``covariance_estimator``.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import ZCAWhitener
    >>> X = np.random.default_rng(0).normal(size=(1000, 3)) @ [[2, 1, 0], [0, 1, 0], [0, 0, 3]]
    >>> Z = ZCAWhitener(eps=0.0).fit_transform(X)
    >>> bool(np.allclose(np.cov(Z.T, bias=True), np.eye(3)))
    True
    """

    _parameter_constraints: dict = {
        "eps": [Interval(Real, 0, None, closed="left")],
        "relative_eps": ["boolean"],
        "covariance_estimator": [HasMethods(["fit"]), None],
    }

    def __init__(self, *, eps=0.1, relative_eps=True, covariance_estimator=None):
        self.eps = eps
        self.relative_eps = relative_eps
        self.covariance_estimator = covariance_estimator

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Estimate the mean and covariance and build the whitening.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted whitener.
        """
        with restore_on_failure(self):
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
            estimator, location, source = self._covariance_source(X)
            W, Winv, lam, eps_abs = zca_whitening(
                **source, eps=self.eps, relative_eps=self.relative_eps
            )
        self.covariance_estimator_ = estimator
        self.location_ = location
        self.whitening_, self.dewhitening_ = W, Winv
        self.eigenvalues_, self.eps_ = lam, eps_abs
        self.covariance_ = Winv @ Winv
        self.log_abs_det_jacobian_ = float(-0.5 * np.log(lam + eps_abs).sum())
        return self

    def _covariance_source(self, X):
        """The fitted covariance estimator (or None), the mean, and the
        covariance or precision to whiten with."""
        if self.covariance_estimator is None:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
                moments = Moments.of(X)
            check_finite_covariance(moments.covariance)
            unit_scale(moments.covariance)  # a clear error beyond float64's reach
            return None, moments.mean, dict(covariance=moments.covariance)
        est = clone(self.covariance_estimator).fit(X)
        location = np.asarray(getattr(est, "location_", X.mean(axis=0)), dtype=float)
        if getattr(est, "precision_", None) is not None:
            precision = est.precision_
            # a masked precision is sparse; whitening is dense by nature
            return est, location, dict(precision=_dense(precision))
        if getattr(est, "covariance_", None) is not None:
            return est, location, dict(covariance=est.covariance_)
        raise ValueError(
            f"covariance_estimator {type(est).__name__} exposes neither "
            "precision_ nor covariance_ after fit."
        )

    def transform(self, X):
        """Whiten ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
        """
        X = validate_fitted(self, X)
        return (X - self.location_) @ self.whitening_

    def inverse_transform(self, X):
        """Map whitened data back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Whitened data.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
        """
        X = validate_fitted(self, X)
        return X @ self.dewhitening_ + self.location_

    def score_samples(self, X):
        """Log-density of ``X`` under ``N(location_, covariance_)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        Z = self.transform(X)
        return (
            -0.5 * np.einsum("ij,ij->i", Z, Z)
            - 0.5 * Z.shape[1] * np.log(2 * np.pi)
            + self.log_abs_det_jacobian_
        )

    def sample(self, n_samples=1, random_state=None):
        """Draw from ``N(location_, covariance_)``.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        e = check_random_state(random_state).standard_normal((n_samples, self.n_features_in_))
        return e @ self.dewhitening_ + self.location_


def _dense(matrix):
    return matrix.toarray() if sp.issparse(matrix) else matrix
