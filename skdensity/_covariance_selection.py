r"""Maximum likelihood Gaussian with a masked precision (covariance selection).

Dempster's covariance selection maximises :math:`\log\det\Lambda -
\operatorname{tr}(S\Lambda)` over positive definite :math:`\Lambda` supported
on the mask. The problem is strictly concave when :math:`S \succ 0`, and its
optimum matches the data exactly on the mask: :math:`(\Lambda^{-1})_{ab} =
S_{ab}` for every allowed pair.

**Method: damped Newton.** In the free entries :math:`x` of :math:`\Lambda`
the gradient of :math:`F = -\log\det\Lambda + \operatorname{tr}(S\Lambda)` is
:math:`w \odot (S - \Sigma)_E` with :math:`\Sigma = \Lambda^{-1}` and the
Hessian is :math:`\tfrac12 w_p w_q (\Sigma_{ac}\Sigma_{bd} + \Sigma_{ad}\Sigma_{bc})`
for pairs :math:`p=(a,b), q=(c,d)`. Up to ``max_dense_pairs`` free entries
(default 1,000) the Newton system is formed and Cholesky-factorised; above
that (2,296 for a 4-connected 28×28 grid, 3,754 for 8-connected) it is
solved by conjugate gradients, which is faster there (4-connected MNIST:
0.72 s against 1.69 s dense) and more accurate (8-connected: rounding in the
dense system's solve stalled Newton at a KKT residual of 9e-8). Each CG step costs one Hessian product,
:math:`P_E(\Sigma \Delta \Sigma)` (a sparse-by-dense product and dots
along the mask's offsets, 3.4 ms at 784 pixels), and one application of
the preconditioner :math:`R \mapsto P_E(\Lambda R \Lambda)` (the inverse of the
unprojected Hessian), held as a sparse matrix on the free entries and
updated by L-BFGS with curvature pairs from the previous Newton step's CG
run (Morales & Nocedal, 2000). The forcing term (CG's relative tolerance)
is the KKT residual itself, so convergence is quadratic and the last
step aims straight at ``tol``. A backtracking line search on a banded
Cholesky factor keeps every iterate positive definite. Started from the
score matching estimate, Newton converges in a handful of steps (6 on
MNIST-10k, 140 Hessian products in all, 0.6 s; the forcing term
:math:`\sqrt{\mathrm{KKT}}` took 9 steps). The
cyclic neighbourhood regressions of Hastie, Tibshirani & Friedman (ESL,
Algorithm 17.1) converge only linearly: in our measurements 200 sweeps on
MNIST still left a KKT residual of 1e-4.
"""

import warnings

import numpy as np
import scipy.linalg as la
from sklearn.exceptions import ConvergenceWarning

from ._banded import cholesky_inverse, log_det, pattern_cholesky
from ._lbfgs import LBFGSMemory
from ._pairs import as_pairs, bottom_eig
from ._score_matching import masked_score_matching

__all__ = ["covariance_selection"]


def _objective(x, S_E, pairs):
    """F(x) and the Cholesky factor of Lambda, or (inf, None) if not PD."""
    factor = pattern_cholesky(pairs.rows, pairs.cols, x, pairs.n_features)
    if factor is None:
        return np.inf, None
    return -log_det(factor) + np.sum(pairs.weights * S_E * x), factor


def _newton_direction_dense(Sigma, grad, pairs):
    Sa, Sb = Sigma[pairs.rows], Sigma[pairs.cols]
    hess = Sa[:, pairs.rows] * Sb[:, pairs.cols]
    hess += Sa[:, pairs.cols] * Sb[:, pairs.rows]
    del Sa, Sb
    w = pairs.weights
    hess *= np.outer(w, 0.5 * w)
    return -la.cho_solve(la.cho_factor(hess, lower=True, overwrite_a=True), grad)


def _newton_direction_cg(Sigma, x, grad, pairs, rtol, recycled=None, n_keep=20, max_cg=500):
    r"""Newton direction by preconditioned CG at the precision with free entries ``x``.

    The preconditioner is :math:`R \mapsto P_E(\Lambda R \Lambda)`, updated
    by L-BFGS with curvature pairs ``(p, H p)`` that the previous Newton
    step's CG run produced (``recycled``; Morales & Nocedal, 2000): the
    Hessian changes little between steps, and the pairs carry the directions
    the base preconditioner gets worst (measured on MNIST: 170 -> 140
    Hessian products). Returns the direction and ``n_keep`` pairs of this run.
    """
    w = pairs.weights

    def hessp(v):  # w * (Sigma Delta(v) Sigma)_E = w * (Sigma' (Delta Sigma))_E
        return w * pairs.col_dots(Sigma, pairs.to_sparse(v) @ Sigma)

    sandwich = pairs.sandwich_matrix(x)

    def base(r):  # (Lambda R Lambda)_E: the unprojected inverse Hessian
        return sandwich @ (r / w)

    if recycled:
        memory = LBFGSMemory(len(recycled[0]), base)
        for s, y in zip(*recycled):
            memory.add(s, y)
        precond = memory.inverse(grad)
    else:
        precond = base
    x = np.zeros_like(grad)
    r = -grad
    z = precond(r)
    p = z.copy()
    rz = r @ z
    stop = rtol * np.linalg.norm(grad)
    history = []
    for _ in range(max_cg):
        Hp = hessp(p)
        history.append((p, Hp))
        alpha = rz / (p @ Hp)
        x += alpha * p
        r -= alpha * Hp
        if np.linalg.norm(r) <= stop:
            break
        z = precond(r)
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
    keep = np.unique(np.linspace(0, len(history) - 1, n_keep).astype(int))
    return x, ([history[i][0] for i in keep], [history[i][1] for i in keep])


def covariance_selection(
    S, mask, *, tol=1e-8, max_iter=100, init=None, max_dense_pairs=1000, verbose=0
):
    """Maximum likelihood precision supported on ``mask``.

    Parameters
    ----------
    S : ndarray of shape (n_features, n_features)
        Positive definite second-moment matrix of the centred data.
    mask : ndarray of bool, shape (n_features, n_features)
        Symmetric sparsity pattern with a ``True`` diagonal.
    tol : float, default=1e-8
        Target for the KKT residual ``max |(inv(Lambda) - S)_E| / max(diag S)``.
    max_iter : int, default=100
        Maximum number of Newton steps.
    init : ndarray of shape (n_features, n_features), default=None
        Positive definite precision supported on ``mask`` to start from;
        by default the score matching estimate (to a loose tolerance).
    max_dense_pairs : int, default=1000
        Largest number of free entries for which the Newton system is formed
        densely; above it, preconditioned conjugate gradients.
    verbose : int, default=0
        Print progress when positive.

    Returns
    -------
    precision : ndarray of shape (n_features, n_features)
    info : dict
        ``n_iter``, ``kkt_residual``, ``min_eigenvalue``, ``converged``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.masks import grid_mask
    >>> from skdensity._covariance_selection import covariance_selection
    >>> X = np.random.default_rng(0).normal(size=(500, 9))
    >>> P, info = covariance_selection(np.cov(X.T), grid_mask((3, 3), 4))
    >>> bool(info["kkt_residual"] < 1e-8)
    True
    """
    pairs = as_pairs(mask)
    S_E = pairs.from_dense(S)
    scale = np.abs(np.diag(S)).max()
    if init is None:
        # Newton needs a positive definite start, not an accurate one: score
        # matching to a loose tolerance (measured on MNIST with reg=1e-3:
        # the start 0.58 s at tol=1e-6, 0.23 s at 1e-2; same Newton steps).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            init, _ = masked_score_matching(S, pairs, tol=1e-2)  # same pairs, built once
    x = pairs.from_dense(init)
    f, chol = _objective(x, S_E, pairs)
    recycled = None
    if chol is None:
        raise ValueError("init must be a positive definite precision matrix.")
    n_iter = 0
    while True:
        Sigma = cholesky_inverse(chol)
        residual = pairs.from_dense(Sigma) - S_E
        kkt = np.abs(residual).max() / scale
        if verbose:
            print(f"[covariance selection] iteration {n_iter}: objective {f:.10g}, KKT {kkt:.2e}")
        if kkt <= tol or n_iter >= max_iter:
            break
        grad = pairs.weights * -residual
        if pairs.n_pairs <= max_dense_pairs:
            step = _newton_direction_dense(Sigma, grad, pairs)
        else:
            # Inexact Newton: loose far away (forcing term = KKT residual: quadratic),
            # and never tighter than the final tolerance requires.
            rtol = max(min(0.5, kkt), 0.1 * tol / kkt)
            step, recycled = _newton_direction_cg(
                Sigma, x, grad, pairs, rtol=rtol, recycled=recycled
            )
        slope = grad @ step
        t = 1.0
        while True:  # backtracking: stay positive definite, decrease enough
            f_new, chol_new = _objective(x + t * step, S_E, pairs)
            if f_new <= f + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        if chol_new is None:
            break  # no PD progress possible; report the residual
        x, f, chol = x + t * step, f_new, chol_new
        n_iter += 1
    precision = pairs.to_dense(x)
    lam_min = bottom_eig(pairs.to_sparse(x))[0][0]
    info = dict(n_iter=n_iter, kkt_residual=float(kkt), min_eigenvalue=float(lam_min),
                converged=bool(kkt <= tol))
    if not info["converged"]:
        warnings.warn(
            f"Covariance selection stopped with KKT residual {kkt:.2e} > tol={tol:g} "
            f"after {n_iter} Newton steps; increase max_iter.",
            ConvergenceWarning,
        )
    return precision, info
