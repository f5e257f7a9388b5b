r"""Projection onto masked precisions with :math:`\Lambda \succeq \varepsilon I`
in the metric of a quadratic: the step that every positive-definite-constrained
solver of the family shares.

Given a point :math:`x_0` and a positive definite :math:`B` known only through
``solve(v) = B^{-1} v``, we solve

.. math::  \min_x \tfrac12 (x - x_0)^\top B (x - x_0)
   \quad \text{s.t.} \quad \Lambda(x) \succeq \varepsilon I .

Score matching is this problem with :math:`B` its (sparse, factorised)
Hessian and :math:`x_0` its unconstrained optimum; a projected quasi-Newton
step (:func:`minimize_pd`) is this problem with
:math:`B` the L-BFGS matrix and :math:`x_0` the quasi-Newton point.

**Method: the dual in low-rank form.** With a multiplier :math:`Z \succeq 0`
and :math:`a(Z)_p = \operatorname{tr}(E_p Z)`, minimising the Lagrangian over
:math:`x` gives :math:`x(Z) = x_0 + B^{-1} a(Z)`, and the dual problem is

.. math::  \min_{Z \succeq 0} f(Z) = \tfrac12 a(Z)^\top B^{-1} a(Z)
   + \langle Z, \Lambda(x_0) - \varepsilon I\rangle ,
   \qquad \nabla f(Z) = \Lambda(x(Z)) - \varepsilon I .

At the optimum :math:`Z` lives on the eigen-directions pinned at
:math:`\varepsilon` (on MNIST and natural patches: one), so we write
:math:`Z = V V^\top` with a thin :math:`V` (Burer & Monteiro 2003) and
minimise :math:`f(VV^\top)` with L-BFGS: every evaluation costs one
application of :math:`B^{-1}` and one sparse product,
:math:`\nabla_V = 2(\Lambda(x(VV^\top)) - \varepsilon I) V`. The rank starts at
one, along the most negative eigenvector of :math:`\Lambda(x_0)`, and grows
by the current most violated eigenvector whenever a stationary point is not
yet feasible (the standard certificate-driven rank update). Stationarity
:math:`B(x - x_0) = a(Z)` holds by construction; the result is certified by
feasibility :math:`\lambda_{\min}(\Lambda) \ge \varepsilon` and
complementarity :math:`\langle Z, \Lambda - \varepsilon I\rangle = 0`.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as la

from ._eigen import bottom_eig
from ._lbfgs import minimize_lbfgs

__all__ = ["ProjectionResult", "project_pd", "projection_certificate"]

# Dual L-BFGS steps between certificate checks (a check costs about two steps).
_CHECK_PERIOD = 5


@dataclass(frozen=True)
class ProjectionResult:
    """What :func:`project_pd` returns.

    Attributes
    ----------
    x : ndarray
        The projection, with ``Lambda(x) >= eps I``.
    n_iter : int
        L-BFGS iterations on the dual.
    kkt_residual : float
        Relative KKT residual of ``x`` (the certificate).
    min_eigenvalue : float
        Smallest eigenvalue of ``Lambda(x)``.
    dual_factor : ndarray of shape (n_features, r)
        ``V`` with ``Z = V V'`` the constraint's multiplier.
    unconstrained_min_eigenvalue : float or None
        Smallest eigenvalue of ``Lambda(x0)``; None for warm starts, which
        skip that eigenproblem.
    """

    x: np.ndarray
    n_iter: int
    kkt_residual: float
    min_eigenvalue: float
    dual_factor: np.ndarray
    unconstrained_min_eigenvalue: float | None = None


@dataclass(frozen=True)
class _Iterate:
    """A primal point with its multiplier factor ``V``, the bottom eigenpairs
    ``(lam, U)`` of its precision and its certificate ``kkt``."""

    x: np.ndarray
    V: np.ndarray
    lam: np.ndarray
    U: np.ndarray
    kkt: float


def projection_certificate(pairs, x, lam_min, V, eps):
    """Relative feasibility and complementarity residuals, the larger one.

    Complementarity is the Z-weighted mean of the Rayleigh quotients of
    ``Lambda - eps I`` over ``eps``: dimensionless.
    """
    feasibility = max(0.0, eps - lam_min) / eps
    trace_Z = np.sum(V * V)
    if trace_Z == 0:
        return feasibility
    P = pairs.to_sparse(x[: pairs.n_pairs])
    complementarity = abs(np.sum(V * (P @ V)) - eps * trace_Z) / (eps * trace_Z)
    return float(max(feasibility, complementarity))


def project_pd(
    x0,
    solve,
    pairs,
    eps,
    *,
    tol=1e-6,
    max_iter=5000,
    init=None,
    certificate=None,
    metric=None,
    verbose=0,
):
    r"""Project ``x0`` onto ``{x : Lambda(x[:n_pairs]) >= eps I}`` in the metric ``B``.

    Parameters
    ----------
    x0 : ndarray of shape (n,)
        The point to project; its first ``pairs.n_pairs`` entries are the
        free precision entries, any further entries are unconstrained.
    solve : callable
        ``v -> B^{-1} v`` for a symmetric positive definite ``B``.
    pairs : MaskPairs
        The free entries.
    eps : float
        Eigenvalue bound.
    tol : float, default=1e-6
        Target for the relative KKT residual.
    max_iter : int, default=5000
        Maximum number of L-BFGS iterations on the dual, in total.
    init : ndarray of shape (n_features, r), default=None
        Dual factor ``V`` to start from (warm start).
    certificate : callable, default=None
        ``(x, lam_min, V) -> kkt`` replacing :func:`projection_certificate`
        (score matching also checks stationarity against its data).
    metric : ndarray, default=None
        A point whose (positive definite) precision preconditions the dual,
        ideally near the solution; by default ``x0`` with its diagonal raised
        until the smallest eigenvalue is ``11 eps``.
    verbose : int, default=0
        Print progress when positive.

    Returns
    -------
    result : ProjectionResult

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.linalg import MaskPairs, project_pd
    >>> pairs = MaskPairs(np.ones((2, 2), dtype=bool))
    >>> result = project_pd(np.array([1.0, 2.0, 1.0]), lambda v: v, pairs, eps=0.5)
    >>> bool(result.min_eigenvalue >= 0.5 - 1e-9)
    True
    """
    x0 = np.asarray(x0, dtype=float)
    # The dual aims at half of tol: the final shift that restores exact
    # feasibility after rounding may add about that much to the certificate.
    dual = _DualProjection(x0, solve, pairs, eps, tol / 2, certificate)
    m = pairs.n_pairs
    has_init = init is not None and np.size(init) > 0
    warm = has_init and metric is not None
    unconstrained = None
    if warm:
        # An outer solver's warm start needs no eigenpair of Lambda(x0): one
        # factorisation says whether x0 is feasible.
        lam0, U0 = np.array([eps if pairs.is_above(x0[:m], eps) else -np.inf]), None
    else:
        lam0, U0 = bottom_eig(pairs.to_sparse(x0[:m]))
        unconstrained = float(lam0[0])

    n_iter = 0
    if lam0[0] >= eps:  # x0 is feasible: it is its own projection
        lam = bottom_eig(pairs.to_sparse(x0[:m]))[0] if warm else lam0
        x, V, kkt = x0.copy(), np.zeros((pairs.n_features, 0)), None
    else:
        if metric is None:  # x0 lifted to 11 eps: a safe margin above the bound
            metric = x0[:m] + pairs.is_diag * (eps - lam0[0] + 10.0 * eps)
        if has_init:
            V = np.asarray(init, dtype=float).reshape(pairs.n_features, -1)
        else:
            V = dual.escape(U0[:, 0], lam0[0])[:, None]
        best, n_iter = dual.solve(V, has_init, np.asarray(metric)[:m], max_iter, verbose)
        x, V, lam, kkt = best.x, best.V, best.lam, best.kkt
        compressed = _compress(V)
        if compressed is not V:  # same Z, other columns: certify what is returned
            V, kkt = compressed, None
    if lam[0] < eps:
        # Never return an infeasible point: shifting the diagonal keeps the
        # mask and restores feasibility (the certificate reports the gap).
        x = x.copy()
        x[:m] += pairs.is_diag * (eps - lam[0])
        lam = bottom_eig(pairs.to_sparse(x[:m]))[0]
        kkt = None
    if kkt is None:  # otherwise the dual certified this very (x, lam, V)
        kkt = dual.certificate(x, lam[0], V)
    return ProjectionResult(
        x=x,
        n_iter=n_iter,
        kkt_residual=float(kkt),
        min_eigenvalue=float(lam[0]),
        dual_factor=V,
        unconstrained_min_eigenvalue=unconstrained,
    )


class _DualProjection:
    """The low-rank dual of the projection of ``x0`` (see the module docstring).

    ``V`` holds the factor of the multiplier ``Z = V V'``; every evaluation of
    the dual is one application of ``solve`` (``B^{-1}``) and one sparse
    product.
    """

    def __init__(self, x0, solve, pairs, eps, tol, certificate=None):
        self.x0, self.solve_B, self.pairs = x0, solve, pairs
        self.eps, self.tol = eps, tol
        self.certificate = certificate or (
            lambda x, lam_min, V: projection_certificate(pairs, x, lam_min, V, eps)
        )
        # The latest dual evaluation: its point and complementarity gap.
        self.last_w, self.last_gap = None, 0.0

    def lift(self, a):
        """Precision coordinates -> all coordinates (vectors or columns)."""
        m = self.pairs.n_pairs
        if self.x0.size == m:
            return a
        out = np.zeros((self.x0.size,) + a.shape[1:])
        out[:m] = a
        return out

    def primal(self, V):
        """The Lagrangian's minimiser ``x(Z) = x0 + B^{-1} a(Z)``."""
        a = self.pairs.weights * self.pairs.gram_entries(V)
        return self.x0 + self.solve_B(self.lift(a))

    def escape(self, u, lam):
        """The column along ``u`` (eigenvalue ``lam`` below eps) that an exact
        line search on ``f(VV' + t uu')`` picks: the dual is quadratic in t."""
        pairs = self.pairs
        a = pairs.weights * u[pairs.rows] * u[pairs.cols]
        curvature = a @ self.solve_B(self.lift(a))[: pairs.n_pairs]
        return np.sqrt(max(self.eps - lam, 0.0) / curvature) * u

    def value_and_gradient(self, wflat, r):
        """The dual ``f(VV')`` and its gradient in ``V`` (flattened)."""
        pairs, m, eps = self.pairs, self.pairs.n_pairs, self.eps
        V = wflat.reshape(pairs.n_features, r)
        a = pairs.weights * pairs.gram_entries(V)
        y = self.solve_B(self.lift(a))
        Lam = pairs.to_sparse(self.x0[:m] + y[:m])
        trace_Z = np.sum(V * V)
        f = 0.5 * a @ y[:m] + self.x0[:m] @ a - eps * trace_Z
        grad = 2.0 * (Lam @ V - eps * V)
        # <V, grad> / 2 = <Z, Lambda - eps I>: the certificate's
        # complementarity term, free here.
        self.last_w = wflat
        self.last_gap = abs(np.sum(V * grad)) / (2 * eps * trace_Z) if trace_Z > 0 else 0.0
        return f, grad.ravel()

    def evaluate(self, V, k=None):
        """The iterate of the multiplier factor ``V``, certified."""
        x = self.primal(V)
        k = max(1, V.shape[1]) if k is None else k
        lam, U = bottom_eig(self.pairs.to_sparse(x[: self.pairs.n_pairs]), k=k)
        return _Iterate(x, V, lam, U, self.certificate(x, lam[0], V))

    def solve(self, V, warm, metric, max_iter, verbose):
        """Minimise the dual from ``V``; the best certified iterate and the
        number of L-BFGS iterations.

        The dual's Hessian in ``V`` is about ``2 (Lambda - eps I)`` off the
        pinned directions, whose spectrum spans decades where pixel variances
        do: L-BFGS is preconditioned by the inverse of a positive definite
        precision near the solution (``metric``). The rank grows by the most
        violated eigenvectors whenever a stationary point is not yet feasible.
        """
        pairs, eps, tol = self.pairs, self.eps, self.tol
        D, m = pairs.n_features, pairs.n_pairs
        factor = pairs.cholesky(metric)
        if factor is None:
            raise la.LinAlgError("The preconditioning precision is not positive definite.")
        best = _Iterate(None, None, None, None, np.inf)
        if warm:
            # A warm start is usually near the optimum: the exact subspace
            # steps of polish often finish it without the dual's L-BFGS.
            V = _compress(V)
            best = self.polish(self.evaluate(V))
            V = best.V
        n_iter, previous = 0, np.inf
        while best.kkt > tol:
            r = V.shape[1]
            result = minimize_lbfgs(
                lambda w, r=r: self.value_and_gradient(w, r),
                V.ravel(),
                max_iter=max(max_iter - n_iter, 1),
                gtol=tol * eps * 1e-2,
                ftol=1e-15,
                memory=20,
                precondition=lambda v, r=r: factor.solve(v.reshape(D, r)).ravel(),
                callback=_PeriodicCertificate(self, r, _CHECK_PERIOD),
            )
            V = result.x.reshape(D, r)
            n_iter += result.n_iter
            x = self.primal(V)
            lam, U = self.bottom_near(x[:m], V, eps * (1 - tol))
            current = _Iterate(x, V, lam, U, self.certificate(x, lam[0], V))
            if current.kkt > tol:
                current = self.polish(_Iterate(current.x, _compress(V), lam, U, current.kkt))
            x, V, lam = current.x, current.V, current.lam
            if verbose:
                print(
                    f"[projection] rank {r}: {result.n_iter} L-BFGS iterations, "
                    f"min eigenvalue {lam[0]:.6g} (eps {eps:.6g}), KKT {current.kkt:.2e}"
                )
            if current.kkt < best.kkt:
                best = current
            # Stop when certified, out of budget, or a restart gained nothing.
            if current.kkt <= tol or n_iter >= max_iter or current.kkt >= 0.5 * previous:
                break
            previous = current.kkt
            if lam[0] < eps * (1 - max(tol, 1e-12)):  # infeasible beyond rounding
                # grow the rank by every violated direction among the bottom few
                lam, U = bottom_eig(pairs.to_sparse(x[:m]), k=4)
                grown = [
                    self.escape(U[:, j], lam[j])[:, None] for j in range(len(lam)) if lam[j] < eps
                ]
                V = np.hstack([V, *grown])
        return best, n_iter

    def bottom_near(self, theta, V, shift):
        """The smallest eigenpair of ``Lambda(theta)`` when one pinned direction
        ``V`` (a single column) nearly is its eigenvector and ``shift`` lies just
        below it; otherwise (or if that cannot be certified) :func:`bottom_eig`.

        Two steps of inverse iteration with the factor of ``Lambda - shift I``
        refine ``V`` (their rate is ``(lambda_1 - shift) / (lambda_2 - shift)``,
        tiny when the shift is within ``tol eps`` of the pinned eigenvalue); its
        Rayleigh quotient ``q`` bounds ``lambda_min`` from above, and a Cholesky
        factor of ``Lambda - (q - delta) I`` proves that no eigenvalue lies
        below ``q - delta`` (Sylvester's inertia): two banded factorisations
        instead of an eigensolver.
        """
        pairs = self.pairs
        factor = pairs.cholesky(theta, shift=shift) if V.shape[1] == 1 else None
        if factor is None:
            return bottom_eig(pairs.to_sparse(theta))
        u = V[:, 0]
        for _ in range(2):
            u = factor.solve(u)
            u /= np.linalg.norm(u)
        q = float(u @ (pairs.to_sparse(theta) @ u))
        if not pairs.is_above(theta, q - 1e-9 * abs(q)):
            return bottom_eig(pairs.to_sparse(theta))
        return np.array([q]), u[:, None]

    def polish(self, it, max_steps=10):
        """Finish the dual where L-BFGS stalls on rounding.

        Near the optimum the dual value changes below machine precision (when
        the precision's entries span decades), so a line search on it stops
        early. The optimum satisfies two conditions that need no function
        values: ``Z``'s range is the bottom eigenspace ``Q`` of ``Lambda(Z)``,
        and within it ``Z = Q M Q'`` with ``M`` the minimiser of the dual, a
        quadratic in the ``r (r + 1) / 2`` entries of ``M`` (one block solve).
        We alternate them and keep every step that lowers the KKT residual;
        for one pinned direction this is an exact line search on the scale of
        the bottom eigenvector.
        """
        pairs, eps, m = self.pairs, self.eps, self.pairs.n_pairs
        for _ in range(max_steps):
            r = it.V.shape[1]
            if r == 0:
                break
            if it.U.shape[1] >= r:
                Q = it.U[:, :r]
            else:
                Q = bottom_eig(pairs.to_sparse(it.x[:m]), k=r)[1]
            jj, ii = np.nonzero(np.tril(np.ones((r, r), dtype=bool)))  # ii <= jj
            K = pairs.weights[:, None] * (
                Q[pairs.rows][:, ii] * Q[pairs.cols][:, jj]
                + (Q[pairs.rows][:, jj] * Q[pairs.cols][:, ii]) * (ii != jj)
            )
            BK = self.solve_B(self.lift(K))
            G = K.T @ BK[:m]
            g = K.T @ self.x0[:m] - eps * (ii == jj)
            try:
                with warnings.catch_warnings():
                    # An ill-conditioned block still gives a candidate; it is
                    # kept only if the certificate below improves.
                    warnings.simplefilter("ignore", la.LinAlgWarning)
                    coef = -la.solve(0.5 * (G + G.T), g, assume_a="pos")
            except (la.LinAlgError, ValueError):
                break
            M = np.zeros((r, r))
            M[ii, jj] = coef
            M[jj, ii] = coef
            s, W = la.eigh(M)
            if s[0] < 0:  # a direction that is not pinned: leave it to the dual
                break
            V = Q @ (W * np.sqrt(s))
            x = self.x0 + BK @ coef
            lam, U = bottom_eig(pairs.to_sparse(x[:m]), k=r)
            kkt = self.certificate(x, lam[0], V)
            if kkt >= it.kkt:
                break
            it = _Iterate(x, V, lam, U, kkt)
            if kkt <= 1e-12:
                break
        return it


class _PeriodicCertificate:
    """L-BFGS callback: stop the dual once the certificate itself passes.

    The dual's gradient test is far stricter than ``tol`` needs, so the
    certificate is checked every ``period`` steps, and only once its
    complementarity term (known from the last gradient) is within tol.
    Feasibility needs no eigenvalue: if ``Lambda - (1 - tol/2) eps I`` has a
    Cholesky factor, ``lambda_min >= (1 - tol/2) eps`` (Sylvester), and the
    certificate evaluated at that bound is an upper bound.
    """

    def __init__(self, dual, rank, period):
        self.dual, self.rank, self.period = dual, rank, period
        self.bound = dual.eps * (1.0 - 0.5 * dual.tol)
        self.n_calls = 0

    def __call__(self, w, _):
        self.n_calls += 1
        if self.n_calls % self.period:
            return False
        dual = self.dual
        if dual.last_gap > dual.tol and np.array_equal(dual.last_w, w):
            return False
        V = w.reshape(dual.pairs.n_features, self.rank)
        x = dual.primal(V)
        m = dual.pairs.n_pairs
        return dual.pairs.is_above(x[:m], self.bound) and (
            dual.certificate(x, self.bound, V) <= dual.tol
        )


def _compress(V, rtol=1e-10):
    """The same ``Z = V V'`` with orthogonal columns, negligible ones dropped:
    warm starts and rank growth would otherwise pile up redundant columns."""
    if V.shape[1] <= 1:
        return V
    s, Q = la.eigh(V.T @ V)
    keep = s > rtol * s.max(initial=0.0)
    return V @ Q[:, keep][:, ::-1]
