r"""Exact normaliser and exact samples of the energy model with orthonormal filters.

Each expert is a binary unit summed out, :math:`\operatorname{softplus}(t) =
\log(1 + e^t)`, so

.. math::
   \tilde p(x) = e^{-\lVert x\rVert^2/2\sigma^2 + b^\top x}
       \sum_{S \subseteq \{1..K\}} \exp\Big(\sum_{k\in S} c_k
       + \sum_h m^S_h\, g(s_h)\Big), \qquad m^S = \sum_{k\in S} w_k,\ s = Vx + a.

When the rows of :math:`V` are orthonormal, the base Gaussian makes the
:math:`s_h` independent normals :math:`N(\mu_h, \sigma^2)`, with
:math:`\mu = a + \sigma^2 V b`, and the directions outside the filters'
span stay Gaussian, so every term is a product of one-dimensional integrals:

.. math::
   Z = Z_0 \sum_S e^{c_S} \prod_h e^{\varphi_h(m^S_h)}, \qquad
   \varphi_h(m) = \log E_{s\sim N(\mu_h,\sigma^2)}\, e^{m\, g(s)}.

:math:`\varphi_h` (a cumulant generating function, smooth in :math:`m`) is
computed by quadrature on a fine grid of :math:`s` at a grid of :math:`m`
and interpolated by cubic splines; the sum runs over the :math:`2^K`
subsets, so it is exact (to quadrature) for a few dozen experts at most.
The same decomposition gives exact samples: a subset with probability
proportional to its term, then each :math:`s_h` from its one-dimensional
conditional. The error estimate is the change of :math:`\log Z` when the
grid of :math:`m` is halved.
"""

from typing import NamedTuple

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import logsumexp

from ._inference import LogPartition, activation

__all__ = ["MAX_EXACT_EXPERTS", "ExactNormalizer", "has_orthonormal_filters"]

# 2^20 subsets of experts take seconds; beyond, the sum is out of reach.
MAX_EXACT_EXPERTS = 20

# Subsets summed at once (memory: this many times the number of filters).
_CHUNK = 1 << 14


def has_orthonormal_filters(params, atol=1e-8):
    """Whether the filters (rows of ``V``) are orthonormal."""
    V = params.V
    return V.shape[0] <= V.shape[1] and np.allclose(V @ V.T, np.eye(len(V)), atol=atol)


class _Grid(NamedTuple):
    """Quadrature in ``s`` for every filter: nodes (H, G), log weights of the
    base normal at them (H, G), and the nonlinearity there (H, G)."""

    nodes: np.ndarray
    log_base: np.ndarray
    g: np.ndarray


def _interpolant(m, phi):
    """Cubic spline through ``(m, phi)``; a constant for a single value."""
    if len(m) == 1:
        return lambda values: np.full(np.shape(values), phi[0])
    return CubicSpline(m, phi)


class ExactNormalizer:
    """``log Z`` and exact samples of an :class:`EnergyParams` with
    orthonormal filters and at most :data:`MAX_EXACT_EXPERTS` experts."""

    def __init__(self, params, n_m=257):
        if not has_orthonormal_filters(params):
            raise ValueError("The exact normaliser needs orthonormal filters.")
        if len(params.W) > MAX_EXACT_EXPERTS:
            raise ValueError(
                f"The exact normaliser sums over 2^n_experts subsets; {len(params.W)} experts "
                f"exceed {MAX_EXACT_EXPERTS}."
            )
        self.params = params
        sigma = params.sigma
        self.mu = params.a + sigma**2 * (params.V @ params.b)
        W = params.W
        self.m_low = np.minimum(W, 0).sum(axis=0)
        self.m_high = np.maximum(W, 0).sum(axis=0)
        self.grid = self._quadrature_grid()
        self._tables = self._cgf_tables(n_m)
        self.splines = [_interpolant(m, phi) for m, phi in self._tables]

    def _quadrature_grid(self):
        """Nodes wide enough for the tilted normals, fine enough for the
        narrowest peak ``m * g`` can make (its curvature is at most ``|m|``)."""
        p, sigma = self.params, self.params.sigma
        m_abs = np.maximum(np.abs(self.m_low), self.m_high)
        half_width = sigma * (12.0 + sigma * np.abs(self.m_low).max())
        step = min(0.01 * sigma, 0.05 / np.sqrt(max(m_abs.max(), 1.0)))
        u = np.arange(-half_width, half_width + step, step)
        nodes = self.mu[:, None] + u[None, :]
        log_base = -0.5 * (u / sigma) ** 2 + np.log(step / (sigma * np.sqrt(2 * np.pi)))
        g = activation(nodes, p.nonlinearity)[0]
        return _Grid(nodes, np.broadcast_to(log_base, nodes.shape), g)

    def _phi_on(self, h, m):
        """``phi_h`` at the values ``m`` by quadrature (exact up to the grid)."""
        grid = self.grid
        return logsumexp(grid.log_base[h][None, :] + m[:, None] * grid.g[h][None, :], axis=1)

    def _cgf_tables(self, n_m):
        """Per filter, ``(m, phi_h(m))`` at ``n_m`` values spanning the
        subsets' ``m`` (one value when no expert uses the filter)."""
        tables = []
        for h in range(len(self.mu)):
            low, high = self.m_low[h], self.m_high[h]
            m = np.linspace(low, high, n_m) if high - low >= 1e-12 else np.array([low])
            tables.append((m, self._phi_on(h, m)))
        return tables

    def _subset_log_terms(self, start, stop, splines):
        """``c_S + sum_h phi_h(m^S_h)`` for subsets ``start..stop-1`` (bits of the index)."""
        K = len(self.params.W)
        index = np.arange(start, stop)
        B = ((index[:, None] >> np.arange(K)[None, :]) & 1).astype(np.float64)
        m = B @ self.params.W
        total = B @ self.params.c
        for h, spline in enumerate(splines):
            total = total + spline(m[:, h])
        return total

    def log_terms(self, splines=None):
        """Every subset's log term, in index order."""
        splines = self.splines if splines is None else splines
        n = 1 << len(self.params.W)
        return np.concatenate(
            [self._subset_log_terms(i, min(i + _CHUNK, n), splines) for i in range(0, n, _CHUNK)]
        )

    def log_partition(self):
        """Exact ``log Z`` as a :class:`LogPartition`; its ``std`` is the
        change when the spline grid of ``m`` is halved (the quadrature's
        error, far above rounding), ``effective_sample_size`` is NaN (no
        importance weights)."""
        log_sum = logsumexp(self.log_terms())
        # every other tabulated value: the halved grid, without new quadrature
        coarse = [_interpolant(m[::2], phi[::2]) for m, phi in self._tables]
        error = abs(log_sum - logsumexp(self.log_terms(coarse)))
        value = self.params.base_log_partition() + log_sum
        return LogPartition(float(value), float(error), float("nan"))

    def sample(self, n_samples, rng):
        """Exact draws (to the grid's resolution): a subset of experts by its
        weight, each filter response from its tilted normal, the directions
        outside the filters' span from the base Gaussian."""
        p = self.params
        log_terms = self.log_terms()
        weights = np.exp(log_terms - log_terms.max())
        subsets = rng.choice(len(weights), size=n_samples, p=weights / weights.sum())
        # one conditional per distinct subset drawn, shared by its draws
        drawn, which = np.unique(subsets, return_inverse=True)
        B = ((drawn[:, None] >> np.arange(len(p.W))[None, :]) & 1).astype(np.float64)
        m = B @ p.W  # (distinct subsets, H)
        grid = self.grid
        step = grid.nodes[0, 1] - grid.nodes[0, 0]
        S = np.empty((n_samples, len(self.mu)))
        for h in range(len(self.mu)):
            log_density = grid.log_base[h][None, :] + m[:, h : h + 1] * grid.g[h][None, :]
            cdf = np.cumsum(np.exp(log_density - log_density.max(axis=1, keepdims=True)), axis=1)
            u = rng.random(n_samples) * cdf[which, -1]
            cell = np.empty(n_samples, dtype=np.intp)
            for j in range(len(drawn)):
                rows = which == j
                cell[rows] = np.searchsorted(cdf[j], u[rows])
            S[:, h] = grid.nodes[h, cell] + (rng.random(n_samples) - 0.5) * step
        Z = (S - p.a) @ p.V
        # the base Gaussian's part outside the filters' span
        outside = p.sample_base(n_samples, rng)
        return Z + outside - (outside @ p.V.T) @ p.V
