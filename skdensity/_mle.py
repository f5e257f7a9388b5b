"""MaskedGaussianMLE: maximum likelihood on the mask (covariance selection)."""

from ._base import BaseMaskedGaussian
from ._covariance_selection import covariance_selection


class MaskedGaussianMLE(BaseMaskedGaussian):
    r"""Gaussian Markov random field fitted by maximum likelihood.

    Dempster's covariance selection: maximise
    :math:`\log\det\Lambda - \operatorname{tr}(S\Lambda)` over positive
    definite precisions supported on the mask, by damped Newton from the
    score matching estimate (see :func:`skdensity.covariance_selection`).
    It is the within-family reference that score matching and NCE are
    measured against, solved to a KKT residual of ``tol``.

    Parameters
    ----------
    image_shape : tuple of int, default=None
        ``(height, width)`` of the images in ``X`` (row-major pixels). If
        None, a square when ``n_features`` is a perfect square, otherwise a
        one-row signal ``(1, n_features)`` (a chain graph).
    connectivity : {4, 8}, default=8
        Neighbourhood of the grid mask; ignored when ``mask`` is given.
    mask : array-like or sparse matrix of shape (n_features, n_features), default=None
        Symmetric boolean sparsity pattern with a True diagonal (any graph).
        Overrides ``connectivity``.
    reg : float, default=0.01
        Variance floor added to the diagonal of the empirical covariance
        (absolute, in squared data units; 0.01 suits pixels in [0, 1]).
    assume_centered : bool, default=False
        If True, the mean is taken to be zero.
    tol : float, default=1e-8
        Target KKT residual ``max |(inv(precision_) - S)_mask| / max(diag S)``.
    max_iter : int, default=100
        Maximum number of Newton steps.
    verbose : int, default=0
        Print solver progress when positive.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Mean.
    precision_ : ndarray of shape (n_features, n_features)
        Estimated precision, zero outside ``mask_``.
    covariance_ : ndarray of shape (n_features, n_features)
        Its inverse; equals the regularised empirical covariance on the mask.
    precision_cholesky_ : ndarray of shape (n_features, n_features)
        Lower Cholesky factor of ``precision_``.
    empirical_covariance_ : ndarray of shape (n_features, n_features)
        Covariance of the data seen (without ``reg``).
    mask_ : ndarray of bool, shape (n_features, n_features)
        The mask used.
    image_shape_ : tuple of int
        The image shape used.
    kkt_residual_ : float
        KKT residual (optimality certificate).
    min_eigenvalue_ : float
        Smallest eigenvalue of ``precision_``.
    n_iter_ : int
        Newton steps used.
    n_samples_seen_ : int
        Samples seen by ``fit`` / ``partial_fit``.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    MaskedGaussianSM : Score matching on the same mask.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import MaskedGaussianMLE
    >>> X = np.random.default_rng(0).normal(size=(200, 16))
    >>> mle = MaskedGaussianMLE(connectivity=4).fit(X)      # 4x4 image
    >>> bool(mle.kkt_residual_ < 1e-8)
    True
    """

    def __init__(
        self,
        *,
        image_shape=None,
        connectivity=8,
        mask=None,
        reg=0.01,
        assume_centered=False,
        tol=1e-8,
        max_iter=100,
        verbose=0,
    ):
        self.image_shape = image_shape
        self.connectivity = connectivity
        self.mask = mask
        self.reg = reg
        self.assume_centered = assume_centered
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    def _estimate_precision(self, S, warm_start, X=None):
        # Cold starts begin at the score matching estimate (the default).
        init = self.precision_ if warm_start else None
        return covariance_selection(
            S, self.mask_, tol=self.tol, max_iter=self.max_iter, init=init, verbose=self.verbose
        )
