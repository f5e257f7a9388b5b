"""Orthogonal first-layer filters by score matching of an ICA model.

In whitened coordinates ``z``, the model ``log p(z) = -sum_h log cosh(v_h'z)
- |(I - V'V) z|^2 / 2`` with orthonormal filters ``V`` (rows) is normalised
for every ``V``, and its score matching objective per sample is

    sum_h (1.5 tanh(s_h)^2 - 1 - s_h^2 / 2) + const,   s = Vz,

(the last term vanishes from the gradient when ``V`` is square). Minibatch
Adam with a projection back onto orthonormal rows stalls on this objective
with noise-like filters; full-batch Riemannian descent on the Stiefel
manifold (a gradient step, the polar factor as retraction, backtracking)
reaches localized, oriented filters. See docs/design.rst.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["OrthogonalFilters", "orthogonal_score_matching_ica"]


class OrthogonalFilters(NamedTuple):
    """What :func:`orthogonal_score_matching_ica` returns."""

    filters: np.ndarray  # (n_filters, n_features), orthonormal rows
    objective: float  # the score matching objective per sample, constant dropped
    n_iter: int
    converged: bool


def _polar(V):
    """The matrix with orthonormal rows nearest ``V`` (Frobenius)."""
    u, _, vt = np.linalg.svd(V, full_matrices=False)
    return u @ vt


def _objective(V, Z):
    """The ICA model's score matching objective and its gradient in ``V``."""
    S = Z @ V.T
    t = np.tanh(S)
    loss = np.mean((1.5 * t * t - 1 - 0.5 * S * S).sum(axis=1))
    return loss, (3 * t * (1 - t * t) - S).T @ Z / len(Z)


# Convergence is judged over this many accepted steps: single steps after a
# backtrack can be short while the descent is far from done.
_WINDOW = 20


def orthogonal_score_matching_ica(Z, n_filters, *, max_iter=1000, tol=1e-5, rng):
    """Orthonormal filters minimising the ICA model's score matching objective.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Whitened data (zero mean, identity covariance).
    n_filters : int
        Number of filters, at most ``n_features``.
    max_iter : int, default=1000
        Maximum accepted descent steps.
    tol : float, default=1e-5
        Stop when the last 20 steps improved the objective by less than
        ``tol`` times its magnitude per step on average.
    rng : numpy.random.RandomState
        Draws the random orthonormal start.

    Returns
    -------
    result : OrthogonalFilters
    """
    V = _polar(rng.standard_normal((n_filters, Z.shape[1])))
    loss, grad = _objective(V, Z)
    eta, history = 1.0, [loss]
    for n_iter in range(1, max_iter + 1):
        while True:
            candidate = _polar(V - eta * grad)
            new_loss, new_grad = _objective(candidate, Z)
            if new_loss < loss or eta < 1e-10:
                break
            eta *= 0.5
        if not new_loss < loss:  # no step improves: a stationary point
            return OrthogonalFilters(V, float(loss), n_iter, True)
        V, loss, grad, eta = candidate, new_loss, new_grad, eta * 1.2
        history.append(loss)
        if n_iter >= _WINDOW and history[-_WINDOW - 1] - loss < _WINDOW * tol * max(1.0, abs(loss)):
            return OrthogonalFilters(V, float(loss), n_iter, True)
    return OrthogonalFilters(V, float(loss), max_iter, False)
