"""Shared base of the Gaussian family.

:class:`BaseGaussian` owns everything that does not depend on how the
precision is estimated: input validation, sufficient statistics (``fit`` and
exact streaming ``partial_fit``), the exact log-density and sampling. Its
``fit`` drives named steps; subclasses fill in ``_estimate_precision`` and
return what they learned as a :class:`GaussianFit`, which ``_set_fitted``
turns into the estimator's attributes, in one place, once the fit succeeded.
"""

import dataclasses
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ..linalg import CholeskyFactor, as_pairs, sqrtm_rows
from ..masks import _check_image_shape, check_mask, grid_mask, resolve_image_shape
from ..utils._compat import Interval, Options, _assert_all_finite, _fit_context
from ..utils._memory import check_allocation
from ..utils._mixins import MeanLogLikelihoodMixin
from ..utils._random import standard_normal
from ..utils._threads import on_two_threads
from ..utils._validation import check_n_samples, restore_on_failure, validate_fitted
from ._inputs import (
    check_finite_covariance,
    check_variance_range,
    diagonal,
    factorisation_errors_as_value_errors,
    numerically_definite,
    unit_scale,
)
from ._moments import Moments, SparseMoments, data_top_eigenvalue
from ._window import (
    check_dask_array,
    dask_top_eigenvalue,
    dask_window_moments,
    is_dask_array,
    window_moments,
)

__all__ = [
    "BaseGaussian",
    "BaseMaskedGaussian",
    "FitData",
    "GaussianDensity",
    "GaussianFit",
    "MaskedFit",
]


@dataclasses.dataclass(frozen=True)
class GaussianFit:
    """What an estimation step learned: each field ``name`` becomes the
    fitted attribute ``name_`` (subclasses add fields)."""

    precision: np.ndarray


@dataclasses.dataclass(frozen=True)
class MaskedFit(GaussianFit):
    """A precision on a mask with its solver's certificate."""

    n_iter: int
    kkt_residual: float
    min_eigenvalue: float


@dataclasses.dataclass(frozen=True)
class FitData:
    """What an estimation step may read besides the regularised covariance."""

    n_samples: int
    # The largest eigenvalue of the regularised covariance where ``S`` holds
    # only a window of it (None: a dense ``S`` has its own).
    top_eigenvalue: float | None = None
    # The training data, for estimators whose objective needs the samples.
    X: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class MaskStructure:
    """What a masked fit fixes from the width of the data alone."""

    image_shape: tuple
    mask: sp.csr_array
    grid: bool  # the grid mask of image_shape: moments by shifted products

    @property
    def pairs(self):
        return as_pairs(self.mask)  # cached per mask


class BaseGaussian(MeanLogLikelihoodMixin, DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """Gaussian density estimated from sufficient statistics (abstract).

    Parameters are documented on the concrete estimators.
    """

    _parameter_constraints: dict = {
        "reg": [Interval(Real, 0, None, closed="left")],
        "assume_centered": ["boolean"],
    }

    # Estimators that need only sufficient statistics stream with partial_fit;
    # those whose objective needs the samples themselves (NCE) do not.
    _needs_samples = False
    # Whose statistics are sparse window moments, which Dask can compute.
    _window_statistics = False

    @abstractmethod
    def _estimate_precision(self, S, structure, warm_start, data):
        """The :class:`GaussianFit` of the regularised covariance ``S``.

        ``structure`` is :meth:`_structure`'s result; ``warm_start`` says the
        previous fit's attributes may seed the solver; ``data`` is the
        :class:`FitData` of the fit.
        """

    def _structure(self, n_features):
        """What depends on the width of the data only (a mask), or None."""
        return None

    def _moments_of(self, X, structure):
        """The sufficient statistics of the rows of ``X``."""
        return Moments.of_finite(X, self.assume_centered)

    def _seen_moments(self, structure):
        """The statistics of the data seen so far, from the fitted attributes."""
        return Moments(self.n_samples_seen_, self.location_, self.empirical_covariance_)

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
        with restore_on_failure(self):
            X = self._validate_input(X, reset=True, min_samples=2)
            structure = self._structure(X.shape[1])
            moments = self._moments_of(X, structure)
            return self._fit_moments(moments, structure, warm_start=False, X=X)

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
        with restore_on_failure(self):
            X = self._validate_input(X, reset=first)
            if first and X.shape[0] < 2:
                raise ValueError(
                    "The first batch needs at least 2 samples to estimate a "
                    f"covariance, got {X.shape[0]} sample."
                )
            structure = self._structure(X.shape[1])
            batch = self._moments_of(X, structure)
            if first:
                return self._fit_moments(batch, structure, warm_start=False)
            merged = self._seen_moments(structure).merge(batch)
            return self._fit_moments(merged, structure, warm_start=True)

    def _validate_input(self, X, reset, min_samples=1):
        """Float64 data of the width seen before. A Dask array stays where it
        is for estimators whose fit needs only the window's moments: they are
        computed on its chunks (see :func:`dask_window_moments`)."""
        if is_dask_array(X) and self._window_statistics and not self._needs_samples:
            return check_dask_array(self, X, reset=reset, min_samples=min_samples)
        return validate_data(
            self,
            X,
            dtype=np.float64,
            reset=reset,
            ensure_min_samples=min_samples,
            ensure_all_finite=False,
        )

    def _fit_moments(self, moments, structure, warm_start, X=None):
        """The named steps of a fit from sufficient statistics."""
        S = self._regularized_covariance(moments)
        top = getattr(moments, "top_eigenvalue", None)
        data = FitData(
            n_samples=moments.n_samples,
            top_eigenvalue=None if top is None else top + self.reg,
            X=X if self._needs_samples else None,
        )
        with factorisation_errors_as_value_errors():
            estimate = self._estimate_precision(S, structure, warm_start, data)
            self._set_fitted(moments, structure, estimate)
        return self

    def _regularized_covariance(self, moments):
        """``S = cov + reg I``, checked finite and positive definite."""
        cov = moments.covariance
        S = cov.copy()
        S.flat[:: S.shape[0] + 1] += self.reg
        check_finite_covariance(S)
        # A Gram matrix is PSD up to rounding of at most n u tr(cov) (u the
        # unit roundoff): a larger floor proves S positive definite without
        # a factorisation; otherwise check with one.
        c2 = unit_scale(S)  # a clear error where the precision is not representable
        check_variance_range(S, reg=self.reg)
        if self.reg <= 4 * moments.n_samples * np.finfo(float).eps * np.trace(cov):
            if not numerically_definite(S / c2):
                raise ValueError(
                    "The empirical covariance is singular (some features are "
                    "constant or collinear); set reg > 0 to add a variance floor."
                )
        return S

    def _set_fitted(self, moments, structure, estimate):
        """Every fitted attribute, set once the estimation has succeeded."""
        self.n_samples_seen_ = moments.n_samples
        self.empirical_covariance_ = moments.covariance
        self.location_ = moments.mean
        for field in dataclasses.fields(estimate):
            setattr(self, field.name + "_", getattr(estimate, field.name))
        self.precision_cholesky_ = la.cholesky(estimate.precision, lower=True)

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
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._mahalanobis(X)
        # A quadratic form that overflows (inf, or inf - inf = nan) is huge:
        # the density underflows to zero.
        out[np.isnan(out)] = np.inf
        out *= -0.5
        out += 0.5 * (self._log_det_precision() - X.shape[1] * np.log(2 * np.pi))
        return out

    def _precision_factor(self):
        """The Cholesky factor of ``precision_`` that scoring and sampling use."""
        return CholeskyFactor(self.precision_cholesky_, banded=False)

    def _log_det_precision(self):
        return self._precision_factor().log_det()

    def _mahalanobis(self, X):
        """``(x - location_)' precision_ (x - location_)`` for every row of ``X``."""
        L = self.precision_cholesky_
        out = np.empty(X.shape[0])
        # Row blocks of at most 16 MB: temporaries of the data's size cost
        # more in page faults than the product, and small blocks are reused.
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
            # In place on e's memory: NCE draws large noise sets, and every
            # temporary of that size costs as much as the solve.
            x = self._precision_factor().inverse_sqrt_rows(e)
        else:
            x = sqrtm_rows(e, self.covariance_)
        x += self.location_
        return x


class BaseMaskedGaussian(BaseGaussian):
    """Gaussian with a precision matrix supported on a mask (abstract).

    The statistics are the covariance on the window the solvers read (the
    mask's two-hop neighbourhood), by shifted products of the images on grid
    masks and by column products on other masks, so nothing of size
    ``(D, D)`` is formed by ``fit``, ``partial_fit``, ``score_samples`` or
    ``sample``: the precision is sparse and its Cholesky factor banded.
    """

    _parameter_constraints: dict = {
        **BaseGaussian._parameter_constraints,
        "image_shape": [tuple, list, None],
        "connectivity": [Options(Integral, {4, 8})],
        "mask": ["array-like", "sparse matrix", None],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    # Estimators whose eigenvalue bound is relative to the covariance's
    # largest eigenvalue (eps="auto") compute it from the data.
    _needs_top_eigenvalue = False
    # Statistics on the window (SparseMoments), which Dask can compute.
    _window_statistics = True

    def _structure(self, n_features):
        image_shape = resolve_image_shape(self.image_shape, n_features)
        if self.mask is not None:
            return MaskStructure(image_shape, check_mask(self.mask, n_features), grid=False)
        _, width, channels = _check_image_shape(image_shape)
        # the precision's band: a pixel's channels to its lower-right neighbour's
        band = channels * (width + (self.connectivity == 8)) + channels - 1
        check_allocation(
            3 * 8 * (band + 1) * n_features,
            f"A masked fit of {tuple(image_shape)} images (the banded Cholesky factor of "
            f"a precision on {n_features} features, band {band})",
            "crop or downsample the images, or fit patches of them.",
        )
        mask = grid_mask(image_shape, self.connectivity, sparse=True)
        return MaskStructure(image_shape, check_mask(mask, n_features), grid=True)

    def _moments_of(self, X, structure):
        dask = is_dask_array(X)
        with np.errstate(all="ignore"):  # non-finite input is reported below
            compute = dask_window_moments if dask else window_moments
            moments = compute(X, structure, self.assume_centered)
        variances = moments.covariance.diagonal()
        finite = np.all(np.isfinite(moments.mean)) and np.all(np.isfinite(moments.covariance.data))
        if not finite:
            if dask:
                raise ValueError("Input X contains NaN or infinity.")
            _assert_all_finite(X, input_name="X")
        if self._needs_top_eigenvalue and finite:  # overflow is reported by the checks
            # zero when nothing varies (refused by the checks that follow)
            top = dask_top_eigenvalue if dask else data_top_eigenvalue
            value = top(X, moments.mean) if variances.max() > 0 else 0.0
            moments = dataclasses.replace(moments, top_eigenvalue=value)
        return moments

    def _seen_moments(self, structure):
        return SparseMoments(
            self.n_samples_seen_,
            self.location_,
            self.empirical_covariance_,
            getattr(self, "empirical_top_eigenvalue_", None),
        )

    def _regularized_covariance(self, moments):
        """``S = cov + reg I``, finite, with positive variances in a range
        float64 resolves. Whether the data determine the masked model is the
        solvers' to decide (on the mask, not on the dense matrix: a masked
        fit needs far fewer samples than features)."""
        # reg on the stored diagonal, in place on a copy: an addition of
        # sparse matrices would drop the window's stored zeros
        S = moments.covariance.copy()
        rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
        S.data[rows == S.indices] += self.reg
        check_finite_covariance(S.data)
        unit_scale(S)  # a clear error where the precision is not representable
        variances = diagonal(S)
        constant = np.flatnonzero(~(variances > 0))
        if constant.size:
            raise ValueError(
                f"{constant.size} feature(s) never vary (first: {constant[:5].tolist()}): "
                "their precision would be infinite. Set reg > 0 to add a variance floor."
            )
        check_variance_range(S, reg=self.reg)
        return S

    def _set_fitted(self, moments, structure, estimate):
        pairs = structure.pairs
        precision = estimate.precision
        theta = pairs.from_dense(precision)
        if pairs.cholesky(theta) is None:  # the solvers certify this; never trust it blindly
            raise ValueError("The estimated precision is not positive definite.")
        self.n_samples_seen_ = moments.n_samples
        self.empirical_covariance_ = moments.covariance
        self.location_ = moments.mean
        self.image_shape_ = structure.image_shape
        self.mask_ = structure.mask
        if getattr(moments, "top_eigenvalue", None) is not None:
            self.empirical_top_eigenvalue_ = moments.top_eigenvalue
        for field in dataclasses.fields(estimate):
            setattr(self, field.name + "_", getattr(estimate, field.name))
        self.precision_ = pairs.to_sparse(theta)

    def _precision_factor(self):
        # banded on grid masks; no dense matrix
        pairs = as_pairs(self.mask_)
        return pairs.cholesky(pairs.from_dense(self.precision_))

    def _mahalanobis(self, X):
        pairs = as_pairs(self.mask_)
        theta = pairs.from_dense(self.precision_)
        out = np.empty(X.shape[0])

        def fill(_, rows):
            # x' Lambda x along the mask's pixel offsets, in row blocks on two
            # threads, without the dense precision or its factor
            with np.errstate(over="ignore", invalid="ignore"):  # threads have their own
                out[rows] = pairs.quadratic_forms(X[rows] - self.location_, theta)

        on_two_threads(X.shape[0], max(1, 2**18 // X.shape[1]), fill)
        return out

    @property
    def covariance_(self):
        """ndarray of shape (n_features, n_features): ``inv(precision_)``.

        Dense: formed on access (``D^2`` floats, refused with a clear error
        when that does not fit in memory); scoring and sampling never need it.
        """
        self._check_dense("covariance_", copies=2)
        return self._precision_factor().inverse()

    @property
    def precision_cholesky_(self):
        """ndarray of shape (n_features, n_features): the lower Cholesky
        factor ``L`` of ``precision_ = L L'``, dense, formed on access like
        ``covariance_``."""
        self._check_dense("precision_cholesky_", copies=2)
        factor = self._precision_factor()
        if factor.perm is None:
            return factor.lower()
        return la.cholesky(self.precision_.toarray(), lower=True)

    def _check_dense(self, name, copies):
        D = self.precision_.shape[0]
        check_allocation(
            copies * 8 * D * D,
            f"{name} of {D} features (a dense {D} x {D} matrix)",
            "use precision_ (sparse), score_samples and sample, which never form it.",
        )


@dataclasses.dataclass(frozen=True)
class _FullGaussianFit(GaussianFit):
    covariance: np.ndarray


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

    def _moments_of(self, X, structure):
        D = X.shape[1]
        check_allocation(
            4 * 8 * D * D,
            f"GaussianDensity on {D} features (its full covariance is a dense {D} x {D} matrix)",
            "use a masked Gaussian (MaskedGaussianSM, MaskedGaussianMLE), which is sparse.",
        )
        return super()._moments_of(X, structure)

    def _estimate_precision(self, S, structure, warm_start, data):
        c2 = unit_scale(S)  # the inverse of data of any scale, in units where it is O(1)
        L = la.cholesky(S / c2, lower=True)  # S is checked positive definite
        precision = la.cho_solve((L, True), np.eye(len(S))) / c2
        precision = 0.5 * (precision + precision.T)
        return _FullGaussianFit(precision=precision, covariance=S)
