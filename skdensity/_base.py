"""Shared base of the masked Gaussian family.

The base class owns everything that does not depend on how the precision is
estimated: input validation, sufficient statistics (``fit`` and exact
streaming ``partial_fit``), the mask, the exact log-density, and sampling.
Subclasses implement ``_estimate_precision`` only.
"""

import math
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.linalg as la
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils._param_validation import Interval, Options
from sklearn.utils.validation import _assert_all_finite, check_is_fitted, validate_data

from ._banded import cholesky_inverse, inverse_sqrt_rows, lower_cholesky, on_two_threads
from ._pairs import as_pairs
from .masks import _check_image_shape as check_image_shape
from .masks import check_mask, grid_mask


def resolve_image_shape(image_shape, n_features):
    """The image shape of ``n_features`` pixels.

    ``None`` gives a square when ``n_features`` is a perfect square and a
    one-row signal ``(1, n_features)`` otherwise.
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        return (side, side) if side * side == n_features else (1, n_features)
    shape = check_image_shape(image_shape)
    if shape[0] * shape[1] != n_features:
        raise ValueError(
            f"image_shape={shape} has {shape[0] * shape[1]} pixels but X has "
            f"{n_features} features."
        )
    return shape


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


def check_n_samples(n_samples):
    """Validate the ``n_samples`` argument of ``sample``."""
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    return int(n_samples)


def standard_normal(rng, shape):
    """Standard normal draws, determined by the ``RandomState`` ``rng``.

    Drawn by numpy's ``Generator`` (ziggurat) seeded from ``rng``: twice as
    fast as ``RandomState``'s polar method (measured 0.8 s against 1.6 s for
    80,000 x 784, the noise of an NCE fit), and just as reproducible.
    """
    return np.random.default_rng(rng.randint(2**31 - 1)).standard_normal(shape)


def sqrtm_rows(e, C):
    """The rows of ``e`` mapped by the symmetric square root of ``C``: rows
    of ``N(0, I)`` become rows of ``N(0, C)``, for a semi-definite ``C`` too."""
    w, U = la.eigh(C)
    return (e @ U) * np.sqrt(np.clip(w, 0, None)) @ U.T


def sample_from(estimator, n_samples, random_state=None):
    """``estimator.sample`` as an array, whatever the estimator's convention.

    Passes ``random_state`` when the method accepts one (``KernelDensity``,
    ours) and drops the labels ``GaussianMixture.sample`` returns.
    """
    import inspect

    kwargs = {}
    if "random_state" in inspect.signature(estimator.sample).parameters:
        kwargs["random_state"] = random_state
    X = estimator.sample(n_samples, **kwargs)
    if isinstance(X, tuple):
        X = X[0]
    return np.asarray(X, dtype=float)


def validate_fitted(estimator, X):
    """The first step of every method of a fitted estimator that reads
    data: fitted check, then float64 data of the width seen in fit."""
    check_is_fitted(estimator)
    return validate_data(estimator, X, dtype=np.float64, reset=False)


def data_moments(X, assume_centered=False):
    """Count, mean and (biased) covariance of ``X``, without modifying it."""
    n = X.shape[0]
    if assume_centered:
        return n, np.zeros(X.shape[1]), X.T @ X / n
    mean = X.mean(axis=0)
    Xc = X - mean
    return n, mean, Xc.T @ Xc / n


def finite_moments(X, assume_centered=False):
    """:func:`data_moments` of data checked for NaN and infinity.

    NaN or infinity anywhere in the data makes a column mean or a variance
    non-finite, so the moments themselves replace scikit-learn's separate
    finiteness pass over the data; only then is the data scanned, to raise
    scikit-learn's own error (finite data whose moments overflow pass the
    scan and get the overflow error of ``_update``).
    """
    with np.errstate(all="ignore"):  # non-finite input is reported below
        n, mean, cov = data_moments(X, assume_centered)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(np.diag(cov)))):
        _assert_all_finite(X, input_name="X")
    return n, mean, cov


def merge_moments(a, b):
    """Exact pooled moments of two sample sets (Chan, Golub & LeVeque 1979).

    Merging centred scatter matrices plus a rank-one mean correction avoids
    the cancellation of the naive ``E[xx'] - mean mean'`` formula.
    """
    n1, m1, C1 = a
    n2, m2, C2 = b
    n = n1 + n2
    delta = m2 - m1
    mean = m1 + delta * (n2 / n)
    C = (n1 / n) * C1 + (n2 / n) * C2 + np.outer(delta, delta) * (n1 * n2 / n**2)
    return n, mean, C


class BaseGaussian(MeanLogLikelihoodMixin, DensityMixin, BaseEstimator):
    """Gaussian density estimated from sufficient statistics (abstract).

    Parameters are documented on the concrete estimators. Subclasses set up
    their structure (``_setup_structure``) and estimate the precision from
    the regularised covariance (``_estimate_precision``).
    """

    _parameter_constraints: dict = {
        "reg": [Interval(Real, 0, None, closed="left")],
        "assume_centered": ["boolean"],
    }

    # Estimators that need only sufficient statistics stream with partial_fit;
    # those whose objective needs the samples themselves (NCE) do not.
    _needs_samples = False

    @abstractmethod
    def _estimate_precision(self, S, warm_start, X=None):
        """Return ``(precision, info)`` for the regularised covariance ``S``.

        ``X`` is the training data, passed only to estimators whose objective
        needs the samples (``_needs_samples``).
        """

    def _setup_structure(self, n_features):
        """Fix what depends on the width of the data only (e.g. a mask)."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the model from data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, at least two samples.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2,
                          ensure_all_finite=False)
        moments = finite_moments(X, self.assume_centered)
        self._setup_structure(X.shape[1])
        return self._update(moments, warm_start=False, X=X)

    @available_if(lambda est: not est._needs_samples)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Add a batch of data and re-estimate the model.

        Only sufficient statistics (count, mean, covariance) are kept and
        merged exactly, so fitting on chunks equals fitting on all data. The
        solver is warm-started from the previous estimate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of data; the first batches must total at least two samples.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        first = not hasattr(self, "n_samples_seen_")
        X = validate_data(self, X, dtype=np.float64, reset=first, ensure_all_finite=False)
        batch = finite_moments(X, self.assume_centered)
        if first:
            if X.shape[0] < 2:
                raise ValueError(
                    "The first batch needs at least 2 samples to estimate a "
                    f"covariance, got {X.shape[0]} sample."
                )
            self._setup_structure(X.shape[1])
            return self._update(batch, warm_start=False)
        moments = (self.n_samples_seen_, self.location_, self.empirical_covariance_)
        return self._update(merge_moments(moments, batch), warm_start=True)

    def _update(self, moments, warm_start, X=None):
        n, mean, cov = moments
        S = cov.copy()
        S.flat[:: S.shape[0] + 1] += self.reg
        if not np.all(np.isfinite(S)):
            raise ValueError(
                "The covariance of X is not finite: values are too large "
                "(overflow). Rescale the data."
            )
        # A Gram matrix is PSD up to rounding of at most n u tr(cov) (u the
        # unit roundoff): a larger floor proves S positive definite without
        # a factorisation; otherwise check with one.
        if self.reg <= 4 * n * np.finfo(float).eps * np.trace(cov):
            try:
                la.cholesky(S, lower=True)
            except la.LinAlgError:
                raise ValueError(
                    "The empirical covariance is singular (some features are "
                    "constant or collinear); set reg > 0 to add a variance floor."
                ) from None
        precision, info = self._estimate_precision(
            S, warm_start, X if self._needs_samples else None
        )
        self.n_samples_seen_ = n
        self.empirical_covariance_ = cov
        self.location_ = mean
        self.precision_ = precision
        self.precision_cholesky_ = self._precision_cholesky(precision)
        self._store_covariance(S)
        for key in ("n_iter", "kkt_residual", "min_eigenvalue"):
            if key in info:
                setattr(self, key + "_", info[key])
        return self

    def _precision_cholesky(self, precision):
        return la.cholesky(precision, lower=True)

    def _store_covariance(self, S):
        """Keep the covariance the precision was estimated from (subclasses
        whose covariance is not ``S`` derive it from the precision instead)."""
        self.covariance_ = S

    def score_samples(self, X):
        """Exact log-density of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``log N(x | location_, inv(precision_))`` in nats.
        """
        X = validate_fitted(self, X)
        out = self._mahalanobis(X)
        log_det = 2.0 * np.log(np.diag(self.precision_cholesky_)).sum()
        out *= -0.5
        out += 0.5 * (log_det - X.shape[1] * np.log(2 * np.pi))
        return out

    def _mahalanobis(self, X):
        """``(x - location_)' precision_ (x - location_)`` for every row of ``X``."""
        L = self.precision_cholesky_
        out = np.empty(X.shape[0])
        # Row blocks of at most 16 MB: temporaries of the data's size cost
        # more than the product (page faults; measured on 80,000 MNIST-sized
        # rows: 2.1 s whole, ~1 s in blocks), and small blocks are reused.
        step = max(1, 2**21 // max(L.shape[0], 1))
        for start in range(0, X.shape[0], step):
            z = (X[start : start + step] - self.location_) @ L  # x' Lambda x = |L' x|^2
            out[start : start + step] = np.einsum("ij,ij->i", z, z)
        return out

    def sample(self, n_samples=1, random_state=None, method="cholesky"):
        """Draw samples from the fitted Gaussian.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed for reproducible draws.
        method : {"cholesky", "sqrtm"}, default="cholesky"
            ``"cholesky"`` solves ``L' x = e`` with the Cholesky factor ``L``
            of the precision (no dense inverse); ``"sqrtm"`` computes
            ``location_ + sqrtm(covariance_) @ e``. Both give the same
            distribution.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        rng = check_random_state(random_state)
        if method not in ("cholesky", "sqrtm"):
            raise ValueError(f"method must be 'cholesky' or 'sqrtm', got {method!r}.")
        e = standard_normal(rng, (n_samples, self.location_.shape[0]))
        if method == "cholesky":
            # In place on e's memory: NCE draws hundreds of megabytes of
            # noise, and every temporary of that size costs as much as the solve.
            x = inverse_sqrt_rows((self.precision_cholesky_, False), e)
        else:
            x = sqrtm_rows(e, self.covariance_)
        x += self.location_
        return x


class BaseMaskedGaussian(BaseGaussian):
    """Gaussian with a precision matrix supported on a mask (abstract)."""

    _parameter_constraints: dict = {
        **BaseGaussian._parameter_constraints,
        "image_shape": [tuple, list, None],
        "connectivity": [Options(Integral, {4, 8})],
        "mask": ["array-like", "sparse matrix", None],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def _precision_cholesky(self, precision):
        # Grid masks are banded: n b^2 instead of n^3 (0.5 ms against 6 ms at 784 pixels).
        pairs = as_pairs(self.mask_)  # cached per mask
        return lower_cholesky(precision, pairs.rows, pairs.cols)

    def _store_covariance(self, S):
        pass  # covariance_ is the precision's inverse, formed on access

    def _mahalanobis(self, X):
        pairs = as_pairs(self.mask_)  # cached per mask
        if pairs._segments is None:  # no diagonal runs to use
            return super()._mahalanobis(X)
        # Grid masks: x' Lambda x along the mask's few pixel offsets (5 for
        # 8-connected), in row blocks of 2 MB on two threads, instead of a dense
        # product with the Cholesky factor (measured on 80,000 MNIST-sized
        # rows: 0.26 s against 1.6 s; same values to 1e-14 relative).
        theta = pairs.from_dense(self.precision_)
        out = np.empty(X.shape[0])

        def fill(_, rows):
            out[rows] = pairs.quadratic_forms(X[rows] - self.location_, theta)

        on_two_threads(X.shape[0], max(1, 2**18 // X.shape[1]), fill)
        return out

    @property
    def covariance_(self):
        """ndarray of shape (n_features, n_features): ``inv(precision_)``.

        Formed on access from ``precision_cholesky_`` (a dense 784x784
        inverse costs more than the rest of a score matching fit after the
        covariance pass); scoring and sampling never need it.
        """
        return cholesky_inverse((self.precision_cholesky_, False))

    def _setup_structure(self, n_features):
        self.image_shape_ = resolve_image_shape(self.image_shape, n_features)
        if self.mask is not None:
            self.mask_ = check_mask(self.mask, n_features)
        else:
            self.mask_ = grid_mask(self.image_shape_, self.connectivity)


class GaussianDensity(BaseGaussian):
    """Multivariate Gaussian with a full covariance, fitted by maximum likelihood.

    The reference density of the family (no mask): ``covariance_`` is the
    empirical covariance plus ``reg`` on the diagonal. It shares the masked
    estimators' exact log-density, samplers and ``partial_fit``.

    Parameters
    ----------
    reg : float, default=0.0
        Variance floor added to the diagonal of the empirical covariance. A
        singular covariance (constant or collinear features) needs ``reg > 0``.
    assume_centered : bool, default=False
        If True, the mean is taken to be zero.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
    covariance_ : ndarray of shape (n_features, n_features)
    precision_ : ndarray of shape (n_features, n_features)
    precision_cholesky_ : ndarray of shape (n_features, n_features)
    empirical_covariance_ : ndarray of shape (n_features, n_features)
    n_samples_seen_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import GaussianDensity
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> g = GaussianDensity().fit(X)
    >>> round(g.score(X), 1)
    -4.2
    """

    def __init__(self, *, reg=0.0, assume_centered=False):
        self.reg = reg
        self.assume_centered = assume_centered

    def _estimate_precision(self, S, warm_start, X=None):
        L = la.cholesky(S, lower=True)  # S is checked positive definite
        precision = la.cho_solve((L, True), np.eye(len(S)))
        precision = 0.5 * (precision + precision.T)
        return precision, {}
