r"""Minimise a smooth convex objective over masked precisions with
:math:`\Lambda \succeq \varepsilon I`: the positive-definite constraint shared
by every estimator of the family whose objective is not the score matching
quadratic (NCE, conditional NCE).

**Method: a log-barrier path.** For decreasing :math:`\mu` we minimise
:math:`f(\theta) - \mu \log\det(\Lambda(\theta) - \varepsilon I)` with an
L-BFGS that backtracks out of infeasible steps (a failed Cholesky
factorisation), warm-starting each stage from the last. Every iterate is
strictly feasible, and by standard barrier duality the final point is within
:math:`\mu D` of the constrained optimum. The barrier's gradient
:math:`-\mu\, w \odot ((\Lambda - \varepsilon I)^{-1})_E` costs one
Cholesky factorisation and the inverse's entries on the mask per
evaluation: in band storage with Takahashi's recurrence for grid masks
(see :mod:`skdensity._banded`), densely otherwise. (Score matching has a faster, specialised
solver, :func:`masked_score_matching`; a test checks that both agree.)
"""

import numpy as np
import scipy.linalg as la

from ._banded import band_storage, banded_cholesky, selected_inverse
from ._banded import narrow_band as _use_band
from ._lbfgs import minimize_lbfgs
from ._pairs import bottom_eig

__all__ = ["minimize_pd"]


def minimize_pd(
    fg, x0, pairs, eps, *, tol=1e-7, max_iter=3000, mu0=None, shrink=0.01, verbose=0,
    callback=None, precondition=None,
):
    r"""Minimise ``fg`` subject to ``Lambda(x[:n_pairs]) >= eps I``.

    Parameters
    ----------
    fg : callable
        ``x -> (f, grad)`` of a smooth convex objective; the first
        ``pairs.n_pairs`` entries of ``x`` are the free precision entries,
        any further entries are unconstrained (e.g. a log-normaliser).
    x0 : ndarray
        Strictly feasible start: ``Lambda(x0) - eps I`` positive definite.
    pairs : MaskPairs
        The free entries.
    eps : float
        Eigenvalue bound.
    tol : float, default=1e-7
        Stop when the barrier's duality-gap bound ``mu * n_features`` falls
        below ``tol * max(1, |f|)``.
    max_iter : int, default=3000
        L-BFGS iterations in total.
    mu0 : float, default=None
        First barrier weight; by default ``1e-2 * max(1, |f(x0)|) / n_features``.
    shrink : float, default=0.01
        Factor applied to ``mu`` between stages.
    verbose : int, default=0
        Print one line per stage when positive.
    callback : callable, optional
        Called with ``(x, f_barrier)`` after every L-BFGS iteration; returning
        True stops the whole path (``info["stopped"]``).
    precondition : callable, optional
        Approximate inverse Hessian of ``f`` for preconditioned L-BFGS.

    Returns
    -------
    x : ndarray
    info : dict
        ``n_iter``, ``objective`` (``f`` without barrier), ``gap_bound``,
        ``min_eigenvalue``, ``converged``, ``stopped``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity._pairs import MaskPairs
    >>> from skdensity._pd_constraint import minimize_pd
    >>> pairs = MaskPairs(np.eye(2, dtype=bool))
    >>> fg = lambda x: (0.5 * np.sum((x + 1) ** 2), x + 1)   # optimum at -1
    >>> x, info = minimize_pd(fg, np.ones(2), pairs, eps=0.5)
    >>> np.round(x, 4)
    array([0.5, 0.5])
    """
    m, D = pairs.n_pairs, pairs.n_features
    identity = np.eye(D)
    # Grid masks are narrowly banded: factorise in band storage and take the
    # barrier's gradient from the inverse's band (Takahashi), 3x faster at
    # 784 pixels and 37x at 4,096 than a dense factorisation and inverse.
    u = int((pairs.cols - pairs.rows).max(initial=0))
    banded = _use_band(D, u)

    def barrier(x):
        if banded:
            ab = band_storage(pairs.rows, pairs.cols, x[:m], D, u)
            ab[u] -= eps
            factor = banded_cholesky(ab)
            if factor is None:
                return -np.inf, None
            Z = selected_inverse(factor)
            return 2.0 * np.log(factor[u]).sum(), pairs.weights * Z[pairs.rows, pairs.cols]
        A = pairs.to_dense(x[:m])
        A[np.diag_indices(D)] -= eps
        try:
            L = la.cholesky(A, lower=True)
        except la.LinAlgError:
            return -np.inf, None
        inv = la.cho_solve((L, True), identity)
        return 2.0 * np.log(np.diag(L)).sum(), pairs.weights * pairs.from_dense(inv)

    x = np.array(x0, dtype=float)
    logdet, _ = barrier(x)
    if not np.isfinite(logdet):
        raise ValueError("The starting point violates Lambda > eps I.")
    f0, _ = fg(x)
    mu = 1e-2 * max(1.0, abs(f0)) / D if mu0 is None else mu0
    n_iter, converged, stopped = 0, False, False

    def watch(z, fz):
        nonlocal stopped
        stopped = bool(callback(z, fz)) if callback is not None else False
        return stopped

    while True:
        def stage(z, mu=mu):
            logdet, glogdet = barrier(z)
            if glogdet is None:
                return np.inf, None
            f, g = fg(z)
            g = g.copy()
            g[:m] -= mu * glogdet
            return f - mu * logdet, g

        x, _, it, _ = minimize_lbfgs(
            stage, x, max_iter=max(max_iter - n_iter, 1), gtol=1e-10, ftol=1e-13,
            callback=watch, precondition=precondition,
        )
        n_iter += it
        f, _ = fg(x)
        if verbose:
            print(f"[barrier] mu={mu:.2e}: {it} iterations, objective {f:.10g}")
        if mu * D <= tol * max(1.0, abs(f)):
            converged = True
            break
        if n_iter >= max_iter or stopped:
            break
        mu *= shrink
    lam_min = bottom_eig(pairs.to_sparse(x[:m]))[0][0]
    return x, dict(n_iter=n_iter, objective=float(f), gap_bound=float(mu * D),
                   min_eigenvalue=float(lam_min), converged=converged, stopped=stopped)
