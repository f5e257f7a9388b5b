r"""Conditional noise-contrastive estimation of masked Gaussians: the cNCE
loss and :class:`MaskedGaussianCNCE`."""

import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.linalg as la
from scipy.special import expit
from sklearn.utils import check_random_state

from ..exceptions import SeparableNoiseWarning
from ..linalg import minimize_pd, sqrtm_rows
from ..utils._compat import Interval, StrOptions
from ..utils._memory import check_allocation
from ..utils._random import standard_normal
from ._inputs import diagonal, unit_scale
from ._moments import Moments
from ._nce import (
    _SEPARABLE,
    BaseMaskedNCE,
    NoiseContrastiveFit,
    _Units,
    smooth,
    start_and_preconditioner,
)
from ._pixel_contrasts import ContrastValue, PixelContrasts
from ._quadratic_features import QuadraticFeatures
from ._score_matching import resolve_eps

__all__ = ["MaskedGaussianCNCE", "cnce_loss"]

# "auto" noise scale: the initial cNCE loss sits at this fraction of its
# vanishing-noise limit log 2 (see MaskedGaussianCNCE).
_AUTO_LOSS_FRACTION = 0.9
# Below this noise scale (relative to the data's) the loss's departure from
# log 2, of order scale^2, drowns in its rounding.
_MIN_NOISE_SCALE = 1e-6


def cnce_loss(g):
    r"""Conditional NCE loss (Ceylan & Gutmann 2018) for a symmetric noise.

    With :math:`G = \log\tilde p_\theta(x) - \log\tilde p_\theta(y)` for data
    :math:`x` and its noisy copies :math:`y`, :math:`J = \overline{\log(1 +
    e^{-G})}`. The normaliser cancels in :math:`G`; the loss tends to
    :math:`\log 2` as the noise vanishes.

    Parameters
    ----------
    g : ndarray of shape (n_pairs,)

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_pairs,)
        ``dJ / dG``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.gaussian import cnce_loss
    >>> bool(np.isclose(cnce_loss(np.zeros(4))[0], np.log(2)))
    True
    """
    return np.logaddexp(0.0, -g).mean(), -expit(-g) / len(g)


def _shaped_by(S, xi):
    """The rows of ``xi`` (standard normal) mapped to ``N(0, S)``.

    ``xi L'`` with ``S = L L'``, a triangular product in place on ``xi`` (any
    square root gives the same distribution). A semi-definite ``S`` takes
    the eigendecomposition.
    """
    try:
        L = la.cholesky(S, lower=True, check_finite=False)
    except la.LinAlgError:
        return sqrtm_rows(xi, S)
    return la.blas.dtrmm(1.0, L, xi.T, lower=1, overwrite_b=1).T


class _ImageContrasts:
    """The pairs of copies that move every pixel: a logistic regression on
    the quadratic features ``Phi`` (one row per pair)."""

    def __init__(self, Phi):
        self.Phi = Phi

    def __call__(self, theta):
        g = self.Phi @ theta
        loss, d = cnce_loss(g)
        return ContrastValue(loss, self.Phi.T @ d, float(np.mean(g > 0)))


class _CNCEObjective:
    """The cNCE loss divided by the squared noise scale, which keeps its
    curvature O(1) as the noise shrinks, and the record of the iterations."""

    def __init__(self, contrasts, scale):
        self.contrasts, self.scale2 = contrasts, scale**2
        self.theta = self.value = None
        self.curve = []

    def __call__(self, theta):
        self.value = self.contrasts(theta)
        self.theta = theta
        return (self.value.loss - np.log(2.0)) / self.scale2, self.value.gradient / self.scale2

    def at(self, theta):
        """The loss, gradient and accuracy at ``theta``, evaluated once."""
        if self.theta is None or not np.array_equal(self.theta, theta):
            self(theta)
        return self.value

    def record(self, theta, _):
        self.curve.append(self.at(theta).loss)


class MaskedGaussianCNCE(BaseMaskedNCE):
    r"""Gaussian Markov random field fitted by conditional NCE.

    Conditional noise-contrastive estimation (Ceylan & Gutmann 2018) pairs
    each data point :math:`x` with noisy copies :math:`y` drawn from a
    symmetric noise, and minimises :math:`\overline{\log(1+\exp(-(\log\tilde
    p(x) - \log\tilde p(y))))}`. The noise's density cancels, and so does
    the normaliser: ``score_samples`` uses the exact one from
    :math:`\log\det\Lambda`. The constraint :math:`\Lambda\succeq\varepsilon
    I` of :class:`MaskedGaussianSM` is applied (the objective tends to
    score matching as the noise vanishes).

    **Which pixels a copy moves** (``noise_support``). By default each copy
    moves one pixel, :math:`y = x + \epsilon t\,e_p`: on a Markov random
    field the log-ratio then involves one row of :math:`\Lambda`, so one
    draw of a step per pixel gives ``n_features`` pairs for the cost of one
    product :math:`\Lambda x`. The pairs identify every conditional
    :math:`p(x_p \mid x_{-p})`, hence :math:`\Lambda`, and their number
    keeps the objective's sampling noise small next to the free entries,
    at any image size. ``"image"`` moves every pixel at once,
    :math:`y = x + \epsilon M\xi`: one pair per copy, so the free entries
    need about as many copies (``n_noise_draws`` per sample) to be
    determined; its small-noise limit is score matching in the metric
    :math:`A = MM^\top`, which with :math:`A = \Lambda^{-1}` is maximum
    likelihood's condition (:doc:`/design` derives it; :doc:`/benchmarks`
    compares the two supports).

    Parameters
    ----------
    image_shape : tuple of int, default=None
        ``(height, width)``; None infers a square or a one-row signal.
    connectivity : {4, 8}, default=8
        Neighbourhood of the grid mask; ignored when ``mask`` is given.
    mask : array-like or sparse matrix of shape (n_features, n_features), default=None
        Symmetric boolean sparsity pattern with a True diagonal.
    reg : float, default=0.01
        Variance floor: the objective sees the data smoothed by
        ``N(0, reg I)`` (covariance ``S + reg I``, as for the other
        estimators), which also shapes the noise.
    assume_centered : bool, default=False
        If True, the mean is taken to be zero.
    noise_support : {"pixel", "image"}, default="pixel"
        ``"pixel"``: each noisy copy differs from its data point in one
        feature (a pixel, or one channel of it in colour images;
        ``n_features`` copies per draw, all evaluated at the cost of one);
        ``"image"``: in every feature.
    noise_shape : {"score_matching", "covariance", "isotropic"}, default="score_matching"
        The noise's scale per pixel, or :math:`M` for ``"image"`` support.
        ``"score_matching"``: from the score matching estimate
        :math:`\Lambda_{SM}` (the solver's start): the conditional deviation
        :math:`1/\sqrt{(\Lambda_{SM})_{pp}}` of each pixel, or for
        ``"image"`` the noise :math:`N(0, \epsilon^2\Lambda_{SM}^{-1})`, drawn
        by one banded triangular solve; ``"covariance"``: the data's
        deviation per pixel, or :math:`MM^\top = S` (dense, ``D x D``);
        ``"isotropic"``: one scale for every pixel, :math:`M = I` (then the
        small-noise limit is exactly :class:`MaskedGaussianSM`).
    noise_scale : float or "auto", default="auto"
        :math:`\epsilon`. ``"auto"`` picks it by bisection on a log scale so
        that the loss at the starting point (the score matching estimate) is
        0.9 of its vanishing-noise limit ``log 2``: the classification is
        neither trivial (large noise) nor uninformative (tiny noise).
    n_noise_draws : int or "auto", default="auto"
        Noise draws per data point (:math:`\kappa`); each is used with its
        mirror image, giving :math:`2\kappa` copies per pixel (``"pixel"``)
        or per data point (``"image"``). The objective's sampling noise
        grows with ``n_free_entries / (n_samples * n_noise_draws)``, divided
        by ``n_features`` for ``"pixel"``; time and memory (the draws are
        stored: ``n_noise_draws`` times the data) grow linearly with the
        draws. ``"auto"``: 1 for ``"pixel"``, 5 for ``"image"``.
    eps : float or "auto", default="auto"
        Lower bound on the precision's eigenvalues.
    tol : float, default=1e-5
        Target relative KKT residual: stationarity of the Lagrangian
        relative to the first gradient, and complementarity.
    max_iter : int, default=1000
        Maximum number of projected quasi-Newton iterations.
    precompute : "auto" or bool, default="auto"
        For ``"image"`` support: store the design matrix of quadratic
        features (``2 n_noise_draws n_samples x n_pairs`` floats; one BLAS
        pass per product) or recompute it from the samples on every product
        (memory of the samples only, each product a few times slower).
        ``"auto"`` stores it when it takes at most 4 GiB and half of the
        memory available. ``"pixel"``
        support needs no design matrix.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise draws.
    verbose : int, default=0
        Print solver progress when positive.

    Attributes
    ----------
    location_, precision_, covariance_, precision_cholesky_
        As in :class:`MaskedGaussianSM` (``precision_`` sparse).
    empirical_covariance_, mask_, image_shape_, empirical_top_eigenvalue_
        As in :class:`MaskedGaussianSM`.
    noise_scale_ : float
        The :math:`\epsilon` used.
    accuracy_ : float
        Fraction of pairs where the data point scores above its noisy copy.
    loss_curve_ : ndarray
        cNCE loss after each iteration.
    eps_ : float
    kkt_residual_ : float
    min_eigenvalue_ : float
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import MaskedGaussianCNCE
    >>> X = np.random.default_rng(0).normal(size=(300, 9))
    >>> cnce = MaskedGaussianCNCE(random_state=0).fit(X)
    >>> bool(cnce.min_eigenvalue_ >= cnce.eps_), 0 < cnce.noise_scale_ < 10
    (True, True)
    """

    _parameter_constraints: dict = {
        **BaseMaskedNCE._parameter_constraints,
        "noise_shape": [StrOptions({"score_matching", "covariance", "isotropic"})],
        "noise_scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "n_noise_draws": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "noise_support": [StrOptions({"pixel", "image"})],
    }

    def __init__(
        self,
        *,
        image_shape=None,
        connectivity=8,
        mask=None,
        reg=0.01,
        assume_centered=False,
        noise_support="pixel",
        noise_shape="score_matching",
        noise_scale="auto",
        n_noise_draws="auto",
        eps="auto",
        tol=1e-5,
        max_iter=1000,
        precompute="auto",
        random_state=None,
        verbose=0,
    ):
        self.image_shape = image_shape
        self.connectivity = connectivity
        self.mask = mask
        self.reg = reg
        self.assume_centered = assume_centered
        self.noise_support = noise_support
        self.noise_shape = noise_shape
        self.noise_scale = noise_scale
        self.n_noise_draws = n_noise_draws
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter
        self.precompute = precompute
        self.random_state = random_state
        self.verbose = verbose

    _needs_top_eigenvalue = True

    @property
    def _n_draws(self):
        if self.n_noise_draws == "auto":
            return 1 if self.noise_support == "pixel" else 5
        return self.n_noise_draws

    def _estimate_precision(self, S, structure, warm_start, data):
        rng = check_random_state(self.random_state)
        pairs = structure.pairs
        X = data.X
        eps = resolve_eps(self.eps, S, data.top_eigenvalue)
        # Solved in units where the mean variance is about 1 (see unit_scale);
        # isotropic noise is in data units, the other shapes scale with the data.
        c2 = unit_scale(S)
        units = _Units(c2)
        noise_unit = units.c if self.noise_shape == "isotropic" else 1.0
        S, X, eps = S / c2, units.to_unit(X), eps * c2
        theta0, precondition = start_and_preconditioner(S, pairs, eps)
        centre = 0.0 if self.assume_centered else X.mean(axis=0)
        # the data smoothed by N(0, reg I), centred at the model's mean
        Xs = smooth(X, self.reg / c2, rng) - centre
        if self.noise_support == "pixel":
            steps = self._pixel_steps(Xs, S, pairs, theta0, rng)
            linear, quadratic = _pixel_log_ratio_terms(pairs, theta0, Xs, steps[0])
        else:
            direction = self._image_directions(X, Xs, pairs, theta0, rng, self.reg / c2)
            linear, quadratic = _image_log_ratio_terms(pairs, theta0, Xs, direction)
        if self.noise_scale == "auto":
            scale = _auto_scale(linear, quadratic)
        else:
            scale = float(self.noise_scale) / noise_unit
            if scale < _MIN_NOISE_SCALE:
                raise ValueError(
                    f"noise_scale={self.noise_scale:g} is too small for these data: the "
                    "classification loss equals log 2 to rounding and carries no "
                    f"information. Use noise_scale='auto' or at least "
                    f"{_MIN_NOISE_SCALE * noise_unit:.3g}."
                )
        if self.noise_support == "pixel":
            for step in steps:
                step *= scale
            contrasts = PixelContrasts(pairs, Xs, steps)
        else:
            # features of log p(x) - log p(x + scale * direction), per pair
            Xr = np.tile(np.repeat(Xs, self._n_draws, axis=0), (2, 1))
            Phi = QuadraticFeatures(
                pairs,
                Xr,
                direction,
                scale,
                max_bytes=self._feature_budget(len(Xr) * pairs.n_pairs * 8),
            )
            contrasts = _ImageContrasts(Phi)
        objective = _CNCEObjective(contrasts, scale)
        result = minimize_pd(
            objective,
            theta0,
            pairs,
            eps,
            tol=self.tol,
            max_iter=self.max_iter,
            verbose=self.verbose,
            callback=objective.record,
            precondition=precondition,
        )
        accuracy = objective.at(result.x).accuracy
        separable = accuracy >= _SEPARABLE
        self._warn_unconverged(result, separable)
        if separable:
            warnings.warn(
                f"Data points and their noisy copies are (near-)perfectly separable "
                f"(accuracy {accuracy:.4f}): noise_scale={scale * noise_unit:.3g} is too large.",
                SeparableNoiseWarning,
                stacklevel=2,
            )
        fit = _CNCEFit(
            precision=pairs.to_sparse(result.x),
            n_iter=result.n_iter,
            kkt_residual=result.kkt_residual,
            min_eigenvalue=result.min_eigenvalue,
            eps=eps,
            loss_curve=np.asarray(objective.curve),
            accuracy=accuracy,
            noise_scale=scale * noise_unit,
        )
        return fit.in_data_units(c2)

    def _pixel_steps(self, Xs, S, pairs, theta0, rng):
        """Per draw, one unit-scale step per sample and pixel: standard
        normals times the pixel's noise standard deviation."""
        n, D = Xs.shape
        check_allocation(
            8 * self._n_draws * n * D,
            f"noise_support='pixel' with {self._n_draws} noise draws of {n} x {D} samples",
            "lower n_noise_draws or fit on fewer samples.",
        )
        if self.noise_shape == "score_matching":  # the start's conditional deviation
            std = 1.0 / np.sqrt(theta0[pairs.is_diag])
        elif self.noise_shape == "covariance":  # the data's deviation
            std = np.sqrt(diagonal(S))
        else:
            std = np.ones(D)
        return [standard_normal(rng, Xs.shape) * std for _ in range(self._n_draws)]

    def _image_directions(self, X, Xs, pairs, theta0, rng, reg):
        """The noise directions ``M xi`` of every repeated sample, followed by
        their mirror images ``-M xi``."""
        xi = standard_normal(rng, (len(Xs) * self._n_draws, Xs.shape[1]))
        if self.noise_shape == "score_matching":  # N(0, inv(Lambda_SM)); the start is PD
            xi = pairs.cholesky(theta0).inverse_sqrt_rows(xi)
        elif self.noise_shape == "covariance":  # the smoothed data's covariance, cov(X) + reg I
            xi = _shaped_by(self._dense_covariance(X, reg), xi)
        # Antithetic pairs: the first-order terms of +xi and -xi cancel
        # exactly, so the objective's sampling noise does not blow up as
        # the noise scale shrinks (it tends to score matching instead).
        return np.concatenate([xi, -xi])

    def _dense_covariance(self, X, reg):
        """The covariance of ``X`` plus ``reg I``, dense: ``D x D`` by nature,
        so a clear error first when it would not fit in memory."""
        D = X.shape[1]
        check_allocation(
            3 * 8 * D * D,
            f"noise_shape='covariance' on {D} features (a dense {D} x {D} covariance)",
            "use noise_shape='score_matching', which is sparse.",
        )
        S = Moments.of(X, self.assume_centered).covariance
        S.flat[:: D + 1] += reg
        return S


# The "auto" noise scale looks at this many single-pixel log-ratios.
_AUTO_SCALE_TERMS = 2**18


def _pixel_log_ratio_terms(pairs, theta, Xs, steps):
    """``(a, b)`` with ``log p(x) - log p(x + s t e_p) = s a + s^2 b`` at
    ``theta`` for the first samples' single-pixel moves by ``t``."""
    rows = max(1, _AUTO_SCALE_TERMS // Xs.shape[1])
    x, t = Xs[:rows], steps[:rows]
    Lx = np.asarray(x @ pairs.to_sparse(theta))
    return (t * Lx).ravel(), (0.5 * t * t * theta[pairs.is_diag]).ravel()


def _image_log_ratio_terms(pairs, theta, Xs, direction):
    """``(a, b)`` with ``log p(x) - log p(x + s d) = s a + s^2 b`` at
    ``theta`` for the first samples' copies: two row-wise products, not the
    features."""
    rows = min(len(direction), 4000)
    Lam = pairs.to_sparse(theta)
    d = direction[:rows]
    # direction's rows follow the samples repeated per draw, twice
    draws = len(direction) // (2 * len(Xs))
    x = Xs[(np.arange(rows) % (len(Xs) * draws)) // draws]
    linear = np.einsum("ij,ij->i", d, (Lam @ x.T).T)
    quadratic = 0.5 * np.einsum("ij,ij->i", d, (Lam @ d.T).T)
    return linear, quadratic


def _auto_scale(linear, quadratic):
    """Bisection on log(scale) for the loss ``0.9 log 2`` at the start."""
    target = _AUTO_LOSS_FRACTION * np.log(2.0)

    def loss_at(log_scale):
        s = np.exp(log_scale)
        return cnce_loss(s * linear + s * s * quadratic)[0]

    lo, hi = np.log(1e-4), np.log(10.0)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if loss_at(mid) > target:  # too little noise: loss still near log 2
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))


@dataclass(frozen=True)
class _CNCEFit(NoiseContrastiveFit):
    noise_scale: float
