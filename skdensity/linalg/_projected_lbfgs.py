r"""Minimise a smooth convex objective over masked precisions with
:math:`\Lambda \succeq \varepsilon I`: the positive-definite constraint shared
by every estimator of the family whose objective is not the score matching
quadratic (NCE, conditional NCE).

**Method: projected quasi-Newton** (Schmidt, van den Berg, Friedlander &
Murphy 2009). Each iteration builds the L-BFGS model
:math:`f(x) + g^\top d + \tfrac12 d^\top B d` (its initial matrix a multiple of
a preconditioner, here the score matching Hessian), projects the
quasi-Newton point :math:`x - B^{-1} g` onto the constraint set *in the
metric* :math:`B` — exactly, by the low-rank dual of
:func:`project_pd`, warm-started from the previous
multiplier — and backtracks along the segment to that projection, which stays
feasible because the set is convex. The curvature pairs are those of
:math:`f` alone.

A log-barrier would not do: where the constraint is active, the barrier's
Hessian along a pinned direction grows as :math:`1/\delta^2` with the
distance :math:`\delta` to the boundary, which L-BFGS cannot follow.
Projection handles the pinned directions exactly and leaves L-BFGS the
smooth objective.

Each projection is the low-rank dual of :func:`project_pd`, preconditioned
by the current (feasible) precision's inverse (a banded solve for grid
masks); each dual iteration is one application of the L-BFGS inverse.

The result is certified by the KKT conditions with the projection's
multiplier :math:`Z \succeq 0`: stationarity :math:`\nabla f = a(Z)`
(relative to the first gradient), feasibility (exact: every iterate is
feasible) and complementarity :math:`\langle Z, \Lambda - \varepsilon
I\rangle = 0`.
"""

from dataclasses import dataclass

import numpy as np

from ._eigen import bottom_eig
from ._lbfgs import LBFGSMemory
from ._pd_projection import project_pd, projection_certificate

__all__ = ["PDMinimizeResult", "minimize_pd"]


@dataclass(frozen=True)
class PDMinimizeResult:
    """What :func:`minimize_pd` returns.

    Attributes
    ----------
    x : ndarray
        The solution.
    n_iter : int
        Quasi-Newton iterations.
    objective : float
        ``f`` at ``x``.
    kkt_residual : float
        Relative KKT residual (the certificate).
    min_eigenvalue : float
        Smallest eigenvalue of ``Lambda(x)``.
    converged : bool
        Whether the KKT residual reached ``tol``.
    stopped : bool
        Whether the callback stopped the run.
    dual_factor : ndarray of shape (n_features, r)
        Factor of the constraint's multiplier.
    """

    x: np.ndarray
    n_iter: int
    objective: float
    kkt_residual: float
    min_eigenvalue: float
    converged: bool
    stopped: bool
    dual_factor: np.ndarray


def minimize_pd(
    fg,
    x0,
    pairs,
    eps,
    *,
    tol=1e-6,
    max_iter=1000,
    memory=10,
    verbose=0,
    callback=None,
    precondition=None,
):
    r"""Minimise ``fg`` subject to ``Lambda(x[:n_pairs]) >= eps I``.

    Parameters
    ----------
    fg : callable
        ``x -> (f, grad)`` of a smooth convex objective; the first
        ``pairs.n_pairs`` entries of ``x`` are the free precision entries,
        any further entries are unconstrained (e.g. a log-normaliser).
    x0 : ndarray
        Feasible start: ``Lambda(x0) - eps I`` positive semi-definite.
    pairs : MaskPairs
        The free entries.
    eps : float
        Eigenvalue bound.
    tol : float, default=1e-6
        Target for the relative KKT residual (see the module docstring).
    max_iter : int, default=1000
        Maximum number of quasi-Newton iterations.
    memory : int, default=10
        Number of L-BFGS curvature pairs kept.
    verbose : int, default=0
        Print one line per iteration when positive.
    callback : callable, optional
        Called with ``(x, f)`` after every iteration; returning True stops
        (``result.stopped``).
    precondition : callable, optional
        ``v -> M^{-1} v`` for a positive definite approximation ``M`` of the
        Hessian of ``f``: the initial L-BFGS matrix is a multiple of ``M``.

    Returns
    -------
    result : PDMinimizeResult

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.linalg import MaskPairs, minimize_pd
    >>> pairs = MaskPairs(np.eye(2, dtype=bool))
    >>> fg = lambda x: (0.5 * np.sum((x + 1) ** 2), x + 1)   # optimum at -1
    >>> result = minimize_pd(fg, np.ones(2), pairs, eps=0.5)
    >>> np.round(result.x, 4)
    array([0.5, 0.5])
    """
    m = pairs.n_pairs
    x = np.array(x0, dtype=float)
    lam = bottom_eig(pairs.to_sparse(x[:m]))[0][0]
    if lam < eps * (1 - 1e-9):
        raise ValueError(
            f"The starting point violates Lambda >= eps I (minimum eigenvalue "
            f"{lam:.6g} < eps={eps:.6g})."
        )
    f, g = fg(x)
    g_scale = max(np.abs(g).max(), np.finfo(float).tiny)
    mem = LBFGSMemory(memory, precondition)
    V = np.zeros((pairs.n_features, 0))
    n_iter, converged, stopped, kkt = 0, False, False, np.inf
    ptol_floor = np.inf  # tightened when an inexact projection gave no descent

    while True:
        inverse_model = mem.inverse(g)  # B^{-1}
        # Inexact projections far from the optimum, tight ones near it.
        ptol = min(1e-3, max(1e-12, 1e-2 * kkt)) if np.isfinite(kkt) else 1e-3
        ptol = min(ptol, ptol_floor)
        projection = project_pd(
            x - inverse_model(g),
            inverse_model,
            pairs,
            eps,
            tol=ptol,
            init=V,
            metric=x,
            verbose=verbose > 1,
        )
        proj, V = projection.x, projection.dual_factor
        # KKT residual at x with the projection's multiplier: the step's
        # model stationarity B d + g = a(Z) makes it vanish with the step.
        kkt = _kkt_residual(pairs, x, g, V, eps, g_scale)
        if verbose:
            print(
                f"[projected L-BFGS] iteration {n_iter}: objective {f:.10g}, "
                f"active rank {V.shape[1]}, KKT {kkt:.2e}"
            )
        if kkt <= tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        d = proj - x
        slope = g @ d
        if not slope < 0:
            # An exact projection gives g'd <= -d'Bd + <Z, Lambda - eps I>:
            # tighten an inexact one first, then distrust the model.
            if ptol_floor > 1e-14:
                ptol_floor = max(1e-14, 1e-3 * min(ptol, ptol_floor))
                continue
            if len(mem):
                mem.clear()
                continue
            break  # no descent direction left: stationary to rounding
        ptol_floor = np.inf
        t = 1.0
        for _ in range(40):  # x + t d is feasible for t in [0, 1] (convex set)
            f_new, g_new = fg(x + t * d)
            if f_new <= f + 1e-4 * t * slope:
                break
            # Near the optimum f changes below its rounding error: accept on
            # the derivative instead (Hager & Zhang's approximate Wolfe test).
            if f_new <= f + 1e-12 * abs(f) and g_new @ d <= -0.8 * slope:
                break
            t *= 0.5
        else:
            break  # no progress possible
        s, y = t * d, g_new - g
        x, f, g = x + s, f_new, g_new
        n_iter += 1
        mem.add(s, y)
        if callback is not None and callback(x, f):
            stopped = True
            break
    lam_min = bottom_eig(pairs.to_sparse(x[:m]))[0][0]
    return PDMinimizeResult(
        x=x,
        n_iter=n_iter,
        objective=float(f),
        kkt_residual=float(kkt),
        min_eigenvalue=float(lam_min),
        converged=bool(converged),
        stopped=stopped,
        dual_factor=V,
    )


def _kkt_residual(pairs, x, g, V, eps, g_scale):
    """Stationarity of the Lagrangian (relative to the first gradient) and
    complementarity; feasibility holds for every iterate."""
    m = pairs.n_pairs
    r = g.copy()
    r[:m] -= pairs.weights * pairs.gram_entries(V)
    stationarity = np.abs(r).max() / g_scale
    # lam_min >= eps for iterates: pass eps so feasibility reads 0
    complementarity = projection_certificate(pairs, x, eps, V, eps)
    return float(max(stationarity, complementarity))
