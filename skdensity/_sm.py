"""MaskedGaussianSM: score matching with a positive-definite guarantee."""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseMaskedGaussian
from ._score_matching import masked_score_matching


class MaskedGaussianSM(BaseMaskedGaussian):
    r"""Gaussian Markov random field fitted by score matching, positive definite.

    Minimises Hyvärinen's score matching objective
    :math:`J(\Lambda) = \tfrac12\operatorname{tr}(\Lambda S\Lambda) - \operatorname{tr}\Lambda`
    over precision matrices supported on a pixel-neighbourhood mask, subject
    to :math:`\Lambda \succeq \varepsilon I`. The unconstrained optimum is a
    single sparse linear solve but is indefinite on MNIST and natural image
    patches; the constrained problem is solved through its dual in low-rank
    form (see :func:`skdensity.masked_score_matching`) and certified by its
    KKT conditions. The fitted model is a proper Gaussian: exact
    log-densities, sampling.

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
        Needed when pixels never vary (MNIST's borders).
    assume_centered : bool, default=False
        If True, the mean is taken to be zero.
    eps : float or "auto", default="auto"
        Lower bound on the eigenvalues of the precision. ``"auto"`` is
        ``0.5 / lambda_max(S)``: the model's variance along any direction is
        at most twice the data's largest variance. A tiny bound lets a pinned
        direction take a huge variance, which ruins samples.
    tol : float, default=1e-6
        Target relative KKT residual.
    max_iter : int, default=5000
        Maximum number of L-BFGS iterations of the dual solver.
    verbose : int, default=0
        Print solver progress when positive.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Mean.
    precision_ : ndarray of shape (n_features, n_features)
        Estimated precision, zero outside ``mask_``.
    covariance_ : ndarray of shape (n_features, n_features)
        Its inverse.
    precision_cholesky_ : ndarray of shape (n_features, n_features)
        Lower Cholesky factor of ``precision_``.
    empirical_covariance_ : ndarray of shape (n_features, n_features)
        Covariance of the data seen (without ``reg``).
    mask_ : ndarray of bool, shape (n_features, n_features)
        The mask used.
    image_shape_ : tuple of int
        The image shape used.
    eps_ : float
        The eigenvalue bound used.
    unconstrained_min_eigenvalue_ : float
        Smallest eigenvalue of the unconstrained optimum (negative: it would
        not have been a valid Gaussian).
    n_active_ : int
        Number of eigen-directions pinned at ``eps_``.
    dual_factor_ : ndarray of shape (n_features, r)
        Low-rank factor of the constraint's multiplier (warm starts); its
        ``r`` columns cover the ``n_active_`` pinned directions.
    kkt_residual_ : float
        Relative KKT residual (optimality certificate).
    min_eigenvalue_ : float
        Smallest eigenvalue of ``precision_``.
    n_iter_ : int
        L-BFGS iterations used.
    n_samples_seen_ : int
        Samples seen by ``fit`` / ``partial_fit``.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    MaskedGaussianMLE : Maximum likelihood on the same mask.

    Examples
    --------
    >>> from skdensity import MaskedGaussianSM
    >>> from skdensity.datasets import load_mnist
    >>> X = load_mnist().data[:2000]
    >>> sm = MaskedGaussianSM(connectivity=4).fit(X)
    >>> bool(sm.min_eigenvalue_ > 0), sm.sample(3, random_state=0).shape
    (True, (3, 784))
    """

    _parameter_constraints: dict = {
        **BaseMaskedGaussian._parameter_constraints,
        "eps": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        image_shape=None,
        connectivity=8,
        mask=None,
        reg=0.01,
        assume_centered=False,
        eps="auto",
        tol=1e-6,
        max_iter=5000,
        verbose=0,
    ):
        self.image_shape = image_shape
        self.connectivity = connectivity
        self.mask = mask
        self.reg = reg
        self.assume_centered = assume_centered
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    def _estimate_precision(self, S, warm_start, X=None):
        init = self.dual_factor_ if warm_start else None
        precision, info = masked_score_matching(
            S, self.mask_, eps=self.eps, tol=self.tol, max_iter=self.max_iter,
            init=init, verbose=self.verbose,
        )
        self.eps_ = float(info["eps"])
        self.unconstrained_min_eigenvalue_ = float(info["unconstrained_min_eigenvalue"])
        self.n_active_ = info["active_rank"]
        self.dual_factor_ = info["dual_factor"]
        return precision, info
