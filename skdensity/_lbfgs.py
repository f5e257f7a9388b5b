"""Preconditioned L-BFGS that respects an open feasible set.

scipy's L-BFGS-B takes no preconditioner and cannot be told that a step left
the domain. This version accepts an approximate inverse Hessian as its
initial matrix (the projections of :mod:`skdensity._pd_projection` need one)
and backtracks whenever the objective returns ``inf``.
"""

import numpy as np


def minimize_lbfgs(
    fg, x0, *, max_iter=500, gtol=1e-6, ftol=1e-12, memory=10, callback=None, precondition=None
):
    """Minimise ``fg(x) -> (f, grad)``; ``f = inf`` marks infeasible points.

    Parameters
    ----------
    fg : callable
        Objective and gradient; must be finite at ``x0``.
    x0 : ndarray
        Feasible starting point.
    max_iter : int
        Maximum number of iterations.
    gtol : float
        Stop when ``max|grad| <= gtol``.
    ftol : float
        Stop when the relative decrease of ``f`` falls below ``ftol``.
    memory : int
        Number of curvature pairs kept.
    callback : callable, optional
        Called with ``(x, f)`` after each iteration; returning True stops.
    precondition : callable, optional
        ``v -> M^{-1} v`` for a positive definite approximation ``M`` of the
        Hessian; it replaces the scaled identity as the initial inverse
        Hessian of the two-loop recursion (preconditioned L-BFGS).

    Returns
    -------
    x : ndarray
    f : float
    n_iter : int
    converged : bool
        False also when ``callback`` stopped the run.
    """
    x = np.array(x0, dtype=float)
    f, g = fg(x)
    if not np.isfinite(f):
        raise ValueError("The starting point is not feasible.")
    s_hist, y_hist = [], []
    n_iter = 0
    converged = False
    while n_iter < max_iter:
        if np.abs(g).max() <= gtol:
            converged = True
            break
        q = lbfgs_inverse(s_hist, y_hist, g, precondition)(g)
        d = -q
        slope = g @ d
        if slope >= 0:  # not a descent direction: restart
            s_hist, y_hist = [], []
            d = -g / max(np.linalg.norm(g), 1e-300)
            slope = g @ d
        t = 1.0
        for _ in range(60):  # backtracking: feasible and sufficient decrease
            f_new, g_new = fg(x + t * d)
            if np.isfinite(f_new) and f_new <= f + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break  # no progress possible
        s, y = t * d, g_new - g
        x = x + s
        n_iter += 1
        decrease = f - f_new
        f, g = f_new, g_new
        if callback is not None and callback(x, f):
            break
        remember(s_hist, y_hist, s, y, memory)
        if decrease <= ftol * max(abs(f), 1.0):
            converged = True
            break
    return x, f, n_iter, converged


def lbfgs_inverse(s_hist, y_hist, g, precondition=None):
    """The L-BFGS inverse Hessian ``v -> H v`` (two-loop recursion).

    Its initial matrix is ``gamma M^{-1}`` (``M^{-1}`` = ``precondition``,
    the identity by default): ``gamma`` matches the newest curvature pair,
    or, without pairs, makes the step ``-H g`` of unit length in the
    ``M``-norm. ``v`` may hold several right-hand sides as columns.
    """
    P = precondition if precondition is not None else (lambda v: v)
    if s_hist:
        gamma = (s_hist[-1] @ y_hist[-1]) / (y_hist[-1] @ P(y_hist[-1]))
    else:
        gamma = 1.0 / max(np.sqrt(abs(g @ P(g))), 1e-300)

    def apply(v):
        q = np.array(v, dtype=float)
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist)):
            a = (s @ q) / (y @ s)
            alphas.append(a)
            q -= np.multiply.outer(y, a)
        q = gamma * P(q)
        for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
            q += np.multiply.outer(s, a - (y @ q) / (y @ s))
        return q

    return apply


def remember(s_hist, y_hist, s, y, memory):
    """Add a curvature pair, dropping the oldest beyond ``memory``.

    The pair is kept only with positive curvature; the test is relative (a
    cosine), so it does not depend on the scale of the data.
    """
    if y @ s > 1e-10 * np.linalg.norm(y) * np.linalg.norm(s):
        s_hist.append(s)
        y_hist.append(y)
        if len(s_hist) > memory:
            s_hist.pop(0)
            y_hist.pop(0)
