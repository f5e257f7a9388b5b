r"""Noise-contrastive estimation of masked Gaussians: the NCE loss, the
shared base of NCE and conditional NCE, and :class:`MaskedGaussianNCE`.

The losses take the model's log-ratios and return the loss and its gradient
with respect to them, so any model chains its own parameter gradient onto
them. Everything stays in log space: :math:`\log(1 + e^{\mp G})` is
``logaddexp(0, ∓G)`` and its derivative a logistic sigmoid, never an
exponentiated ratio (forming :math:`p_n/p_\theta` in hundreds of dimensions
overflows). The positive-definite constraint is handled by projected
quasi-Newton (:func:`skdensity.linalg.minimize_pd`).
"""

import warnings
from dataclasses import dataclass, replace
from numbers import Real

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..exceptions import SeparableNoiseWarning
from ..linalg import minimize_pd
from ..utils._compat import HasMethods, Interval, StrOptions
from ..utils._memory import available_memory
from ..utils._random import sample_from, standard_normal
from ..utils._threads import single_threaded
from ._base import BaseMaskedGaussian, GaussianDensity, MaskedFit
from ._covariance_selection import MaskedGaussianMLE
from ._inputs import unit_scale
from ._quadratic_features import QuadraticFeatures
from ._score_matching import _solve_score_matching, resolve_eps, score_matching_system

__all__ = ["MaskedGaussianNCE", "nce_accuracy", "nce_loss"]

# Classification accuracy above which data and noise count as separable.
_SEPARABLE = 0.99
# NCE stops after this many consecutive iterations at separable accuracy.
_SEPARATED_ITERATIONS = 50
# precompute="auto" stores the quadratic features up to this many bytes.
_FEATURE_MEMORY = 4 * 2**30


def nce_loss(g_data, g_noise, noise_ratio):
    r"""Noise-contrastive estimation loss (Gutmann & Hyvärinen 2012).

    With :math:`G(u) = \log\tilde p_\theta(u) - \log\nu - \log p_n(u)`,

    .. math:: J = \overline{\log(1+e^{-G(x)})} + \nu\,\overline{\log(1+e^{G(y)})}

    over data :math:`x` and :math:`\nu` times as many noise samples :math:`y`.

    Parameters
    ----------
    g_data : ndarray of shape (n_data,)
        Log-ratios ``G`` at the data.
    g_noise : ndarray of shape (n_noise,)
        Log-ratios ``G`` at the noise samples.
    noise_ratio : float
        ``nu``, the number of noise samples per data sample.

    Returns
    -------
    loss : float
    grad_data : ndarray of shape (n_data,)
        ``dJ / dG`` at the data.
    grad_noise : ndarray of shape (n_noise,)
        ``dJ / dG`` at the noise.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.gaussian import nce_loss
    >>> loss, _, _ = nce_loss(np.zeros(3), np.zeros(6), 2.0)
    >>> bool(np.isclose(loss, 3 * np.log(2)))
    True
    """
    n_d, n_n = len(g_data), len(g_noise)
    loss = np.logaddexp(0.0, -g_data).mean() + noise_ratio * np.logaddexp(0.0, g_noise).mean()
    return loss, -expit(-g_data) / n_d, noise_ratio * expit(g_noise) / n_n


def nce_accuracy(g_data, g_noise):
    """Fraction of data and noise samples the model classifies correctly."""
    return float(((g_data > 0).sum() + (g_noise < 0).sum()) / (len(g_data) + len(g_noise)))


def start_and_preconditioner(S, pairs, eps):
    """A strictly feasible start and an L-BFGS preconditioner, from one
    factorisation of the score matching Hessian.

    The start is the score matching estimate with ``Lambda >= 2 eps I``. The
    preconditioner is the inverse of that Hessian: pixel products are
    strongly correlated, so the NCE objectives are badly conditioned in the
    precision entries, and conditional NCE tends to score matching as its
    noise shrinks; the score matching Hessian approximates their curvature.
    """
    system = score_matching_system(S, pairs)
    with warnings.catch_warnings(), single_threaded():
        warnings.simplefilter("ignore")  # a rough start is enough
        theta, _ = _solve_score_matching(
            S, pairs, eps=2 * eps, tol=1e-4, max_iter=5000, system=system
        )

    def precondition(v):
        with single_threaded():  # a banded solve: threads cost more than they save
            return system.solve(v)

    return theta, precondition


def smooth(X, reg, rng):
    """The data convolved with N(0, reg I): a sample-based variance floor.

    Their covariance is, in expectation, the Gaussian family's ``S + reg I``,
    so the floor means the same for every estimator. Without it, pixels that
    never change are perfectly separable from any noise that varies there,
    and the objectives are unbounded.
    """
    return X + np.sqrt(reg) * standard_normal(rng, X.shape) if reg > 0 else X


@dataclass(frozen=True)
class NoiseContrastiveFit(MaskedFit):
    """What both noise-contrastive estimators learn besides the precision."""

    eps: float
    loss_curve: np.ndarray
    accuracy: float

    def in_data_units(self, c2):
        """The fit of data ``c`` times larger (``c2 = c^2``): the precision
        and its bounds scale by ``1 / c2``."""
        if c2 == 1.0:
            return self
        return replace(
            self,
            precision=self.precision / c2,
            min_eigenvalue=self.min_eigenvalue / c2,
            eps=self.eps / c2,
        )


class _Units:
    """The data in units where the mean variance is about 1: ``x / c``."""

    def __init__(self, c2):
        self.c2, self.c = c2, np.sqrt(c2)

    def to_unit(self, X):
        return X if self.c2 == 1.0 else X / self.c

    def noise(self, noise):
        """``noise`` as a density of ``x / c``."""
        return noise if self.c2 == 1.0 else _ScaledNoise(noise, self.c)


class _ScaledNoise:
    """A fitted density of ``x``, seen as the density of ``x / c``."""

    def __init__(self, noise, c):
        self.noise, self.c = noise, c

    def score_samples(self, Z):
        return np.asarray(self.noise.score_samples(Z * self.c), dtype=float) + Z.shape[1] * np.log(
            self.c
        )

    def sample(self, n_samples=1, random_state=None):
        return sample_from(self.noise, n_samples, random_state) / self.c

    def __repr__(self):
        return repr(self.noise)


class BaseMaskedNCE(BaseMaskedGaussian):
    """Shared set-up of the noise-contrastive masked Gaussians."""

    _needs_samples = True

    _parameter_constraints: dict = {
        **BaseMaskedGaussian._parameter_constraints,
        "eps": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "precompute": [StrOptions({"auto"}), "boolean"],
    }

    def _feature_budget(self, total_bytes):
        """``max_bytes`` for QuadraticFeatures: store all or nothing ("auto":
        within 4 GiB and half of the memory available)."""
        if self.precompute == "auto":
            available = available_memory()
            budget = _FEATURE_MEMORY if available is None else min(_FEATURE_MEMORY, available / 2)
            return np.inf if total_bytes <= budget else 0
        return np.inf if self.precompute else 0

    def _warn_unconverged(self, result, separable):
        # Separable data have no optimum (the loss heads to zero): the
        # SeparableNoiseWarning says so and what to do; a ConvergenceWarning
        # advising more iterations would mislead.
        if not result.converged and not result.stopped and not separable:
            warnings.warn(
                f"{type(self).__name__} stopped after {result.n_iter} iterations "
                f"with a relative KKT residual of {result.kkt_residual:.2e} > "
                f"tol={self.tol:g}; increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )


def _profile_log_normalizer(a_x, a_y, nu, c):
    """argmin_c of the NCE loss with log-ratios ``a + c``.

    The derivative in ``c`` rises monotonically from -1 to ``nu``, so its
    root is bracketed and found by Newton steps safeguarded by bisection:
    exact even when data and noise are nearly separable (tiny curvature).
    """

    def slope(c):
        s_x, s_y = expit(-(a_x + c)), expit(a_y + c)
        d1 = -s_x.mean() + nu * s_y.mean()
        return d1, (s_x * (1 - s_x)).mean() + nu * (s_y * (1 - s_y)).mean()

    d1, d2 = slope(c)
    step = 1.0
    lo = hi = c
    while d1 > 0 and slope(lo)[0] > 0:
        lo -= step
        step *= 2
    while d1 < 0 and slope(hi)[0] < 0:
        hi += step
        step *= 2
    if d1 > 0:
        hi = c
    else:
        lo = c
    for _ in range(200):
        d1, d2 = slope(c)
        if d1 > 0:
            hi = c
        else:
            lo = c
        if abs(d1) <= 1e-13 * (1.0 + nu) or hi - lo <= 1e-14 * (1.0 + abs(c)):
            break
        newton = c - d1 / d2 if d2 > 0 else np.nan
        c = newton if lo < newton < hi else 0.5 * (lo + hi)
    return c


# KernelDensity kernels whose density is positive everywhere.
_FULL_SUPPORT_KERNELS = {"gaussian", "exponential"}


def _check_full_support(noise):
    """Refuse noises known to vanish somewhere: NCE's log-ratio is infinite
    there, and a noise that cannot reach parts of the space cannot teach the
    model about them."""
    kernel = getattr(noise, "kernel", None)
    if type(noise).__name__ == "KernelDensity" and kernel not in _FULL_SUPPORT_KERNELS:
        raise ValueError(
            f"KernelDensity(kernel={kernel!r}) is zero beyond its bandwidth, so it cannot "
            "serve as NCE noise (the noise must have full support); use kernel='gaussian'."
        )


class _NCEObjective:
    """The NCE loss in the precision's free entries, with the log-normaliser
    profiled out, and the record of the iterations.

    For each ``theta`` the optimal ``c`` solves a one-dimensional convex
    problem (Newton, warm-started from the last one); the profiled loss is
    convex in ``theta`` and its gradient is the partial one at the optimal
    ``c`` (envelope theorem).
    """

    def __init__(self, Phi_x, Phi_y, b_x, b_y, nu):
        self.Phi_x, self.Phi_y, self.b_x, self.b_y, self.nu = Phi_x, Phi_y, b_x, b_y, nu
        self.c = 0.0
        self.theta = self.loss = self.accuracy = None
        self.curve, self.separated = [], []

    def __call__(self, theta):
        a_x, a_y = self.Phi_x @ theta + self.b_x, self.Phi_y @ theta + self.b_y
        self.c = _profile_log_normalizer(a_x, a_y, self.nu, self.c)
        self.loss, d_x, d_y = nce_loss(a_x + self.c, a_y + self.c, self.nu)
        self.theta, self.accuracy = theta, nce_accuracy(a_x + self.c, a_y + self.c)
        return self.loss, self.Phi_x.T @ d_x + self.Phi_y.T @ d_y

    def at(self, theta):
        """Make ``theta`` the last point evaluated (the solver's accepted
        point usually is)."""
        if self.theta is None or not np.array_equal(self.theta, theta):
            self(theta)

    def record(self, theta, _):
        """Solver callback: keep the loss; stop once data and noise have been
        separable for many iterations (the loss heads to zero and the
        parameters to infinity)."""
        self.at(theta)
        self.curve.append(self.loss)
        self.separated.append(self.accuracy >= _SEPARABLE)
        recent = self.separated[-_SEPARATED_ITERATIONS:]
        return len(recent) == _SEPARATED_ITERATIONS and all(recent)


class MaskedGaussianNCE(BaseMaskedNCE):
    r"""Gaussian Markov random field fitted by noise-contrastive estimation.

    The unnormalised model :math:`\log\tilde p(x) = -\tfrac12 (x-\mu)^\top
    \Lambda (x-\mu) + c` with a free log-normaliser :math:`c` is fitted by
    logistic regression of the data against ``noise_ratio`` times as many
    noise samples (Gutmann & Hyvärinen 2012), in log space throughout,
    under :math:`\Lambda \succeq \varepsilon I` (projected quasi-Newton, see
    :func:`skdensity.linalg.minimize_pd`). The loss is convex in
    :math:`(\Lambda, c)`: the log-density is linear in them.

    ``score_samples`` uses the exact normaliser from :math:`\log\det\Lambda`;
    ``normalizer_gap_`` reports how far the learned :math:`c` is from it (near
    zero only when the model fits). NCE needs a noise close to the data:
    against a Gaussian, MNIST is perfectly separable by a quadratic form, the
    loss goes to zero and the estimate is meaningless; the estimator then
    warns (:class:`~skdensity.exceptions.SeparableNoiseWarning`).

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
        estimators); also used by the noise Gaussian and the starting point.
    assume_centered : bool, default=False
        If True, the mean is taken to be zero.
    noise : {"gaussian", "diagonal"} or estimator, default="gaussian"
        ``"gaussian"``: a full-covariance Gaussian fitted to the data;
        ``"diagonal"``: independent pixels; or any *fitted* estimator with
        ``score_samples`` and ``sample`` (a ``MaskedGaussianSM``,
        ``GaussianMixture``, ``KernelDensity``...).
    noise_ratio : float, default=10
        Noise samples per data sample (``nu``); NCE approaches maximum
        likelihood as it grows, at proportional cost.
    eps : float or "auto", default="auto"
        Lower bound on the precision's eigenvalues (as in
        :class:`MaskedGaussianSM`).
    tol : float, default=1e-5
        Target relative KKT residual: stationarity of the Lagrangian
        relative to the first gradient, and complementarity.
    max_iter : int, default=1000
        Maximum number of projected quasi-Newton iterations.
    precompute : "auto" or bool, default="auto"
        Store the design matrix of quadratic features (``n_samples x
        n_pairs`` floats; one BLAS pass per product) or recompute it from
        the samples on every product (memory of the samples only, each
        product a few times slower). ``"auto"`` stores it when it takes at
        most 4 GiB and half of the memory available.
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
    log_normalizer_ : float
        The learned :math:`c`.
    normalizer_gap_ : float
        ``log_normalizer_`` minus the exact log-normaliser.
    noise_ : estimator
        The fitted noise distribution.
    accuracy_ : float
        Final classification accuracy of data against noise.
    loss_curve_ : ndarray
        NCE loss after each iteration.
    eps_ : float
        Eigenvalue bound used.
    kkt_residual_ : float
        Relative KKT residual at the solution (optimality certificate).
    min_eigenvalue_ : float
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import MaskedGaussianNCE
    >>> X = np.random.default_rng(0).normal(size=(300, 9))
    >>> nce = MaskedGaussianNCE(noise_ratio=5, random_state=0).fit(X)
    >>> bool(nce.min_eigenvalue_ > 0), bool(abs(nce.normalizer_gap_) < 0.5)
    (True, True)
    """

    _parameter_constraints: dict = {
        **BaseMaskedNCE._parameter_constraints,
        "noise": [StrOptions({"gaussian", "diagonal"}), HasMethods(["score_samples", "sample"])],
        "noise_ratio": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        image_shape=None,
        connectivity=8,
        mask=None,
        reg=0.01,
        assume_centered=False,
        noise="gaussian",
        noise_ratio=10,
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
        self.noise = noise
        self.noise_ratio = noise_ratio
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter
        self.precompute = precompute
        self.random_state = random_state
        self.verbose = verbose

    def _fit_noise(self, X):
        D = X.shape[1]
        if isinstance(self.noise, str):
            if self.noise == "gaussian":
                gaussian = GaussianDensity(reg=self.reg, assume_centered=self.assume_centered)
                try:
                    return gaussian.fit(X)
                except MemoryError as exc:
                    raise MemoryError(
                        f"noise='gaussian': {exc} For large images pass noise='diagonal' or a "
                        "fitted sparse model (e.g. noise=MaskedGaussianSM().fit(X))."
                    ) from None
            return MaskedGaussianMLE(
                mask=np.eye(D, dtype=bool), reg=self.reg, assume_centered=self.assume_centered
            ).fit(X)
        try:
            check_is_fitted(self.noise)
        except NotFittedError:
            raise ValueError(
                f"The noise estimator {type(self.noise).__name__} is not fitted: fit it "
                "on data like X before passing it as noise."
            ) from None
        n_in = getattr(self.noise, "n_features_in_", D)
        if n_in != D:
            raise ValueError(f"The noise estimator was fitted on {n_in} features but X has {D}.")
        _check_full_support(self.noise)
        return self.noise

    def _objective(self, X, noise, pairs, rng, reg):
        """The NCE objective of ``X`` against draws of ``noise``."""
        # The model's mean is the data's (location_), not the smoothed draw's.
        centre = X.mean(axis=0) if not self.assume_centered else 0.0
        X = smooth(X, reg, rng)
        n_noise = max(1, int(round(self.noise_ratio * len(X))))
        try:
            Y = sample_from(noise, n_noise, int(rng.randint(2**31 - 1)))
        except NotImplementedError as exc:
            reason = str(exc) or "its sample method is not implemented"
            raise ValueError(
                f"The noise estimator {noise!r} cannot draw samples ({reason}); "
                "NCE needs a noise it can sample, e.g. KernelDensity(kernel='gaussian')."
            ) from None
        if Y.shape[1] != X.shape[1]:
            raise ValueError("The noise estimator samples the wrong number of features.")
        nu = n_noise / len(X)
        log_pn_x = np.asarray(noise.score_samples(X), dtype=float)
        log_pn_y = np.asarray(noise.score_samples(Y), dtype=float)
        if not (np.all(np.isfinite(log_pn_x)) and np.all(np.isfinite(log_pn_y))):
            raise ValueError(
                "The noise density is zero (log-density -inf) at some data or noise "
                "samples; NCE needs a noise with full support, e.g. a Gaussian kernel."
            )
        budget = self._feature_budget((len(X) + len(Y)) * pairs.n_pairs * 8)
        return _NCEObjective(
            QuadraticFeatures(pairs, X, centre=centre, max_bytes=budget),
            QuadraticFeatures(pairs, Y, centre=centre, max_bytes=budget),
            -np.log(nu) - log_pn_x,
            -np.log(nu) - log_pn_y,
            nu,
        )

    _needs_top_eigenvalue = True

    def _estimate_precision(self, S, structure, warm_start, data):
        rng = check_random_state(self.random_state)
        pairs = structure.pairs
        X = data.X
        noise = self._fit_noise(X)
        eps = resolve_eps(self.eps, S, data.top_eigenvalue)
        # Solved in units where the mean variance is about 1 (see unit_scale).
        c2 = unit_scale(S)
        units = _Units(c2)
        S, X, eps = S / c2, units.to_unit(X), eps * c2
        objective = self._objective(X, units.noise(noise), pairs, rng, self.reg / c2)
        theta0, precondition = start_and_preconditioner(S, pairs, eps)
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
        theta = result.x
        objective.at(theta)
        separable = objective.accuracy >= _SEPARABLE
        self._warn_unconverged(result, separable)
        log_det = pairs.cholesky(theta).log_det()
        gap = objective.c - 0.5 * (log_det - pairs.n_features * np.log(2 * np.pi))
        if separable:
            warnings.warn(
                f"Data and noise are (near-)perfectly separable (classification accuracy "
                f"{objective.accuracy:.4f}): NCE's estimate is unreliable. Use a noise closer "
                "to the data (noise=<a fitted estimator>) or MaskedGaussianCNCE.",
                SeparableNoiseWarning,
                stacklevel=2,
            )
        fit = _NCEFit(
            precision=pairs.to_sparse(theta),
            n_iter=result.n_iter,
            kkt_residual=result.kkt_residual,
            min_eigenvalue=result.min_eigenvalue,
            eps=eps,
            loss_curve=np.asarray(objective.curve),
            accuracy=objective.accuracy,
            noise=noise,
            log_normalizer=float(objective.c),
            normalizer_gap=float(gap),
        )
        return fit.in_data_units(c2)


@dataclass(frozen=True)
class _NCEFit(NoiseContrastiveFit):
    noise: object
    log_normalizer: float
    normalizer_gap: float

    def in_data_units(self, c2):
        fit = super().in_data_units(c2)
        # p(x) = p'(x / c) / c^D: the log-normaliser moves by -D log c.
        shift = 0.5 * self.precision.shape[0] * np.log(c2)
        return replace(fit, log_normalizer=self.log_normalizer - shift)
