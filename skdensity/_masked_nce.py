"""MaskedGaussianNCE and MaskedGaussianCNCE: noise-contrastive estimation of
masked Gaussians under the positive-definite constraint."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.linalg as la
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._banded import inverse_sqrt_rows, log_det, pattern_cholesky, single_threaded
from ._base import BaseMaskedGaussian, GaussianDensity, sample_from, sqrtm_rows, standard_normal
from ._mle import MaskedGaussianMLE
from ._nce import cnce_loss, nce_accuracy, nce_loss
from ._pairs import QuadraticFeatures, as_pairs
from ._pd_constraint import minimize_pd
from ._score_matching import _masked_score_matching, resolve_eps, score_matching_system
from .exceptions import SeparableNoiseWarning

# Classification accuracy above which data and noise count as separable.
_SEPARABLE = 0.99
# NCE stops after this many consecutive iterations at separable accuracy.
_SEPARATED_ITERATIONS = 50
# precompute="auto" stores the quadratic features up to this many bytes.
_FEATURE_MEMORY = 4 * 2**30


def _start_and_preconditioner(S, pairs, eps):
    """A strictly feasible start and an L-BFGS preconditioner, from one
    factorisation of the score matching Hessian.

    The start is the score matching estimate with ``Lambda >= 2 eps I``. The
    preconditioner is the inverse of that Hessian: pixel products are
    strongly correlated (neighbouring pixels of natural images correlate at
    0.96), so the NCE objectives are badly conditioned in the precision
    entries, and conditional NCE tends to score matching as its noise
    shrinks; the score matching Hessian is a good approximation of their
    curvature (measured: 3000 -> a few hundred iterations on 8x8 natural
    patches).
    """
    system = score_matching_system(S, pairs)
    with warnings.catch_warnings(), single_threaded():
        warnings.simplefilter("ignore")  # a rough start is enough
        precision, _ = _masked_score_matching(S, pairs, 2 * eps, 1e-4, 5000, None, 0, system)
    solve = system[1]

    def precondition(v):
        with single_threaded():  # a banded solve: threads cost more than they save
            return solve(v)

    return pairs.from_dense(precision), precondition


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


def _smooth(X, reg, rng):
    """The data convolved with N(0, reg I): a sample-based variance floor.

    Their covariance is, in expectation, the Gaussian family's ``S + reg I``,
    so the floor means the same for every estimator. Without it, pixels that
    never change (MNIST's borders) are perfectly separable from any noise
    that varies there, and the objectives are unbounded.
    """
    return X + np.sqrt(reg) * standard_normal(rng, X.shape) if reg > 0 else X


def _shaped_by(S, xi):
    """The rows of ``xi`` (standard normal) mapped to ``N(0, S)``.

    ``xi L'`` with ``S = L L'``, a triangular product in place on ``xi``
    (0.43 s for 40,000 x 784 against 2.4 s for two products with the
    symmetric square root; any square root gives the same distribution).
    A semi-definite ``S`` (``reg=0`` with constant pixels) takes the
    eigendecomposition.
    """
    try:
        L = la.cholesky(S, lower=True, check_finite=False)
    except la.LinAlgError:
        return sqrtm_rows(xi, S)
    return la.blas.dtrmm(1.0, L, xi.T, lower=1, overwrite_b=1).T


class _BaseMaskedNCE(BaseMaskedGaussian):
    """Shared set-up of the noise-contrastive masked Gaussians."""

    _needs_samples = True

    _parameter_constraints: dict = {
        **BaseMaskedGaussian._parameter_constraints,
        "eps": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "precompute": [StrOptions({"auto"}), "boolean"],
    }

    def _feature_budget(self, total_bytes):
        """``max_bytes`` for QuadraticFeatures: store all or nothing."""
        if self.precompute == "auto":
            return np.inf if total_bytes <= _FEATURE_MEMORY else 0
        return np.inf if self.precompute else 0

    def _finish(self, theta, info, pairs, loss_curve, separable=False):
        precision = pairs.to_dense(theta)
        self.eps_ = self._eps
        self.loss_curve_ = np.asarray(loss_curve)
        # Separable data have no optimum (the loss heads to zero): the
        # SeparableNoiseWarning says so and what to do; a ConvergenceWarning
        # advising more iterations would mislead.
        if not info["converged"] and not info["stopped"] and not separable:
            warnings.warn(
                f"{type(self).__name__} stopped after {info['n_iter']} iterations "
                f"with a relative KKT residual of {info['kkt_residual']:.2e} > "
                f"tol={self.tol:g}; increase max_iter or tol.",
                ConvergenceWarning,
            )
        return precision, info


class MaskedGaussianNCE(_BaseMaskedNCE):
    r"""Gaussian Markov random field fitted by noise-contrastive estimation.

    The unnormalised model :math:`\log\tilde p(x) = -\tfrac12 (x-\mu)^\top
    \Lambda (x-\mu) + c` with a free log-normaliser :math:`c` is fitted by
    logistic regression of the data against ``noise_ratio`` times as many
    noise samples (Gutmann & Hyvärinen 2012), in log space throughout,
    under :math:`\Lambda \succeq \varepsilon I` (projected quasi-Newton, see
    :func:`skdensity._pd_constraint.minimize_pd`). The loss is convex in
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
        product about 3-4 times slower). ``"auto"`` stores it when it takes
        at most 4 GiB (MNIST-sized problems at the default settings; 50,000
        natural patches are recomputed).
    random_state : int, RandomState instance or None, default=None
        Seeds the noise draws.
    verbose : int, default=0
        Print solver progress when positive.

    Attributes
    ----------
    location_, precision_, covariance_, precision_cholesky_, empirical_covariance_, mask_, image_shape_
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
        **_BaseMaskedNCE._parameter_constraints,
        "noise": [StrOptions({"gaussian", "diagonal"}), HasMethods(["score_samples", "sample"])],
        "noise_ratio": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self, *, image_shape=None, connectivity=8, mask=None, reg=0.01, assume_centered=False,
        noise="gaussian", noise_ratio=10, eps="auto", tol=1e-5, max_iter=1000,
        precompute="auto", random_state=None, verbose=0,
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
                return GaussianDensity(reg=self.reg, assume_centered=self.assume_centered).fit(X)
            return MaskedGaussianMLE(mask=np.eye(D, dtype=bool), reg=self.reg,
                                     assume_centered=self.assume_centered).fit(X)
        try:
            check_is_fitted(self.noise)
        except NotFittedError:
            raise ValueError(
                f"The noise estimator {type(self.noise).__name__} is not fitted: fit it "
                "on data like X before passing it as noise."
            ) from None
        n_in = getattr(self.noise, "n_features_in_", D)
        if n_in != D:
            raise ValueError(
                f"The noise estimator was fitted on {n_in} features but X has {D}."
            )
        return self.noise

    def _estimate_precision(self, S, warm_start, X=None):
        rng = check_random_state(self.random_state)
        pairs = as_pairs(self.mask_)
        m = pairs.n_pairs
        noise = self._fit_noise(X)
        # The model's mean is the data's (location_), not the smoothed draw's.
        centre = X.mean(axis=0) if not self.assume_centered else 0.0
        X = _smooth(X, self.reg, rng)
        n_noise = max(1, int(round(self.noise_ratio * len(X))))
        Y = sample_from(noise, n_noise, int(rng.randint(2**31 - 1)))
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
        budget = self._feature_budget((len(X) + len(Y)) * m * 8)
        Phi_x = QuadraticFeatures(pairs, X, centre=centre, max_bytes=budget)
        Phi_y = QuadraticFeatures(pairs, Y, centre=centre, max_bytes=budget)
        b_x = -np.log(nu) - log_pn_x
        b_y = -np.log(nu) - log_pn_y
        self._eps = resolve_eps(self.eps, S)
        theta0, precondition = _start_and_preconditioner(S, pairs, self._eps)
        # The log-normaliser is profiled out: for each theta the optimal c
        # solves a one-dimensional convex problem (Newton, warm-started).
        # The profiled loss is convex in theta, its gradient is the partial
        # one at the optimal c (envelope theorem), and the remaining
        # problem is preconditioned by the score matching Hessian.
        cache, curve, separated = {"c": 0.0}, [], []

        def fg(theta):
            a_x, a_y = Phi_x @ theta + b_x, Phi_y @ theta + b_y
            c = _profile_log_normalizer(a_x, a_y, nu, cache["c"])
            loss, d_x, d_y = nce_loss(a_x + c, a_y + c, nu)
            cache.update(theta=theta, c=c, loss=loss, accuracy=nce_accuracy(a_x + c, a_y + c))
            return loss, Phi_x.T @ d_x + Phi_y.T @ d_y

        def record(theta, _):  # the accepted point was the last one evaluated
            if not np.array_equal(cache["theta"], theta):
                fg(theta)
            curve.append(cache["loss"])
            # Separable data and noise: the loss heads to zero and the
            # parameters to infinity; stop rather than chase it.
            separated.append(cache["accuracy"] >= _SEPARABLE)
            return len(separated) >= _SEPARATED_ITERATIONS and all(separated[-_SEPARATED_ITERATIONS:])

        theta, info = minimize_pd(
            fg, theta0, pairs, self._eps, tol=self.tol, max_iter=self.max_iter,
            verbose=self.verbose, callback=record, precondition=precondition,
        )
        if not np.array_equal(cache["theta"], theta):
            fg(theta)
        c = cache["c"]
        self.noise_ = noise
        self.log_normalizer_ = float(c)
        self.accuracy_ = nce_accuracy(Phi_x @ theta + c + b_x, Phi_y @ theta + c + b_y)
        precision, info = self._finish(theta, info, pairs, curve, self.accuracy_ >= _SEPARABLE)
        logdet = log_det(pattern_cholesky(pairs.rows, pairs.cols, theta, pairs.n_features))
        self.normalizer_gap_ = float(c - 0.5 * (logdet - len(precision) * np.log(2 * np.pi)))
        if self.accuracy_ >= _SEPARABLE:
            warnings.warn(
                f"Data and noise are (near-)perfectly separable (classification accuracy "
                f"{self.accuracy_:.4f}): NCE's estimate is unreliable. Use a noise closer "
                "to the data (noise=<a fitted estimator>) or MaskedGaussianCNCE.",
                SeparableNoiseWarning,
            )
        return precision, info


# "auto" noise scale: the initial cNCE loss sits at this fraction of its
# vanishing-noise limit log 2 (see MaskedGaussianCNCE).
_AUTO_LOSS_FRACTION = 0.9


class MaskedGaussianCNCE(_BaseMaskedNCE):
    r"""Gaussian Markov random field fitted by conditional NCE.

    Conditional noise-contrastive estimation (Ceylan & Gutmann 2018) pairs
    each data point :math:`x` with ``n_noise_draws`` noisy copies
    :math:`y = x + \epsilon M\xi`, :math:`\xi \sim N(0, I)`, for a fixed
    :math:`M`, and minimises :math:`\overline{\log(1+\exp(-(\log\tilde p(x) -
    \log\tilde p(y))))}`. The noise is symmetric, so its density cancels,
    and so does the normaliser: ``score_samples`` uses the exact one from
    :math:`\log\det\Lambda`. As :math:`\epsilon \to 0` the objective tends to
    score matching in the metric :math:`A = MM^\top`,
    :math:`\tfrac12\operatorname{tr}(\Lambda A\Lambda S) - \operatorname{tr}(A\Lambda)`
    (its curvature scales as :math:`\epsilon^2`; the solver works on the
    loss divided by :math:`\epsilon^2`), so the same constraint
    :math:`\Lambda\succeq\varepsilon I` is applied.

    **The noise's shape sets that limit.** On the mask, its stationarity
    is :math:`P_E(\tfrac12(A\Lambda S + S\Lambda A) - A) = 0`; with
    :math:`A = \Lambda^{-1}`, the model's own covariance, this is maximum
    likelihood's condition :math:`P_E(\Lambda^{-1}) = P_E(S)`. The default
    therefore shapes the noise by the covariance of the score matching
    estimate (the solver's start, close to the model's), not by the data's.
    Measured on 8,000 MNIST digits with 5 draws (``benchmarks/bench_cnce_limits.py``):
    held out 633.56 against 614.02 with the data covariance, 613.30 with
    isotropic noise and 633.75 for maximum likelihood; on the held-out
    digits smoothed like the training data (the fairer score, see
    :doc:`/benchmarks`) 356.26, 347.27, 333.49 and 383.75: what is left is
    the draws' sampling noise (see ``n_noise_draws``).

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
    noise_shape : {"score_matching", "covariance", "isotropic"}, default="score_matching"
        :math:`M` above. ``"score_matching"``: :math:`M = U^{-1}` with
        :math:`U^\top U = \Lambda_{SM}`, the score matching estimate (the
        noise is :math:`N(0, \epsilon^2\Lambda_{SM}^{-1})`, drawn by one
        banded triangular solve); ``"covariance"``: :math:`MM^\top = S`, the
        data's covariance; ``"isotropic"``: :math:`M = I` (then the small-noise
        limit is exactly :class:`MaskedGaussianSM`). Measured on 8,000 MNIST
        digits, held out, against maximum likelihood's 633.75: the
        small-noise limits are 633.03, 617.04 and 631.07, and the fits with 5
        draws 633.56, 614.02 and 613.30 (isotropic noise has the most
        sampling noise).
    noise_scale : float or "auto", default="auto"
        :math:`\epsilon`. ``"auto"`` picks it by bisection on a log scale so
        that the loss at the starting point (the score matching estimate) is
        0.9 of its vanishing-noise limit ``log 2``: the classification is
        neither trivial (large noise) nor uninformative (tiny noise).
    n_noise_draws : int, default=5
        Noise draws per data point (:math:`\kappa`); each is used with its
        mirror image :math:`-\xi`, giving :math:`2\kappa` noisy copies. The
        objective's sampling noise grows with ``n_free_entries / (n_samples
        * n_noise_draws)``: on 8,000 MNIST digits (3,754 free entries) the
        default loses 306, 96, 27 and 12 nats of smoothed held-out
        log-likelihood against its small-noise limit with 1, 2, 5 and 10
        draws. Time and memory grow linearly with the draws.
    eps : float or "auto", default="auto"
        Lower bound on the precision's eigenvalues.
    tol : float, default=1e-5
        Target relative KKT residual: stationarity of the Lagrangian
        relative to the first gradient, and complementarity.
    max_iter : int, default=1000
        Maximum number of projected quasi-Newton iterations.
    precompute : "auto" or bool, default="auto"
        Store the design matrix of quadratic features (``n_samples x
        n_pairs`` floats; one BLAS pass per product) or recompute it from
        the samples on every product (memory of the samples only, each
        product about 3-4 times slower). ``"auto"`` stores it when it takes
        at most 4 GiB (MNIST-sized problems at the default settings; 50,000
        natural patches are recomputed).
    random_state : int, RandomState instance or None, default=None
        Seeds the noise draws.
    verbose : int, default=0
        Print solver progress when positive.

    Attributes
    ----------
    location_, precision_, covariance_, precision_cholesky_, empirical_covariance_, mask_, image_shape_
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
        **_BaseMaskedNCE._parameter_constraints,
        "noise_shape": [StrOptions({"score_matching", "covariance", "isotropic"})],
        "noise_scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "n_noise_draws": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, *, image_shape=None, connectivity=8, mask=None, reg=0.01, assume_centered=False,
        noise_shape="score_matching", noise_scale="auto", n_noise_draws=5, eps="auto", tol=1e-5,
        max_iter=1000, precompute="auto", random_state=None, verbose=0,
    ):
        self.image_shape = image_shape
        self.connectivity = connectivity
        self.mask = mask
        self.reg = reg
        self.assume_centered = assume_centered
        self.noise_shape = noise_shape
        self.noise_scale = noise_scale
        self.n_noise_draws = n_noise_draws
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter
        self.precompute = precompute
        self.random_state = random_state
        self.verbose = verbose

    @staticmethod
    def _pair_features(pairs, Xr, direction, scale, max_bytes=np.inf):
        """Features of log p(x) - log p(x + scale * direction), per pair."""
        return QuadraticFeatures(pairs, Xr, direction, scale, max_bytes=max_bytes)

    def _estimate_precision(self, S, warm_start, X=None):
        rng = check_random_state(self.random_state)
        pairs = as_pairs(self.mask_)
        centre = 0.0 if self.assume_centered else X.mean(axis=0)
        self._eps = resolve_eps(self.eps, S)
        theta0, precondition = _start_and_preconditioner(S, pairs, self._eps)
        X = _smooth(X, self.reg, rng)
        Xr = np.repeat(X - centre, self.n_noise_draws, axis=0)
        xi = standard_normal(rng, Xr.shape)
        if self.noise_shape == "score_matching":  # N(0, inv(Lambda_SM)); the start is PD
            xi = inverse_sqrt_rows(
                pattern_cholesky(pairs.rows, pairs.cols, theta0, pairs.n_features), xi)
        elif self.noise_shape == "covariance":
            xi = _shaped_by(S, xi)  # the smoothed data's covariance
        # Antithetic pairs: the first-order terms of +xi and -xi cancel
        # exactly, so the objective's sampling noise does not blow up as
        # the noise scale shrinks (it tends to score matching instead).
        Xr = np.concatenate([Xr, Xr])
        direction = np.concatenate([xi, -xi])
        if self.noise_scale == "auto":
            scale = self._auto_scale(pairs, Xr, direction, theta0)
        else:
            scale = float(self.noise_scale)
        Phi = self._pair_features(pairs, Xr, direction, scale,
                                  self._feature_budget(len(Xr) * pairs.n_pairs * 8))
        log2, s2 = np.log(2.0), scale**2
        cache, curve = {}, []

        def fg(theta):
            loss, d = cnce_loss(Phi @ theta)
            cache["theta"], cache["loss"] = theta, loss
            # (loss - log 2) / eps^2 keeps the curvature O(1) as the noise shrinks.
            return (loss - log2) / s2, (Phi.T @ d) / s2

        def record(theta, _):
            curve.append(cache["loss"] if np.array_equal(cache["theta"], theta) else fg(theta)[0] * s2 + log2)

        theta, info = minimize_pd(
            fg, theta0, pairs, self._eps, tol=self.tol, max_iter=self.max_iter,
            verbose=self.verbose, callback=record, precondition=precondition,
        )
        self.noise_scale_ = scale
        g = Phi @ theta
        self.accuracy_ = float(np.mean(g > 0))
        precision, info = self._finish(theta, info, pairs, curve, self.accuracy_ >= _SEPARABLE)
        if self.accuracy_ >= _SEPARABLE:
            warnings.warn(
                f"Data points and their noisy copies are (near-)perfectly separable "
                f"(accuracy {self.accuracy_:.4f}): noise_scale={scale:.3g} is too large.",
                SeparableNoiseWarning,
            )
        return precision, info

    def _auto_scale(self, pairs, Xr, direction, theta0, n_max=4000):
        """Bisection on log(scale) for the initial loss 0.9 log 2."""
        idx = slice(0, min(len(Xr), n_max))
        target = _AUTO_LOSS_FRACTION * np.log(2.0)
        # log p(x) - log p(x + s d) = s d'Lx + s^2 d'Ld / 2 at the start
        # Lambda: two row-wise products once, not the features per trial.
        Lam = pairs.to_sparse(theta0)
        x, d = Xr[idx], direction[idx]
        linear = np.einsum("ij,ij->i", d, (Lam @ x.T).T)
        quadratic = 0.5 * np.einsum("ij,ij->i", d, (Lam @ d.T).T)

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
