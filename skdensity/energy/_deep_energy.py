"""DeepEnergyModel: a two-layer energy model trained by score matching."""

import copy
import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..exceptions import UnreliableNormalizerWarning
from ..utils._compat import Interval, StrOptions, _fit_context
from ..utils._mixins import MeanLogLikelihoodMixin
from ..utils._validation import check_n_samples, restore_on_failure, validate_fitted
from ._exact import MAX_EXACT_EXPERTS, ExactNormalizer, has_orthonormal_filters
from ._inference import (
    EnergyParams,
    LogPartitionInterval,
    annealed_importance_sampling,
    mala,
    reverse_annealed_importance_sampling,
)
from ._orthogonal import orthogonal_score_matching_ica

__all__ = ["DeepEnergyModel"]

# AIS warns when its effective sample size is below this share of its chains.
_MIN_AIS_SHARE = 0.1

# The learned parameters in EnergyParams' order (V, a, W, c, b); each is the
# fitted attribute of the same name with a trailing underscore.
_PARAM_NAMES = ("filters", "hidden_bias", "expert_weights", "expert_bias", "visible_bias")


class PCAWhitening(NamedTuple):
    """The principal axes the model sees: the leading ``n_components`` are
    whitened for the energy, the others keep a Gaussian of their variances."""

    mean: np.ndarray  # (n_features,)
    axes: np.ndarray  # (n_features, n_features), eigenvectors as columns, descending
    variances: np.ndarray  # (n_features,), floored at a tiny share of the largest
    n_components: int

    @classmethod
    def fit(cls, X, n_components):
        mean = X.mean(axis=0)
        # reshaped: np.cov of a single feature is a scalar
        covariance = np.cov(X, rowvar=False, bias=True).reshape(X.shape[1], -1)
        variances, axes = np.linalg.eigh(covariance)
        variances, axes = variances[::-1], axes[:, ::-1]
        # a floor: constant directions get a finite (very narrow) Gaussian
        floor = max(variances[0], np.finfo(np.float64).tiny) * 1e-12
        return cls(mean, axes, np.maximum(variances, floor), n_components)

    def coordinates(self, X):
        return (X - self.mean) @ self.axes

    def whiten(self, X):
        k = self.n_components
        return self.coordinates(X)[:, :k] / np.sqrt(self.variances[:k])

    def log_density_rest(self, X):
        """Log-density of ``X`` apart from the energy of its whitened part:
        the Gaussian of the discarded coordinates plus the whitening's log
        Jacobian."""
        k = self.n_components
        rest = self.coordinates(X)[:, k:] ** 2 / self.variances[k:]
        return -0.5 * (
            rest.sum(axis=1)
            + np.log(self.variances).sum()
            + (len(self.variances) - k) * np.log(2 * np.pi)
        )

    def unwhiten(self, Z, rng):
        """Points with whitened part ``Z`` and Gaussian draws elsewhere."""
        k = self.n_components
        rest = rng.standard_normal((len(Z), len(self.variances) - k))
        Y = np.hstack([Z, rest]) * np.sqrt(self.variances)
        return self.mean + Y @ self.axes.T


class DeepEnergyModel(MeanLogLikelihoodMixin, DensityMixin, BaseEstimator):
    r"""Two-layer energy model trained by score matching, normalised by AIS.

    .. math::
       \log\tilde p(x) = -\frac{\lVert x\rVert^2}{2\sigma^2} + b^\top x
           + \sum_{k=1}^{K} \operatorname{softplus}(w_k^\top g(x) + c_k),
       \quad g(x) = f(Vx + a),

    with ``n_hidden`` first-layer filters :math:`V` and ``n_experts``
    experts :math:`W`, where :math:`f` is the sigmoid (the report's model) or
    ``-log cosh`` (``nonlinearity``). Training minimises exact score matching with the
    analytic Laplacian (``objective="sm"``; no loop over input dimensions,
    no Hessian by automatic differentiation), denoising score matching
    (``"dsm"``) or sliced score matching (``"ssm"``) with Adam in TensorFlow,
    imported only here. After training, ``log_partition_`` is computed
    exactly when the filters are orthonormal and there are at most 20
    experts (the experts summed out as binary units), else estimated by
    annealed importance sampling from the base Gaussian
    :math:`N(\sigma^2 b, \sigma^2 I)`, so ``score_samples`` is a normalised
    log-density comparable with the Gaussian models'.

    Training runs in ``dtype`` (float32 by default; float64 runs follow the
    same path to rounding); all inference (``score_samples``, sampling, AIS)
    runs in float64 numpy on the stored parameters, so results do not depend
    on batch composition. The fitted state is numpy arrays
    only: the estimator pickles and clones without TensorFlow objects.

    Score matching fits on raw or fully whitened natural patches learn
    noise-like filters (its objective rewards curvature along directions
    where the data barely vary); reduce the dimension first (PCA whitening
    to ~100 components), as the natural-image literature does.

    Parameters
    ----------
    n_hidden : int, default=64
        Number of first-layer filters ``H``.
    n_experts : int, default=64
        Number of experts ``K``.
    sigma : float, default=1.0
        Scale of the base Gaussian (fixed).
    hidden_bias : bool, default=True
        Learn the first-layer bias ``a`` (else fixed at zero).
    nonlinearity : {"sigmoid", "logcosh"}, default="sigmoid"
        First-layer nonlinearity: the report's sigmoid, or ``-log cosh``,
        whose peak at zero lets the experts model the sparse, heavy-tailed
        responses of filters to natural images.
    first_layer : {"free", "orthogonal"}, default="free"
        "free" trains ``V`` with the rest. "orthogonal" first learns
        orthonormal filters by score matching of an ICA model (full-batch
        Riemannian descent), then trains the rest with them fixed: on
        whitened natural patches they come out localized and oriented.
        Needs ``n_hidden`` at most the number of modelled dimensions and
        whitened input (``n_components`` whitens it here).
    nonnegative_weights : bool, default=False
        Keep the expert weights ``W`` at or above zero (projected steps). With
        ``nonlinearity="logcosh"`` each expert is then a bump that pools the
        filters' responses, bounded above, so ``log Z`` is bounded too.
    n_components : int, default=None
        None: the model acts on the features as given. An int: the data are
        PCA-whitened to their ``n_components`` leading principal components
        here, the energy models those, and a Gaussian with the empirical
        variances models the other components, so ``score_samples`` is a
        density of all the features (the whitening's Jacobian included) and
        ``sample`` returns points in feature space.
    objective : {"sm", "dsm", "ssm"}, default="sm"
        Exact, denoising or sliced score matching.
    noise_scale : float, default=0.1
        Noise standard deviation of denoising score matching.
    learning_rate : float, default=1e-3
        Adam's step size.
    batch_size : int, default=100
        Minibatch size.
    max_epochs : int, default=20
        Maximum passes over the training data.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping (0 disables it).
    n_iter_no_change : int, default=5
        Epochs without an improvement of ``tol`` on the held-out objective
        before stopping.
    tol : float, default=1e-4
        Required improvement of the held-out objective.
    dtype : {"float32", "float64"}, default="float32"
        Precision of training.
    normalizer : {"auto", "exact", "ais"}, default="auto"
        How ``log Z`` is computed. "exact": by summing the experts out
        (binary units) over their ``2^n_experts`` subsets, each term a
        product of one-dimensional integrals, which needs orthonormal
        filters (``first_layer="orthogonal"``) and at most 20 experts; it
        also gives exact samples. "ais": annealed importance sampling from
        the base Gaussian. "auto": exact when the model allows it.
    n_ais_chains : int, default=100
        Chains of annealed importance sampling.
    n_ais_temperatures : int, default=500
        Intermediate distributions of annealed importance sampling.
    warm_start : bool, default=False
        Continue from the previous fit's parameters.
    devices : list of str, default=None
        TensorFlow devices to train on data-parallel, e.g. ``["/gpu:0",
        "/gpu:1"]``: each minibatch is split between them and their
        gradients summed (``tf.distribute.MirroredStrategy``), which trains
        the same model as one device, to rounding. None lets TensorFlow
        place training (a visible GPU, else the CPU).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatch order, noise and AIS.
    verbose : int, default=0
        Print one line per epoch when positive.

    Attributes
    ----------
    filters_ : ndarray of shape (n_hidden, n_features) or (n_hidden, n_components)
        First-layer filters ``V``, in whitened coordinates when
        ``n_components`` is set.
    input_filters_ : ndarray of shape (n_hidden, n_features)
        The filters as they act on the input features (``V`` composed with
        the whitening): what to plot and to measure with
        :func:`~skdensity.metrics.localization_index`.
    whitening_mean_ : ndarray of shape (n_features,)
        Only with ``n_components``: the data's mean.
    whitening_axes_ : ndarray of shape (n_features, n_features)
        Only with ``n_components``: the principal axes (columns, descending).
    whitening_variances_ : ndarray of shape (n_features,)
        Only with ``n_components``: the variances along them.
    hidden_bias_ : ndarray of shape (n_hidden,)
    expert_weights_ : ndarray of shape (n_experts, n_hidden)
    expert_bias_ : ndarray of shape (n_experts,)
    visible_bias_ : ndarray of shape (n_features,)
    log_partition_ : float
        ``log Z``: exact, or AIS's estimate (``normalizer_``).
    log_partition_std_ : float
        Its standard error (AIS), or its quadrature error (exact).
    normalizer_ : {"exact", "ais"}
        How ``log_partition_`` was computed.
    ais_effective_sample_size_ : float
        Effective number of AIS chains, ``(sum w)^2 / sum w^2`` of the
        importance weights: near 1 means one chain dominates and
        ``log_partition_`` is unreliable (more temperatures or chains help);
        below a tenth of the chains, fitting warns
        (:class:`~skdensity.exceptions.UnreliableNormalizerWarning`). NaN
        when ``log Z`` is exact (no AIS runs).
    loss_curve_ : ndarray
        Mean training objective per epoch (per ``partial_fit`` call, appended).
    validation_scores_ : ndarray
        Negative held-out objective per epoch (higher is better); ``fit``
        only.
    optimizer_state_ : dict of str to ndarray
        Adam's step count (``"iteration"``) and the moments of each trained
        parameter at the end of training, from which ``partial_fit``
        continues.
    n_iter_ : int
        Epochs run: by ``fit``, plus one per ``partial_fit`` call.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import DeepEnergyModel
    >>> X = np.random.default_rng(0).normal(size=(500, 4))
    >>> dem = DeepEnergyModel(n_hidden=8, n_experts=8, max_epochs=3, random_state=0).fit(X)
    >>> dem.score_samples(X[:2]).shape, dem.sample(3, random_state=0).shape
    ((2,), (3, 4))
    """

    _parameter_constraints: dict = {
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "hidden_bias": ["boolean"],
        "nonlinearity": [StrOptions({"sigmoid", "logcosh"})],
        "first_layer": [StrOptions({"free", "orthogonal"})],
        "nonnegative_weights": ["boolean"],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "objective": [StrOptions({"sm", "dsm", "ssm"})],
        "noise_scale": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"})],
        "normalizer": [StrOptions({"auto", "exact", "ais"})],
        "n_ais_chains": [Interval(Integral, 2, None, closed="left")],
        "n_ais_temperatures": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "devices": [list, tuple, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_hidden=64,
        n_experts=64,
        sigma=1.0,
        hidden_bias=True,
        nonlinearity="sigmoid",
        first_layer="free",
        nonnegative_weights=False,
        n_components=None,
        objective="sm",
        noise_scale=0.1,
        learning_rate=1e-3,
        batch_size=100,
        max_epochs=20,
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=1e-4,
        dtype="float32",
        normalizer="auto",
        n_ais_chains=100,
        n_ais_temperatures=500,
        warm_start=False,
        devices=None,
        random_state=None,
        verbose=0,
    ):
        self.n_hidden = n_hidden
        self.n_experts = n_experts
        self.sigma = sigma
        self.hidden_bias = hidden_bias
        self.nonlinearity = nonlinearity
        self.first_layer = first_layer
        self.nonnegative_weights = nonnegative_weights
        self.n_components = n_components
        self.objective = objective
        self.noise_scale = noise_scale
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.dtype = dtype
        self.normalizer = normalizer
        self.n_ais_chains = n_ais_chains
        self.n_ais_temperatures = n_ais_temperatures
        self.warm_start = warm_start
        self.devices = devices
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train by score matching, then estimate ``log Z`` by AIS.

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
            self._check_range(X)
            self._check_normalizer()
            rng = check_random_state(self.random_state)
            whitening = self._fit_whitening(X)
            training = self._initialize(X if whitening is None else whitening.whiten(X), rng)
            n_epochs = self._fit_stochastic(training, rng)
            values = training.final_parameters()
            log_partition = self._log_partition(values, rng)
        self._set_whitening(whitening)
        self._set_parameters(values, training)
        self._partial_rng = rng  # partial_fit continues the fit's stream of draws
        self.n_iter_ = n_epochs
        self.loss_curve_ = np.asarray(training.loss_curve)
        self.validation_scores_ = np.asarray(training.validation_scores)
        self._set_normalizer(log_partition)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One pass of Adam over ``X`` in minibatches, then ``log Z`` by AIS.

        Continues from the parameters and Adam's moments of the previous
        call (or of ``fit``), so that data seen batch by batch, out of core
        or under dask-ml's ``Incremental``, train the model as epochs would.
        No early stopping (there is no held-out set); each call re-estimates
        the normaliser, which costs ``n_ais_chains * n_ais_temperatures``
        model evaluations. With ``n_components``, the first call's batch
        fixes the principal components: make it large and representative,
        or call ``fit`` first.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self : object
        """
        first = not hasattr(self, "filters_")
        with restore_on_failure(self):
            X = validate_data(self, X, dtype=np.float64, reset=first, ensure_min_samples=1)
            self._check_range(X)
            self._check_normalizer()
            # the first call's batch fixes the principal components (fit
            # estimates them on all the data); later calls keep them
            whitening = self._fit_whitening(X) if first else self._whitening()
            if whitening is not None:
                X = whitening.whiten(X)
            # a copy: a call that fails leaves the stream of draws as it was
            rng = copy.deepcopy(getattr(self, "_partial_rng", None)) or check_random_state(
                self.random_state
            )
            initial = (
                self._initial_parameters(X, rng)
                if first
                else {name: getattr(self, name + "_") for name in _PARAM_NAMES}
            )
            training = self._training(
                initial, X, X[:0], X[:0], getattr(self, "optimizer_state_", None)
            )
            loss = training.run_epoch(self.batch_size, rng)
            n_calls = getattr(self, "n_iter_", 0) + 1
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"The training objective became non-finite in partial_fit (epoch {n_calls}). "
                    "Lower learning_rate, standardise or whiten the data, or use "
                    "objective='dsm'."
                )
            values = training.final_parameters()
            log_partition = self._log_partition(values, rng)
        if first:
            self._set_whitening(whitening)
        self._set_parameters(values, training)
        self._partial_rng = rng
        self.n_iter_ = n_calls
        self.loss_curve_ = np.append(getattr(self, "loss_curve_", []), loss)
        self.validation_scores_ = getattr(self, "validation_scores_", np.empty(0))
        self._set_normalizer(log_partition)
        return self

    def _set_normalizer(self, log_partition):
        """Keep ``log Z``; warn when few of AIS's chains carry its weight."""
        self.log_partition_ = log_partition.value
        self.log_partition_std_ = log_partition.std
        self.ais_effective_sample_size_ = log_partition.effective_sample_size
        self.normalizer_ = "ais" if np.isfinite(log_partition.effective_sample_size) else "exact"
        if log_partition.effective_sample_size < _MIN_AIS_SHARE * self.n_ais_chains:
            warnings.warn(
                f"AIS's estimate of log Z rests on few chains (effective sample size "
                f"{log_partition.effective_sample_size:.1f} of {self.n_ais_chains}): "
                "log_partition_, and every normalised log-density, may be off by more than "
                f"log_partition_std_={log_partition.std:.3g} says. Raise n_ais_temperatures "
                f"(now {self.n_ais_temperatures}) or n_ais_chains.",
                UnreliableNormalizerWarning,
                stacklevel=3,
            )

    def _check_range(self, X):
        if np.abs(X).max() > np.finfo(self.dtype).max ** 0.5:
            raise ValueError(
                f"X has values up to {np.abs(X).max():.3g}, whose squares overflow "
                f"{self.dtype} training: standardise or whiten the data"
                + (" or use dtype='float64'." if self.dtype == "float32" else ".")
            )

    def _trainable(self):
        fixed = {"hidden_bias"} if not self.hidden_bias else set()
        if self.first_layer == "orthogonal":
            fixed.add("filters")  # learned before the experts, then kept
        return [name for name in _PARAM_NAMES if name not in fixed]

    def _fit_whitening(self, X):
        """The PCA whitening for ``n_components`` (None without it)."""
        if self.n_components is None:
            return None
        n, D = X.shape
        if self.n_components > D:
            raise ValueError(
                f"n_components={self.n_components} exceeds the {D} features; choose at most {D}."
            )
        return PCAWhitening.fit(X, self.n_components)

    def _set_whitening(self, whitening):
        for name in ("whitening_mean_", "whitening_axes_", "whitening_variances_"):
            vars(self).pop(name, None)
        if whitening is not None:
            self.whitening_mean_ = whitening.mean
            self.whitening_axes_ = whitening.axes
            self.whitening_variances_ = whitening.variances

    def _whitening(self):
        """The fitted whitening (None when the model saw the features as given)."""
        if not hasattr(self, "whitening_axes_"):
            return None
        return PCAWhitening(
            self.whitening_mean_,
            self.whitening_axes_,
            self.whitening_variances_,
            self.filters_.shape[1],
        )

    def _warm(self, D):
        """Whether this fit continues from the previous one's parameters."""
        return bool(
            self.warm_start
            and hasattr(self, "filters_")
            and self.filters_.shape == (self.n_hidden, D)
            and self.expert_weights_.shape == (self.n_experts, self.n_hidden)
        )

    def _initial_parameters(self, X, rng):
        """The previous fit's parameters (``warm_start``, same shapes) or a
        start, by name: random, or orthogonal filters learned on ``X``."""
        D = X.shape[1]
        if self._warm(D):
            return {name: getattr(self, name + "_") for name in _PARAM_NAMES}
        if self.first_layer == "orthogonal":
            if self.n_hidden > D:
                raise ValueError(
                    f"first_layer='orthogonal' needs n_hidden={self.n_hidden} orthonormal "
                    f"filters in {D} dimensions; set n_hidden to at most {D}."
                )
            result = orthogonal_score_matching_ica(X, self.n_hidden, rng=rng)
            if not result.converged:
                warnings.warn(
                    f"The orthogonal first layer stopped after {result.n_iter} descent steps "
                    "while its objective was still falling; its filters may be less localized "
                    "than at convergence.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
            filters = result.filters
        else:
            filters = rng.normal(scale=1.0 / np.sqrt(D), size=(self.n_hidden, D))
        weights = rng.normal(
            scale=1.0 / np.sqrt(self.n_hidden), size=(self.n_experts, self.n_hidden)
        )
        return {
            "filters": filters,
            "hidden_bias": np.zeros(self.n_hidden),
            "expert_weights": np.abs(weights) if self.nonnegative_weights else weights,
            "expert_bias": np.zeros(self.n_experts),
            "visible_bias": np.zeros(D),
        }

    def _initialize(self, X, rng):
        """Split off the validation set and build the TensorFlow training state."""

        n = X.shape[0]
        n_val = int(round(self.validation_fraction * n)) if n >= 10 else 0
        if n - n_val < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves {n - n_val} of {n} "
                "samples for training; lower it (or set 0 to disable early stopping)."
            )
        order = rng.permutation(n)
        X_val, X_train = X[order[:n_val]], X[order[n_val:]]
        return self._training(
            self._initial_parameters(X_train, rng),
            X_train,
            X_val,
            rng.standard_normal(X_val.shape) if self.objective != "sm" else X_val[:, :0],
        )

    def _training(self, initial, X_train, X_val, val_noise, optimizer_state=None):
        """The TensorFlow training state (imported only now) from ``initial``."""
        from ._tf_objectives import ScoreMatchingTraining

        return ScoreMatchingTraining(
            initial,
            trainable=self._trainable(),
            X_train=X_train,
            X_val=X_val,
            val_noise=val_noise,
            objective=self.objective,
            sigma=self.sigma,
            noise_scale=self.noise_scale,
            learning_rate=self.learning_rate,
            dtype=self.dtype,
            nonlinearity=self.nonlinearity,
            nonnegative=["expert_weights"] if self.nonnegative_weights else [],
            optimizer_state=optimizer_state,
            devices=self.devices,
        )

    def _check_normalizer(self):
        """``normalizer="exact"`` on a model that cannot have it: said before training."""
        if self.normalizer == "exact" and (
            self.first_layer != "orthogonal" or self.n_experts > MAX_EXACT_EXPERTS
        ):
            raise ValueError(
                "normalizer='exact' needs first_layer='orthogonal' (orthonormal filters) and "
                f"at most {MAX_EXACT_EXPERTS} experts; got first_layer={self.first_layer!r}, "
                f"n_experts={self.n_experts}. Use normalizer='auto' or 'ais'."
            )

    def _exact(self, params):
        """Whether ``log Z`` of ``params`` is computed exactly."""
        return (
            self.normalizer != "ais"
            and len(params.W) <= MAX_EXACT_EXPERTS
            and has_orthonormal_filters(params)
        )

    def _log_partition(self, values, rng):
        """``log Z`` of the trained ``values``: exact where the model allows
        it (and ``normalizer`` does), else by AIS."""
        params = EnergyParams(
            *(values[name] for name in _PARAM_NAMES), self.sigma, self.nonlinearity
        )
        if self._exact(params):
            return ExactNormalizer(params).log_partition()
        return annealed_importance_sampling(
            params, n_chains=self.n_ais_chains, n_temperatures=self.n_ais_temperatures, rng=rng
        )

    def _set_parameters(self, values, training):
        for name in _PARAM_NAMES:
            setattr(self, name + "_", values[name])
        whitening = self._whitening()
        self.input_filters_ = (
            self.filters_
            if whitening is None
            else (self.filters_ / np.sqrt(whitening.variances[: whitening.n_components]))
            @ whitening.axes[:, : whitening.n_components].T
        )
        self.optimizer_state_ = training.optimizer_state()

    def _fit_stochastic(self, training, rng):
        """Epochs of Adam on shuffled minibatches until ``max_epochs`` or early
        stopping; returns the number of epochs run."""
        warm = self._warm(training.X_train.shape[1])
        if training.has_validation:
            start, start_parameters = training.validation_objective(), training.snapshot()
        for epoch in range(self.max_epochs):
            loss = training.run_epoch(self.batch_size, rng)
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"The training objective became non-finite in epoch {epoch + 1}. "
                    "Lower learning_rate, standardise or whiten the data, or use "
                    "objective='dsm'."
                )
            training.loss_curve.append(loss)
            if training.has_validation:
                self._update_no_improvement_count(training)
            if self.verbose:
                held_out = (
                    f", held-out {-training.validation_scores[-1]:.6g}"
                    if training.has_validation
                    else ""
                )
                print(f"[DeepEnergyModel] epoch {epoch + 1}: objective {loss:.6g}{held_out}")
            if training.has_validation and training.no_improvement_count >= self.n_iter_no_change:
                break
        if training.has_validation and not training.best_validation < start:
            # No epoch beat the start. Far worse at every epoch: the steps
            # overshoot. Within rounding of it: the start (the previous fit,
            # or a base Gaussian that already fits) is kept, being the best.
            if not warm and training.best_validation - start > 0.1 * max(1.0, abs(start)):
                raise FloatingPointError(
                    "Training never improved the held-out score matching objective on its "
                    f"random start ({start:.4g}; best epoch {training.best_validation:.4g}). "
                    f"Lower learning_rate (now {self.learning_rate:g}), or standardise or "
                    "whiten the data."
                )
            training.best = start_parameters
        return epoch + 1

    def _update_no_improvement_count(self, training):
        """Score the held-out set; keep the parameters when it improved by
        ``tol`` (relative), else count an epoch without improvement."""
        val = training.validation_objective()
        training.validation_scores.append(-val)
        best = training.best_validation
        if not np.isfinite(best) or val < best - self.tol * max(1.0, abs(best)):
            training.best_validation = val
            training.no_improvement_count = 0
            training.keep_best()
        else:
            training.no_improvement_count += 1

    def _params(self):
        return EnergyParams(
            self.filters_,
            self.hidden_bias_,
            self.expert_weights_,
            self.expert_bias_,
            self.visible_bias_,
            self.sigma,
            self.nonlinearity,
        )

    # -- inference (float64 numpy) ------------------------------------------
    def score_samples(self, X):
        """Normalised log-density ``log p~(x) - log_partition_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        X = validate_fitted(self, X)  # before the parameters: NotFittedError first
        whitening = self._whitening()
        if whitening is None:
            return self._params().log_unnormalized(X) - self.log_partition_
        energy = self._params().log_unnormalized(whitening.whiten(X)) - self.log_partition_
        return energy + whitening.log_density_rest(X)

    def score_matching_loss(self, X):
        """Hyvärinen score of ``X`` (lower is better); needs no normaliser.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        loss : float
            Mean of ``|grad log p(x)|^2 / 2 + Laplacian log p(x)``, of the
            energy in whitened coordinates when ``n_components`` is set (the
            objective training minimises).
        """
        X = validate_fitted(self, X)
        whitening = self._whitening()
        X = X if whitening is None else whitening.whiten(X)
        return float(np.mean(self._params().score_matching_loss(X)))

    def log_partition_interval(self, n_chains=None, n_temperatures=None, random_state=None):
        """Bracket ``log Z`` between forward and reverse AIS.

        Forward AIS (from the base Gaussian to the model, as ``fit`` runs it)
        underestimates ``log Z`` in expectation; reverse AIS, from model
        samples back to the base (Grosse, Ghahramani & Adams 2015),
        overestimates it. Their gap bounds the normaliser's error, where a
        standard error alone cannot (AIS's weights are heavy-tailed). Where
        ``log Z`` is exact (``normalizer_ == "exact"``) the reverse side starts
        from exact samples, so the bracket holds in expectation on both sides
        (bidirectional Monte Carlo) and checks AIS against the exact value.
        Otherwise the model samples are Langevin chains, and the upper side is
        as good as those chains are mixed: when it falls below the lower side
        beyond their standard errors, the bracket has failed and a
        :class:`~skdensity.exceptions.UnreliableNormalizerWarning` says so.

        Parameters
        ----------
        n_chains : int, default=None
            Chains on each side; ``n_ais_chains`` if None.
        n_temperatures : int, default=None
            Steps of each path; ``n_ais_temperatures`` if None.
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        interval : LogPartitionInterval
            ``lower`` and ``upper``, each a ``LogPartition`` (``value``,
            ``std``, ``effective_sample_size``), and their ``width``.
        """
        check_is_fitted(self)
        n_chains = self.n_ais_chains if n_chains is None else n_chains
        n_temperatures = self.n_ais_temperatures if n_temperatures is None else n_temperatures
        for name, value, least in (
            ("n_chains", n_chains, 2),
            ("n_temperatures", n_temperatures, 1),
        ):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}.")
        rng = check_random_state(random_state)
        params = self._params()
        lower = annealed_importance_sampling(
            params, n_chains=n_chains, n_temperatures=n_temperatures, rng=rng
        )
        model_samples = (
            ExactNormalizer(params).sample(n_chains, rng)
            if self.normalizer_ == "exact"
            else self._langevin(n_chains, rng)[0]
        )
        upper = reverse_annealed_importance_sampling(
            params, model_samples, n_temperatures=n_temperatures, rng=rng
        )
        interval = LogPartitionInterval(lower, upper)
        if interval.width < -3 * (lower.std + upper.std):
            warnings.warn(
                f"Reverse AIS ({upper.value:.4g}) lies below forward AIS ({lower.value:.4g}) "
                "beyond their standard errors: the Langevin samples it starts from do not "
                "represent the model (chains that have not mixed), so log Z is not bracketed. "
                "Raise n_temperatures, or check the model's samples.",
                UnreliableNormalizerWarning,
                stacklevel=2,
            )
        return interval

    def sample(
        self,
        n_samples=1,
        random_state=None,
        method="auto",
        n_steps=1000,
        burn_in=500,
        step_size=None,
        return_acceptance=False,
    ):
        """Draw samples: exact ones where ``log Z`` is exact, else by
        Langevin dynamics from the base Gaussian.

        Parameters
        ----------
        n_samples : int, default=1
            Number of independent samples (chains for Langevin).
        random_state : int, RandomState instance or None, default=None
        method : {"auto", "exact", "mala", "ula"}, default="auto"
            "exact": a subset of experts by its weight, then each filter's
            response from its one-dimensional conditional (needs
            ``normalizer_ == "exact"``; the acceptance rate is then 1).
            "mala" / "ula": Metropolis-adjusted or unadjusted Langevin.
            "auto": "exact" when available, else "mala".
        n_steps : int, default=1000
            Steps after burn-in.
        burn_in : int, default=500
            Steps during which the step size adapts toward 57.4% acceptance.
        step_size : float, default=None
            Initial (and, for "ula", fixed) step size; ``0.5 * sigma^2`` if None.
        return_acceptance : bool, default=False
            Also return the acceptance rate after burn-in.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        acceptance : float
            Only when ``return_acceptance``.
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        if method not in ("auto", "exact", "mala", "ula"):
            raise ValueError(f"method must be 'auto', 'exact', 'mala' or 'ula', got {method!r}.")
        exact = self.normalizer_ == "exact"
        if method == "exact" and not exact:
            raise ValueError(
                "method='exact' needs a model whose log Z is exact (normalizer_='exact': "
                "orthonormal filters, at most 20 experts); use 'mala'."
            )
        for name, value, least in (("n_steps", n_steps, 1), ("burn_in", burn_in, 0)):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}.")
        if step_size is not None and not (
            isinstance(step_size, Real) and np.isfinite(step_size) and step_size > 0
        ):
            raise ValueError(f"step_size must be a positive number or None, got {step_size!r}.")
        rng = check_random_state(random_state)
        if method == "exact" or (method == "auto" and exact):
            X, rate = ExactNormalizer(self._params()).sample(n_samples, rng), 1.0
        else:
            method = "mala" if method == "auto" else method
            X, rate = self._langevin(n_samples, rng, method, n_steps, burn_in, step_size)
        whitening = self._whitening()
        if whitening is not None:
            X = whitening.unwhiten(X, rng)
        return (X, rate) if return_acceptance else X

    def _langevin(self, n_samples, rng, method="mala", n_steps=1000, burn_in=500, step_size=None):
        """Langevin chains of the energy (in whitened coordinates when
        ``n_components`` is set) from the base Gaussian; their final states
        and acceptance rate."""
        params = self._params()
        adjust = method == "mala"
        X, rate, _ = mala(
            params,
            params.sample_base(n_samples, rng),
            n_steps=burn_in + n_steps,
            rng=rng,
            step_size=step_size,
            adapt_steps=burn_in if adjust else 0,
            adjust=adjust,
        )
        return X, rate
