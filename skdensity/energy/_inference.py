r"""The two-layer energy model in numpy (float64): log-density, score,
Laplacian, MALA sampling and annealed importance sampling.

.. math::
   \log\tilde p(x) = -\frac{\lVert x\rVert^2}{2\sigma^2} + b^\top x
       + \sum_k \operatorname{softplus}(w_k^\top g(x) + c_k),
   \qquad g(x) = f(Vx + a),

with :math:`f` the sigmoid (the report's model) or :math:`-\log\cosh`
(sparse, peaked features). With :math:`h = Vx + a`, :math:`g' = f'(h)`,
:math:`g'' = f''(h)`, :math:`s = \operatorname{sigmoid}(Wg + c)` and
:math:`u = W^\top s`:

.. math::
   \nabla\log\tilde p = -x/\sigma^2 + b + V^\top(u\odot g'), \qquad
   \Delta\log\tilde p = -D/\sigma^2 + \sum_j u_j g''_j \lVert v_j\rVert^2
       + \sum_k s_k(1-s_k)\,(w_k\odot g')^\top (VV^\top) (w_k\odot g').

The last term uses the :math:`H\times H` Gram matrix :math:`VV^\top`, so
nothing loops over input dimensions. Inference runs in float64 here, whatever
precision training used, so scores are exactly reproducible and independent
of batch composition.
"""

from typing import NamedTuple

import numpy as np
from scipy.special import expit, logsumexp

__all__ = [
    "EnergyParams",
    "LangevinResult",
    "LogPartition",
    "LogPartitionInterval",
    "annealed_importance_sampling",
    "mala",
    "reverse_annealed_importance_sampling",
]


class LangevinResult(NamedTuple):
    """What :func:`mala` returns."""

    states: np.ndarray  # the chains' final states, one row each
    acceptance: float  # mean acceptance rate after adaptation
    step_size: float  # the step size used after adaptation


class LogPartition(NamedTuple):
    """An AIS estimate of ``log Z``, its standard error and the effective
    number of chains behind it."""

    value: float
    std: float
    # (sum w)^2 / sum w^2: near 1 when one chain dominates, and then ``std``
    # (a delta-method figure, close to 1 there) says nothing.
    effective_sample_size: float


class LogPartitionInterval(NamedTuple):
    """Forward and reverse AIS estimates of ``log Z``: below and above it in
    expectation (the reverse side exactly so for exact model samples)."""

    lower: LogPartition
    upper: LogPartition

    @property
    def width(self):
        """``upper - lower``: how far apart the two estimates are (a negative
        width means the estimates' own noise exceeds the gap)."""
        return self.upper.value - self.lower.value


def _softplus(t):
    return np.logaddexp(0.0, t)


def activation(h, nonlinearity):
    """``f(h)``, ``f'(h)`` and ``f''(h)`` of the first layer's nonlinearity."""
    if nonlinearity == "sigmoid":
        g = expit(h)
        gp = g * (1 - g)
        return g, gp, gp * (1 - 2 * g)
    t = np.tanh(h)  # -log cosh: -log(e^h + e^-h) + log 2, without overflow
    return np.log(2.0) - np.logaddexp(h, -h), -t, t * t - 1


class EnergyParams:
    """Parameters of the energy model with its float64 formulas."""

    def __init__(self, V, a, W, c, b, sigma, nonlinearity="sigmoid"):
        self.V, self.a, self.W, self.c, self.b = (
            np.asarray(p, dtype=np.float64) for p in (V, a, W, c, b)
        )
        self.sigma = float(sigma)
        self.nonlinearity = nonlinearity

    @property
    def n_features(self):
        return self.V.shape[1]

    def _hidden(self, X):
        """``g``, ``g'``, ``g''`` of the first layer and the experts' inputs ``t``."""
        g, gp, gpp = activation(X @ self.V.T + self.a, self.nonlinearity)
        return g, gp, gpp, g @ self.W.T + self.c

    def base_log_density(self, X):
        """The Gaussian part: ``-|x|^2 / (2 sigma^2) + b'x``."""
        return -0.5 * np.einsum("ij,ij->i", X, X) / self.sigma**2 + X @ self.b

    def expert_term(self, X):
        """``sum_k softplus(w_k' g(x) + c_k)``."""
        return _softplus(self._hidden(X)[3]).sum(axis=1)

    def log_unnormalized(self, X):
        return self.base_log_density(X) + self.expert_term(X)

    def score(self, X, expert_weight=1.0):
        """Gradient of ``base + expert_weight * experts`` with respect to x."""
        _, gp, _, t = self._hidden(X)
        u = expit(t) @ self.W
        return -X / self.sigma**2 + self.b + expert_weight * ((u * gp) @ self.V)

    def laplacian(self, X):
        _, gp, gpp, t = self._hidden(X)
        s = expit(t)
        u = s @ self.W
        norms = np.einsum("hd,hd->h", self.V, self.V)
        gram = self.V @ self.V.T
        A = self.W[None, :, :] * gp[:, None, :]  # (n, K, H): w_k * g'
        quad = np.einsum("nkh,hl,nkl->nk", A, gram, A)
        return (
            -self.n_features / self.sigma**2 + (u * gpp) @ norms + (s * (1 - s) * quad).sum(axis=1)
        )

    def score_matching_loss(self, X):
        """Hyvärinen's objective per sample: ``|score|^2 / 2 + Laplacian``."""
        psi = self.score(X)
        return 0.5 * np.einsum("ij,ij->i", psi, psi) + self.laplacian(X)

    def base_log_partition(self):
        """Exact ``log Z0`` of the Gaussian part, ``N(sigma^2 b, sigma^2 I)``."""
        D, s2 = self.n_features, self.sigma**2
        return 0.5 * D * np.log(2 * np.pi * s2) + 0.5 * s2 * self.b @ self.b

    def log_partition_bounds(self):
        """Bounds of ``log Z`` from those of the expert term: ``0 < g < 1``
        for the sigmoid, ``g <= 0`` for ``-log cosh`` (whose experts are
        bounded above only with non-negative weights)."""
        if self.nonlinearity == "sigmoid":
            low = _softplus(self.c + np.minimum(self.W, 0).sum(axis=1)).sum()
            high = _softplus(self.c + np.maximum(self.W, 0).sum(axis=1)).sum()
        else:
            low = 0.0
            high = _softplus(self.c).sum() if np.all(self.W >= 0) else np.inf
        z0 = self.base_log_partition()
        return z0 + low, z0 + high

    def sample_base(self, n, rng):
        s2 = self.sigma**2
        return s2 * self.b + self.sigma * rng.standard_normal((n, self.n_features))


def mala(
    params,
    X0,
    *,
    n_steps,
    rng,
    expert_weight=1.0,
    step_size=None,
    adapt_steps=0,
    target_accept=0.574,
    adjust=True,
):
    """Metropolis-adjusted (or unadjusted) Langevin chains, one per row of X0.

    The step size starts at ``0.5 * sigma^2`` (the base Gaussian's scale)
    unless given, and during the first ``adapt_steps`` steps follows a
    Robbins-Monro rule on its logarithm toward ``target_accept``
    (0.574 is optimal for MALA, Roberts & Rosenthal 1998).

    Returns a :class:`LangevinResult`.
    """

    def logp(Z):
        return params.base_log_density(Z) + expert_weight * params.expert_term(Z)

    X = np.array(X0, dtype=np.float64)
    tau = 0.5 * params.sigma**2 if step_size is None else float(step_size)
    lp, grad = logp(X), params.score(X, expert_weight)
    accepted = []
    for step in range(n_steps):
        noise = rng.standard_normal(X.shape)
        Y = X + 0.5 * tau * grad + np.sqrt(tau) * noise
        if adjust:
            lp_y, grad_y = logp(Y), params.score(Y, expert_weight)
            fwd = -np.sum((Y - X - 0.5 * tau * grad) ** 2, axis=1) / (2 * tau)
            bwd = -np.sum((X - Y - 0.5 * tau * grad_y) ** 2, axis=1) / (2 * tau)
            log_ratio = lp_y - lp + bwd - fwd  # stays in log space
            accept = np.log(rng.random(len(X))) < log_ratio
            X[accept], lp[accept], grad[accept] = Y[accept], lp_y[accept], grad_y[accept]
            rate = accept.mean()
        else:
            X, rate = Y, 1.0
            grad = params.score(X, expert_weight)
        if step < adapt_steps:
            tau *= np.exp((rate - target_accept) / np.sqrt(step + 1.0))
        else:
            accepted.append(rate)
    acceptance = float(np.mean(accepted)) if accepted else float("nan")
    return LangevinResult(X, acceptance, tau)


def annealed_importance_sampling(params, *, n_chains, n_temperatures, rng, n_mala_steps=1):
    """``log Z`` by AIS (Neal 2001) from the base Gaussian to the model.

    Geometric path ``log p_beta = base + beta * experts`` over
    ``n_temperatures`` evenly spaced betas, with MALA transitions (step size
    adapted on the base) at each. Returns a :class:`LogPartition`; the
    error of ``log Z`` is the delta-method one of the mean importance weight.
    """
    X = params.sample_base(n_chains, rng)
    tau = _base_step_size(params, X, rng)
    betas = np.linspace(0.0, 1.0, n_temperatures + 1)
    log_w = _anneal(params, X, betas, tau, rng, n_mala_steps)
    log_mean_w, se, ess = _log_mean_weight(log_w)
    return LogPartition(params.base_log_partition() + log_mean_w, se, ess)


def reverse_annealed_importance_sampling(params, X, *, n_temperatures, rng, n_mala_steps=1):
    """``log Z`` by reverse AIS (Grosse, Ghahramani & Adams 2015): the path
    of :func:`annealed_importance_sampling` run backwards from samples ``X``
    of the model to the base Gaussian.

    Its weights estimate ``Z0 / Z`` without bias when ``X`` are exact
    samples, so ``log Z0 - log(mean weight)`` overestimates ``log Z`` in
    expectation (Jensen) where forward AIS underestimates it: together they
    bracket ``log Z``, and the bracket narrows as the path lengthens. With
    approximate samples (Langevin chains) the upper side is approximate too.
    Returns a :class:`LogPartition`.
    """
    X = np.array(X, dtype=np.float64)
    tau = _base_step_size(params, params.sample_base(len(X), rng), rng)
    betas = np.linspace(0.0, 1.0, n_temperatures + 1)[::-1]
    log_w = _anneal(params, X, betas, tau, rng, n_mala_steps)
    log_mean_w, se, ess = _log_mean_weight(log_w)
    return LogPartition(params.base_log_partition() - log_mean_w, se, ess)


def _base_step_size(params, X, rng):
    """MALA's step size adapted on the base Gaussian, from its samples ``X``."""
    return mala(params, X, n_steps=50, rng=rng, expert_weight=0.0, adapt_steps=50).step_size


def _anneal(params, X, betas, step_size, rng, n_mala_steps):
    """The log importance weights of chains ``X`` moved along ``betas``: at
    each step the weight gains ``(beta' - beta) * experts(x)``, then a MALA
    transition leaves ``p_beta'`` invariant."""
    log_w = np.zeros(len(X))
    for before, after in zip(betas[:-1], betas[1:]):
        log_w += (after - before) * params.expert_term(X)
        X = mala(
            params, X, n_steps=n_mala_steps, rng=rng, expert_weight=after, step_size=step_size
        ).states
    return log_w


def _log_mean_weight(log_w):
    """``log mean exp(log_w)``, the delta-method standard error of that log,
    and the effective number of weights."""
    log_mean_w = logsumexp(log_w) - np.log(len(log_w))
    w = np.exp(log_w - log_w.max())
    se = np.std(w, ddof=1) / (np.sqrt(len(w)) * w.mean())
    ess = w.sum() ** 2 / np.sum(w**2)
    return float(log_mean_w), float(se), float(ess)
